"""Assets: files in the blob store + rows with parameters, lineage and tags."""

from __future__ import annotations

import io
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageOps
from sqlalchemy import Connection, Engine, String, and_, cast, insert, or_, select

from zhike import __version__
from zhike.core.errors import NotFound
from zhike.core.infotext import format_infotext
from zhike.services.assets.blobs import BlobStore
from zhike.services.db import assets, utcnow
from zhike.services.images import decode_image, encode_png


def new_id() -> str:
    return secrets.token_urlsafe(12).replace("-", "a").replace("_", "b")


@dataclass
class StagedAsset:
    """An output whose bytes are stored but whose row is written only when its job completes (exactly once)."""

    row: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


class AssetService:
    def __init__(self, engine: Engine, blobs: BlobStore, *, max_upload_bytes: int, max_pixels: int) -> None:
        self.engine = engine
        self.blobs = blobs
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels

    # -- writing ---------------------------------------------------------------------------------------
    def upload(self, data: bytes, *, owner_id: str, field: str = "file", tags: list[str] | None = None) -> dict:
        """Store an uploaded image after checking it decodes safely."""
        img, mime = decode_image(data, field=field, max_bytes=self.max_upload_bytes, max_pixels=self.max_pixels)
        img = ImageOps.exif_transpose(img)  # record the size as shown (phones store photos sideways + a tag)
        sha, _ = self.blobs.put(data, mime)
        row = {
            "id": new_id(),
            "owner_id": owner_id,
            "sha256": sha,
            "mime": mime,
            "width": img.width,
            "height": img.height,
            "size_bytes": len(data),
            "origin": "upload",
            "tags": tags or [],
            "zhike_version": __version__,
            "created_at": utcnow(),
        }
        with self.engine.begin() as conn:
            conn.execute(insert(assets).values(**row))
        return row

    def stage_image(
        self,
        image: Image.Image,
        *,
        owner_id: str,
        job_id: str,
        op: str,
        params: dict[str, Any],
        seed: int | None,
        model: str | None,
        model_hash: str | None = None,
        parent_id: str | None = None,
        tags: list[str] | None = None,
        dpi: int | None = None,
    ) -> StagedAsset:
        """Encode a generated image as PNG with its parameters and store the bytes; the row waits for commit."""
        infotext = format_infotext(params, seed=seed, model=model, model_hash=model_hash, version=__version__)
        zhike_meta = {
            "op": op,
            "params": {**params, "seed": seed},
            "model": model,
            "version": __version__,
            "parent": parent_id,
        }
        chunks = {"parameters": infotext, "zhike": json.dumps(zhike_meta, ensure_ascii=False)}
        data = encode_png(image, chunks, dpi=dpi)
        sha, _ = self.blobs.put(data, "image/png")
        row = {
            "id": new_id(),
            "owner_id": owner_id,
            "sha256": sha,
            "mime": "image/png",
            "width": image.width,
            "height": image.height,
            "size_bytes": len(data),
            "origin": "generated",
            "op": op,
            "params": params,
            "model": model,
            "seed": seed,
            "zhike_version": __version__,
            "parent_id": parent_id,
            "job_id": job_id,
            "tags": tags or [],
            "created_at": utcnow(),
        }
        return StagedAsset(row=row)

    @staticmethod
    def commit_staged(conn: Connection, staged: list[StagedAsset]) -> None:
        if staged:
            conn.execute(insert(assets), [s.row for s in staged])

    # -- reading ---------------------------------------------------------------------------------------
    def get(self, asset_id: str, *, owner_id: str | None, field: str = "asset_id") -> dict[str, Any]:
        """The asset row; a missing asset and another owner's asset look the same (no id probing)."""
        cond = assets.c.id == asset_id
        if owner_id is not None:
            cond = and_(cond, assets.c.owner_id == owner_id)
        with self.engine.connect() as conn:
            row = conn.execute(select(assets).where(cond)).mappings().first()
        if row is None:
            raise NotFound(f"asset {asset_id!r} not found", field=field)
        return dict(row)

    def list(
        self,
        *,
        owner_id: str,
        limit: int = 50,
        before: str | None = None,
        op: str | None = None,
        tag: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first. `before` is the last id of the previous page (keyset paging on (created_at, id))."""
        q = select(assets).where(assets.c.owner_id == owner_id)
        if op:
            q = q.where(assets.c.op == op)
        if tag:
            # Tags are a JSON list; match the quoted element in its text (works on SQLite and PostgreSQL).
            needle = json.dumps(tag)  # the same escaping SQLAlchemy used to store the list
            q = q.where(cast(assets.c.tags, String).contains(needle, autoescape=True))
        if before:
            anchor = self.get(before, owner_id=owner_id, field="before")
            q = q.where(
                or_(
                    assets.c.created_at < anchor["created_at"],
                    and_(assets.c.created_at == anchor["created_at"], assets.c.id < anchor["id"]),
                )
            )
        q = q.order_by(assets.c.created_at.desc(), assets.c.id.desc()).limit(max(1, min(limit, 500)))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def by_job(self, job_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            q = select(assets).where(assets.c.job_id == job_id).order_by(assets.c.created_at, assets.c.id)
            return [dict(r) for r in conn.execute(q).mappings()]

    def read_bytes(self, row: dict[str, Any]) -> bytes:
        return self.blobs.read(row["sha256"], row["mime"])

    def open_image(self, asset_id: str, *, owner_id: str, field: str) -> Image.Image:
        row = self.get(asset_id, owner_id=owner_id, field=field)
        img = Image.open(io.BytesIO(self.read_bytes(row)))
        img.load()
        # The file is kept as uploaded; operations see it upright, as viewers show it (EXIF orientation).
        return ImageOps.exif_transpose(img)
