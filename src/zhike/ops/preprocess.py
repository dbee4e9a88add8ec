"""preprocess: a ControlNet control map (canny / soft edges / scribble / line art / pose) from an input image."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.registry import operation
from zhike.core.types import AssetId, ImageOut, ImagesResult
from zhike.core.ui import ui

MAX_SIDE = 2048

Mode = Literal["canny", "softedge", "scribble", "lineart", "pose"]


class PreprocessParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: AssetId = Field(
        ..., description="Input image asset", json_schema_extra=ui("图片", "Image", canvas="image", cli_argument=True)
    )
    mode: Mode = Field(
        ...,
        description="canny: hard edges; softedge: HED soft edges; scribble: thick strokes from a drawing or photo; "
        "lineart: thin lines of a drawing; pose: OpenPose skeleton",
        json_schema_extra=ui(
            "控制方式",
            "Control type",
            choices={
                "canny": ("边缘（Canny）", "Edges (Canny)"),
                "softedge": ("柔和边缘（HED）", "Soft edges (HED)"),
                "scribble": ("涂鸦", "Scribble"),
                "lineart": ("线稿", "Line art"),
                "pose": ("人体姿势", "Pose"),
            },
        ),
    )
    resolution: int | None = Field(
        None,
        ge=64,
        le=MAX_SIDE,
        description="Long side of the map; empty: the input's size, at most 2048",
        json_schema_extra=ui("输出长边", "Resolution", help_zh="控制图的长边；留空：原图大小，最多 2048"),
    )
    low_threshold: int = Field(
        100,
        ge=1,
        le=255,
        description="canny: weak-edge threshold",
        json_schema_extra=ui("低阈值", "Low threshold", widget="slider", group="more"),
    )
    high_threshold: int = Field(
        200,
        ge=1,
        le=255,
        description="canny: strong-edge threshold",
        json_schema_extra=ui("高阈值", "High threshold", widget="slider", group="more"),
    )
    safe: bool = Field(
        False,
        description="softedge: quantise to few grey levels (softedge_safe)",
        json_schema_extra=ui("安全模式", "Safe mode", help_zh="柔和边缘：量化成少数灰阶", group="more"),
    )
    detect_resolution: int = Field(
        1024,
        ge=128,
        le=MAX_SIDE,
        description="softedge/scribble-from-photo: long side HED runs at",
        json_schema_extra=ui("检测分辨率", "Detect resolution", group="more"),
    )
    from_photo: bool = Field(
        False,
        description="scribble: derive strokes from a photo's edges",
        json_schema_extra=ui("从照片提取", "From a photo", help_zh="涂鸦：从照片的边缘提取笔画"),
    )
    thickness: int | None = Field(
        None,
        ge=0,
        le=32,
        description="scribble/lineart: widen lines by this many pixels; empty: auto",
        json_schema_extra=ui("线条加粗", "Line thickness", group="more"),
    )
    min_visibility: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="pose: hide joints less visible than this (occluded)",
        json_schema_extra=ui("最低可见度", "Min visibility", widget="slider", step=0.05, group="more"),
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
    lane="quick",
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
    seconds = round(time.perf_counter() - t0, 4)
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
        timings={"preprocess": seconds},
    )
