"""Parameters and steps shared by the Stable Diffusion operations."""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import ContentRefused, InvalidInput
from zhike.core.registry import Lane
from zhike.core.samplers import SchedulerName
from zhike.core.types import ImageOut, ImagesResult, Note
from zhike.core.ui import ui
from zhike.ops.translate import english_prompts, has_chinese, needs_translation

if TYPE_CHECKING:
    from zhike.backends.diffusion import DiffusionRequest, Generation, LoadedPipeline

MAX_SIDE = 2048
MAX_SEED = 2**32 - 1
# A1111 writes LoRAs into the prompt as <lora:name:weight>; we accept that spelling too.
LORA_TAG = re.compile(r"<lora:([^:>]+)(?::([-+]?[\d.]+))?>")


METHOD_CHOICES = {
    "auto": ("自动", "Auto"),
    "diffusion": ("AI 生成", "AI (diffusion)"),
    "classical": ("传统算法（无需模型）", "Classical (no model)"),
}
PROMPT_UI = ui(
    "画面描述",
    "Prompt",
    help_zh="想画什么；支持 A1111 写法：(词:1.3)、[词]、BREAK、<lora:名称:0.8>",
    widget="prompt",
    canvas="prompt",
    cli_argument=True,
)
NEGATIVE_UI = ui("反向提示词", "Negative prompt", help_zh="不想出现的内容", widget="textarea", cli_flag="--negative")


class LoraRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        ...,
        min_length=1,
        max_length=200,
        description="A registered LoRA (zhike models list)",
        json_schema_extra=ui("名称", "Name", widget="model", model_kind="lora"),
    )
    weight: float = Field(
        1.0,
        ge=-4.0,
        le=4.0,
        description="Strength; 0 turns it off",
        json_schema_extra=ui("权重", "Weight", help_zh="强度；0 表示不起作用", step=0.05),
    )


class PromptTranslation(BaseModel):
    """The English a Chinese prompt was drawn with on an English-only text encoder (SD 1.5, SDXL): kept in the
    output's parameters, so a remix with the same words draws the same image without asking a model again."""

    source: str = Field(description="The prompt as written", json_schema_extra=ui("原提示词", "Prompt as written"))
    prompt: str = Field(description="Its English, drawn with", json_schema_extra=ui("英文提示词", "English prompt"))
    negative_source: str = Field(
        "", description="The negative prompt as written", json_schema_extra=ui("原反向提示词", "Negative as written")
    )
    negative_prompt: str = Field(
        "", description="Its English", json_schema_extra=ui("英文反向提示词", "English negative prompt")
    )
    llm: str | None = Field(
        None, description="The language model that translated", json_schema_extra=ui("语言模型", "Language model")
    )


class DiffusionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(
        "",
        max_length=4000,
        description="What to draw. A1111 syntax works: (word:1.3), [word], BREAK, <lora:name:0.8>",
        json_schema_extra=PROMPT_UI,
    )
    negative_prompt: str = Field("", max_length=4000, description="What to avoid", json_schema_extra=NEGATIVE_UI)
    model: str | None = Field(
        None,
        max_length=200,
        description="Registered model name; default: first installed",
        json_schema_extra=ui(
            "模型", "Model", help_zh="已安装的模型名称；留空使用第一个", widget="model", model_kind="checkpoint"
        ),
    )
    preset: str | None = Field(
        None,
        max_length=64,
        description="Style preset id (GET /api/v1/presets)",
        json_schema_extra=ui(
            "风格", "Style", help_zh="风格预设（国风、油画、二次元…）", widget="preset", group="style"
        ),
    )
    width: int = Field(
        512,
        ge=64,
        le=MAX_SIDE,
        description="Multiple of 8",
        json_schema_extra=ui("宽度", "Width", group="size", step=8),
    )
    height: int = Field(
        512,
        ge=64,
        le=MAX_SIDE,
        description="Multiple of 8",
        json_schema_extra=ui("高度", "Height", group="size", step=8),
    )
    steps: int = Field(
        25,
        ge=1,
        le=150,
        description="Sampling steps: more is slower and often finer",
        json_schema_extra=ui("步数", "Steps", help_zh="采样步数：越多越慢，细节通常越好", widget="slider"),
    )
    guidance: float = Field(
        7.0,
        ge=0.0,
        le=30.0,
        description="CFG scale: how closely the image follows the prompt",
        json_schema_extra=ui(
            "提示词引导系数 (CFG)", "Guidance (CFG)", help_zh="画面贴合描述的程度", widget="slider", step=0.5
        ),
    )
    seed: int | None = Field(
        None,
        ge=-1,
        le=MAX_SEED,
        description="-1 or empty: random (recorded)",
        json_schema_extra=ui("随机种子", "Seed", help_zh="-1 或留空：随机（会被记录，可复现）", widget="seed"),
    )
    scheduler: SchedulerName = Field(
        "DPM++ 2M Karras",
        description="Sampler (A1111 names)",
        json_schema_extra=ui("采样器", "Sampler", group="more"),
    )
    batch_size: int = Field(
        1,
        ge=1,
        le=8,
        description="Images in one run (seeds seed, seed+1, ...)",
        json_schema_extra=ui("每批张数", "Batch size", group="more", cli_flag="--batch"),
    )
    clip_skip: int = Field(
        1,
        ge=1,
        le=12,
        description="A1111 'Clip skip': 2 suits most anime models",
        json_schema_extra=ui("CLIP 跳过层", "Clip skip", help_zh="多数二次元模型用 2", group="more"),
    )
    loras: list[LoraRef] = Field(
        default_factory=list,
        max_length=8,
        description="LoRA styles with weights",
        json_schema_extra=ui(
            "LoRA 风格", "LoRA styles", group="more", cli_flag="--lora", cli_shorthand=("name", "weight")
        ),
    )
    applied_preset: str | None = Field(
        None,
        description="Set by Zhike: the preset already expanded into the prompt",
        json_schema_extra=ui("已应用的风格", "Applied style", read_only=True),
    )
    translate_prompt: bool | None = Field(
        None,
        description="Translate a Chinese prompt into English first for SD 1.5 / SDXL models (their text encoder "
        "reads English only); empty: the server's setting translate_prompts (on by default)",
        json_schema_extra=ui(
            "中文提示词先翻译",
            "Translate Chinese prompts",
            help_zh="SD 1.5 / SDXL 只认英文：先用语言模型把中文提示词译成英文；留空按服务器设置（默认开启）",
            group="more",
        ),
    )
    prompt_translated: PromptTranslation | None = Field(
        None,
        description="Set by Zhike: the English the Chinese prompt was drawn with",
        json_schema_extra=ui("提示词译文", "Prompt translation", read_only=True),
    )

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, v: int | None) -> int | None:
        if v is not None and v % 8:
            raise ValueError(f"must be a multiple of 8 (got {v}; nearest: {round(v / 8) * 8})")
        return v

    @field_validator("seed")
    @classmethod
    def _random_is_none(cls, v: int | None) -> int | None:
        return None if v == -1 else v  # -1 and empty both mean "random": one spelling, one request hash


class PromptRequired(BaseModel):
    """Mixin for operations that draw from the prompt alone (txt2img, hires)."""

    prompt: str = Field(
        ...,
        min_length=1,
        max_length=4000,
        description="What to draw. A1111 syntax works: (word:1.3), [word], BREAK, <lora:name:0.8>",
        json_schema_extra=PROMPT_UI,
    )

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


def native_side(family: str) -> int:
    """The resolution a family was trained at: the default working size for edits."""
    return 1024 if family == "sdxl" else 512


def apply_preset(env: PrepareEnv, p: DiffusionParams) -> DiffusionParams:
    """Expand the preset into the prompt and fill the parameters the user did not set; remember which."""
    if p.preset is None:
        return p
    preset = env.presets.get(p.preset, field="params.preset")
    explicit = p.model_fields_set
    fields = type(p).model_fields
    updates: dict[str, Any] = {k: v for k, v in preset.params.items() if k in fields and k not in explicit}
    updates["prompt"], updates["negative_prompt"] = preset.expand(p.prompt, p.negative_prompt)
    mine = {lr.name for lr in p.loras}
    updates["loras"] = [LoraRef(name=lr.name, weight=lr.weight) for lr in preset.loras if lr.name not in mine] + list(
        p.loras
    )
    updates |= {"preset": None, "applied_preset": preset.id}
    # Re-validate: a preset's values obey the same limits as the user's.
    return type(p).model_validate(
        {
            **p.model_dump(),
            **{k: v for k, v in updates.items() if k != "loras"},
            "loras": [lr.model_dump() for lr in updates["loras"]],
        }
    )


def lift_lora_tags(p: DiffusionParams) -> DiffusionParams:
    """Move `<lora:name:w>` tags from the prompt into `loras` (explicit entries win)."""
    found = LORA_TAG.findall(p.prompt)
    if not found:
        return p
    mine = {lr.name for lr in p.loras}
    tags = [LoraRef(name=n.strip(), weight=float(w) if w else 1.0) for n, w in found if n.strip() not in mine]
    prompt = " ".join(LORA_TAG.sub("", p.prompt).split())
    return p.model_copy(update={"prompt": prompt, "loras": [*p.loras, *tags]})


def check_loras(env: PrepareEnv, p: DiffusionParams, family: str) -> None:
    for i, ref in enumerate(p.loras):
        field = f"params.loras.{i}.name"
        spec = env.catalog.get(ref.name, field=field)
        if spec.kind != "lora":
            raise InvalidInput(
                f"{ref.name!r} is a {spec.kind}, not a LoRA",
                field=field,
                code="model_wrong_kind",
                ctx={"name": ref.name, "kind": spec.kind, "expected": "lora"},
            )
        if spec.family not in (family, "unknown"):
            raise InvalidInput(
                f"LoRA {ref.name!r} is for {spec.family}; the model is {family}",
                field=field,
                code="model_wrong_family",
                ctx={"name": ref.name, "family": spec.family, "expected": family},
            )


def prepare_diffusion(env: PrepareEnv, p: DiffusionParams, *, inpainting: bool = False) -> DiffusionParams:
    """Fix what must not change between runs: random seed, default model, preset expansion, LoRA tags.

    `inpainting`: the operation fills a mask (inpaint, erase, outpaint), so inpainting checkpoints can serve.
    """
    p = lift_lora_tags(apply_preset(env, p))
    updates: dict[str, Any] = {}
    if p.seed is None:
        updates["seed"] = secrets.randbelow(MAX_SEED)
    if p.model:
        spec = env.catalog.get(p.model, field="params.model")
        if spec.variant == "inpaint" and not inpainting:
            raise InvalidInput(
                f"{spec.name!r} is an inpainting model: use it for inpaint, erase or outpaint, or pick a base model",
                field="params.model",
                code="model_wrong_kind",
                ctx={"name": spec.name, "kind": "inpaint", "expected": "checkpoint"},
            )
    else:
        spec = env.catalog.default_checkpoint(field="params.model", inpainting=inpainting)
    updates["model"] = spec.name
    check_loras(env, p, spec.family)
    return p.model_copy(update=updates)


def prepare_fill(env: PrepareEnv, p: Any) -> Any:
    """Resolve `method` for ops that can fill without a model: auto -> diffusion when a checkpoint is named or
    installed, else classical (then only the seed is fixed, so the stored row is complete)."""
    method = p.method
    if method == "auto":
        has_model = p.model is not None or any(s.kind == "checkpoint" for s in env.catalog.list())
        method = "diffusion" if has_model else "classical"
    if method == "classical":
        return p.model_copy(update={"method": "classical", "seed": p.seed if p.seed is not None else 0})
    return prepare_diffusion(env, p.model_copy(update={"method": "diffusion"}), inpainting=True)


def has_checkpoint(ctx: RunContext) -> bool:
    """Whether any image model is installed (a classical fill then was the user's choice, not the only one)."""
    return any(s.kind == "checkpoint" for s in ctx.models.catalog.list())


def fill_lane(cheap: Lane) -> Callable[[Any], Lane]:
    """The lane of an op that fills with or without a model (`prepare_fill` resolved its `method`): gpu for a
    diffusion fill, else `cheap`, so a classical erase never queues behind generations."""
    return lambda p: "gpu" if p.method == "diffusion" else cheap


def translating(ctx: RunContext, wanted: bool | None) -> bool:
    return ctx.settings.translate_prompts if wanted is None else wanted


def encoder_prompts(ctx: RunContext, p: DiffusionParams) -> tuple[DiffusionParams, Note | None]:
    """`p` with `prompt_translated` set when its Chinese prompt goes to an English-only text encoder (run_diffusion
    draws with that English and stores it with the outputs), or a `prompt_not_translated` note when no language
    model is available. Runs in the job, before the checkpoint is loaded: the LLM takes seconds to minutes, and
    it and the image model need not be in memory together. A prompt without Chinese costs one regex search."""
    if not (has_chinese(p.prompt) or has_chinese(p.negative_prompt)) or not translating(ctx, p.translate_prompt):
        return p, None
    family = ctx.models.catalog.get(p.model or "", field="params.model").family
    if not needs_translation(family, p.prompt, p.negative_prompt):
        return p, None
    done = p.prompt_translated
    if done is not None and (done.source, done.negative_source) == (p.prompt, p.negative_prompt):
        return p, None  # a remix of an output: the recorded English, no model call
    out = english_prompts(ctx, p.prompt, p.negative_prompt)
    if isinstance(out, Note):
        return p, out
    return p.model_copy(update={"prompt_translated": PromptTranslation.model_validate(out)}), None


def english_request(ctx: RunContext, family: str, req: DiffusionRequest) -> tuple[DiffusionRequest, str | None]:
    """The request with its Chinese prompt in English for an English-only encoder, for the ops that build their
    requests themselves (a batch design's layers, product photos' scenes); run_diffusion's are English already.
    Returns (request, warning or None)."""
    if not needs_translation(family, req.prompt, req.negative_prompt):
        return req, None
    if not translating(ctx, ctx.params.get("translate_prompt")):
        return req, None
    out = english_prompts(ctx, req.prompt, req.negative_prompt)
    if isinstance(out, Note):
        return req, out.message
    return dataclasses.replace(req, prompt=out["prompt"], negative_prompt=out["negative_prompt"]), None


def generate(ctx: RunContext, loaded: LoadedPipeline, req: DiffusionRequest, *, partial: bool = False) -> Generation:
    """Run the diffusion backend for an operation (`loaded` from ctx.models) and screen what it made. This is the
    only call of the backend in the operations (tests/test_image_safety.py fails on any other), so the pixels any
    op generates (an output, a design layer, a fill) pass the installed image safety checker before anything
    composites or stores them.

    A flagged image never comes back. Every image flagged: the job fails (content policy, image_withheld). Some
    flagged: with `partial` the others come back with their seeds and a warning; without it (callers that pair
    outputs with seeds or inputs by position) the call's whole output is withheld the same way.
    """
    from zhike.backends import diffusion

    req, untranslated = english_request(ctx, loaded.spec.family, req)
    gen = diffusion.generate(loaded, req)
    if untranslated:
        gen.warnings.append(untranslated)
    flags = ctx.screen_images(gen.images) if ctx.screen_images is not None else []
    if not any(flags):
        return gen
    if all(flags) or not partial:
        raise ContentRefused(
            "the generated image was withheld by the image safety checker / 生成的图片未通过图像安全检测",
            field="params.prompt",
            limit="image_checker",
            code="image_withheld",
        )
    gen.warnings.append(f"{sum(flags)} of {len(flags)} images withheld by the image safety checker")
    gen.images = [im for im, f in zip(gen.images, flags, strict=True) if not f]
    gen.seeds = [sd for sd, f in zip(gen.seeds, flags, strict=True) if not f]
    return gen


def run_diffusion(
    ctx: RunContext,
    p: DiffusionParams,
    *,
    mode: str,
    init_image: Image.Image | None = None,
    mask: Image.Image | None = None,
    strength: float | None = None,
    parent_id: str | None = None,
    controls: list[Any] | None = None,
    width: int | None = None,
    height: int | None = None,
    step_offset: int = 0,
    total_override: int | None = None,
    save: bool = True,
) -> tuple[ImagesResult, list[Image.Image]]:
    """Run one diffusion request for an operation; save outputs as assets (unless `save` is False)."""
    from zhike.backends import diffusion

    assert p.model is not None and p.seed is not None
    t0 = time.perf_counter()
    ctx.progress(step_offset, total_override or 1)
    p, untranslated = encoder_prompts(ctx, p)
    english = p.prompt_translated
    loras = [(ref.name, ctx.models.catalog.get(ref.name, field="params.loras").path, ref.weight) for ref in p.loras]

    def on_step(i: int, n: int, preview: Any) -> None:
        ctx.progress(step_offset + i, total_override or n, preview)

    with ctx.models.use_named(p.model, kind="checkpoint") as loaded:
        ctx.timings["load"] = ctx.timings.get("load", 0.0) + round(time.perf_counter() - t0, 4)
        req = diffusion.DiffusionRequest(
            mode=mode,
            prompt=english.prompt if english else p.prompt,
            negative_prompt=english.negative_prompt if english else p.negative_prompt,
            width=width or p.width,
            height=height or p.height,
            steps=p.steps,
            guidance=p.guidance,
            seed=p.seed,
            scheduler=p.scheduler,
            batch_size=p.batch_size,
            clip_skip=p.clip_skip,
            init_image=init_image,
            mask=mask,
            strength=strength,
            loras=loras,
            controls=controls or [],
            on_step=on_step,
        )
        gen = generate(ctx, loaded, req, partial=save)
        spec = loaded.spec
    for phase, seconds in gen.timings.items():  # a hires job runs two passes: its phases add up
        ctx.timings[phase] = round(ctx.timings.get(phase, 0.0) + seconds, 4)
    result = ImagesResult(images=[], model=spec.name, warnings=gen.warnings, timings=dict(ctx.timings))
    if untranslated is not None:
        result.warn(untranslated)
    if save:  # stored (and labelled) on the worker's output pool while the next image or job starts
        save_outputs(ctx, result, gen.images, gen.seeds, p, parent_id=parent_id, model_hash=spec.short_hash)
    return result, gen.images


def save_outputs(
    ctx: RunContext,
    result: ImagesResult,
    images: list[Image.Image],
    seeds: list[int | None],
    p: BaseModel,
    *,
    parent_id: str | None,
    model_hash: str | None = None,
    tags: list[str] | None = None,
) -> None:
    """Store each image as an asset carrying the op's params; fill `result.images`. Generated images passed the
    image safety checker where they were made (`generate`)."""
    params = p.model_dump(mode="json", exclude={"seed"})
    model = getattr(p, "model", None)
    for img, seed in zip(images, seeds, strict=True):
        aid = ctx.save_image(
            img, params=params, seed=seed, model=model, model_hash=model_hash, parent_id=parent_id, tags=tags
        )
        result.images.append(ImageOut(asset_id=aid, seed=seed, width=img.width, height=img.height))
