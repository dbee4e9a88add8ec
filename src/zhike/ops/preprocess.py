"""preprocess: a ControlNet control map (canny / soft edges / scribble / line art / pose) from an input image."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.registry import operation
from zhike.core.types import AssetId, ImageOut, ImagesResult

MAX_SIDE = 2048

Mode = Literal["canny", "softedge", "scribble", "lineart", "pose"]


class PreprocessParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: AssetId = Field(..., description="Input image asset / 输入图片")
    mode: Mode = Field(
        ...,
        description="canny: hard edges / 硬边缘; softedge: HED soft edges / 软边缘; scribble: thick strokes from a "
        "drawing or photo / 涂鸦; lineart: thin lines of a drawing / 线稿; pose: OpenPose skeleton / 姿态",
    )
    resolution: int | None = Field(
        None, ge=64, le=MAX_SIDE, description="Long side of the map; empty: the input's size, at most 2048 / 输出长边"
    )
    low_threshold: int = Field(100, ge=1, le=255, description="canny: weak-edge threshold / 低阈值")
    high_threshold: int = Field(200, ge=1, le=255, description="canny: strong-edge threshold / 高阈值")
    safe: bool = Field(False, description="softedge: quantise to few grey levels (softedge_safe) / 安全模式")
    detect_resolution: int = Field(
        1024, ge=128, le=MAX_SIDE, description="softedge/scribble-from-photo: long side HED runs at / 检测分辨率"
    )
    from_photo: bool = Field(False, description="scribble: derive strokes from a photo's edges / 从照片提取涂鸦")
    thickness: int | None = Field(
        None, ge=0, le=32, description="scribble/lineart: widen lines by this many pixels; empty: auto / 线条加粗"
    )
    min_visibility: float = Field(
        0.3, ge=0.0, le=1.0, description="pose: hide joints less visible than this (occluded) / 关键点可见度阈值"
    )

    @model_validator(mode="after")
    def _thresholds(self) -> PreprocessParams:
        if self.low_threshold > self.high_threshold:
            raise ValueError("low_threshold must not exceed high_threshold")
        return self


class PreprocessResult(ImagesResult):
    info: dict[str, Any] = Field(default_factory=dict, description="e.g. pose keypoints (pixels), detected polarity")


def prepare_preprocess(env: PrepareEnv, p: PreprocessParams) -> PreprocessParams:
    env.assets.get(p.image, owner_id=env.owner_id, field="params.image")  # fail at submission, not in the worker
    return p


def fit_long_side(image: Any, resolution: int | None) -> Any:
    """Resize to `resolution` on the long side (aspect kept); without one, only shrink to MAX_SIDE."""
    from PIL import Image

    long = max(image.size)
    target = resolution if resolution is not None else min(long, MAX_SIDE)
    if target == long:
        return image
    s = target / long
    size = (max(1, round(image.width * s)), max(1, round(image.height * s)))
    return image.resize(size, Image.Resampling.LANCZOS if s < 1 else Image.Resampling.BICUBIC)


@operation(
    "preprocess",
    version=1,
    params=PreprocessParams,
    result=PreprocessResult,
    prepare=prepare_preprocess,
    title={"en": "Control map", "zh": "控制图预处理"},
    tags=("image", "control"),
)
def preprocess(ctx: RunContext, p: PreprocessParams) -> PreprocessResult:
    """Make a ControlNet control map (edges, lines or pose) from an image."""
    from zhike.backends.preprocessors import run_preprocessor

    t0 = time.perf_counter()
    ctx.progress(0, 1)
    image = fit_long_side(ctx.load_image(p.image, field="params.image").convert("RGB"), p.resolution)
    options = p.model_dump(exclude={"image", "mode", "resolution"})
    out = run_preprocessor(ctx.models, p.mode, image, options)
    t_run = time.perf_counter()
    aid = ctx.save_image(
        out.image,
        params=p.model_dump(mode="json"),
        seed=None,
        model=None,
        parent_id=p.image,
        tags=["control-map", p.mode],
    )
    ctx.progress(1, 1)
    return PreprocessResult(
        images=[ImageOut(asset_id=aid, seed=None, width=out.image.width, height=out.image.height)],
        info=out.info,
        timings={"preprocess": round(t_run - t0, 4), "save": round(time.perf_counter() - t_run, 4)},
    )
