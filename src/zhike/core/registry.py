"""The operation registry: every capability is a typed operation that the API, CLI and workers run alike."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from zhike.core.errors import InvalidInput
from zhike.core.ui import Cli, Studio

if TYPE_CHECKING:
    from zhike.core.context import PrepareEnv, RunContext

log = logging.getLogger("zhike.ops")

# Operations are found, not listed: every module of this package is imported on first registry use (never at
# package import), then every entry point in PLUGIN_GROUP (a plugin package declares
# `[project.entry-points."zhike.ops"] name = "its_package.ops_module"`).
BUILTIN_PACKAGE = "zhike.ops"
PLUGIN_GROUP = "zhike.ops"

# Which workers run an op's jobs, so a seconds-long job never waits behind a minutes-long one (services/jobs):
# gpu: diffusion and other model pipelines; cpu: heavy CPU work (batches, large resizes); quick: seconds-long tools.
Lane = Literal["gpu", "cpu", "quick"]
LANES: tuple[Lane, ...] = ("quick", "cpu", "gpu")  # shortest work first: the order a worker of several tries


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
    studio: Studio = field(default_factory=Studio)
    cli: Cli = field(default_factory=Cli)
    module: str = ""  # where it was defined (a plugin's ops show their package)
    lane: Lane = "cpu"
    # The lane of one job from its prepared params, where that depends on them (an erase without a model is
    # seconds of CPU, with one it is a diffusion run); None: always `lane`.
    lane_for: Callable[[Any], Lane] | None = None

    def job_lane(self, params: BaseModel) -> Lane:
        return self.lane if self.lane_for is None else self.lane_for(params)

    @property
    def cli_name(self) -> str:
        return self.cli.name or self.name.replace("_", "-")

    def schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "studio": self.studio.to_json(),
            "cli": {"name": self.cli_name, "aliases": list(self.cli.aliases), "hidden": self.cli.hidden},
            "module": self.module,
            "lane": self.lane,
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
    studio: Studio | None = None,
    cli: Cli | None = None,
    lane: Lane = "cpu",
    lane_for: Callable[[Any], Lane] | None = None,
) -> Callable[[Callable[..., BaseModel]], Callable[..., BaseModel]]:
    """Register `run(ctx, params) -> result` as operation `name`, run by the workers of `lane` (or of
    `lane_for(prepared params)` where a job's lane depends on its params; `lane` is then its usual one)."""

    if lane not in LANES:
        raise ValueError(f"operation {name!r}: lane must be one of {LANES}, not {lane!r}")

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
            studio=studio or Studio(),
            cli=cli or Cli(),
            module=fn.__module__,
            lane=lane,
            lane_for=lane_for,
        )
        return fn

    return decorate


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    package = importlib.import_module(BUILTIN_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__, prefix=f"{BUILTIN_PACKAGE}."):
        importlib.import_module(info.name)  # a built-in op that fails to import is a bug: let it raise
    for ep in entry_points(group=PLUGIN_GROUP):
        before = dict(_REGISTRY)
        try:
            ep.load()  # importing the module runs its @operation decorators
        except Exception:  # one broken plugin must not take the studio down with it
            _REGISTRY.clear()
            _REGISTRY.update(before)  # nor leave half of its operations behind
            log.exception("plugin %s (%s) could not be loaded; its operations are missing", ep.name, ep.value)
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
