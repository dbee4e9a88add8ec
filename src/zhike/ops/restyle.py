"""restyle (风格修改): redraw an image in a style preset, keeping its composition (an img2img recipe)."""

from __future__ import annotations

from pydantic import Field

from zhike.core.context import RunContext
from zhike.core.registry import operation
from zhike.core.types import ImagesResult
from zhike.core.ui import ui
from zhike.ops.diffusion_common import run_diffusion
from zhike.ops.img2img import Img2ImgParams, prepare_img2img


class RestyleParams(Img2ImgParams):
    preset: str | None = Field(
        "youhua",
        max_length=64,
        description="Target style preset (GET /api/v1/presets)",
        json_schema_extra=ui("目标风格", "Target style", widget="preset"),
    )
    strength: float = Field(
        0.55,
        ge=0.0,
        le=1.0,
        description="Higher follows the style more, the input less",
        json_schema_extra=ui(
            "重绘幅度", "Strength", help_zh="越高越像目标风格，越不像原图", widget="slider", step=0.05
        ),
    )


@operation(
    "restyle",
    lane="gpu",
    version=1,
    params=RestyleParams,
    result=ImagesResult,
    prepare=prepare_img2img,
    title={"en": "Style change", "zh": "风格修改"},
    tags=("image", "edit"),
)
def restyle(ctx: RunContext, p: RestyleParams) -> ImagesResult:
    """img2img with a style preset and a strength that keeps the layout; describe the subject in the prompt."""
    init = ctx.load_image(p.init_image, field="params.init_image")
    return run_diffusion(ctx, p, mode="img2img", init_image=init, strength=p.strength, parent_id=p.init_image)[0]
