"""txt2img: an image from a text prompt."""

from __future__ import annotations

from zhike.core.context import RunContext
from zhike.core.registry import operation
from zhike.core.types import ImagesResult
from zhike.core.ui import Cli
from zhike.ops.diffusion_common import DiffusionParams, PromptRequired, prepare_diffusion, run_diffusion


class Txt2ImgParams(PromptRequired, DiffusionParams):
    pass


@operation(
    "txt2img",
    lane="gpu",
    version=1,
    params=Txt2ImgParams,
    result=ImagesResult,
    prepare=prepare_diffusion,
    title={"en": "Text to image", "zh": "文生图"},
    tags=("image", "generate"),
    cli=Cli(aliases=("generate",)),
)
def txt2img(ctx: RunContext, p: Txt2ImgParams) -> ImagesResult:
    """Generate images from a prompt with a Stable Diffusion checkpoint (SD 1.5 or SDXL)."""
    return run_diffusion(ctx, p, mode="txt2img")[0]
