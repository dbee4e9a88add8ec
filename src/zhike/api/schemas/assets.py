"""Assets: what /api/v1/assets... answer (files and thumbnails are binary, see the routes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from zhike.api.schemas.common import Out


class AssetPublic(Out):
    id: str
    mime: str
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
    sha256: str
    created_at: str | None
    url: str
    thumb_url: str


class AssetParent(Out):
    id: str
    exists: bool = Field(description="False once the image it was made from was deleted")


class AssetDetail(AssetPublic):
    children_count: int = Field(description="Assets made from this one (list them with ?parent=ID)")
    parent: AssetParent | None


class AssetPage(Out):
    assets: list[AssetPublic]
    next: str | None = Field(description="Pass as `before` for the next page; null on the last one")
