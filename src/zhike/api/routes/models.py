"""/api/v1/models: the registered and embedded models; admins add (local path or hub repo id) and remove."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from zhike.api.deps import AdminDep, AppDep, IdentityDep
from zhike.api.schemas import ModelList, ModelPublic, ModelRemoved
from zhike.core.errors import InvalidInput, ZhikeError
from zhike.core.specs import ModelSpec
from zhike.ops.placement import pick_matting
from zhike.services.catalog import REPO_ID_RE
from zhike.services.container import Zhike

router = APIRouter(prefix="/api/v1/models", tags=["models"])


class ModelAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(
        ..., min_length=1, max_length=2000, description="A folder or .safetensors file on the server, or `org/name`"
    )
    name: str | None = Field(None, max_length=100, description="Name to use (default: the file or folder name)")
    config: str | None = Field(None, max_length=2000, description="diffusers config folder for a custom single file")


def model_view(spec: ModelSpec, cached: set[str], *, admin: bool) -> dict[str, Any]:
    d = spec.public()
    d.pop("path")  # server paths are not the client's business
    d.pop("config_dir")
    if not admin and d.get("source") and not REPO_ID_RE.match(d["source"]):
        d["source"] = None  # a local path the admin typed; only admins see it
    d["loaded"] = spec.name in cached
    return d


def _cached(app: Zhike) -> set[str]:
    # Only a process that built the model manager can have loaded anything; do not build it just to ask.
    return set(app.models.cached_names()) if "models" in app.__dict__ else set()


@router.get("", summary="Registered and embedded models", response_model=ModelList)
def list_models(app: AppDep, identity: IdentityDep) -> dict[str, Any]:
    admin = identity.user is not None and identity.user.is_admin
    cached = _cached(app)
    return {"models": [model_view(s, cached, admin=admin) for s in app.catalog.list()], "defaults": _defaults(app)}


def _defaults(app: Zhike) -> dict[str, str | None]:
    """What a model field left empty uses, per kind, by the rules the ops apply: the studio names it ("默认（…）")."""
    try:
        checkpoint: str | None = app.catalog.default_checkpoint().name
    except InvalidInput:  # none installed: the op says so when it runs
        checkpoint = None
    return {"checkpoint": checkpoint, "matting": pick_matting(app.catalog, None, field="model")}


@router.post("", status_code=201, summary="Register a model (admins only)", response_model=ModelPublic)
def add_model(body: ModelAdd, app: AppDep, _: AdminDep, response: Response) -> dict[str, Any]:
    """Inspects and hashes the files (seconds for large checkpoints), so it runs in the thread pool.
    A repo id is downloaded only where the server may reach the hub; otherwise the error says how to copy it."""
    try:
        spec = app.catalog.add(body.source.strip(), name=body.name or None, config_dir=body.config or None)
    except ZhikeError as e:
        if e.field == "path":  # the catalogue names its argument `path`; this API calls it `source`
            e.field = "source"
        raise
    response.headers["Location"] = f"/api/v1/models/{spec.name}"
    return model_view(spec, _cached(app), admin=True)


@router.delete(
    "/{name}",
    summary="Unregister a model (admins only; its files stay; embedded models stay)",
    response_model=ModelRemoved,
)
def remove_model(name: str, app: AppDep, _: AdminDep) -> dict[str, Any]:
    spec = next((s for s in app.catalog.list() if s.name == name), None)
    if spec is not None and spec.embedded:
        raise InvalidInput(
            f"{name!r} is embedded (shipped with Zhike) and cannot be removed",
            code="model_embedded",
            field="name",
            ctx={"name": name},
        )
    app.catalog.remove(name)  # 404 for an unknown name
    return {"name": name, "removed": True}
