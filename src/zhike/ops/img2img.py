"""img2img: re-draw an input image guided by a prompt; `strength` sets how far it may move."""

from __future__ import annotations

from pydantic import Field

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.registry import operation
from zhike.core.types import AssetId, ImagesResult
from zhike.core.ui import ui
from zhike.ops.diffusion_common import MAX_SIDE, DiffusionParams, prepare_diffusion, run_diffusion


class Img2ImgParams(DiffusionParams):
    init_image: AssetId = Field(
        ...,
        description="Asset id of the input image (upload: POST /api/v1/assets)",
        json_schema_extra=ui("底图", "Initial image", canvas="image", cli_flag="--init"),
    )
    strength: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="0 keeps the input, 1 ignores most of it",
        json_schema_extra=ui(
            "重绘幅度", "Denoising strength", help_zh="0 保留原图，1 几乎不看原图", widget="slider", step=0.05
        ),
    )
    width: int | None = Field(
        None,
        ge=64,
        le=MAX_SIDE,
        description="Default: the input's width, to a multiple of 8",
        json_schema_extra=ui("宽度", "Width", help_zh="默认：原图宽度（取 8 的倍数）", group="size", step=8),
    )
    height: int | None = Field(
        None,
        ge=64,
        le=MAX_SIDE,
        description="Default: the input's height",
        json_schema_extra=ui("高度", "Height", help_zh="默认：原图高度", group="size", step=8),
    )


def _fit(side: int) -> int:
    return max(64, min(MAX_SIDE, side - side % 8))


def prepare_img2img(env: PrepareEnv, p: Img2ImgParams) -> Img2ImgParams:
    row = env.assets.get(p.init_image, owner_id=env.owner_id, field="params.init_image")
    p = prepare_diffusion(env, p)
    w, h = p.width, p.height
    if w is None or h is None:
        # Keep the input's aspect ratio when only one side (or none) is given.
        scale = min(1.0, MAX_SIDE / max(row.width, row.height))
        if w is None and h is None:
            w, h = _fit(int(row.width * scale)), _fit(int(row.height * scale))
        elif w is None:
            w = _fit(int(row.width * h / row.height))
        else:
            h = _fit(int(row.height * w / row.width))
    return p.model_copy(update={"width": w, "height": h})


@operation(
    "img2img",
    lane="gpu",
    version=1,
    params=Img2ImgParams,
    result=ImagesResult,
    prepare=prepare_img2img,
    title={"en": "Image to image", "zh": "图生图"},
    tags=("image", "generate"),
)
def img2img(ctx: RunContext, p: Img2ImgParams) -> ImagesResult:
    """Re-draw an input image with a prompt. Strength 0 returns the input unchanged."""
    init = ctx.load_image(p.init_image, field="params.init_image")
    return run_diffusion(ctx, p, mode="img2img", init_image=init, strength=p.strength, parent_id=p.init_image)[0]
