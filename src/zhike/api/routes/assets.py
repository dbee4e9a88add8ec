"""/api/v1/assets: upload images, list (search, filter) and read your assets, delete them, download files."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Header, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from zhike.api.deps import AppDep, OwnerDep, authenticate, owner_active
from zhike.api.schemas import AssetDetail, AssetPage, AssetParent, AssetPublic, Deleted
from zhike.api.signing import check
from zhike.core.errors import InvalidInput, NotFound, TooLarge
from zhike.media.sniff import looks_like_media
from zhike.ops.resize_design import MAX_OUT, normalize_size, size_of
from zhike.provenance.service import EXT
from zhike.provenance.text import TEXT_FORMATS
from zhike.services.assets.service import MEDIA_OUTPUT_MIMES, not_image, parse_when, recorded_source
from zhike.services.exports import FITS, FORMATS, Export
from zhike.services.file_names import content_disposition, download_name, lang_of, text_download_name

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])
# What /file can answer: generated images are PNG; uploads are PNG, JPEG or WebP (images.checked_upload), or BMP
# where uploaded before other formats were converted.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/bmp")


async def read_upload(app: Any, file: UploadFile | None, *, limit: int | None = None, what: str = "file") -> bytes:
    """The bytes of the multipart field `file`, refused past `limit` (default: the upload limit) without reading
    the rest. `what` names the file in messages ("the data file")."""
    if file is None:
        raise InvalidInput(
            f"send the {what} as multipart/form-data field `file`",
            code="file_missing",
            field="file",
        )
    limit = app.assets.max_upload_bytes if limit is None else limit
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(
            f"the {what} is larger than {limit / 1e6:.0f} MB",
            code="file_too_large",
            field="file",
            limit=limit,
            ctx={"mb": round(limit / 1e6)},
        )
    return data


@router.post(
    "", status_code=201, summary="Upload an image, audio or video (multipart field `file`)", response_model=AssetPublic
)
async def upload_asset(
    app: AppDep,
    owner: OwnerDep,
    file: UploadFile | None = None,
    tags: Annotated[str | None, Form(max_length=1000)] = None,
    name: Annotated[str | None, Form(max_length=200)] = None,
) -> AssetPublic:
    """Returns the new asset; pass its id to operations (e.g. img2img's `init_image`). `name` defaults to the
    file's name without its extension.

    Audio and video (a voice recording, a song, a clip: WAV, MP3, M4A, MP4, WebM; other audio is converted to M4A)
    are taken too, up to `media_max_mb` and `media_max_seconds`; silent or damaged audio is refused (docs/VIDEO.md).
    """
    tag_list = [t.strip() for t in (tags or "").split(",") if t.strip()][:50]
    given = name or (file.filename if file is not None else None)
    if file is not None and looks_like_media(await file.read(16)):
        await file.seek(0)
        row = await _upload_media(app, file, owner, tag_list, given)
        return AssetPublic.from_row(row)
    if file is not None:
        await file.seek(0)
    data = await read_upload(app, file)
    row = await run_in_threadpool(app.assets.upload, data, owner_id=owner, field="file", tags=tag_list, name=given)
    return AssetPublic.from_row(row)


async def _upload_media(app: Any, file: UploadFile, owner: str, tags: list[str], name: str | None) -> Any:
    """Copy the spooled upload to a temporary file (at most the media limit, never all in memory) and store it."""
    limit = app.assets.media_limits.max_bytes
    with tempfile.TemporaryDirectory(prefix="zhike-upload-") as tmp:
        path = Path(tmp) / "upload"
        size = 0
        with path.open("wb") as out:
            while block := await file.read(1 << 20):
                size += len(block)
                if size > limit:
                    raise TooLarge(
                        f"the file is larger than {limit / 1e6:.0f} MB",
                        code="file_too_large",
                        field="file",
                        limit=limit,
                        ctx={"mb": round(limit / 1e6)},
                    )
                out.write(block)
        return await run_in_threadpool(
            app.assets.upload_media, path, owner_id=owner, field="file", tags=tags, name=name
        )


@router.get("", summary="List your assets, newest first; search and filter", response_model=AssetPage)
def list_assets(
    app: AppDep,
    owner: OwnerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(description="`next` of the previous page")] = None,
    op: Annotated[str | None, Query(max_length=64, description="Operation, e.g. txt2img")] = None,
    tag: Annotated[str | None, Query(max_length=200, description="A whole tag")] = None,
    q: Annotated[
        str | None, Query(max_length=500, description="Text in the prompt or negative prompt (any case)")
    ] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[str | None, Query(description="ISO date or datetime (UTC unless it has an offset)")] = None,
    until: Annotated[str | None, Query(description="ISO datetime (before it), or date (through that day)")] = None,
    parent: Annotated[str | None, Query(max_length=32, description="Only assets made from this asset")] = None,
    origin: Literal["upload", "generated"] | None = None,
    kind: Annotated[
        Literal["image", "text", "audio", "video", "subtitles"] | None,
        Query(description="image, text (words ops' outputs), audio, video or subtitles"),
    ] = None,
) -> AssetPage:
    rows = app.assets.list(
        owner_id=owner,
        limit=limit,
        before=before,
        op=op,
        tag=tag,
        q=q,
        model=model,
        since=parse_when(since, field="since"),
        until=parse_when(until, field="until", end_of_day=True),
        parent=parent,
        origin=origin,
        kind=kind,
    )
    return AssetPage(assets=[AssetPublic.from_row(r) for r in rows], next=rows[-1].id if len(rows) == limit else None)


@router.get("/{asset_id}", summary="An asset's record: parameters, model, seed, lineage", response_model=AssetDetail)
def get_asset(asset_id: str, app: AppDep, owner: OwnerDep) -> AssetDetail:
    """Adds `children_count` (list them with `?parent=ID`) and `parent`: {"id", "exists"} for the image it was
    made from (`exists` is false once that was deleted), or null."""
    row = app.assets.get(asset_id, owner_id=owner)
    source = recorded_source(row)
    return AssetDetail.from_row(
        row,
        children_count=app.assets.children_count(asset_id, owner_id=owner),
        parent=AssetParent(id=source, exists=app.assets.exists(source, owner_id=owner)) if source else None,
    )


@router.delete("/{asset_id}", summary="Delete one of your assets", response_model=Deleted)
def delete_asset(asset_id: str, app: AppDep, owner: OwnerDep) -> dict[str, Any]:
    """Removes the record; the file goes when no other asset has the same bytes. Images made from it stay."""
    app.assets.delete(asset_id, owner_id=owner)
    return {"deleted": asset_id}


@router.get(
    "/{asset_id}/file",
    summary="The asset's file",
    response_class=Response,
    responses={
        200: {
            "content": {m: {} for m in (*IMAGE_TYPES, *TEXT_FORMATS.values(), *MEDIA_OUTPUT_MIMES)},
            "description": "The file, labelled",
        },
        304: {"description": "Unchanged since the ETag sent in If-None-Match"},
    },
)
def asset_file(
    asset_id: str,
    request: Request,
    app: AppDep,
    authorization: Annotated[str | None, Header()] = None,
    expires: int | None = None,
    sig: str | None = None,
    download: bool = False,
    format: Annotated[  # noqa: A002
        str | None,
        Query(description="png, jpeg or webp (default: as stored); text assets: md (default), txt, docx, pdf"),
    ] = None,
    size: Annotated[
        str | None, Query(description="A size preset id of GET /api/v1/sizes (taobao, jd, ...) or WxH, e.g. 800x800")
    ] = None,
    fit: Annotated[
        str,
        Query(description="contain: the whole image, padded (white for JPEG, else transparent); cover: fill, crop"),
    ] = "contain",
    lang: Annotated[
        str | None, Query(description="zh or en: the language of the file name (else Accept-Language)")
    ] = None,
    notice: Annotated[
        Literal["start", "end", "none"] | None,
        Query(description="Text assets: where the notice 本内容由人工智能生成 goes (default: the label settings')"),
    ] = None,
) -> Response:
    """Authorised by the API key or session cookie, or by a signed URL (`expires` + `sig`) handed out by the API.

    Generated images leave with their provenance labels (TC260 XMP, signed C2PA manifest, invisible watermark and,
    where the deployment turns it on, the visible AI生成 mark); uploads are returned as stored. `download=1` asks
    the browser to save it. `format`, `size` and `fit` convert it (each variant is labelled and kept). The file is
    named from what it is: `<op>-<name>-<WxH>.<ext>` in the user's language (抠图-咖啡杯-800x800.png); an upload
    `<name>.<ext>`.

    Text assets (words ops' outputs) download as Markdown, TXT, DOCX or PDF with the explicit notice where `notice`
    puts it and the TC260 label in the format's metadata (docs/PROVENANCE.md); `size` is for images only.

    Audio and video download in their stored format with the TC260 label in their metadata, a C2PA manifest (WAV,
    MP3, M4A, MP4) and, on video, the AI生成 corner mark (docs/VIDEO.md); subtitles as stored.
    """
    text_fmt = _text_format(format)
    mime, dims = _variant_args(None if text_fmt else format, size, fit)
    if sig is not None and expires is not None:
        row = app.assets.get(asset_id, owner_id=None) if check(app.secret, asset_id, expires, sig) else None
        if row is None or not owner_active(app, row.owner_id):  # a link ends when its user or key does
            raise NotFound("this link is invalid or has expired", code="link_invalid", field="sig")
    else:
        row = app.assets.get(asset_id, owner_id=authenticate(request, app, authorization).owner_id)
    want = lang_of(lang, request.headers.get("accept-language"))
    disposition = "attachment" if download else "inline"
    if row.is_text:
        if mime is not None:
            raise _format_invalid(format or "", TEXT_FORMATS)
        if dims is not None:
            raise not_image(row.id, "size")
        export = app.exports.text(row, text_fmt or "md", notice)
        return _send(request, export, content_disposition(disposition, text_download_name(row, export.ext, want)))
    if not row.is_image:  # audio, video, subtitles: the stored file, labelled; no conversions
        if mime is not None or text_fmt:
            raise _format_invalid(format or "", [EXT.get(row.mime, "bin")])
        if dims is not None:
            raise not_image(row.id, "size", row.kind)
        export = app.exports.file(row)
        name = (
            download_name(row, export.ext, want, (row.width, row.height))
            if row.width and row.height
            else text_download_name(row, export.ext, want)
        )
        return _send(request, export, content_disposition(disposition, name))
    if text_fmt:
        raise _format_invalid(format or "", FORMATS)
    export = app.exports.variant(row, mime or row.mime, dims, fit)
    name = download_name(row, export.ext, want, dims or (row.width, row.height))
    return _send(request, export, content_disposition(disposition, name))


def _format_invalid(fmt: str, choices: Iterable[str]) -> InvalidInput:
    names = ", ".join(choices)
    return InvalidInput(
        f"format must be one of {names}",
        code="format_invalid",
        field="format",
        ctx={"value": fmt[:20], "choices": names},
    )


def _text_format(fmt: str | None) -> str | None:
    """md, txt, docx or pdf when `fmt` names a text export format, else None."""
    name = (fmt or "").strip().lower()
    name = "md" if name == "markdown" else name
    return name if name in TEXT_FORMATS else None


def _variant_args(fmt: str | None, size: str | None, fit: str) -> tuple[str | None, tuple[int, int] | None]:
    """Checks the file route's conversion parameters: (mime or None, (w, h) or None)."""
    mime = None
    if fmt:
        mime = FORMATS.get(fmt.strip().lower().replace("jpg", "jpeg"))
        if mime is None:
            raise _format_invalid(fmt, [*FORMATS, *TEXT_FORMATS])
    if fit not in FITS:
        raise InvalidInput(
            f"fit must be one of {', '.join(FITS)}",
            code="fit_invalid",
            field="fit",
            ctx={"value": fit[:20], "choices": ", ".join(FITS)},
        )
    dims = None
    if size:
        try:
            dims = size_of(normalize_size(size))
        except ValueError as e:
            raise InvalidInput(
                str(e), code="size_invalid", field="size", ctx={"value": size[:40], "max": MAX_OUT}
            ) from None
    return mime, dims


@router.get(
    "/{asset_id}/thumb",
    summary="A small WebP of the asset",
    response_class=Response,
    responses={
        200: {"content": {"image/webp": {}}, "description": "WebP"},
        304: {"description": "Unchanged since the ETag sent in If-None-Match"},
    },
)
def asset_thumb(
    asset_id: str,
    app: AppDep,
    owner: OwnerDep,
    request: Request,
    size: Annotated[int, Query(description="Longest side: 128, 256 or 512")] = 256,
) -> Response:
    """For grids and pickers: a few KB instead of the full file; labelled like the file."""
    row = app.assets.get(asset_id, owner_id=owner)
    return _send(request, app.exports.thumbnail(row, size), f'inline; filename="zhike-{asset_id}-{size}.webp"')


def _send(request: Request, export: Export, disposition: str) -> Response:
    # no-cache: the browser revalidates every view, so a signed-out (or another) user on a shared computer is
    # asked to authenticate again instead of being shown the cached image; an unchanged file costs only a 304.
    headers = {"Cache-Control": "private, no-cache", "ETag": export.etag}
    if request.headers.get("if-none-match") == export.etag:
        return Response(status_code=304, headers=headers)
    return Response(export.data, media_type=export.mime, headers={**headers, "Content-Disposition": disposition})
