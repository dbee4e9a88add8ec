"""/api/v1/assets: upload images, list and read your assets, download files."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from zhike.api.deps import AppDep, OwnerDep, authenticate
from zhike.api.signing import check
from zhike.core.errors import InvalidInput, NotFound, TooLarge

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])


def asset_view(row: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: row.get(k)
        for k in (
            "id",
            "mime",
            "width",
            "height",
            "size_bytes",
            "origin",
            "op",
            "params",
            "model",
            "seed",
            "zhike_version",
            "parent_id",
            "job_id",
            "tags",
            "sha256",
        )
    }
    out["created_at"] = row["created_at"].isoformat() + "Z" if row.get("created_at") else None
    out["url"] = f"/api/v1/assets/{row['id']}/file"
    return out


@router.post("", status_code=201, summary="Upload an image (multipart field `file`)")
async def upload_asset(
    app: AppDep,
    owner: OwnerDep,
    file: UploadFile | None = None,
    tags: Annotated[str | None, Form(max_length=1000)] = None,
) -> dict[str, Any]:
    """Returns the new asset; pass its id to operations (e.g. img2img's `init_image`)."""
    if file is None:
        raise InvalidInput("send the image as multipart/form-data field `file`", field="file")
    limit = app.assets.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the file is larger than {limit / 1e6:.0f} MB", field="file", limit=limit)
    tag_list = [t.strip() for t in (tags or "").split(",") if t.strip()][:50]
    row = await run_in_threadpool(app.assets.upload, data, owner_id=owner, field="file", tags=tag_list)
    return asset_view(row)


@router.get("", summary="List your assets, newest first")
def list_assets(
    app: AppDep,
    owner: OwnerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: str | None = None,
    op: str | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    rows = app.assets.list(owner_id=owner, limit=limit, before=before, op=op, tag=tag)
    return {"assets": [asset_view(r) for r in rows], "next": rows[-1]["id"] if len(rows) == limit else None}


@router.get("/{asset_id}", summary="An asset's record: parameters, model, seed, lineage")
def get_asset(asset_id: str, app: AppDep, owner: OwnerDep) -> dict[str, Any]:
    return asset_view(app.assets.get(asset_id, owner_id=owner))


@router.get("/{asset_id}/file", summary="The asset's file", responses={200: {"content": {"image/png": {}}}})
def asset_file(
    asset_id: str,
    request: Request,
    app: AppDep,
    authorization: Annotated[str | None, Header()] = None,
    expires: int | None = None,
    sig: str | None = None,
) -> Response:
    """Authorised by the API key or session cookie, or by a signed URL (`expires` + `sig`) handed out by the API."""
    if sig is not None and expires is not None:
        if not check(app.secret, asset_id, expires, sig):
            raise NotFound("this link is invalid or has expired", field="sig")
        row = app.assets.get(asset_id, owner_id=None)
    else:
        row = app.assets.get(asset_id, owner_id=authenticate(request, app, authorization).owner_id)
    ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(row["mime"], "bin")
    etag = f'"{row["sha256"]}"'
    # no-cache: the browser revalidates every view, so a signed-out (or another) user on a shared computer is
    # asked to authenticate again instead of being shown the cached image; an unchanged file costs only a 304.
    headers = {"Cache-Control": "private, no-cache", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(
        app.assets.read_bytes(row),
        media_type=row["mime"],
        headers={**headers, "Content-Disposition": f'inline; filename="zhike-{asset_id}.{ext}"'},
    )
