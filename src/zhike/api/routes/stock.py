"""/api/v1/stock: the stock library (素材库): your images in folders with tags and names, and the bundled stock
(badges, price tags, ribbons, frames, shapes, backgrounds; CC0) that every user may read and use in templates."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response

from zhike import __version__
from zhike.api.deps import AppDep, OwnerDep
from zhike.api.schemas import AssetPublic
from zhike.api.schemas.common import LocalText, Out
from zhike.design import stock

router = APIRouter(prefix="/api/v1/stock", tags=["stock"])


class FolderOut(Out):
    id: str
    name: str
    count: int
    created_at: str


class FolderList(Out):
    folders: list[FolderOut]
    unfiled: int


class FolderDeleted(Out):
    deleted: str
    moved: int


class StockAsset(AssetPublic):
    folder_id: str | None


class StockPage(Out):
    assets: list[StockAsset]
    next: str | None


class TagCount(Out):
    tag: str
    count: int


class TagList(Out):
    tags: list[TagCount]


class Moved(Out):
    moved: int


class Tagged(Out):
    tags: dict[str, list[str]]


class Renamed(Out):
    id: str
    name: str


class BundledItem(Out):
    id: str
    ref: str
    category: str
    name: LocalText
    licence: str
    width: int
    height: int
    url: str
    thumb_url: str


class Licence(Out):
    id: str
    name: str
    url: str


class BundledList(Out):
    licence: Licence
    categories: dict[str, LocalText]
    items: list[BundledItem]


# -- folders -------------------------------------------------------------------------------------------------------
@router.get("/folders", summary="Your folders with their image counts")
def list_folders(app: AppDep, owner: OwnerDep) -> FolderList:
    folders, unfiled = app.stock.folders(owner)
    return FolderList(folders=[FolderOut(**f.view()) for f in folders], unfiled=unfiled)


@router.post("/folders", status_code=201, summary="Create a folder")
def create_folder(app: AppDep, owner: OwnerDep, name: Annotated[str, Body(embed=True, max_length=200)]) -> FolderOut:
    """1-100 characters; the same name twice is a 409 `folder_name_taken`."""
    return FolderOut(**app.stock.create_folder(owner, name).view())


@router.patch("/folders/{folder_id}", summary="Rename a folder")
def rename_folder(
    folder_id: str, app: AppDep, owner: OwnerDep, name: Annotated[str, Body(embed=True, max_length=200)]
) -> FolderOut:
    folder = app.stock.rename_folder(owner, folder_id, name)
    listed = {f.id: f for f in app.stock.folders(owner)[0]}
    return FolderOut(**listed.get(folder.id, folder).view())


@router.delete("/folders/{folder_id}", summary="Delete a folder (its images move to the top level)")
def delete_folder(folder_id: str, app: AppDep, owner: OwnerDep) -> FolderDeleted:
    """Never deletes an image: `moved` says how many went back to the top level."""
    return FolderDeleted(deleted=folder_id, moved=app.stock.delete_folder(owner, folder_id))


# -- your images ---------------------------------------------------------------------------------------------------
def _asset(row: Any, folder_id: str | None) -> StockAsset:
    return StockAsset.from_row(row, folder_id=folder_id)


@router.get("/assets", summary="Your images: by folder, tag and search, newest first")
def list_stock(
    app: AppDep,
    owner: OwnerDep,
    folder: Annotated[str | None, Query(max_length=32, description="A folder id, or `none`: in no folder")] = None,
    tag: Annotated[str | None, Query(max_length=50, description="A whole tag")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the name or a tag")] = None,
    origin: Literal["upload", "generated", "all"] = "upload",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[str | None, Query(max_length=32, description="`next` of the previous page")] = None,
) -> StockPage:
    rows = app.stock.list(
        owner, folder=folder, tag=tag, q=q, origin=None if origin == "all" else origin, limit=limit, before=before
    )
    return StockPage(assets=[_asset(r, f) for r, f in rows], next=rows[-1][0].id if len(rows) == limit else None)


@router.get("/tags", summary="The tags on your images, most used first")
def list_tags(app: AppDep, owner: OwnerDep) -> TagList:
    return TagList(tags=[TagCount(tag=t, count=n) for t, n in app.stock.tags(owner)])


@router.post("/assets/move", summary="Move your images into a folder (null: the top level)")
def move_assets(
    app: AppDep,
    owner: OwnerDep,
    assets: Annotated[list[str], Body(max_length=500)],
    folder_id: Annotated[str | None, Body(max_length=32)] = None,
) -> Moved:
    """All or nothing: an image or folder that is not yours is a 404 and nothing moves."""
    return Moved(moved=app.stock.move(owner, assets, folder_id))


@router.post("/assets/tags", summary="Add and remove tags on your images")
def tag_assets(
    app: AppDep,
    owner: OwnerDep,
    assets: Annotated[list[str], Body(max_length=500)],
    add: Annotated[list[str], Body(max_length=50)] = [],  # noqa: B006 (FastAPI copies defaults)
    remove: Annotated[list[str], Body(max_length=50)] = [],  # noqa: B006
) -> Tagged:
    return Tagged(tags=app.stock.retag(owner, assets, add, remove))


@router.patch("/assets/{asset_id}", summary="Rename one of your images")
def rename_asset(
    asset_id: str, app: AppDep, owner: OwnerDep, name: Annotated[str, Body(embed=True, max_length=200)]
) -> Renamed:
    return Renamed(id=asset_id, name=app.stock.rename(owner, asset_id, name))


# -- bundled stock -------------------------------------------------------------------------------------------------
def _bundled_url(stock_id: str, thumb: bool = False) -> str:
    return f"/api/v1/stock/bundled/{stock_id}/" + ("thumb" if thumb else "file")


@router.get("/bundled", summary="The bundled stock: id, category, names, licence; `ref` goes in a template's src")
def list_bundled(_: OwnerDep) -> BundledList:
    m = stock.manifest()
    items = [
        BundledItem(**stock.view(it), url=_bundled_url(it["id"]), thumb_url=_bundled_url(it["id"], True))
        for it in stock.items().values()
    ]
    return BundledList(licence=Licence(**m["licence"]), categories=m["categories"], items=items)


PNG = {200: {"content": {"image/png": {}}, "description": "PNG"}}


def _png(request: Request, stock_id: str, size: int | None) -> Response:
    stock.get(stock_id, field="stock_id")
    etag = f'"stock-{__version__}-{stock_id}-{size or 0}"'  # drawn from the manifest: fixed per Zhike version
    headers = {"Cache-Control": "private, max-age=3600", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(stock.png(stock_id, size), media_type="image/png", headers=headers)


@router.get("/bundled/{stock_id}/file", summary="A bundled item as PNG", response_class=Response, responses=PNG)
def bundled_file(stock_id: str, request: Request, _: OwnerDep) -> Response:
    return _png(request, stock_id, None)


@router.get(
    "/bundled/{stock_id}/thumb", summary="A bundled item, at most 256 px", response_class=Response, responses=PNG
)
def bundled_thumb(stock_id: str, request: Request, _: OwnerDep) -> Response:
    return _png(request, stock_id, 256)
