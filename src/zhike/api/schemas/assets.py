"""Assets: what /api/v1/assets... answer (files and thumbnails are binary, see the routes)."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field

from zhike.api.schemas.common import Out, iso_utc
from zhike.core.rows import AssetRow


class AssetPublic(Out):
    id: str
    mime: str
    kind: Literal["image", "text", "audio", "video", "subtitles"]
    width: int | None
    height: int | None
    size_bytes: int
    origin: Literal["upload", "generated"]
    op: str | None
    params: dict[str, Any] | None
    model: str | None
    seed: int | None
    zhike_version: str | None
    parent_id: str | None
    job_id: str | None
    tags: list[str]
    name: str | None
    sha256: str
    created_at: str | None
    url: str
    thumb_url: str

    @classmethod
    def from_row(cls, row: AssetRow, **more: Any) -> Self:
        """The asset as the API shows it; `more`: the fields a subclass adds (AssetDetail)."""
        return cls(
            id=row.id,
            mime=row.mime,
            kind=row.kind,
            width=row.width,
            height=row.height,
            size_bytes=row.size_bytes,
            origin=row.origin,
            op=row.op,
            params=row.params,
            model=row.model,
            seed=row.seed,
            zhike_version=row.zhike_version,
            parent_id=row.parent_id,
            job_id=row.job_id,
            tags=row.tags,
            name=row.name,
            sha256=row.sha256,
            created_at=iso_utc(row.created_at),
            url=f"/api/v1/assets/{row.id}/file",
            thumb_url=f"/api/v1/assets/{row.id}/thumb",
            **more,
        )


class AssetParent(Out):
    id: str
    exists: bool = Field(description="False once the image it was made from was deleted")


class AssetDetail(AssetPublic):
    children_count: int = Field(description="Assets made from this one (list them with ?parent=ID)")
    parent: AssetParent | None


class AssetPage(Out):
    assets: list[AssetPublic]
    next: str | None = Field(description="Pass as `before` for the next page; null on the last one")
