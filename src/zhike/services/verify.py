"""Verify an uploaded file's labels: the upload checks, then the LabelService's report, with this deployment's
assets table as the lookup (provenance.verify reads the labels; it knows no database)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from zhike.core.errors import InvalidInput, TooLarge, UnsupportedMedia
from zhike.media.ffmpeg import probe
from zhike.media.sniff import looks_like_media, stored_mime
from zhike.provenance import media_xmp, text_verify, watermark, xmp
from zhike.provenance.service import LabelService
from zhike.provenance.verify import AssetLookup
from zhike.services.db import assets
from zhike.services.images import check_size, decode_image


class DbLookup:
    """AssetLookup over the assets table, optionally one owner's. The watermark key is a hash of the id and has
    no column, so `by_watermark` scans ids (fine for thousands; a stored key column would make it one query)."""

    def __init__(self, engine: Engine, owner_id: str | None = None) -> None:
        self.engine = engine
        self.owner_id = owner_id

    def _where(self, query: Any) -> Any:
        return query.where(assets.c.owner_id == self.owner_id) if self.owner_id is not None else query

    def by_id(self, asset_id: str) -> dict[str, Any] | None:
        q = self._where(select(assets.c.id, assets.c.op, assets.c.created_at).where(assets.c.id == asset_id))
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _public(row) if row else None

    def by_watermark(self, payload: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(self._where(select(assets.c.id).where(assets.c.origin != "upload")))]
        found = watermark.best_match(payload, ids)
        row = self.by_id(found[0]) if found else None
        return row | {"bit_errors": found[1]} if row and found else None


def _public(row: Any) -> dict[str, Any]:
    created = row.get("created_at")
    return {"id": row["id"], "op": row.get("op"), "created_at": created.isoformat() + "Z" if created else None}


def verify_file(
    data: bytes, service: LabelService, lookup: AssetLookup | None, *, field: str, max_bytes: int, max_pixels: int
) -> dict[str, Any]:
    """The labels report of an uploaded file, after the upload checks (size, format, decompression bomb,
    truncation); raises ZhikeError naming `field`.

    A text export (Markdown, TXT, DOCX, PDF: text_verify.sniff) is read by its bounded reader. Of an image, the
    metadata is walked first, within its limits (xmp.MAX_PARTS, xmp.MAX_XMP_BYTES): a chunk flood or an inflation
    bomb is refused before any decoder spends time on it."""
    check_size(data, field=field, max_bytes=max_bytes)
    text_mime = text_verify.sniff(data)
    if text_mime is not None:
        try:
            return service.verify(data, text_mime, lookup)
        except text_verify.TextUnreadable as e:
            raise InvalidInput(f"{field}: {e}", code="verify_file_damaged", field=field) from None
    try:
        if looks_like_media(data[:16]):
            mime = _media_mime(data, field=field)
            return service.verify(data, mime, lookup)
        xmp.extract_packets(data)
        _, mime = decode_image(data, field=field, max_bytes=max_bytes, max_pixels=max_pixels)
        if service.labeler_for(mime) is None:
            raise UnsupportedMedia(
                f"{field}: labels are read from PNG, JPEG and WebP images, Markdown, TXT, DOCX and PDF text exports "
                f"and WAV, MP3, M4A, MP4 and WebM audio and video, not {mime}",
                code="verify_format_unsupported",
                field=field,
            )
        return service.verify(data, mime, lookup)
    except xmp.XmpTooLarge as e:
        raise TooLarge(
            f"{field}: {e}; a label check reads at most that",
            code="metadata_too_large",
            field=field,
            limit=e.limit,
        ) from None


def _media_mime(data: bytes, *, field: str) -> str:
    """The stored-format mime of an audio/video file handed in for a label check (size already checked; its
    metadata walked within the limits first), or 415 verify_format_unsupported for formats Zhike never exports
    (Ogg, FLAC, MOV...)."""
    media_xmp.extract_packets(data)
    with tempfile.TemporaryDirectory(prefix="zhike-verify-") as tmp:
        path = Path(tmp) / "file"
        path.write_bytes(data)
        mime = stored_mime(probe(path, field=field))
    if mime is None:
        raise UnsupportedMedia(
            f"{field}: labels are read from WAV, MP3, M4A, MP4 and WebM files; this one is none of them",
            code="verify_format_unsupported",
            field=field,
        )
    return mime
