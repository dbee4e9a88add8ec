"""What an operation sees while it runs (RunContext) and while it is being submitted (PrepareEnv)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from zhike.core.errors import JobCancelled

if TYPE_CHECKING:
    from zhike.models.manager import ModelManager
    from zhike.models.specs import Catalog
    from zhike.services.assets.service import AssetService, StagedAsset
    from zhike.services.presets import PresetStore
    from zhike.services.templates import TemplateStore
    from zhike.settings import Settings


@dataclass
class PrepareEnv:
    """Read-only view used at submission to resolve defaults and check references."""

    settings: Settings
    owner_id: str
    catalog: Catalog
    assets: AssetService
    presets: PresetStore
    templates: TemplateStore


# (step, total, preview image or None) -> (still_owned, cancel_requested); the sink encodes and stores the preview
ProgressSink = Callable[[int, int, Image.Image | None], tuple[bool, bool]]


@dataclass
class RunContext:
    job_id: str
    owner_id: str
    op: str
    params: dict[str, Any]
    settings: Settings
    models: ModelManager
    assets: AssetService
    sink: ProgressSink
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
