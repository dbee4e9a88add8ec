"""batch_design (批量设计): one template x many data rows x sizes -> one design per row and size, in one job.

Bad rows are reported and the good ones render. A job that a crashed worker leaves behind resumes where it
stopped: each finished design is staged at once (its PNG in the blob store) and checkpointed in the job's work
folder (`ctx.work`, core/work.py) under the key `NNNNN-SIZE` (its staged row, or the message of a design that
failed); the next attempt reuses those records and renders only what is missing. All asset rows are still written
once, when the job completes. `renders.log` in that folder gets one line per design actually rendered
(append-only), to show nothing ran twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Annotated, Any

from PIL import Image
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from zhike.core import png
from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput, JobCancelled, ModelError, ZhikeError, hide_paths
from zhike.core.registry import operation
from zhike.core.types import ImageOut, ImagesResult, note
from zhike.core.ui import Cli, ui
from zhike.design import data as batch_data
from zhike.design.brand import BrandKit, uses_brand
from zhike.ops.resize_design import normalize_size, size_of

STAGE_THREADS = 2  # PNG encoding in parallel with rendering: both cores of a small machine
log = logging.getLogger("zhike.batch_design")

MAX_DESIGNS = 20_000  # rows x sizes in one job
TEMPLATE_SIZE = "template"
NO_MODEL = "this template has a generated layer and no image model is installed: add one (zhike models add PATH)"


def _size(raw: str) -> str:
    return TEMPLATE_SIZE if raw.strip().lower() in (TEMPLATE_SIZE, "original", "") else normalize_size(raw)


BatchSize = Annotated[str, AfterValidator(_size)]


class BatchDesignParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def screened_texts(self) -> list[tuple[str, str]]:
        """The prompts generated layers will run, filled from each row: screened by the content policy."""
        from zhike.design.template import GeneratedLayer, fill, parse_template

        if self.template_json is None:
            return []
        layers = [la for la in parse_template(self.template_json).layers if isinstance(la, GeneratedLayer)]
        return [(f"rows.{i}", fill(la.prompt, row)) for la in layers for i, row in enumerate(self.rows)]

    template: str | None = Field(
        None,
        max_length=64,
        description="A bundled or saved template id (GET /api/v1/templates)",
        json_schema_extra=ui("模板", "Template"),
    )
    template_json: dict[str, Any] | None = Field(
        None,
        description="An inline template; Zhike fills it from `template` at submission, so the job keeps it",
        json_schema_extra=ui("模板内容", "Template JSON", group="more"),
    )
    template_version: int | None = Field(
        None,
        description="Set by Zhike: the saved template's version when submitted",
        json_schema_extra=ui("模板版本", "Template version", read_only=True),
    )
    brand: dict[str, Any] | None = Field(
        None,
        description="Set by Zhike for a template with brand.* references: your brand kit when submitted",
        json_schema_extra=ui("品牌", "Brand kit", read_only=True, group="more"),
    )
    rows: list[dict[str, Any]] = Field(
        ...,
        min_length=1,
        max_length=batch_data.MAX_ROWS,
        description="Data rows: {column: value}; image columns hold asset ids (POST /api/v1/templates/data parses a "
        "CSV/XLSX/JSON file into rows)",
        json_schema_extra=ui("数据行", "Data rows"),
    )
    sizes: list[BatchSize] = Field(
        default_factory=lambda: [TEMPLATE_SIZE],
        min_length=1,
        max_length=8,
        description="'template' (its own size), presets (taobao, douyin, xiaohongshu, banner, jd, wechat_cover) or "
        "WxH; one design per row and size",
        json_schema_extra=ui("输出尺寸", "Sizes", widget="sizes"),
    )
    model: str | None = Field(
        None,
        max_length=200,
        description="Generated layers: the checkpoint; default: first",
        json_schema_extra=ui("模型", "Model", widget="model", model_kind="checkpoint", group="more"),
    )
    seed: int | None = Field(
        None,
        ge=-1,
        le=2**32 - 1,
        description="Generated layers: row N uses seed + N - 1",
        json_schema_extra=ui("随机种子", "Seed", widget="seed", group="more"),
    )
    steps: int = Field(
        20,
        ge=1,
        le=60,
        description="Generated layers: diffusion steps",
        json_schema_extra=ui("步数", "Steps", widget="slider", group="more"),
    )
    negative_prompt: str = Field(
        "",
        max_length=2000,
        description="Generated layers: what to avoid",
        json_schema_extra=ui("反向提示词", "Negative prompt", widget="textarea", group="more"),
    )
    matting_model: str | None = Field(
        None,
        max_length=200,
        description="Image layers with cutout: the matting model",
        json_schema_extra=ui("抠图模型", "Matting model", widget="model", model_kind="matting", group="more"),
    )

    @field_validator("rows")
    @classmethod
    def _cells_as_text(cls, v: list[dict[str, Any]]) -> list[dict[str, str]]:
        try:  # the same rules as a data file: text cells, limits named by row and column
            return batch_data.parse_records(v, field="rows").rows
        except ZhikeError as e:
            raise ValueError(e.message) from None

    @field_validator("brand")
    @classmethod
    def _kit(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else BrandKit.model_validate(v).model_dump(mode="json")

    @field_validator("seed")
    @classmethod
    def _random_is_none(cls, v: int | None) -> int | None:
        return None if v == -1 else v

    @model_validator(mode="after")
    def _check(self) -> BatchDesignParams:
        if self.template is None and self.template_json is None:
            raise ValueError("give `template` (an id) or `template_json`")
        if len(self.sizes) != len(set(self.sizes)):
            raise ValueError("sizes: each size once")
        if len(self.rows) * len(self.sizes) > MAX_DESIGNS:
            raise ValueError(f"{len(self.rows)} rows x {len(self.sizes)} sizes is over {MAX_DESIGNS} designs a job")
        return self


class DesignOut(BaseModel):
    row: int = Field(..., description="1-based data row")
    size: str
    width: int
    height: int
    asset_id: str


class RowError(BaseModel):
    row: int
    size: str | None = Field(None, description="None: the row failed before rendering (every size)")
    column: str | None = None
    message: str
    code: str | None = Field(None, description="A data problem's code (design.data.RowProblem); None: not rendered")


class BatchDesignResult(ImagesResult):
    template: str
    template_version: int | None
    sizes: list[str]
    rows: int
    rows_ok: int = Field(..., description="Rows with every size rendered")
    rows_failed: int
    designs_ok: int
    designs_resumed: int = Field(0, description="Designs an earlier attempt of this job had rendered (reused)")
    designs: list[DesignOut]
    errors: list[RowError]


def prepare_batch_design(env: PrepareEnv, p: BatchDesignParams) -> BatchDesignParams:
    """Pin the template (its JSON and version), the image model and seed for generated layers, the matting model."""
    from zhike.design.template import parse_or_invalid
    from zhike.ops.placement import pick_matting

    version = p.template_version
    if p.template_json is None:
        assert p.template is not None
        stored = env.templates.get(p.template, env.owner_id, field="params.template")
        tpl, version = stored.template, stored.version
    else:
        tpl = parse_or_invalid(p.template_json, field="params.template_json")
    updates: dict[str, Any] = {
        "template": tpl.id,
        "template_json": tpl.model_dump(mode="json"),
        "template_version": version,
    }
    if p.brand is None and env.brand is not None and uses_brand(updates["template_json"]):
        kit = env.brand.get(env.owner_id)  # pinned like the template: a later change of the kit leaves the job be
        updates["brand"] = kit.model_dump(mode="json") if kit else None
    if batch_data.generates(tpl):
        updates["seed"] = p.seed if p.seed is not None else secrets.randbelow(2**31)
        if p.model:
            spec = env.catalog.get(p.model, field="params.model")
            if spec.kind != "checkpoint":
                raise InvalidInput(
                    f"{p.model!r} is a {spec.kind}, not an image model",
                    field="params.model",
                    code="model_wrong_kind",
                    ctx={"name": p.model, "kind": spec.kind, "expected": "checkpoint"},
                )
        else:
            try:
                updates["model"] = env.catalog.default_checkpoint(field="params.model").name
            except ZhikeError:
                updates["model"] = None  # none installed: rows fail with NO_MODEL, the job still reports them
    if batch_data.cuts_out(tpl):
        updates["matting_model"] = pick_matting(env.catalog, p.matting_model, field="params.matting_model")
    return p.model_copy(update=updates)


class _Images:
    """resolve_image for the renderer: asset ids (or their URLs) of the job's owner, a few kept decoded."""

    def __init__(self, ctx: RunContext, keep: int = 16) -> None:
        self.ctx = ctx
        self.keep = keep
        self.cache: OrderedDict[str, Image.Image] = OrderedDict()

    def __call__(self, value: str) -> Image.Image | None:
        aid = batch_data.asset_ref(value or "")
        if aid is None or not self.ctx.assets.exists(aid, owner_id=self.ctx.owner_id):
            return None
        if aid in self.cache:
            self.cache.move_to_end(aid)
            return self.cache[aid]
        img = self.ctx.load_image(aid, field="rows")
        self.cache[aid] = img
        if len(self.cache) > self.keep:
            self.cache.popitem(last=False)
        return img


class _Generator:
    """generate(prompt, w, h) for generated layers: txt2img through the model manager at the model's native size.
    A cancel (or lost lease) during the steps passes through the renderer and stops the job."""

    def __init__(self, ctx: RunContext, p: BatchDesignParams, seed: int, tick: Callable[[], None]) -> None:
        self.ctx, self.p, self.seed, self.tick = ctx, p, seed, tick

    def __call__(self, prompt: str, width: int, height: int) -> Image.Image:
        ctx, p, seed = self.ctx, self.p, self.seed
        if p.model is None:
            raise ModelError(NO_MODEL, code="template_needs_model", field="params.model")
        from zhike.backends import diffusion
        from zhike.ops.diffusion_common import generate, native_side
        from zhike.ops.masking import fit_to

        native = native_side(ctx.models.catalog.get(p.model, field="params.model").family)
        w, h = fit_to(width, height, native)
        with ctx.models.use_named(p.model, kind="checkpoint") as loaded:
            req = diffusion.DiffusionRequest(
                mode="txt2img",
                prompt=prompt,
                negative_prompt=p.negative_prompt,
                width=w,
                height=h,
                steps=p.steps,
                guidance=7.0,
                seed=seed,
                scheduler="DPM++ 2M Karras",
                batch_size=1,
                clip_skip=1,
                on_step=lambda i, n, preview: self.tick(),  # cancel and a lost lease stop the steps too
            )
            gen = generate(ctx, loaded, req)  # screened: a flagged layer fails its design (image_withheld)
        return gen.images[0].resize((width, height), Image.LANCZOS)


def _cutter(ctx: RunContext, p: BatchDesignParams) -> Callable[[Image.Image], Image.Image]:
    def cutout(img: Image.Image) -> Image.Image:
        from zhike.ops.placement import matte

        alpha = matte(ctx.models, img, "product", model=p.matting_model, refine=False)
        out = img.convert("RGBA")
        out.putalpha(Image.fromarray(alpha))
        return out

    return cutout


@operation(
    "batch_design",
    lane="cpu",
    version=1,
    params=BatchDesignParams,
    result=BatchDesignResult,
    prepare=prepare_batch_design,
    title={"en": "Batch design", "zh": "批量设计"},
    tags=("image", "design", "commerce"),
    cli=Cli(hidden=True),  # `zhike batch TEMPLATE DATA` reads the data file and writes the ZIP
)
def batch_design(ctx: RunContext, p: BatchDesignParams) -> BatchDesignResult:
    """Fill a design template from data rows (CSV/XLSX/JSON): one design per row and size, bad rows reported."""
    from zhike.design.render import render_design
    from zhike.design.template import parse_template

    t0 = time.perf_counter()
    assert p.template_json is not None  # pinned by prepare
    tpl = parse_template(p.template_json)
    required, _optional = tpl.columns()
    sizes = [(s, (tpl.width, tpl.height) if s == TEMPLATE_SIZE else size_of(s)) for s in p.sizes]
    checked = batch_data.check_rows(
        p.rows,
        required,
        batch_data.image_columns(tpl),
        asset_exists=lambda aid: ctx.assets.exists(aid, owner_id=ctx.owner_id),
    )
    renders_log = ctx.work.dir / "renders.log"

    total = len(checked.rows) * len(sizes)
    done = 0
    ctx.progress(0, total)
    result = BatchDesignResult(
        images=[],
        model=p.model if batch_data.generates(tpl) else None,
        template=tpl.id,
        template_version=p.template_version,
        sizes=[s for s, _ in sizes],
        rows=len(checked.rows),
        rows_ok=0,
        rows_failed=0,
        designs_ok=0,
        designs=[],
        errors=[],
    )
    images = _Images(ctx)
    kit = BrandKit.model_validate(p.brand) if p.brand else None
    cutout = _cutter(ctx, p) if batch_data.cuts_out(tpl) else None
    image_cols = sorted(batch_data.image_columns(tpl))
    generated = batch_data.generates(tpl)
    staged = []
    failed_rows: set[int] = set()
    # Rendering stays on this thread; encoding and storing each PNG (most of a design's time, and zlib releases
    # the GIL) runs on STAGE_THREADS threads, so a batch uses both cores. Results are taken in order.
    pending: deque[tuple[Any, bool, int, str, int, int, str, int | None, Image.Image | None]] = deque()

    log_lock = threading.Lock()

    def log_render(n: int, size_id: str) -> None:
        """One line per design made and on disk (record or error) in this attempt: a later attempt never redoes it."""
        with log_lock, renders_log.open("a", encoding="utf-8") as f:
            f.write(f"{n} {size_id} {os.getpid()}\n")

    def finish(entry: tuple[Any, bool, int, str, int, int, str, int | None, Image.Image | None]) -> None:
        nonlocal done
        outcome, fresh, n, size_id, w, h, key, seed, shown = entry
        item, message = outcome.result() if isinstance(outcome, Future) else outcome
        if message is not None and fresh:  # a resumed failure is on record already
            ctx.work.failed(key, message)
            log_render(n, size_id)
        if item is not None:
            staged.append(item)
            result.designs.append(DesignOut(row=n, size=size_id, width=w, height=h, asset_id=item.row.id))
            result.images.append(ImageOut(asset_id=item.row.id, seed=seed, width=w, height=h))
        else:
            failed_rows.add(n)
            text = f"{batch_data.where(n)} [{size_id}]: {message or 'not rendered'}"
            result.errors.append(RowError(row=n, size=size_id, message=text))
        done += 1
        ctx.progress(done, total, (lambda im=shown: lambda: im) if shown is not None else None)

    def stage(
        rendered: Image.Image, n: int, row: dict[str, str], size_id: str, seed: int | None, parent: Any, key: str
    ) -> tuple[Any, str | None]:
        try:
            item = ctx.assets.stage_image(
                rendered,
                owner_id=ctx.owner_id,
                job_id=ctx.job_id,
                op=ctx.op,
                # The job id makes every design's bytes unique, so no other asset shares its blob.
                params={
                    "template": tpl.id,
                    "template_version": p.template_version,
                    "row": n,
                    "size": size_id,
                    "values": row,
                    "job": ctx.job_id,
                },
                seed=seed,
                model=result.model,
                parent_id=parent,
                tags=["batch", tpl.id, size_id],
            )
        except Exception as e:  # one broken design must not lose the others
            log.exception("job %s row %d size %s", ctx.job_id, n, size_id)
            return None, hide_paths(f"internal error: {type(e).__name__}: {e}")
        if ctx.prepare_export is not None:  # labelled here, in parallel with the rendering: the ZIP finds it ready
            ctx.prepare_export(item, rendered)
        item.data = None  # the bytes are in the blob store; holding thousands would fill the memory
        ctx.record_staged(key, item)
        log_render(n, size_id)
        return item, None

    with ThreadPoolExecutor(
        STAGE_THREADS, thread_name_prefix=f"stage-{ctx.job_id}", initializer=png.encode_serially
    ) as stager:
        for n, row in enumerate(checked.rows, start=1):
            problems = checked.problems.get(n)
            if problems:
                while pending:  # keep the progress in order
                    finish(pending.popleft())
                result.errors += [
                    RowError(row=n, column=pr.column, message=pr.message, code=pr.code) for pr in problems
                ]
                failed_rows.add(n)
                done += len(sizes)
                ctx.progress(done, total)
                continue
            parent = next((row[c] for c in image_cols if row.get(c)), None)
            seed = (p.seed or 0) + n - 1 if generated else None
            for size_id, (w, h) in sizes:
                key = f"{n:05d}-{size_id}"
                outcome: Any = None
                shown = None
                restored = ctx.restage(key, keep_bytes=False)  # None when its file left the blob store: made again
                if restored is not None:
                    outcome = (restored[0], None)
                elif (message := ctx.work.error(key)) is not None:
                    outcome = (None, message)
                fresh = outcome is None
                if not fresh:
                    result.designs_resumed += 1
                else:
                    gen = _Generator(ctx, p, seed or 0, lambda at=done: ctx.progress(at, total)) if generated else None
                    try:
                        shown, _report = render_design(
                            tpl, row, size=(w, h), resolve_image=images, generate=gen, cutout=cutout, brand=kit
                        )
                        outcome = stager.submit(stage, shown, n, row, size_id, seed, parent, key)
                    except JobCancelled:
                        raise
                    except ZhikeError as e:
                        outcome = (None, e.message)
                    except Exception as e:  # one broken row must not lose the others
                        log.exception("job %s row %d size %s", ctx.job_id, n, size_id)
                        outcome = (None, hide_paths(f"internal error: {type(e).__name__}: {e}"))
                pending.append((outcome, fresh, n, size_id, w, h, key, seed, shown))
                while len(pending) > 2 * STAGE_THREADS:  # a queue ahead: rendering need not wait for one store
                    finish(pending.popleft())
        while pending:
            finish(pending.popleft())
    result.rows_failed = len(failed_rows)
    result.rows_ok = len(checked.rows) - result.rows_failed
    ctx.staged.extend(staged)  # committed with the job's success, in one transaction
    result.designs_ok = len(result.designs)
    if result.designs_ok == 0:
        result.warn(note("no_design_rendered", "no design was rendered: see errors"))
    result.timings["total"] = round(time.perf_counter() - t0, 4)
    return result
