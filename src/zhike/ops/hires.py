"""hires (高清修复): generate, upscale, then refine with img2img in one operation (A1111's "Hires. fix")."""

from __future__ import annotations

from PIL import Image
from pydantic import Field

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import operation
from zhike.core.types import ImagesResult
from zhike.core.ui import ui
from zhike.ops.diffusion_common import DiffusionParams, PromptRequired, prepare_diffusion, run_diffusion, save_outputs

MAX_HIRES_SIDE = 4096


class HiresParams(PromptRequired, DiffusionParams):
    hires_scale: float = Field(
        2.0,
        ge=1.0,
        le=4.0,
        description="Upscale factor of the first pass",
        json_schema_extra=ui("高清放大倍数", "Hires scale", widget="slider", step=0.25, cli_flag="--hires"),
    )
    hires_strength: float = Field(
        0.45,
        ge=0.05,
        le=1.0,
        description="Denoising strength of the refine pass",
        json_schema_extra=ui("高清修复幅度", "Hires strength", widget="slider", step=0.05),
    )
    hires_steps: int | None = Field(
        None,
        ge=1,
        le=150,
        description="Steps of the refine pass (default: steps)",
        json_schema_extra=ui("高清修复步数", "Hires steps", help_zh="默认与步数相同", group="more"),
    )
    upscaler: str = Field(
        "lanczos",
        max_length=200,
        description="How the first pass is enlarged: lanczos, or an upscaler model such as realesrgan-x4plus",
        json_schema_extra=ui(
            "放大模型",
            "Upscaler",
            help_zh="第一步的放大方式：lanczos，或 realesrgan-x4plus 等超分模型",
            widget="model",
            model_kind="upscaler",
        ),
    )


def hires_size(p: HiresParams) -> tuple[int, int]:
    return int(p.width * p.hires_scale) // 8 * 8, int(p.height * p.hires_scale) // 8 * 8


def prepare_hires(env: PrepareEnv, p: HiresParams) -> HiresParams:
    if p.upscaler != "lanczos":
        from zhike.ops.upscale import resolve_upscaler

        try:
            resolve_upscaler(env.catalog, p.upscaler)
        except InvalidInput as e:
            raise InvalidInput(e.message, code=e.code, field="params.upscaler", ctx=e.ctx) from e
    w, h = hires_size(p)
    if max(w, h) > MAX_HIRES_SIDE:
        raise InvalidInput(
            f"the result would be {w}x{h}; the limit is {MAX_HIRES_SIDE} px per side",
            code="output_too_large",
            field="params.hires_scale",
            limit=MAX_HIRES_SIDE,
            ctx={"width": w, "height": h, "max": MAX_HIRES_SIDE},
        )
    return prepare_diffusion(env, p)


def enlarge(ctx: RunContext, p: HiresParams, image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The first pass at the refine size: Lanczos, or a super-resolution model (a sharper start for img2img)."""
    if p.upscaler == "lanczos":
        return image.resize(size, Image.LANCZOS)
    from zhike.ops.upscale import resolve_upscaler, upscale_with

    spec = resolve_upscaler(ctx.models.catalog, p.upscaler)
    out, _ = upscale_with(ctx, spec, image, scale=p.hires_scale)
    return out.resize(size, Image.LANCZOS)  # the model's size, rounded to the multiple of 8 img2img needs


@operation(
    "hires",
    lane="gpu",
    version=1,
    params=HiresParams,
    result=ImagesResult,
    prepare=prepare_hires,
    title={"en": "Hires fix", "zh": "高清修复"},
    tags=("image", "generate"),
)
def hires(ctx: RunContext, p: HiresParams) -> ImagesResult:
    """Generate at the base size, enlarge, and redraw details at the large size with img2img."""
    refine_steps = p.hires_steps or p.steps
    total = p.steps + max(1, int(refine_steps * p.hires_strength))
    first, images = run_diffusion(ctx, p, mode="txt2img", save=False, total_override=total)
    w, h = hires_size(p)
    refine = p.model_copy(update={"steps": refine_steps, "batch_size": 1})
    finals: list[Image.Image] = []
    for i, img in enumerate(images):
        # Each image of the batch is refined with its own seed, so image i is re-made by seed + i alone.
        one = refine.model_copy(update={"seed": p.seed + i})
        _, out = run_diffusion(
            ctx,
            one,
            mode="img2img",
            init_image=enlarge(ctx, p, img, (w, h)),
            strength=p.hires_strength,
            width=w,
            height=h,
            save=False,
            step_offset=p.steps,
            total_override=total,
        )
        finals += out
    # Both passes' phases, added up (ctx.timings: load, encode_prompt, denoise, decode)
    result = ImagesResult(images=[], model=first.model, warnings=first.warnings, timings=dict(ctx.timings))
    save_outputs(ctx, result, finals, [p.seed + i for i in range(len(finals))], p, parent_id=None, tags=["hires"])
    return result
