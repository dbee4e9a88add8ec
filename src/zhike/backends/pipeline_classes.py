"""Which diffusers pipeline class runs a (family, mode): the one table the backends share."""

from __future__ import annotations

from diffusers import (
    DiffusionPipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
)

# mode: txt2img | img2img | inpaint. A checkpoint's own variant ("base", "inpaint") loads as that mode.
PIPELINES: dict[tuple[str, str], type[DiffusionPipeline]] = {
    ("sd15", "txt2img"): StableDiffusionPipeline,
    ("sd15", "img2img"): StableDiffusionImg2ImgPipeline,
    ("sd15", "inpaint"): StableDiffusionInpaintPipeline,
    ("sdxl", "txt2img"): StableDiffusionXLPipeline,
    ("sdxl", "img2img"): StableDiffusionXLImg2ImgPipeline,
    ("sdxl", "inpaint"): StableDiffusionXLInpaintPipeline,
}
LOAD_MODE_FOR_VARIANT = {"base": "txt2img", "inpaint": "inpaint"}
FAMILIES = tuple(sorted({family for family, _ in PIPELINES}))


def pipeline_class(family: str, mode: str) -> type[DiffusionPipeline] | None:
    return PIPELINES.get((family, mode))
