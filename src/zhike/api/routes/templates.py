"""/api/v1/templates: design templates (bundled + your own), live preview, data-file parsing; and the ZIP download
of a batch_design job (/api/v1/jobs/{id}/archive)."""

from __future__ import annotations

import io
import os
import tempfile
from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from zhike.api.deps import AppDep, OwnerDep
from zhike.api.heavy import HeavyDep
from zhike.api.routes.assets import read_upload
from zhike.api.schemas import DataFile, Deleted, TemplateList, TemplatePublic
from zhike.core.errors import Conflict, InvalidInput
from zhike.design import data as batch_data
from zhike.design.categories import CATEGORIES
from zhike.design.template import Template
from zhike.services.brand import parse_kit
from zhike.services.templates import TemplateStore, parse_or_invalid, preview_size, thumbnail, write_archive

router = APIRouter(tags=["templates"])
PREFIX = "/api/v1/templates"
TemplateBody = Annotated[dict[str, Any], Body(description="The template JSON (schema_version, name, width, ...)")]


def store(app: Any) -> TemplateStore:
    return TemplateStore(app.engine)


@router.get(PREFIX, summary="List templates: bundled, then yours", response_model=TemplateList)
def list_templates(app: AppDep, owner: OwnerDep) -> dict[str, Any]:
    return {
        "templates": [t.view(full=False) for t in store(app).list(owner)],
        "categories": {k: c.view() for k, c in CATEGORIES.items()},
    }


@router.get(PREFIX + "/{template_id}", summary="One template with its JSON", response_model=TemplatePublic)
def get_template(template_id: str, app: AppDep, owner: OwnerDep) -> dict[str, Any]:
    return store(app).get(template_id, owner).view()


class UploadedPhoto(BaseModel):
    name: str = Field(..., description="The file's name as sent (in the ZIP: without its folders)")
    asset_id: str


class PhotoProblem(BaseModel):
    name: str
    code: str = Field(..., description="Why the file is not a usable image (image_damaged, not_an_image, ...)")
    message: str


class PhotoUpload(BaseModel):
    photos: list[UploadedPhoto]
    problems: list[PhotoProblem]


def photo_map(raw: str | None) -> dict[str, str] | None:
    """The `photos` form field: {file name: asset id} (JSON), or None."""
    import json

    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"photos: not JSON: {e.msg}", code="invalid_json", field="photos") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidInput('photos: a JSON object {"file name": "asset id"}', code="validation_failed", field="photos")
    return value


@router.post(
    PREFIX + "/photos",
    status_code=201,
    summary="Upload the photos that come with batch data: a ZIP of photos, or one image",
    response_model=PhotoUpload,
)
async def upload_data_photos(app: AppDep, owner: OwnerDep, heavy: HeavyDep, file: UploadFile | None = None) -> Any:
    """Each image becomes one of your assets, named after its file; pass {name: asset_id} as `photos` to
    /templates/data so image cells may hold the photos' file names. A file that is not a usable image is listed
    in `problems`, the others are kept. The ZIP is checked before it is inflated: 413 `data_too_large` past
    `zip_max_entries`, `zip_max_ratio` or `zip_max_mb` (ctx.what: zip_members, zip_ratio, uncompressed_bytes); 422
    `archive_unsafe` for a path out of the archive or an archive inside it; `archive_invalid` if unreadable."""
    from zhike.core.errors import ZhikeError
    from zhike.design.photo_archive import Photo, ZipLimits, read_photo_zip

    s = app.settings
    limits = ZipLimits(int(s.zip_max_mb * 1e6), s.zip_max_entries, s.zip_max_ratio)

    def work(data: bytes, filename: str) -> dict[str, Any]:
        is_zip = data[:4] == b"PK\x03\x04" or filename.lower().endswith(".zip")
        found = read_photo_zip(data, limits, field="file") if is_zip else [Photo(filename, data)]
        out: dict[str, Any] = {"photos": [], "problems": []}
        for photo in found:
            try:
                row = app.assets.upload(photo.data, owner_id=owner, field="file", name=photo.name, tags=["data_photo"])
            except ZhikeError as e:  # one bad photo: listed, the others kept
                out["problems"].append({"name": photo.name, "code": e.code, "message": e.message})
            else:
                out["photos"].append({"name": photo.name, "asset_id": row.id})
        return out

    async with heavy.slot(owner, field="file"):
        data = await read_upload(app, file, limit=max(limits.max_bytes, app.assets.max_upload_bytes), what="photo ZIP")
        return await heavy.run(work, data, (file.filename if file else None) or "photo")


@router.get(
    PREFIX + "/{template_id}/thumb",
    summary="A small WebP of the template drawn with its sample data (the gallery's card)",
    response_class=Response,
    responses={
        200: {"content": {"image/webp": {}}, "description": "WebP"},
        304: {"description": "Unchanged since the ETag sent in If-None-Match"},
    },
)
async def template_thumb(template_id: str, app: AppDep, owner: OwnerDep, request: Request) -> Response:
    """Rendered once per template version and cached on disk; the list's `thumb` URL changes with the template."""
    stored = store(app).get(template_id, owner)
    data, etag = await run_in_threadpool(thumbnail, stored, app.settings.home / "cache" / "template_thumbs")
    headers = {"Cache-Control": "private, no-cache", "ETag": etag}  # revalidated: another user gets no cached copy
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/webp", headers=headers)


@router.post(PREFIX, status_code=201, summary="Save a new template", response_model=TemplatePublic)
def create_template(body: TemplateBody, app: AppDep, owner: OwnerDep) -> dict[str, Any]:
    """Validated; an error names the JSON path (`template.layers.2.font_size`). The id is assigned (`my_...`):
    a copy of a bundled template gets its own."""
    return store(app).create(owner, body).view()


@router.put(
    PREFIX + "/{template_id}",
    summary="Replace one of your templates (its version goes up)",
    response_model=TemplatePublic,
)
def update_template(template_id: str, body: TemplateBody, app: AppDep, owner: OwnerDep) -> dict[str, Any]:
    return store(app).update(template_id, owner, body).view()


@router.delete(PREFIX + "/{template_id}", summary="Delete one of your templates", response_model=Deleted)
def delete_template(template_id: str, app: AppDep, owner: OwnerDep) -> dict[str, Any]:
    store(app).delete(template_id, owner)
    return {"deleted": template_id}


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str | None = Field(None, max_length=64, description="A bundled or saved template id")
    template_json: dict[str, Any] | None = Field(None, description="Or the template itself (e.g. while editing)")
    row: dict[str, Any] = Field(default_factory=dict, description="One data row: {column: value}")
    size: str = Field("template", max_length=20, description="'template' or a preset / WxH")
    brand: dict[str, Any] | None = Field(None, description="A brand kit to try instead of your saved one")


def resolve_template(app: Any, owner: str, template: str | None, template_json: dict[str, Any] | None) -> Template:
    if template_json is not None:
        return parse_or_invalid(template_json, field="template_json")
    if template is None:
        raise InvalidInput("give `template` (an id) or `template_json`", code="template_missing", field="template")
    return store(app).get(template, owner, field="template").template


def _placeholder(prompt: str, width: int, height: int) -> Any:
    """Where the job would generate an image: a quiet grey, so the preview stays instant and needs no model."""
    from PIL import Image

    return Image.new("RGB", (width, height), (214, 214, 214))


@router.post(
    PREFIX + "/preview",
    summary="Render one row as a PNG (live preview)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "PNG"}},
)
async def preview(body: PreviewRequest, app: AppDep, owner: OwnerDep, heavy: HeavyDep) -> Response:
    """Quick: no image model (generated layers are a grey placeholder) and no cutout, and at most
    `PREVIEW_MAX_SIDE` (1080) px on the long side: a larger design is drawn scaled down, whole (its full size is
    in `X-Design-Size`). Image cells are asset ids or /api/v1/assets/ID/file URLs of your uploads. A bad row is a
    422 naming the column; 429 when you have `heavy_per_user` previews, label checks or data files under way."""

    def render() -> tuple[bytes, tuple[int, int]]:
        from zhike.design.render import render_design
        from zhike.ops.batch_design import TEMPLATE_SIZE, _size
        from zhike.ops.resize_design import size_of

        tpl = resolve_template(app, owner, body.template, body.template_json)
        try:
            size_id = _size(body.size)
        except ValueError as e:
            raise InvalidInput(f"size: {e}", code="validation_failed", field="size") from None
        row = batch_data.parse_records([body.row], field="row").rows[0]

        def resolve_image(value: str) -> Any:
            aid = batch_data.asset_ref(value or "")
            if aid is None or not app.assets.exists(aid, owner_id=owner):
                return None
            return app.assets.open_image(aid, owner_id=owner, field="row")

        design = (tpl.width, tpl.height) if size_id == TEMPLATE_SIZE else size_of(size_id)
        img, _ = render_design(
            tpl,
            row,
            size=preview_size(*design),
            resolve_image=resolve_image,
            generate=_placeholder,
            # your brand kit, as your batch jobs use it, or the one being edited (its logo: one of your images)
            brand=app.brand.get(owner) if body.brand is None else parse_kit(body.brand, prefix="brand."),
        )
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=1)  # speed over size: it is shown once
        return buf.getvalue(), design

    async with heavy.slot(owner, field="template"):
        png, (w, h) = await heavy.run(render)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store", "X-Design-Size": f"{w}x{h}"})


@router.post(
    PREFIX + "/data",
    summary="Parse a data file (CSV, XLSX, JSON) into rows for a batch job",
    response_model=DataFile,
    response_model_exclude_unset=True,  # the column checks only with `template`
)
async def parse_data_file(
    app: AppDep,
    owner: OwnerDep,
    heavy: HeavyDep,
    file: UploadFile | None = None,
    template: Annotated[str | None, Form(max_length=64, description="Check the rows against this template")] = None,
    photos: Annotated[
        str | None,
        Form(
            max_length=200_000,
            description="Photos uploaded with the data (POST /api/v1/templates/photos) as JSON "
            '{"咖啡杯.jpg": "ASSET_ID"}: image cells may name them by file name',
        ),
    ] = None,
) -> dict[str, Any]:
    """CSV in UTF-8 (with or without BOM) or GBK; XLSX (first sheet, header row); JSON (a list of objects or
    {"rows": [...]}). With `template`, each row's problems (a missing or empty required column, an image that is
    not one of your assets) are listed in `errors`; image cells come back as asset ids. Send `rows` to the job.
    A file past a limit (rows, columns, cell length, inflated size, ...) is a 413 `data_too_large` whose
    `ctx.what` names the limit."""

    def work(data: bytes) -> dict[str, Any]:
        table = batch_data.parse_data(data, file.filename if file else None)
        out: dict[str, Any] = {
            "format": table.format,
            "encoding": table.encoding,
            "columns": table.columns,
            "row_count": len(table.rows),
            "rows": table.rows,
            "preview": table.preview(),
            "errors": [],
        }
        if template:
            tpl = store(app).get(template, owner, field="template").template
            required, optional = tpl.columns()
            checked = batch_data.check_rows(
                table.rows,
                required,
                batch_data.image_columns(tpl),
                asset_exists=lambda aid: app.assets.exists(aid, owner_id=owner),
                photos=photo_map(photos),
            )
            out |= {
                "rows": checked.rows,
                "preview": checked.rows[: batch_data.PREVIEW_ROWS],
                "errors": [p.to_dict() for p in checked.errors],
                "missing_columns": sorted(required - set(table.columns)),
                "unused_columns": [c for c in table.columns if c not in required | optional],
                "rows_ok": len(checked.rows) - len(checked.problems),
            }
        return out

    async with heavy.slot(owner, field="file"):
        data = await read_upload(app, file, limit=batch_data.MAX_DATA_BYTES, what="data file")
        return await heavy.run(work, data)


ARCHIVE_OPS = {"batch_design": "batch", "product_photos": "photos"}  # op -> the ZIP's file name


@router.get(
    "/api/v1/jobs/{job_id}/archive",
    summary="A batch_design or product_photos job's images as one ZIP, with manifest.csv",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "ZIP"}},
)
def job_archive(job_id: str, app: AppDep, owner: OwnerDep) -> FileResponse:
    """Every design as exported (with its provenance labels), under designs/, and manifest.csv: one line per row
    and size with status ok/failed, the asset id, the file, the error, then the row's values. A product_photos
    job's ZIP: each image named after its photo (`咖啡杯-taobao-800x800.png`) and manifest.csv with the problems."""
    job = app.jobs.get(job_id, owner)
    if job.op not in ARCHIVE_OPS:
        raise InvalidInput(
            f"job {job_id!r} is a {job.op} job: only batch_design and product_photos jobs have an archive",
            code="job_no_archive",
            field="job_id",
        )
    if job.state != "succeeded":
        raise Conflict(
            f"job {job_id!r} is {job.state}: the archive is ready when it has succeeded",
            code="job_not_finished",
            field="job_id",
        )
    tmp_dir = app.settings.home / "exports" / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(dir=tmp_dir, suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as f:
            write_archive(job, app.assets, app.exports, f)
    except BaseException:
        os.unlink(path)
        raise
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"zhike-{ARCHIVE_OPS[job.op]}-{job_id}.zip",
        headers={"Cache-Control": "private, no-cache"},
        background=BackgroundTask(os.unlink, path),
    )
