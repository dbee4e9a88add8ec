"""Design templates users keep (模板库), beside the bundled starters, and the ZIP a batch design job downloads as.

Bundled templates are read-only and shared by everyone; stored ones belong to their owner (another owner's is
404, as with assets and jobs). A stored template's id is assigned here (`my_...`), so it never shadows a bundled
one, and every update bumps its version: a batch job pins the template's JSON and version when it is submitted.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
import secrets
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, func, insert, select, update

from zhike.core.errors import InvalidInput, NotFound, TooLarge, ZhikeError
from zhike.core.files import write_atomic
from zhike.design.template import MAX_TEMPLATE_BYTES, Template, bundled_templates, parse_or_invalid, parse_template
from zhike.services.db import templates, utcnow
from zhike.services.file_names import row_name, safe_part, unique

if TYPE_CHECKING:
    from zhike.core.rows import AssetRow, JobRow
    from zhike.services.assets.service import AssetService
    from zhike.services.exports import ExportService

MAX_TEMPLATES_PER_OWNER = 500
# The long side of a live preview. 1080 x 1080 (social posts, the bundled templates) previews at its size; a
# 4096 x 4096 design is drawn at 7% of its pixels (13 s of CPU -> about 1 s): layout and fonts scale alike.
PREVIEW_MAX_SIDE = 1080
THUMB_WIDTH = 360  # gallery cards are ~180 css px wide: sharp on a 2x screen
GREY = (214, 214, 214)  # stands in for a photo or a generated image where the sample has none
__all__ = [
    "MAX_TEMPLATE_BYTES",
    "PREVIEW_MAX_SIDE",
    "ReadOnly",
    "StoredTemplate",
    "TemplateStore",
    "parse_or_invalid",
    "preview_size",
    "sample_row",
    "thumbnail",
    "write_archive",
]


def sample_row(t: Template) -> dict[str, str]:
    """The template's own sample data, with a placeholder word for any required column it leaves out. Image
    columns stay empty (a sample has no photo): a starter template looks complete without one."""
    required, _ = t.columns()
    row = {c: c for c in sorted(required) if c not in t.sample}
    return row | dict(t.sample)


def thumbnail(stored: StoredTemplate, cache_dir: Path) -> tuple[bytes, str]:
    """A THUMB_WIDTH wide WebP of the template drawn with its sample row, cached on disk by its digest; and the
    ETag. A sample has no photos: a required image layer and a generated one are a quiet grey (no model needed)."""
    from PIL import Image

    from zhike.design.render import render_design

    key = stored.digest
    path = cache_dir / f"{stored.template.id}-{key}.webp"
    try:
        return path.read_bytes(), f'"{key}"'
    except FileNotFoundError:
        pass
    t = stored.template
    scale = THUMB_WIDTH / t.width
    size = (THUMB_WIDTH, max(1, round(t.height * scale)))
    img, _ = render_design(
        t,
        sample_row(t),
        size=size,
        resolve_image=lambda _v: Image.new("RGB", (64, 64), GREY),
        generate=lambda _p, w, h: Image.new("RGB", (w, h), GREY),
    )
    out = io.BytesIO()
    img.save(out, "WEBP", quality=85, method=4)
    write_atomic(path, out.getvalue())
    return out.getvalue(), f'"{key}"'


def preview_size(width: int, height: int) -> tuple[int, int]:
    """The size a design of width x height is previewed at: the same shape, the long side at most PREVIEW_MAX_SIDE."""
    scale = min(1.0, PREVIEW_MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


class ReadOnly(ZhikeError):
    status = 403
    code = "forbidden"


@dataclass(frozen=True)
class StoredTemplate:
    template: Template
    version: int
    owner_id: str | None = None  # None: bundled with Zhike
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def bundled(self) -> bool:
        return self.owner_id is None

    @property
    def digest(self) -> str:
        """Changes with the template's JSON (and so with every bundled edit and stored version): a cache key."""
        body = json.dumps(self.template.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(f"{THUMB_WIDTH}:{body}".encode()).hexdigest()[:16]

    def view(self, *, full: bool = True) -> dict[str, Any]:
        t = self.template
        required, optional = t.columns()
        out: dict[str, Any] = {
            "id": t.id,
            "name": t.name.model_dump(),
            "description": t.description.model_dump() if t.description else None,
            "width": t.width,
            "height": t.height,
            "bundled": self.bundled,
            "version": self.version,
            "columns": {"required": sorted(required), "optional": sorted(optional)},
            "category": t.category,
            "tags": t.tags,
            "sample": sample_row(t),
            "thumb": f"/api/v1/templates/{t.id}/thumb?v={self.digest}",
            "created_at": self.created_at.isoformat() + "Z" if self.created_at else None,
            "updated_at": self.updated_at.isoformat() + "Z" if self.updated_at else None,
        }
        if full:
            out["template"] = t.model_dump(mode="json")
        return out


class TemplateStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(self, owner_id: str) -> list[StoredTemplate]:
        """Bundled (by id), then the owner's newest first."""
        out = [StoredTemplate(t, 1) for _, t in sorted(bundled_templates().items())]
        q = select(templates).where(templates.c.owner_id == owner_id).order_by(templates.c.updated_at.desc())
        with self.engine.connect() as conn:
            out += [self._from_row(dict(r)) for r in conn.execute(q).mappings()]
        return out

    def get(self, template_id: str, owner_id: str, *, field: str = "template_id") -> StoredTemplate:
        bundled = bundled_templates().get(template_id)
        if bundled is not None:
            return StoredTemplate(bundled, 1)
        q = select(templates).where(templates.c.id == template_id, templates.c.owner_id == owner_id)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        if row is None:
            known = ", ".join(sorted(bundled_templates()))
            raise NotFound(
                f"template {template_id!r} not found (bundled: {known})",
                code="template_not_found",
                field=field,
                ctx={"id": template_id},
            )
        return self._from_row(dict(row))

    def create(self, owner_id: str, body: Any, *, field: str = "template") -> StoredTemplate:
        with self.engine.connect() as conn:
            n = conn.execute(select(func.count()).where(templates.c.owner_id == owner_id)).scalar_one()
        if n >= MAX_TEMPLATES_PER_OWNER:
            raise TooLarge(
                f"at most {MAX_TEMPLATES_PER_OWNER} templates each",
                code="too_many_templates",
                field=field,
                limit=MAX_TEMPLATES_PER_OWNER,
            )
        tid = f"my_{secrets.token_hex(6)}"
        tpl = parse_or_invalid(self._with_id(body, tid, field), field=field)
        now = utcnow()
        row = {
            "id": tid,
            "owner_id": owner_id,
            "body": tpl.model_dump(mode="json"),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(templates).values(**row))
        return self._from_row(row)

    def update(self, template_id: str, owner_id: str, body: Any, *, field: str = "template") -> StoredTemplate:
        self._writable(template_id, owner_id)
        tpl = parse_or_invalid(self._with_id(body, template_id, field), field=field)
        with self.engine.begin() as conn:
            res = conn.execute(
                update(templates)
                .where(templates.c.id == template_id, templates.c.owner_id == owner_id)
                .values(body=tpl.model_dump(mode="json"), version=templates.c.version + 1, updated_at=utcnow())
            )
        if res.rowcount != 1:  # deleted meanwhile
            raise NotFound(
                f"template {template_id!r} not found",
                code="template_not_found",
                field="template_id",
                ctx={"id": template_id},
            )
        return self.get(template_id, owner_id)

    def delete(self, template_id: str, owner_id: str) -> None:
        self._writable(template_id, owner_id)
        with self.engine.begin() as conn:
            conn.execute(delete(templates).where(templates.c.id == template_id, templates.c.owner_id == owner_id))

    def _writable(self, template_id: str, owner_id: str) -> None:
        if template_id in bundled_templates():
            raise ReadOnly(
                f"{template_id!r} is bundled with Zhike and read-only: save a copy (POST /api/v1/templates)",
                field="template_id",
                code="template_read_only",
            )
        self.get(template_id, owner_id)  # 404 for a missing or another owner's template

    @staticmethod
    def _with_id(body: Any, tid: str, field: str) -> dict[str, Any]:
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except json.JSONDecodeError as e:
                raise InvalidInput(
                    f"{field}: not valid JSON: {e.msg}", code="template_json_invalid", field=field
                ) from None
        if not isinstance(body, dict):
            raise InvalidInput(f"{field}: a template is a JSON object", code="template_json_invalid", field=field)
        return {**body, "id": tid}  # the id is the store's: a copy of a bundled template gets its own

    @staticmethod
    def _from_row(row: dict[str, Any]) -> StoredTemplate:
        return StoredTemplate(
            parse_template(row["body"]), row["version"], row["owner_id"], row["created_at"], row["updated_at"]
        )


# -- the batch job's download ---------------------------------------------------------------------------------------

MANIFEST_FIXED = ("row", "size", "width", "height", "status", "asset_id", "file", "error")
# A cell starting with one of these is a formula to Excel and LibreOffice (=HYPERLINK(...) sends data away,
# =cmd|... runs programs): OWASP's CSV injection advice is a leading ' that makes it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d++(?:\.\d*+)?|\.\d++)")  # -5, +1.5: numbers, never formulas (possessive: linear)


def csv_text(value: Any) -> Any:
    """A manifest cell that a spreadsheet shows as the text it is, never runs as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def design_file_name(row: int, size: str, ext: str, name: str = "") -> str:
    """A design's ZIP member: by the row's name column when it has one (`designs/咖啡杯-taobao.png`), else by its row
    number (`designs/00001-taobao.png`). `name` is safe already (file_names.row_name); the caller dedupes."""
    return f"designs/{name}-{size}.{ext}" if name else f"designs/{row:05d}-{size}.{ext}"


def write_archive(job: JobRow, assets: AssetService, exports: ExportService, out: IO[bytes]) -> int:
    """ZIP of a finished batch_design job: every design as exported (with its provenance labels) and manifest.csv
    (one line per row x size: status ok/failed and the error, then the row's values, each through `csv_text`).
    Returns the design count. A product_photos job's ZIP: `write_photo_archive`."""
    if job.op == "product_photos":
        return write_photo_archive(job, assets, exports, out)
    result = job.result or {}
    rows: list[dict[str, Any]] = job.params.get("rows") or []
    sizes: list[str] = result.get("sizes") or job.params.get("sizes") or []
    designs = {(d["row"], d["size"]): d for d in result.get("designs", [])}
    errors: dict[tuple[int, str | None], str] = {}
    for e in result.get("errors", []):
        key = (e["row"], e.get("size"))
        errors[key] = f"{errors[key]}; {e['message']}" if key in errors else e["message"]
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(r))
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow([*MANIFEST_FIXED, *map(csv_text, columns)])  # column names come from the data file too
    count = 0
    found: dict[tuple[int, str], AssetRow] = {}
    for (n, size), d in designs.items():
        with contextlib.suppress(NotFound):  # deleted from the library: the manifest says so
            found[(n, size)] = assets.get(d["asset_id"], owner_id=job.owner_id)
    order = [(n, size) for n in range(1, len(rows) + 1) for size in sizes if (n, size) in found]
    files = exports.files(found[k] for k in order)  # labelled in parallel where not ready yet, in this order
    taken: set[str] = set()  # member names so far: two rows named alike get -2, -3 (file_names.unique)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
        for n, values in enumerate(rows, start=1):
            for size in sizes:
                line: dict[str, Any] = {"row": n, "size": size, "status": "failed"}
                d = designs.get((n, size))
                if d is not None and (n, size) in found:
                    asset, export = found[(n, size)], next(files)
                    name = unique(design_file_name(n, size, export.ext, row_name(values)), taken)
                    zf.writestr(name, export.data)
                    count += 1
                    line |= {"status": "ok", "asset_id": asset.id, "file": name}
                    line |= {"width": asset.width, "height": asset.height}
                elif d is not None:
                    line |= {"asset_id": d["asset_id"], "error": "the design was deleted from the library"}
                else:
                    line["error"] = errors.get((n, size)) or errors.get((n, None)) or "not rendered"
                cells = [line.get(k, "") for k in MANIFEST_FIXED] + [values.get(c, "") for c in columns]
                writer.writerow(map(csv_text, cells))
        # UTF-8 with BOM: Excel (zh-CN) opens it with the Chinese intact.
        zf.writestr("manifest.csv", "\ufeff" + manifest.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    return count


# -- the product_photos job's download ------------------------------------------------------------------------------

PHOTO_MANIFEST = ("photo", "name", "size", "width", "height", "status", "asset_id", "file", "problem", "问题", "detail")


def photo_file_name(name: str | None, size: str, width: int, height: int, ext: str, taken: set[str]) -> str:
    """`咖啡杯-taobao-800x800.png`: the photo's own name made safe (file_names.safe_part), the size, made unique in
    `taken` (`咖啡杯-taobao-800x800-2.png`, file_names.unique) and added to it."""
    dims = f"{width}x{height}"
    tail = f"{size}-{dims}" if size != dims else dims
    return unique(f"{safe_part(name) or 'photo'}-{tail}.{ext}", taken)


def write_photo_archive(job: JobRow, assets: AssetService, exports: ExportService, out: IO[bytes]) -> int:
    """ZIP of a finished product_photos job: each output as exported (labelled), named after its photo, and
    manifest.csv (one line per photo x size: ok, or the photo's problem in both languages). Returns the file count."""
    result = job.result or {}
    found: dict[str, AssetRow] = {}
    for o in result.get("outputs", []):
        with contextlib.suppress(NotFound):  # deleted from the library: the manifest says so
            found[o["asset_id"]] = assets.get(o["asset_id"], owner_id=job.owner_id)
    outputs = [o for o in result.get("outputs", []) if o["asset_id"] in found]
    files = exports.files(found[o["asset_id"]] for o in outputs)
    lines: list[tuple[int, list[Any]]] = []
    taken: set[str] = set()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
        for o in outputs:
            export = next(files)
            name = photo_file_name(o.get("name"), o["size"], o["width"], o["height"], export.ext, taken)
            zf.writestr(name, export.data)
            ok = [o["photo"], o.get("name") or "", o["size"], o["width"], o["height"], "ok", o["asset_id"], name]
            lines.append((o["index"], [*ok, "", "", ""]))
        for pr in result.get("problems", []):
            said = pr["message"]  # a column per language: the file is read by either
            head = [pr["photo"], pr.get("name") or "", "", "", "", "failed", "", ""]
            lines.append((pr["index"], [*head, pr["code"], said.get("zh", ""), said.get("en", "")]))
        manifest = io.StringIO()
        writer = csv.writer(manifest)
        writer.writerow(PHOTO_MANIFEST)
        for _, cells in sorted(lines, key=lambda x: x[0]):
            writer.writerow(map(csv_text, cells))
        zf.writestr("manifest.csv", "\ufeff" + manifest.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    return len(outputs)
