"""animate (图生视频): a still image becomes a short clip (MP4, animated GIF or WebP).

Default, on any CPU and with no model: 2.5D parallax (zhike/video/parallax.py). The subject's matte (the cutout's
ISNet, through the model manager) lifts it onto its own layer; the background behind it is filled (OpenCV Telea, as
the erase op does without a model); the two layers move on a camera path, the subject more than the scene.
With `model` set to an image-to-video model the user added (Stable Video Diffusion, or an AnimateDiff motion adapter
over an SD 1.5 checkpoint; backends/video_diffusion.py), that model makes the frames instead.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import operation
from zhike.core.types import AssetId, MediaResult
from zhike.core.ui import Studio, ui
from zhike.ops.placement import NO_MATTING, matte, pick_matting
from zhike.video.parallax import PRESETS, Preset, frame_size, frames

if TYPE_CHECKING:
    from PIL import Image

Format = Literal["mp4", "gif", "webp"]
MIMES: dict[str, str] = {"mp4": "video/mp4", "gif": "image/gif", "webp": "image/webp"}
FILL_SIDE = 512  # the background is filled at this long side and scaled up: Telea's time grows with the hole's area
ANIMATED_MAX_SIDE = 720  # GIF/WebP hold every frame whole: larger ones are tens of MB
# Recent mattes by (image asset, size, matting model): the net takes seconds, a matte of 1280 px ~1.6 MB.
_MATTES: OrderedDict[tuple[str, tuple[int, int], str | None], Any] = OrderedDict()
_MATTES_KEPT = 4
_MATTES_LOCK = threading.Lock()


class AnimateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: AssetId = Field(
        ...,
        description="The still to animate",
        json_schema_extra=ui("图片", "Image", canvas="image", cli_argument=True),
    )
    preset: Preset = Field(
        "push_in",
        description="Camera path: push_in (zoom towards the subject), pan_left, pan_right, sway (an orbit-like arc)",
        json_schema_extra=ui(
            "运镜",
            "Camera move",
            choices={
                "push_in": ("推近", "Push in"),
                "pan_left": ("左移", "Pan left"),
                "pan_right": ("右移", "Pan right"),
                "sway": ("环绕摇摆", "Sway"),
            },
        ),
    )
    duration: float = Field(
        4.0, ge=2.0, le=6.0, description="Length in seconds (2-6)", json_schema_extra=ui("时长（秒）", "Duration (s)")
    )
    fps: Literal[24, 30] = Field(24, description="Frames per second", json_schema_extra=ui("帧率", "Frame rate"))
    format: Format = Field(
        "mp4",
        description="mp4 (H.264), gif or webp (animated images, long side at most 720)",
        json_schema_extra=ui(
            "格式",
            "Format",
            choices={
                "mp4": ("MP4 视频", "MP4 video"),
                "gif": ("GIF 动图", "Animated GIF"),
                "webp": ("WebP 动图", "Animated WebP"),
            },
        ),
    )
    strength: float = Field(
        1.0,
        ge=0.2,
        le=2.0,
        description="How far the camera moves (1 = the preset's own)",
        json_schema_extra=ui(
            "运动幅度", "Motion amount", help_zh="镜头移动的幅度，1 为预设值", widget="slider", step=0.1
        ),
    )
    max_side: int = Field(
        1280,
        ge=64,
        le=1920,
        description="Long side of the clip at most this many pixels (never enlarged)",
        json_schema_extra=ui("最长边", "Max long side", group="more"),
    )
    model: str | None = Field(
        None,
        description="Image-to-video model (kind video: Stable Video Diffusion or an AnimateDiff motion adapter); "
        "empty: 2.5D parallax, no model needed",
        json_schema_extra=ui(
            "视频模型",
            "Video model",
            help_zh="留空：2.5D 视差动画，无需模型；可选已添加的 SVD 或 AnimateDiff 模型",
            widget="model",
            model_kind="video",
            group="more",
        ),
    )
    base_model: str | None = Field(
        None,
        description="SD 1.5 checkpoint an AnimateDiff motion adapter animates; empty: the default one",
        json_schema_extra=ui("基础模型", "Base model", widget="model", model_kind="checkpoint", group="more"),
    )
    prompt: str = Field(
        "",
        max_length=1000,
        description="What moves (AnimateDiff only)",
        json_schema_extra=ui("动作描述", "Motion prompt", help_zh="画面里什么在动（仅 AnimateDiff）", group="more"),
    )
    frames: int | None = Field(
        None,
        ge=2,
        le=64,
        description="Frames a video model makes (empty: its own length, SVD 14/25, AnimateDiff 16), played over "
        "`duration`",
        json_schema_extra=ui("生成帧数", "Frames", help_zh="视频模型生成的帧数，留空用模型默认", group="more"),
    )
    steps: int = Field(
        25,
        ge=1,
        le=100,
        description="Denoising steps (video models)",
        json_schema_extra=ui("步数", "Steps", group="more"),
    )
    seed: int = Field(0, ge=0, description="Seed (video models)", json_schema_extra=ui("种子", "Seed", group="more"))
    matting_model: str | None = Field(
        None,
        description="Matting model for the parallax foreground (kind matting); empty: the best installed",
        json_schema_extra=ui("抠图模型", "Matting model", widget="model", model_kind="matting", group="more"),
    )


def prepare_animate(env: PrepareEnv, p: AnimateParams) -> AnimateParams:
    env.assets.get(p.image, owner_id=env.owner_id, field="params.image")
    if p.model is None:
        name = pick_matting(env.catalog, p.matting_model, field="params.matting_model")
        if name is None:
            raise InvalidInput(NO_MATTING, code="no_matting_model", field="params.matting_model")
        return p.model_copy(update={"matting_model": name})  # pinned: the job row alone re-makes the clip
    spec = env.catalog.get(p.model, field="params.model")
    if spec.kind != "video":
        raise InvalidInput(
            f"{p.model!r} is a {spec.kind} model, not an image-to-video model (Stable Video Diffusion, AnimateDiff)",
            field="params.model",
            code="model_wrong_kind",
            ctx={"name": p.model, "kind": spec.kind, "expected": "video"},
        )
    if spec.family != "animatediff":
        return p
    base = (
        env.catalog.get(p.base_model, field="params.base_model")
        if p.base_model
        else env.catalog.default_checkpoint(field="params.base_model")
    )
    if (base.kind, base.family) != ("checkpoint", "sd15"):
        raise InvalidInput(
            f"AnimateDiff animates SD 1.5 checkpoints; {base.name!r} is a {base.family} {base.kind}",
            field="params.base_model",
            code="model_wrong_kind",
            ctx={"name": base.name, "kind": f"{base.family} {base.kind}", "expected": "sd15 checkpoint"},
        )
    return p.model_copy(update={"base_model": base.name})


def _background(image: Image.Image, alpha: Any) -> Image.Image:
    """The image with the subject (grown by ~3 % to take its rim) filled from around it, at FILL_SIDE, scaled up."""
    import numpy as np
    from PIL import Image as PILImage

    from zhike.backends.classical import telea_fill
    from zhike.backends.opencv import dilate_square

    hole = dilate_square(alpha >= 16, max(2, round(0.03 * max(image.size))))
    small = frame_size(*image.size, FILL_SIDE)
    mask_small = PILImage.fromarray((hole * 255).astype(np.uint8)).resize(small, PILImage.Resampling.BILINEAR)
    filled = telea_fill(image.resize(small, PILImage.Resampling.LANCZOS), mask_small, radius=5)
    filled = filled.resize(image.size, PILImage.Resampling.BICUBIC)
    return PILImage.composite(filled, image.convert("RGB"), PILImage.fromarray((hole * 255).astype(np.uint8)))


def _encode(folder: Path, rate: str, fmt: Format, out: Path, *, marked: bool, ctx: RunContext, total_s: float) -> None:
    """The numbered PNG frames in `folder` at `rate` frames a second (may be 'n/d') -> `out`."""
    from zhike.media import run_ffmpeg
    from zhike.provenance.media import MARKED_ARGS

    args: list[str | Path] = ["-framerate", rate, "-i", folder / "f%05d.png"]
    if fmt == "mp4":
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
        args += MARKED_ARGS if marked else ["-movflags", "+faststart"]
    elif fmt == "gif":  # one palette for the clip, from the frames' differences: steadier than per-frame palettes
        args += ["-vf", "split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer", "-loop", "0"]
    else:
        args += ["-c:v", "libwebp_anim", "-lossless", "0", "-quality", "80", "-loop", "0"]
    run_ffmpeg([*args, out], total_s=total_s, progress=lambda s: ctx.progress(90 + int(10 * s / total_s), 100))


def _mark(ctx: RunContext, size: tuple[int, int], marked: bool) -> Image.Image | None:
    """The visible AI mark as a frame-sized overlay, drawn into every frame (exports then only remux)."""
    from zhike.provenance.labels import LabelConfig
    from zhike.provenance.media import mark_overlay

    return mark_overlay(*size, LabelConfig.from_settings(ctx.settings)) if marked else None


def _parallax_frames(ctx: RunContext, p: AnimateParams, image: Image.Image, folder: Path, marked: bool) -> dict:
    from PIL import Image as PILImage

    cap = p.max_side if p.format == "mp4" else min(p.max_side, ANIMATED_MAX_SIDE)
    size = frame_size(*image.size, cap)
    rgb = image.convert("RGB").resize(size, PILImage.Resampling.LANCZOS) if size != image.size else image.convert("RGB")
    t0 = time.perf_counter()
    key = (p.image, size, p.matting_model)  # users try several camera moves on one photo: one matte serves them
    with _MATTES_LOCK:
        alpha = _MATTES.get(key)
    if alpha is None:
        alpha = matte(ctx.models, image.resize(size, PILImage.Resampling.LANCZOS), "auto", model=p.matting_model)
        with _MATTES_LOCK:
            _MATTES[key] = alpha
            while len(_MATTES) > _MATTES_KEPT:
                _MATTES.popitem(last=False)
    t_matte = time.perf_counter()
    background = _background(rgb, alpha)
    t_fill = time.perf_counter()
    overlay = _mark(ctx, size, marked)
    count = round(p.duration * p.fps)
    boxes = []
    for i, frame in enumerate(
        frames(
            rgb,
            PILImage.fromarray(alpha),
            background,
            preset=p.preset,
            count=count,
            strength=p.strength,
            overlay=overlay,
        )
    ):
        frame.image.save(folder / f"f{i:05d}.png", compress_level=1)
        boxes.append(list(frame.box) if frame.box else None)
        ctx.progress(int(90 * (i + 1) / count), 100)
    return {
        "width": size[0],
        "height": size[1],
        "frames": count,
        "subject_boxes": boxes,
        "timings": {"matte": t_matte - t0, "fill": t_fill - t_matte, "frames": time.perf_counter() - t_fill},
    }


def _model_frames(ctx: RunContext, p: AnimateParams, image: Image.Image, folder: Path, marked: bool) -> dict:
    from PIL import Image as PILImage

    from zhike.backends.video_diffusion import animatediff_frames, svd_frames

    spec = ctx.models.catalog.get(p.model or "", field="params.model")
    size = frame_size(*image.size, min(p.max_side, 1024), multiple=64)  # latents: multiples of 8 at every level
    still = image.convert("RGB").resize(size, PILImage.Resampling.LANCZOS)
    t0 = time.perf_counter()

    def on_step(done: int, total: int) -> None:
        ctx.progress(int(90 * done / max(total, 1)), 100)

    with ctx.models.use(spec) as model:
        count = p.frames or model.native_frames
        if spec.family == "svd":
            made = svd_frames(model, still, frames=count, steps=p.steps, seed=p.seed, fps=p.fps, on_step=on_step)
        else:
            base_spec = ctx.models.catalog.get(p.base_model or "", field="params.base_model")
            with ctx.models.use(base_spec) as base:
                made = animatediff_frames(
                    model, base, still, prompt=p.prompt, frames=count, steps=p.steps, seed=p.seed, on_step=on_step
                )
    overlay = _mark(ctx, size, marked)
    for i, img in enumerate(made):
        frame = img.convert("RGBA").resize(size)
        if overlay is not None:
            frame.alpha_composite(overlay)
        frame.convert("RGB").save(folder / f"f{i:05d}.png", compress_level=1)
    return {
        "width": size[0],
        "height": size[1],
        "frames": len(made),
        "timings": {"generate": time.perf_counter() - t0},
    }


@operation(
    "animate",
    lane="cpu",
    lane_for=lambda p: "cpu" if p.model is None else "gpu",  # a video model queues with the other generations
    version=1,
    params=AnimateParams,
    result=MediaResult,
    prepare=prepare_animate,
    title={"en": "Animate image", "zh": "图生视频"},
    tags=("image", "video"),
    studio=Studio(
        tool=True,
        help=(
            "让静态图片动起来：主体与背景分层做视差运镜（推近、平移、环绕），输出 MP4、GIF 或 WebP；"
            "也可用已添加的 SVD / AnimateDiff 模型。",
            "Bring a still to life: subject and background move as layers on a camera path (push in, pan, sway); "
            "MP4, GIF or WebP. Stable Video Diffusion / AnimateDiff models you add can make the frames instead.",
        ),
        run=("生成视频", "Animate"),
    ),
)
def animate(ctx: RunContext, p: AnimateParams) -> MediaResult:
    """Parallax by default (the subject's layer moves over its filled background), or a video model's frames."""
    t0 = time.perf_counter()
    ctx.progress(0, 100)
    image = ctx.load_image(p.image, field="params.image")
    folder = ctx.work_dir / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("f*.png"):  # a retried job renders afresh: fewer frames must not mix with old ones
        old.unlink()
    marked = p.format == "mp4" and ctx.settings.label_video_mark
    if p.model is None:
        made = _parallax_frames(ctx, p, image, folder, marked)
        rate = str(p.fps)
    else:
        made = _model_frames(ctx, p, image, folder, marked)
        rate = f"{made['frames']}/{p.duration:g}"  # the model's frames spread over the asked duration
    t_frames = time.perf_counter()
    out = ctx.work_dir / f"animate.{p.format}"
    _encode(folder, rate, p.format, out, marked=marked, ctx=ctx, total_s=p.duration)
    used = p.model or p.matting_model  # parallax: the matting net is the only model that touched it
    asset_id = ctx.save_media(
        out, mime=MIMES[p.format], params=p.model_dump(mode="json"), model=used, parent_id=p.image
    )
    ctx.progress(100, 100)
    timings = {"frames_total": t_frames - t0, **made.pop("timings"), "encode": time.perf_counter() - t_frames}
    return MediaResult(
        asset_id=asset_id,
        kind="video" if p.format == "mp4" else "image",
        duration_s=p.duration,
        data={
            **made,
            "fps": p.fps if p.model is None else made["frames"] / p.duration,
            "format": p.format,
            "preset": p.preset if p.model is None else None,
            "method": "parallax" if p.model is None else p.model,
        },
        model=used,
        timings=timings,
    )


__all__ = ["PRESETS", "AnimateParams", "animate"]
