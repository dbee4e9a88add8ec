"""The operation registry: every capability is a typed operation that the API, CLI and workers run alike."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from zhike.core.errors import InvalidInput

if TYPE_CHECKING:
    from zhike.core.context import PrepareEnv, RunContext

# Modules that register the built-in operations. Imported on first registry use, never at package import.
BUILTIN_OP_MODULES: tuple[str, ...] = (
    "zhike.ops.txt2img",
    "zhike.ops.img2img",
    "zhike.ops.hires",
    "zhike.ops.inpaint",
    "zhike.ops.outpaint",
    "zhike.ops.restyle",
    "zhike.ops.control",
    "zhike.ops.preprocess",
    "zhike.ops.cutout",
    "zhike.ops.id_photo",
    "zhike.ops.upscale",
    "zhike.ops.subject_swap",
    "zhike.ops.resize_design",
    "zhike.ops.batch_design",
)


@dataclass(frozen=True)
class OperationDef:
    name: str
    version: int
    params_model: type[BaseModel]
    result_model: type[BaseModel]
    run: Callable[[RunContext, Any], BaseModel]
    title: dict[str, str]
    description: str
    # Called once at submission (API/CLI), before the job is queued: resolves defaults that must be fixed
    # for reproducibility (random seed, default model) and checks references (model names, input assets).
    prepare: Callable[[PrepareEnv, Any], Any] | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    def schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "params_schema": self.params_model.model_json_schema(),
            "result_schema": self.result_model.model_json_schema(),
        }


_REGISTRY: dict[str, OperationDef] = {}
_loaded = False


def operation(
    name: str,
    *,
    version: int = 1,
    params: type[BaseModel],
    result: type[BaseModel],
    title: dict[str, str],
    description: str = "",
    prepare: Callable[..., Any] | None = None,
    tags: tuple[str, ...] = (),
) -> Callable[[Callable[..., BaseModel]], Callable[..., BaseModel]]:
    """Register `run(ctx, params) -> result` as operation `name`."""

    def decorate(fn: Callable[..., BaseModel]) -> Callable[..., BaseModel]:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise RuntimeError(f"operation {name!r} registered twice")
        _REGISTRY[name] = OperationDef(
            name=name,
            version=version,
            params_model=params,
            result_model=result,
            run=fn,
            title=title,
            description=description or (fn.__doc__ or "").strip(),
            prepare=prepare,
            tags=tags,
        )
        return fn

    return decorate


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        for mod in BUILTIN_OP_MODULES:
            importlib.import_module(mod)
        _loaded = True


def get_op(name: str) -> OperationDef:
    _ensure_loaded()
    op = _REGISTRY.get(name)
    if op is None:
        known = ", ".join(sorted(_REGISTRY))
        raise InvalidInput(
            f"unknown operation {name!r}; known operations: {known}",
            code="unknown_operation",
            field="op",
            ctx={"name": name},
        )
    return op


def list_ops() -> list[OperationDef]:
    _ensure_loaded()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
