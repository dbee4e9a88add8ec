"""upscale (图片超分): x1-x4 super-resolution with Real-ESRGAN (ncnn, embedded) or a user upscaler (spandrel).

`scale` is a number from 1 to 4 (not only 2/3/4): the output is exactly round(w*scale) x round(h*scale). The
model runs at its own factor (an x2 model twice for x3/x4) and Lanczos brings the result to the exact size, so
x2 with an x4 model is "x4 detail, then downsampled", and x1 cleans an image without enlarging it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import operation
from zhike.core.types import AssetId, ImageOut, ImagesResult
from zhike.core.ui import Studio, ui

DEFAULT_MODEL = "realesrgan-x4plus"
MAX_OUTPUT_PIXELS = 64_000_000  # 8000x8000: ~200 MB as RGB in memory, a ~100 MB PNG
OVERLAP = 32  # pixels neighbouring tiles share (see backends.upscale.blend_weights)


class UpscaleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: AssetId = Field(
        ..., description="Input image asset", json_schema_extra=ui("图片", "Image", canvas="image", cli_argument=True)
    )
    scale: float = Field(
        4.0,
        ge=1.0,
        le=4.0,
        description="Output size / input size, 1-4 (2, 3, 4 or e.g. 1.5)",
        json_schema_extra=ui("放大倍数", "Scale", help_zh="输出尺寸 / 输入尺寸，1–4", widget="slider", step=0.5),
    )
    model: str | None = Field(
        None,
        description=f"Upscaler; empty: {DEFAULT_MODEL} (photos). Anime and illustrations: realesrgan-x4plus-anime; "
        "fast: realesrgan-animevideov3-x2/x4; or a user .pth/.safetensors upscaler",
        json_schema_extra=ui(
            "超分模型",
            "Upscaler",
            help_zh=f"留空：{DEFAULT_MODEL}（照片）；动漫插画：realesrgan-x4plus-anime；快速：realesrgan-animevideov3",
            widget="model",
            model_kind="upscaler",
        ),
    )
    tile: int = Field(
        256,
        ge=64,
        le=1024,
        description="Tile side going through the model; smaller uses less memory",
        json_schema_extra=ui("分块大小", "Tile size", help_zh="越小越省内存", group="more"),
    )


class UpscaleResult(ImagesResult):
    tiles: int = Field(0, description="Model calls made (tiles over all passes)")


def check_output_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The output size, or an error naming params.scale when it is over MAX_OUTPUT_PIXELS."""
    from zhike.backends.upscale import output_size  # numpy + PIL only; the same rounding the backend uses

    w, h = output_size(width, height, scale)
    if w * h > MAX_OUTPUT_PIXELS:
        raise InvalidInput(
            f"{width}x{height} x{scale:g} would be {w}x{h} ({w * h / 1e6:.0f} MP); the output may have at most "
            f"{MAX_OUTPUT_PIXELS / 1e6:.0f} MP: lower the scale or upscale a crop",
            code="output_too_many_pixels",
            field="params.scale",
            limit=MAX_OUTPUT_PIXELS,
            ctx={"width": w, "height": h, "mp": round(MAX_OUTPUT_PIXELS / 1e6)},
        )
    return w, h


def resolve_upscaler(catalog: Any, name: str) -> Any:
    """The ModelSpec of an upscaler, or a field-named error (unknown name, not fetched, wrong kind)."""
    from zhike.models.embedded import BY_NAME

    try:
        spec = catalog.get(name, field="params.model")
    except InvalidInput as e:
        if name in BY_NAME:  # a known embedded model whose weights were never fetched
            raise InvalidInput(
                f"upscaler {name!r} is not installed; run `zhike models fetch-embedded`",
                field="params.model",
                code="model_not_installed",
                ctx={"name": name},
            ) from e
        raise
    if spec.kind != "upscaler":
        raise InvalidInput(
            f"model {name!r} is a {spec.kind}, not an upscaler; use e.g. {DEFAULT_MODEL}",
            field="params.model",
            code="model_wrong_kind",
            ctx={"name": name, "kind": spec.kind, "expected": "upscaler"},
        )
    return spec


def prepare_upscale(env: PrepareEnv, p: UpscaleParams) -> UpscaleParams:
    # fail at submission, not in the worker: the asset, the model and the output size are all known here
    row = env.assets.get(p.image, owner_id=env.owner_id, field="params.image")
    if row.width and row.height:
        check_output_size(row.width, row.height, p.scale)
    spec = resolve_upscaler(env.catalog, p.model or DEFAULT_MODEL)
    return p.model_copy(update={"model": spec.name})  # the default is fixed in the job row


def upscale_with(
    ctx: RunContext,
    spec: Any,
    image: Image.Image,
    *,
    scale: float,
    tile: int = 256,
    on_tile: Callable[[int, int], None] | None = None,
) -> tuple[Image.Image, float]:
    """Enlarge with a registered upscaler (cached by the model manager). Returns (image, time the load ended)."""
    from zhike.backends.upscale import upscale_tiled

    with ctx.models.use(spec) as model:
        t_load = time.perf_counter()
        out = upscale_tiled(model, image, scale=scale, tile=tile, overlap=OVERLAP, on_tile=on_tile)
    return out, t_load


@operation(
    "upscale",
    lane="cpu",
    version=1,
    params=UpscaleParams,
    result=UpscaleResult,
    prepare=prepare_upscale,
    title={"en": "Upscale", "zh": "图片超分"},
    tags=("image", "upscale"),
    studio=Studio(
        tool=True,
        order=3,
        help=(
            "用超分模型把图片放大 1–4 倍，细节更清晰。",
            "Enlarge 1–4x with a super-resolution model for sharper detail.",
        ),
    ),
)
def upscale(ctx: RunContext, p: UpscaleParams) -> UpscaleResult:
    """Enlarge an image 1-4x with a super-resolution model, tile by tile (alpha is kept)."""
    t0 = time.perf_counter()
    spec = resolve_upscaler(ctx.models.catalog, p.model or DEFAULT_MODEL)
    image = ctx.load_image(p.image, field="params.image")
    check_output_size(image.width, image.height, p.scale)
    tiles = 0

    def on_tile(done: int, total: int) -> None:
        nonlocal tiles
        tiles = done
        ctx.progress(done, total)  # raises JobCancelled between tiles

    ctx.progress(0, 1)
    out, t_load = upscale_with(ctx, spec, image, scale=p.scale, tile=p.tile, on_tile=on_tile)
    t_run = time.perf_counter()
    aid = ctx.save_image(
        out,
        params=p.model_dump(mode="json"),
        seed=None,
        model=spec.name,
        model_hash=spec.short_hash,
        parent_id=p.image,
        tags=["upscale"],
    )
    return UpscaleResult(
        images=[ImageOut(asset_id=aid, seed=None, width=out.width, height=out.height)],
        model=spec.name,
        tiles=tiles,
        timings={
            "load": round(t_load - t0, 4),
            "upscale": round(t_run - t_load, 4),
            "save": round(time.perf_counter() - t_run, 4),
        },
    )
