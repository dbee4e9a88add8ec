"""/api/v1/ops, /api/v1/sizes, /api/v1/presets, /api/v1/health: what this deployment can do."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from zhike import __version__
from zhike.api.deps import AppDep, OwnerDep
from zhike.api.schemas import Health, PresetList, SizeList
from zhike.api.schemas.ops import OpList, OpPublic
from zhike.core.errors import InvalidInput, NotFound
from zhike.core.registry import get_op, list_ops
from zhike.ops.resize_design import SIZE_PRESETS

router = APIRouter(prefix="/api/v1", tags=["meta"])


@router.get("/health", summary="Liveness and version (no key needed)", response_model=Health)
def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get("/ops", summary="Every operation with its parameter and result JSON schemas")
def ops(_: OwnerDep) -> OpList:
    return OpList.model_validate({"ops": [op.schema() for op in list_ops()]})


@router.get("/ops/{name}", summary="One operation's schemas")
def op_detail(name: str, _: OwnerDep) -> OpPublic:
    try:
        return OpPublic.model_validate(get_op(name).schema())
    except InvalidInput as e:  # a path that names no operation is a missing resource, not a bad body
        raise NotFound(e.message, code=e.code, field="name", ctx=e.ctx) from e


@router.get(
    "/sizes",
    summary="Marketplace image sizes (淘宝主图, 抖音竖版, ...) for size pickers and resize_design",
    response_model=SizeList,
)
def sizes(_: OwnerDep) -> dict[str, Any]:
    return {
        "sizes": [
            {"id": p.id, "width": p.width, "height": p.height, "name": {"zh": p.zh, "en": p.en}}
            for p in SIZE_PRESETS.values()
        ]
    }


@router.get("/presets", summary="Style presets (bundled and the deployment's own)", response_model=PresetList)
def presets(app: AppDep, _: OwnerDep) -> dict[str, Any]:
    return {"presets": [p.model_dump() for p in app.presets.list()]}
