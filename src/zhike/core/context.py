"""What an operation sees while it runs (RunContext) and while it is being submitted (PrepareEnv)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from zhike.core.errors import JobCancelled
from zhike.core.rows import AssetRow, Blobs, StagedAsset
from zhike.core.specs import Catalog, ModelSpec
from zhike.core.work import JobWork

if TYPE_CHECKING:
    from zhike.settings import Settings


# What operations see of the services, as protocols: the services (above ops) satisfy them, so core names no layer
# above it. The container hands in AssetService, ModelManager, PresetStore and TemplateStore.
class Assets(Protocol):
    """Assets as operations read and write them (services/assets/service.py AssetService)."""

    blobs: Blobs

    def get(self, asset_id: str, *, owner_id: str | None, field: str = "asset_id") -> AssetRow: ...

    def exists(self, asset_id: str, *, owner_id: str) -> bool: ...

    def open_image(self, asset_id: str, *, owner_id: str, field: str) -> Image.Image: ...

    def read_bytes(self, row: AssetRow) -> bytes: ...

    def restage(self, record: Mapping[str, Any]) -> StagedAsset | None: ...

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
    ) -> StagedAsset: ...


class Models(Protocol):
    """Loaded models, cached (models/manager.py ModelManager): ops ask by spec or name, never pick a loader."""

    catalog: Catalog

    @property
    def device(self) -> str: ...

    def spec(self, name: str, *, kind: str, field: str = "model") -> ModelSpec: ...

    def use(self, spec: ModelSpec) -> AbstractContextManager[Any]: ...

    def use_named(self, name: str, *, kind: str, field: str = "model") -> AbstractContextManager[Any]: ...


class Presets(Protocol):
    """Style presets (services/presets.py PresetStore); a preset is read by attribute (id, params, loras, expand)."""

    def get(self, preset_id: str, *, field: str = "preset") -> Any: ...


class Templates(Protocol):
    """Saved and bundled design templates (services/templates.py TemplateStore): `.template`, `.version`."""

    def get(self, template_id: str, owner_id: str, *, field: str = "template_id") -> Any: ...


@dataclass
class PrepareEnv:
    """Read-only view used at submission to resolve defaults and check references."""

    settings: Settings
    owner_id: str
    catalog: Catalog
    assets: Assets
    presets: Presets
    templates: Templates


# (step, total, preview image or None) -> (still_owned, cancel_requested); the sink encodes and stores the preview
ProgressSink = Callable[[int, int, Image.Image | None], tuple[bool, bool]]


@dataclass
class RunContext:
    job_id: str
    owner_id: str
    op: str
    params: dict[str, Any]
    settings: Settings
    models: Models
    assets: Assets
    sink: ProgressSink
    # The job's work folder: checkpoints a later attempt of this job reuses (core/work.py)
    work: JobWork
    preview_every: int = 5
    min_interval: float = 0.1
    # The image safety checker for finished generated images (True = flagged); None when none is installed.
    screen_images: Callable[[list[Image.Image]], list[bool]] | None = None
    staged: list[StagedAsset] = field(default_factory=list)
    lost: bool = False  # set by the heartbeat when another worker took the job over
    _last_write: float = 0.0

    def progress(self, step: int, total: int, preview: Callable[[], Image.Image] | None = None) -> None:
        """Report a step; raises JobCancelled when the user cancelled or the lease was lost.

        Writes are throttled (the last step and preview steps always go through) so progress costs
        little even with fast steps.
        """
        if self.lost:
            raise JobCancelled("lease lost")
        now = time.monotonic()
        want_preview = preview is not None and self.preview_every > 0 and step % self.preview_every == 0
        if not (want_preview or step >= total or now - self._last_write >= self.min_interval):
            return
        image = preview() if want_preview and preview is not None and step < total else None
        self._last_write = now
        owned, cancel = self.sink(step, total, image)
        if not owned:
            self.lost = True
            raise JobCancelled("lease lost")
        if cancel:
            raise JobCancelled("cancelled by the user")

    def load_image(self, asset_id: str, *, field: str) -> Image.Image:
        return self.assets.open_image(asset_id, owner_id=self.owner_id, field=field)

    def save_image(
        self,
        image: Image.Image,
        *,
        params: dict[str, Any],
        seed: int | None,
        model: str | None,
        model_hash: str | None = None,
        parent_id: str | None = None,
        tags: list[str] | None = None,
        dpi: int | None = None,
    ) -> str:
        staged = self.assets.stage_image(
            image,
            owner_id=self.owner_id,
            job_id=self.job_id,
            op=self.op,
            params=params,
            seed=seed,
            model=model,
            model_hash=model_hash,
            parent_id=parent_id,
            tags=tags,
            dpi=dpi,
        )
        self.staged.append(staged)
        return staged.row.id

    def record_staged(self, key: str, staged: StagedAsset, **data: Any) -> None:
        """Checkpoint a staged output under `key` (its bytes are in the blob store already), with `data` the op needs
        to rebuild its part of the result; `restage(key)` gives it back to a later attempt."""
        self.work.record(key, {**data, "asset": staged.row.as_dict()})

    def restage(self, key: str, *, keep_bytes: bool = True) -> tuple[StagedAsset, dict[str, Any]] | None:
        """The staged output (and the data) an earlier attempt recorded under `key`, if its file is still stored.
        The caller puts it in `staged` (or its own list) as it would a fresh one. `keep_bytes` holds the bytes in
        memory like a fresh one (the commit puts the file back if deleting another asset with the same bytes took
        it meanwhile); an op whose outputs' bytes are its own (batch_design: the job id is in them) skips that."""
        rec = self.work.done(key)
        if rec is None or not isinstance(rec.get("asset"), dict):
            return None
        row = dict(rec.pop("asset"))
        if isinstance(row.get("created_at"), str):  # written by JSON as its str()
            row["created_at"] = datetime.fromisoformat(row["created_at"])
        item = self.assets.restage(row)
        if item is None:
            return None
        if keep_bytes:
            try:
                item = dataclasses.replace(item, data=self.assets.read_bytes(item.row), blobs=self.assets.blobs)
            except OSError:  # gone since the check
                return None
        return item, rec
