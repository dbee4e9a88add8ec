"""Assets: files in the blob store + rows with parameters, lineage and tags."""

from __future__ import annotations

import functools
import io
import json
import os
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Select, String, and_, cast, delete, func, insert, or_, select

from zhike import __version__
from zhike.core.errors import InvalidInput, NotFound, UnsupportedMedia, asset_wrong_kind
from zhike.core.infotext import format_infotext
from zhike.core.rows import MEDIA_MIMES, SUBTITLE_MIMES, TEXT_MIMES, AssetRow, StagedAsset, kind_of, new_asset_id
from zhike.imaging.colour import upright_srgb
from zhike.media.ffmpeg import probe, run_ffmpeg
from zhike.media.limits import MediaLimits, check_input, refuse_silent
from zhike.media.sniff import stored_mime
from zhike.services.assets.blobs import BlobStore
from zhike.services.db import assets, utcnow
from zhike.services.file_names import safe_part
from zhike.services.images import checked_upload, encode_png

PROMPT_KEYS = ("prompt", "negative_prompt")  # what the library's text search looks in
# ...and, of a text asset, its name and the words ops' inputs that say what it is about (product, brief, idea, source)
TEXT_KEYS = ("name", "category", "brief", "idea", "text")


def asset_name(name: str | None) -> str | None:
    """A file name as an asset's name: folders and the extension dropped, made safe for file names
    (file_names.safe_part), at most 100 characters; None when nothing is left."""
    if not name:
        return None
    base = PurePosixPath(name.replace("\\", "/")).name
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    return safe_part(stem, 100) or None


def not_image(asset_id: str, field: str, kind: str = "text") -> InvalidInput:
    if kind != "text":
        return asset_wrong_kind(asset_id, field, kind, "image")
    return InvalidInput(
        f"{field}: asset {asset_id!r} is text; an image is needed here",
        code="asset_not_image",
        field=field,
        ctx={"id": asset_id},
    )


# Media outputs a job may store (RunContext.save_media): audio, video, subtitles, and animated GIF/WebP images.
MEDIA_OUTPUT_MIMES = (*MEDIA_MIMES, "image/gif", "image/webp")
MIME_ALIASES = {"text/srt": "application/x-subrip", "audio/x-wav": "audio/wav", "audio/wave": "audio/wav"}
# A staged output's bytes are kept in memory until its row is written (see StagedAsset.data) up to this size;
# larger renders skip that guard (a concurrent delete of another asset with the very same bytes is the only risk).
KEEP_STAGED_BYTES = 64 * 1024 * 1024


def image_refs(params: BaseModel) -> list[tuple[str, str]]:
    """(field path, asset id) of every image reference in validated params: the fields typed core.types.AssetId
    (JSON Schema format asset-id), also inside lists and nested models (params.controls.0.image)."""
    out: list[tuple[str, str]] = []

    def walk(value: Any, path: tuple[str, ...], at: str) -> None:
        if not path:
            if isinstance(value, str) and value:
                out.append((at, value))
        elif path[0] == "*":
            for i, item in enumerate(value if isinstance(value, list) else []):
                walk(item, path[1:], f"{at}.{i}")
        elif isinstance(value, dict) and value.get(path[0]) is not None:
            walk(value[path[0]], path[1:], f"{at}.{path[0]}")

    data = params.model_dump()
    for path in _asset_paths(type(params)):
        walk(data, path, "params")
    return out


@functools.cache
def _asset_paths(model: type[BaseModel]) -> tuple[tuple[str, ...], ...]:
    """Where a Params model holds asset ids: paths of field names, "*" for a list's items."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    found: list[tuple[str, ...]] = []

    def collect(s: Any, path: tuple[str, ...], seen: frozenset[str]) -> None:
        if not isinstance(s, dict):
            return
        ref = s.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            collect(defs.get(ref.rsplit("/", 1)[-1]), path, seen | {ref})
        if s.get("format") == "asset-id" and path not in found:
            found.append(path)
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in s.get(key, []):
                collect(sub, path, seen)
        if "items" in s:
            collect(s["items"], (*path, "*"), seen)
        for name, sub in s.get("properties", {}).items():
            collect(sub, (*path, name), seen)

    collect(schema, (), frozenset())
    return tuple(found)


def text_name(text: str, mime: str, limit: int = 24) -> str | None:
    """A text asset's name from its words: a JSON output's title/name field, else the first line with Markdown's
    marks (#, >, -, *, `) dropped, at most `limit` characters."""
    if mime == "application/json":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("title", "name"):
                if isinstance(data.get(key), str) and data[key].strip():
                    return asset_name(data[key][:limit])
    for line in text.splitlines():
        if re.match(r"\s*(```|~~~|---|\*\*\*|___)", line):  # fences and rules name nothing
            continue
        words = re.sub(r"[#>*`_~|]+|^\s*(?:[-+]|\d+[.)])\s+", "", line).strip()
        if words:
            return safe_part(words, limit) or None
    return None


def page_query(conn: Connection, cond: list[Any], before: str | None, limit: int) -> Select[Any]:
    """One page of assets matching `cond` (which starts with the owner), newest first: keyset paging on
    (created_at, id) after `before`, the last id of the previous page (404 when it is not the owner's)."""
    cond = list(cond)
    if before:
        anchor = conn.execute(select(assets.c.created_at, assets.c.id).where(cond[0], assets.c.id == before)).first()
        if anchor is None:
            raise NotFound(f"asset {before!r} not found", code="asset_not_found", field="before", ctx={"id": before})
        cond.append(
            or_(
                assets.c.created_at < anchor.created_at,
                and_(assets.c.created_at == anchor.created_at, assets.c.id < anchor.id),
            )
        )
    return (
        select(assets)
        .where(and_(*cond))
        .order_by(assets.c.created_at.desc(), assets.c.id.desc())
        .limit(max(1, min(limit, 500)))
    )


def parse_when(value: str | None, *, field: str, end_of_day: bool = False) -> datetime | None:
    """An ISO date or datetime as the naive UTC datetime the table stores; 422 naming `field` otherwise.

    A bare date means the start of that day (UTC), or with `end_of_day` the first instant after it, so that
    `until=2025-05-01` includes all of May 1st. Datetimes with an offset are converted to UTC.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day)
            return start + timedelta(days=1) if end_of_day else start
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{field}: {value!r} is not an ISO date or datetime (e.g. 2025-05-01 or 2025-05-01T08:30:00Z)",
            code="invalid_date",
            field=field,
        ) from None
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


# Where an operation records the image it started from (ops pass the same value as the row's parent_id).
SOURCE_PARAMS = ("init_image", "image")


def recorded_source(row: AssetRow) -> str | None:
    """The asset this one was made from: parent_id, or (once the parent was deleted and the database set
    parent_id to NULL, as the foreign key says) the input image its parameters still name."""
    if row.parent_id:
        return row.parent_id
    params = row.params or {}
    if row.origin != "generated" or not isinstance(params, dict):
        return None
    for name in SOURCE_PARAMS:
        if isinstance(params.get(name), str) and params[name]:
            return params[name]
    controls = params.get("controls")
    if isinstance(controls, list) and controls and isinstance(controls[0], dict):
        first = controls[0].get("image")
        return first if isinstance(first, str) and first else None
    return None


def _upload_row(
    owner_id: str,
    sha: str,
    mime: str,
    width: int | None,
    height: int | None,
    size: int,
    tags: list[str] | None,
    name: str | None,
) -> AssetRow:
    """The row of an uploaded file (an image or a recording/clip): no op, params or lineage."""
    return AssetRow(
        id=new_asset_id(),
        owner_id=owner_id,
        sha256=sha,
        mime=mime,
        width=width,
        height=height,
        size_bytes=size,
        origin="upload",
        op=None,
        params=None,
        model=None,
        seed=None,
        zhike_version=__version__,
        parent_id=None,
        job_id=None,
        tags=tags or [],
        created_at=utcnow(),
        name=name,
    )


class AssetService:
    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        *,
        max_upload_bytes: int,
        max_pixels: int,
        media_limits: MediaLimits | None = None,
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self.media_limits = media_limits or MediaLimits()

    # -- writing ---------------------------------------------------------------------------------------
    def upload(
        self,
        data: bytes,
        *,
        owner_id: str,
        field: str = "file",
        tags: list[str] | None = None,
        name: str | None = None,
    ) -> AssetRow:
        """Store an uploaded image after checking it decodes safely: PNG, JPEG and WebP as sent, other formats
        (HEIC, TIFF...) converted once to upright sRGB PNG or JPEG (services/images.py says which).
        `name`: what the user calls it, usually the file name it was sent with (`asset_name` tidies it)."""
        up = checked_upload(
            data, field=field, max_bytes=self.max_upload_bytes, max_pixels=self.max_pixels, owner=owner_id
        )
        data, mime = up.data, up.mime
        sha, _ = self.blobs.put(data, mime)
        # width/height as shown (phones store photos sideways + a tag)
        row = _upload_row(owner_id, sha, mime, up.width, up.height, len(data), tags, asset_name(name))
        with self.engine.begin() as conn:
            conn.execute(insert(assets).values(**row.as_dict()))
        # A concurrent delete of the last other row with these bytes may have removed the file between put()
        # and the insert; now that our row exists no delete will remove it again, so put it back if it is gone.
        if not self.blobs.path_for(sha, mime).exists():
            self.blobs.put(data, mime)
        return row

    def upload_media(
        self,
        path: Path,
        *,
        owner_id: str,
        field: str = "file",
        tags: list[str] | None = None,
        name: str | None = None,
    ) -> AssetRow:
        """Store an uploaded recording, song or video (a file on disk: the API spools it there) after the media
        checks (media/limits.py: size, readable, length; an audio-only file must not be silent). WAV, MP3, M4A,
        MP4 (H.264/HEVC) and WebM are kept as sent; other audio (Ogg, FLAC, AMR, Opus...) is converted once to M4A;
        other video is refused (415 media_format_unsupported: converting a long video would hold the upload)."""
        shown = asset_name(name)
        info = check_input(path, field=field, limits=self.media_limits, name=shown, silence=False)
        if info.video is None:  # a recording or a song that is silent is of no use to any op
            refuse_silent(path, field=field, limits=self.media_limits, name=shown)
        mime = stored_mime(info)
        if mime is None and info.has_video:
            raise UnsupportedMedia(
                f"{field}: this video format ({info.format}, {info.video.codec if info.video else '?'}) is not "
                "accepted: upload MP4 (H.264) or WebM",
                code="media_format_unsupported",
                field=field,
                ctx={"format": info.format.split(",")[0]},
            )
        if mime is None:  # audio only, in a format browsers and labels do not all take: AAC in M4A
            converted = path.with_name(path.name + ".m4a")
            run_ffmpeg(["-i", str(path), "-map", "0:a:0", "-c:a", "aac", "-b:a", "192k", str(converted)])
            path, mime = converted, "audio/mp4"
        sha, _ = self.blobs.put_file(path, mime)
        width, height = (info.video.width, info.video.height) if info.video else (None, None)
        row = _upload_row(owner_id, sha, mime, width, height, path.stat().st_size, tags, shown)
        with self.engine.begin() as conn:
            conn.execute(insert(assets).values(**row.as_dict()))
        if not self.blobs.path_for(sha, mime).exists():  # see upload(): a concurrent delete of the same bytes
            self.blobs.put_file(path, mime)
        return row

    def restage(self, record: Mapping[str, Any]) -> StagedAsset | None:
        """A staged output recorded by an earlier attempt of a job (its row as staged: `AssetRow.as_dict()`, with
        `created_at` a datetime again), if its file is still stored."""
        row = AssetRow.from_row({"name": None, **record})  # records staged before assets had names
        if not self.blobs.path_for(row.sha256, row.mime).exists():
            return None
        return StagedAsset(row=row)

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
        asset_id: str | None = None,
        name: str | None = None,
    ) -> StagedAsset:
        """Encode a generated image as PNG with its parameters and store the bytes; the row waits for commit.
        `asset_id`: the id the caller already handed out (RunContext.save_image returns it before storing).
        `name`: default the parent's name, so a cutout of 咖啡杯 is still called 咖啡杯."""
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
        row = AssetRow(
            id=asset_id or new_asset_id(),
            owner_id=owner_id,
            sha256=sha,
            mime="image/png",
            width=image.width,
            height=image.height,
            size_bytes=len(data),
            origin="generated",
            op=op,
            params=params,
            model=model,
            seed=seed,
            zhike_version=__version__,
            parent_id=parent_id,
            job_id=job_id,
            tags=tags or [],
            created_at=utcnow(),
            name=asset_name(name) if name is not None else self._name_of(parent_id),
        )
        return StagedAsset(row=row, data=data, blobs=self.blobs)

    def stage_text(
        self,
        text: str,
        *,
        owner_id: str,
        job_id: str,
        op: str,
        params: dict[str, Any],
        model: str | None,
        parent_id: str | None = None,
        mime: str = "text/markdown",
        name: str | None = None,
        asset_id: str | None = None,
    ) -> StagedAsset:
        """Store a words op's output as UTF-8 (Markdown, or JSON for structured outputs); the row waits for commit.
        No size: width and height are NULL. `name`: given (e.g. the product's name), else the parent's, else the
        text's first words."""
        if mime not in TEXT_MIMES:
            raise ValueError(f"not a text mime type: {mime}")
        data = text.encode("utf-8")
        sha, _ = self.blobs.put(data, mime)
        shown = asset_name(name) if name is not None else (self._name_of(parent_id) or text_name(text, mime))
        row = AssetRow(
            id=asset_id or new_asset_id(),
            owner_id=owner_id,
            sha256=sha,
            mime=mime,
            width=None,
            height=None,
            size_bytes=len(data),
            origin="generated",
            op=op,
            params=params,
            model=model,
            seed=params.get("seed") if isinstance(params.get("seed"), int) else None,
            zhike_version=__version__,
            parent_id=parent_id,
            job_id=job_id,
            tags=[],
            created_at=utcnow(),
            name=shown,
        )
        return StagedAsset(row=row, data=data, blobs=self.blobs)

    def stage_media(
        self,
        path: Path,
        *,
        owner_id: str,
        job_id: str,
        op: str,
        params: dict[str, Any],
        model: str | None,
        mime: str,
        parent_id: str | None = None,
        name: str | None = None,
        asset_id: str | None = None,
    ) -> StagedAsset:
        """Store a finished media file (audio, video, subtitles, animated GIF/WebP) from the job's work folder by
        copying it into the blob store; the row waits for commit. Width and height are the video's (probed), NULL
        for audio and subtitles. The stored file is the op's output as made: labels are added on export, like
        images' (provenance/media.py). `name`: given, else the parent's."""
        mime = MIME_ALIASES.get(mime, mime)
        if mime not in MEDIA_OUTPUT_MIMES:
            raise ValueError(f"not a media mime type: {mime}")
        path = Path(path)
        width = height = None
        if mime in SUBTITLE_MIMES:
            path.read_bytes().decode("utf-8")  # subtitles are UTF-8 text: fail here, not in a download
        elif mime.startswith("image/"):  # ffmpeg 5 cannot decode animated WebP; Pillow reads both
            with Image.open(path) as img:
                width, height = img.size
        else:  # a file ffprobe cannot read is the op's bug: say so now, not when someone downloads it
            info = probe(path, field="output")
            if info.video is not None:
                width, height = info.video.width, info.video.height
        sha, _ = self.blobs.put_file(path, mime)
        size = path.stat().st_size
        row = AssetRow(
            id=asset_id or new_asset_id(),
            owner_id=owner_id,
            sha256=sha,
            mime=mime,
            width=width,
            height=height,
            size_bytes=size,
            origin="generated",
            op=op,
            params=params,
            model=model,
            seed=params.get("seed") if isinstance(params.get("seed"), int) else None,
            zhike_version=__version__,
            parent_id=parent_id,
            job_id=job_id,
            tags=[],
            created_at=utcnow(),
            name=asset_name(name) if name is not None else self._name_of(parent_id),
        )
        data = path.read_bytes() if size <= KEEP_STAGED_BYTES else None
        return StagedAsset(row=row, data=data, blobs=self.blobs if data is not None else None)

    def read_text(self, row: AssetRow) -> str:
        return self.read_bytes(row).decode("utf-8")

    def _name_of(self, asset_id: str | None) -> str | None:
        if asset_id is None:
            return None
        with self.engine.connect() as conn:
            return conn.execute(select(assets.c.name).where(assets.c.id == asset_id)).scalar()

    @staticmethod
    def commit_staged(conn: Connection, staged: list[StagedAsset]) -> None:
        for s in staged:  # the file may have been deleted with another asset of the same bytes meanwhile
            if s.blobs is not None and s.data is not None:
                s.blobs.put(s.data, s.row.mime)
        if staged:
            conn.execute(insert(assets), [s.row.as_dict() for s in staged])

    # -- reading ---------------------------------------------------------------------------------------
    def get(self, asset_id: str, *, owner_id: str | None, field: str = "asset_id") -> AssetRow:
        """The asset row; a missing asset and another owner's asset look the same (no id probing)."""
        cond = assets.c.id == asset_id
        if owner_id is not None:
            cond = and_(cond, assets.c.owner_id == owner_id)
        with self.engine.connect() as conn:
            row = conn.execute(select(assets).where(cond)).mappings().first()
        if row is None:
            raise NotFound(f"asset {asset_id!r} not found", code="asset_not_found", field=field, ctx={"id": asset_id})
        return AssetRow.from_row(row)

    def list(
        self,
        *,
        owner_id: str,
        limit: int = 50,
        before: str | None = None,
        op: str | None = None,
        tag: str | None = None,
        q: str | None = None,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        parent: str | None = None,
        origin: str | None = None,
        kind: str | None = None,
    ) -> list[AssetRow]:
        """Newest first. `before` is the last id of the previous page (keyset paging on (created_at, id)).

        `q`: case-insensitive substring of the prompt or negative prompt (of a text: its name or TEXT_KEYS);
        `since` inclusive, `until` exclusive;
        `parent`: the assets made from that asset; `kind`: image, text, audio, video or subtitles.
        """
        cond = [assets.c.owner_id == owner_id]
        if kind == "image":
            cond.append(assets.c.mime.not_in((*TEXT_MIMES, *MEDIA_MIMES)))
        elif kind:
            cond.append(assets.c.mime.in_([m for m in (*TEXT_MIMES, *MEDIA_MIMES) if kind_of(m) == kind]))
        if op:
            cond.append(assets.c.op == op)
        if model:
            cond.append(assets.c.model == model)
        if origin:
            cond.append(assets.c.origin == origin)
        if parent:
            cond.append(assets.c.parent_id == parent)
        if since is not None:
            cond.append(assets.c.created_at >= since)
        if until is not None:
            cond.append(assets.c.created_at < until)
        if tag:
            # Tags are a JSON list; match the quoted element in its text (works on SQLite and PostgreSQL).
            needle = json.dumps(tag)  # the same escaping SQLAlchemy used to store the list
            cond.append(cast(assets.c.tags, String).contains(needle, autoescape=True))
        if q and q.strip():
            # The JSON values themselves (json_extract on SQLite, ->> on PostgreSQL), not the stored text:
            # that holds Chinese as \uXXXX escapes and would match key names and other parameters too.
            text = q.strip()

            def like(keys: tuple[str, ...]) -> list[Any]:
                return [assets.c.params[k].as_string().icontains(text, autoescape=True) for k in keys]

            named = or_(assets.c.name.icontains(text, autoescape=True), *like(TEXT_KEYS))
            cond.append(or_(*like(PROMPT_KEYS), and_(assets.c.mime.in_(TEXT_MIMES), named)))
        with self.engine.connect() as conn:
            return [AssetRow.from_row(r) for r in conn.execute(page_query(conn, cond, before, limit)).mappings()]

    def children_count(self, asset_id: str, *, owner_id: str) -> int:
        q = select(func.count()).where(assets.c.owner_id == owner_id, assets.c.parent_id == asset_id)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def exists(self, asset_id: str, *, owner_id: str) -> bool:
        q = select(assets.c.id).where(assets.c.id == asset_id, assets.c.owner_id == owner_id)
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def by_job(self, job_id: str) -> list[AssetRow]:
        with self.engine.connect() as conn:
            q = select(assets).where(assets.c.job_id == job_id).order_by(assets.c.created_at, assets.c.id)
            return [AssetRow.from_row(r) for r in conn.execute(q).mappings()]

    # -- deleting --------------------------------------------------------------------------------------
    def delete(self, asset_id: str, *, owner_id: str) -> AssetRow:
        """Remove the caller's asset row; its file goes only when no other row (anyone's) has the same bytes.

        Assets made from it keep their rows: the foreign key sets their parent_id to NULL and their
        parameters still name the source (see `recorded_source`).
        """
        with self.engine.begin() as conn:
            found = (
                conn.execute(select(assets).where(assets.c.id == asset_id, assets.c.owner_id == owner_id))
                .mappings()
                .first()
            )
            if found is None:
                raise NotFound(
                    f"asset {asset_id!r} not found", code="asset_not_found", field="asset_id", ctx={"id": asset_id}
                )
            row = AssetRow.from_row(found)
            conn.execute(delete(assets).where(assets.c.id == asset_id))
            left = self._sha_rows(conn, row.sha256)
        if left == 0:
            self._remove_blob(row.sha256, row.mime)
        return row

    def _sha_rows(self, conn: Connection, sha256: str) -> int:
        return int(conn.execute(select(func.count()).where(assets.c.sha256 == sha256)).scalar_one())

    def _remove_blob(self, sha256: str, mime: str) -> None:
        """Move the file aside, count again, then unlink it or put it back: an upload or job that wrote a row
        for the same bytes meanwhile keeps its file (they also re-put missing files after their insert)."""
        path = self.blobs.path_for(sha256, mime)
        aside = path.with_name(f".deleted-{secrets.token_hex(6)}-{path.name}")
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            return
        with self.engine.connect() as conn:
            again = self._sha_rows(conn, sha256)
        if again:
            os.replace(aside, path)
        else:
            aside.unlink(missing_ok=True)

    def media_file(
        self, asset_id: str, *, owner_id: str, field: str, kinds: tuple[str, ...] = ("audio", "video")
    ) -> tuple[AssetRow, Path]:
        """The asset and its stored file, for ffmpeg to read in place (never write to it: the store is shared by
        content); 404 asset_not_found or 422 asset_wrong_kind (naming `field`) when it is not one of `kinds`."""
        row = self.get(asset_id, owner_id=owner_id, field=field)
        if row.kind not in kinds:
            raise asset_wrong_kind(asset_id, field, row.kind, " or ".join(kinds))
        return row, self.blobs.path_for(row.sha256, row.mime)

    def read_bytes(self, row: AssetRow) -> bytes:
        return self.blobs.read(row.sha256, row.mime)

    def open_image(self, asset_id: str, *, owner_id: str, field: str) -> Image.Image:
        return self.shown(self.get(asset_id, owner_id=owner_id, field=field), field=field)

    def require_images(self, refs: list[tuple[str, str]], *, owner_id: str) -> None:
        """422 `asset_not_image` naming the field when one of `refs` ((field, asset id), e.g. from
        `image_refs(params)`) is a text asset (`asset_wrong_kind` for audio, video or subtitles); missing ids are the
        op's own business (it says asset_not_found)."""
        if not refs:
            return
        q = select(assets.c.id, assets.c.mime).where(
            assets.c.owner_id == owner_id,
            assets.c.id.in_({a for _, a in refs}),
            assets.c.mime.in_((*TEXT_MIMES, *MEDIA_MIMES)),
        )
        with self.engine.connect() as conn:
            others = {r.id: kind_of(r.mime) for r in conn.execute(q)}
        for field, asset_id in refs:
            if asset_id in others:
                raise not_image(asset_id, field, others[asset_id])

    def shown(self, row: AssetRow, *, fit: int | None = None, field: str = "asset_id") -> Image.Image:
        """The asset's pixels as viewers show them: the file is kept as uploaded; operations and thumbnails see it
        upright (EXIF orientation), 8-bit, in sRGB (its ICC profile applied). `fit`: only an image about that size
        is needed (thumbnails), so a JPEG decodes at a reduced scale, like Pillow's thumbnail() (2x the size)."""
        if not row.is_image:
            raise not_image(row.id, field, row.kind)
        img = Image.open(io.BytesIO(self.read_bytes(row)))
        if fit:
            img.draft(None, (2 * fit, 2 * fit))
        img.load()
        return upright_srgb(img)
