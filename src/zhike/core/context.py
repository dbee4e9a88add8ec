"""What an operation sees while it runs (RunContext) and while it is being submitted (PrepareEnv)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from zhike.core.errors import JobCancelled
from zhike.core.rows import AssetRow, Blobs, StagedAsset, new_asset_id
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

    def require_images(self, refs: list[tuple[str, str]], *, owner_id: str) -> None: ...

    def read_bytes(self, row: AssetRow) -> bytes: ...

    def media_file(
        self, asset_id: str, *, owner_id: str, field: str, kinds: tuple[str, ...] = ("audio", "video")
    ) -> tuple[AssetRow, Path]: ...

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
        asset_id: str | None = None,
    ) -> StagedAsset: ...

    def stage_media(
        self,
        path: Path,
        *,
        owner_id: str,
        job_id: str,
        op: str,
        params: dict[str, Any],
        model: str | None,
        mime: str,
        parent_id: str | None = None,
        name: str | None = None,
        asset_id: str | None = None,
    ) -> StagedAsset: ...

    def stage_text(
        self,
        text: str,
        *,
        owner_id: str,
        job_id: str,
        op: str,
        params: dict[str, Any],
        model: str | None,
        parent_id: str | None = None,
        mime: str = "text/markdown",
        name: str | None = None,
        asset_id: str | None = None,
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


class Brands(Protocol):
    """Brand kits (services/brand.py BrandStore): the owner's kit (design/brand.py BrandKit) or None."""

    def get(self, owner_id: str) -> Any: ...


@dataclass
class PrepareEnv:
    """Read-only view used at submission to resolve defaults and check references."""

    settings: Settings
    owner_id: str
    catalog: Catalog
    assets: Assets
    presets: Presets
    templates: Templates
    brand: Brands | None = None  # the owner's brand kit for templates' brand.* references


# A step preview in two halves. Calling it, on the op's thread, starts the preview and must be cheap (on a GPU it
# only queues a small projection and an asynchronous copy: no device sync); the function it returns gives the image
# and is called later on the worker's progress-writer thread, where waiting for the copy costs the op nothing.
PreviewStart = Callable[[], Callable[[], Image.Image]]
# (step, total, the preview's second half or None): hands progress to the worker, which writes it off this thread.
ProgressSink = Callable[[int, int, Callable[[], Image.Image] | None], None]
# Runs a function on the worker's output pool and returns its future (encoding, storing, labelling outputs).
Offload = Callable[[Callable[[], Any]], "Future[Any]"]
# Hands a piece of generated text to the worker, which appends it to the job's partial text off this thread.
TextSink = Callable[[str], None]
# Screens generated text (text, field) by the prompt-safety lists; raises ContentRefused naming the policy.
TextScreen = Callable[[str, str], None]


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
    # Seconds between two step previews while someone follows the job; None: no previews at all.
    preview_seconds: float | None = 0.5
    # The image safety checker for finished generated images (True = flagged); None when none is installed.
    screen_images: Callable[[list[Image.Image]], list[bool]] | None = None
    # Where outputs are encoded and stored: the worker's pool (overlapping the next image or job), None: inline.
    offload: Offload | None = None
    # Makes the labelled export of a stored output while its pixels are at hand (the worker's ExportService), on
    # the thread that stored it; None: exports are labelled when first asked for.
    prepare_export: Callable[[StagedAsset, Image.Image], None] | None = None
    # Where `stream_text` hands pieces (the worker's progress writer); None: kept in `partial_text` only.
    text_sink: TextSink | None = None
    # Output screening for words ops (the worker's PromptSafety); None: safety is off or no worker runs the op.
    text_screen: TextScreen | None = None
    staged: list[StagedAsset] = field(default_factory=list)
    pending: list[Future[StagedAsset]] = field(default_factory=list)
    # Seconds per phase that the op measures itself (load, denoise, decode...): the job's timings include them.
    timings: dict[str, float] = field(default_factory=dict)
    # Set by the worker's threads, read here: the lease went to another worker, the user cancelled, someone watches.
    lost: bool = False
    cancel_requested: bool = False
    watched: bool = False
    _last_preview: float = -1e9
    # What `stream_text` was given so far (the op's own view; the job row gets it through `text_sink`).
    partial_text: str = ""

    def progress(self, step: int, total: int, preview: PreviewStart | None = None) -> None:
        """Report a step; raises JobCancelled when the user cancelled or the lease was lost.

        Costs the calling thread a flag check and a hand-over: the worker writes progress to the database on its
        own thread, in batches. A preview is started only while someone watches the job and at most once per
        `preview_seconds`; the last step never gets one (the result follows at once).
        """
        if self.lost:
            raise JobCancelled("lease lost")
        if self.cancel_requested:
            raise JobCancelled("cancelled by the user")
        finish = None
        if preview is not None and self.watched and self.preview_seconds is not None and step < total:
            now = time.monotonic()
            if now - self._last_preview >= self.preview_seconds:
                self._last_preview = now
                finish = preview()
        self.sink(step, total, finish)

    @property
    def stopping(self) -> bool:
        """The user cancelled or the lease was lost: a loop without steps (token streaming) asks this."""
        return self.lost or self.cancel_requested

    def stream_text(self, piece: str) -> None:
        """Append generated words to the job's partial text (shown while it runs; SSE carries it). Costs this thread
        a hand-over: the worker writes it to the database on its progress thread, batched."""
        if not piece:
            return
        self.partial_text += piece
        if self.text_sink is not None:
            self.text_sink(piece)

    def screen_text(self, text: str, field: str) -> None:
        """Screen generated text by the prompt-safety lists before it is stored or shown as a result: raises
        ContentRefused (code content_refused, naming the policy and `field`); a no-op when safety is off."""
        if self.text_screen is not None and text:
            self.text_screen(text, field)

    def save_text(
        self,
        text: str,
        *,
        params: dict[str, Any],
        model: str | None,
        parent_id: str | None = None,
        mime: str = "text/markdown",
        name: str | None = None,
    ) -> str:
        """Store a text output (UTF-8, text/markdown or application/json) with its parameters and lineage; returns
        its asset id. The row is written when the job completes, with the other outputs."""
        staged = self.assets.stage_text(
            text,
            owner_id=self.owner_id,
            job_id=self.job_id,
            op=self.op,
            params=params,
            model=model,
            parent_id=parent_id,
            mime=mime,
            name=name,
        )
        self.staged.append(staged)
        return staged.row.id

    @property
    def work_dir(self) -> Path:
        """The job's work folder (created on first use): intermediate files (scene clips, voice sentences, a
        partial render) kept here survive a retry of the job; the folder goes when the job succeeds or is cancelled.
        Name files by what they hold (`scene-003.mp4`), not at random, so a later attempt finds them."""
        return self.work.dir

    def media_file(
        self, asset_id: str, *, field: str, kinds: tuple[str, ...] = ("audio", "video")
    ) -> tuple[AssetRow, Path]:
        """An input audio/video (or `kinds`) asset and its stored file for ffmpeg to read in place (read only): 404
        asset_not_found, 422 asset_wrong_kind naming `field`. Check what users handed in with
        zhike.media.check_input(path, field=..., want="audio") before using it."""
        return self.assets.media_file(asset_id, owner_id=self.owner_id, field=field, kinds=kinds)

    def save_media(
        self,
        path: Path,
        *,
        mime: str,
        params: dict[str, Any],
        model: str | None,
        parent_id: str | None = None,
        name: str | None = None,
    ) -> str:
        """Store a finished media file (audio/wav|mpeg|mp4, video/mp4|webm, image/gif|webp, application/x-subrip
        (or text/srt), text/vtt, text/x-ass) with its parameters and lineage; returns its asset id. The file is
        copied into the asset store (it stays in the work folder); exports add the labels (GB 45438: metadata,
        C2PA, the visible mark on video). The row is written when the job completes, with the other outputs.
        To let a retried job skip it, `record_staged(key, self.staged[-1], ...)` right after."""
        staged = self.assets.stage_media(
            path,
            owner_id=self.owner_id,
            job_id=self.job_id,
            op=self.op,
            params=params,
            model=model,
            mime=mime,
            parent_id=parent_id,
            name=name,
        )
        self.staged.append(staged)
        return staged.row.id

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
        """Store an output (PNG with its parameters) and return its asset id at once: the encoding, storing and
        labelling run on the worker's output pool while the op goes on; the job completes when they are done. The
        image is read on another thread: do not draw on it afterwards (copy it first)."""
        asset_id = new_asset_id()

        def stage() -> StagedAsset:
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
                asset_id=asset_id,
            )
            if self.prepare_export is not None:
                self.prepare_export(staged, image)
            return staged

        if self.offload is None:
            self.staged.append(stage())
        else:
            self.pending.append(self.offload(stage))
        return asset_id

    def staged_output(self, asset_id: str) -> StagedAsset:
        """The staged output `save_image` returned `asset_id` for, once it is stored (waits for the pool)."""
        self.settle()
        return next(s for s in self.staged if s.row.id == asset_id)

    def settle(self) -> None:
        """Wait for the outputs still being stored; the first failure is raised (the job fails with it)."""
        while self.pending:
            self.staged.append(self.pending.pop(0).result())

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
