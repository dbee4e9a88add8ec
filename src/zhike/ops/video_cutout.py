"""video_cutout (视频抠像): the subject of a video on a new background (a colour, an image) or on none (WebM with
alpha), frame by frame, with the sound kept.

Mattes per mode: `person` MediaPipe selfie segmentation on every frame (~15 ms a frame on a CPU); `product` ISNet
(the cutout op's net) on key frames every `keyframe_s` seconds, each frame blending its two neighbouring key
mattes (ISNet takes seconds a frame on a CPU; 0 = every frame); `chroma` a green/blue-screen key in numpy
(zhike/video/matte.py), no model. Every matte is smoothed over time (MatteSmoother) so edges do not flicker.
Frames stream through ffmpeg pipes one at a time; the visible AI mark is drawn in the same encode.
"""

from __future__ import annotations

import time
from contextlib import closing
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import operation
from zhike.core.types import AssetId, MediaAssetId, MediaResult, note
from zhike.core.ui import Studio, ui
from zhike.ops.cutout import _HEX, parse_colour
from zhike.ops.placement import NO_MATTING, pick_matting
from zhike.ops.video_common import Clip, Progress, check_video_asset, open_clip, video_mark

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy as np

Mode = Literal["person", "product", "chroma"]


class VideoCutoutParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video: MediaAssetId = Field(
        ...,
        description="Video asset to cut the subject out of",
        json_schema_extra=ui("视频", "Video", cli_argument=True),
    )
    mode: Mode = Field(
        "person",
        description="person: people (MediaPipe, fast); product: one object (ISNet on key frames, slow); "
        "chroma: a green or blue screen (no model)",
        json_schema_extra=ui(
            "模式",
            "Mode",
            help_zh="人像：人物（快）；商品：单个物体（较慢）；绿幕：绿色或蓝色背景布抠像（不用模型）",
            choices={"person": ("人像", "Person"), "product": ("商品", "Product"), "chroma": ("绿幕", "Green screen")},
        ),
    )
    background: str | None = Field(
        None,
        description="'#rrggbb' for a colour background (MP4); 'transparent' or empty: WebM with alpha",
        json_schema_extra=ui(
            "背景色",
            "Background",
            help_zh="#rrggbb 纯色背景（MP4）；留空或 transparent：透明背景（WebM）",
            widget="colour",
        ),
    )
    background_image: AssetId | None = Field(
        None,
        description="Image to place the subject on (cover-cropped; MP4)",
        json_schema_extra=ui("背景图", "Background image", help_zh="把主体放到这张图上（铺满裁切，输出 MP4）"),
    )
    key_colour: str = Field(
        "auto",
        description="chroma: the screen colour '#rrggbb'; auto: read from the first frame's border",
        json_schema_extra=ui("幕布颜色", "Screen colour", help_zh="绿幕模式：幕布颜色；auto：从首帧边缘自动识别"),
    )
    tolerance: float = Field(
        0.5,
        ge=0.05,
        le=0.95,
        description="chroma: how far from the screen colour still counts as screen (higher keys more)",
        json_schema_extra=ui("容差", "Tolerance", help_zh="绿幕模式：越大抠掉越多", widget="slider", group="more"),
    )
    softness: float = Field(
        0.3,
        ge=0.01,
        le=0.8,
        description="chroma: width of the soft edge between screen and subject",
        json_schema_extra=ui("边缘柔和度", "Edge softness", widget="slider", group="more"),
    )
    despill: bool = Field(
        True,
        description="chroma: remove the screen's colour cast from the subject's edges",
        json_schema_extra=ui("去除溢色", "Remove spill", help_zh="绿幕模式：去掉人物边缘的绿色反光", group="more"),
    )
    smoothing: float = Field(
        0.6,
        ge=0.0,
        le=0.95,
        description="Temporal smoothing of the matte (0 = none): steadier edges, no flicker",
        json_schema_extra=ui(
            "防闪烁", "Anti-flicker", help_zh="平滑前后帧的蒙版，边缘不闪烁（0：关闭）", widget="slider"
        ),
    )
    keyframe_s: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        description="product: seconds between the frames ISNet mattes (others blend their neighbours); 0: every frame",
        json_schema_extra=ui("关键帧间隔（秒）", "Key frame interval (s)", group="more"),
    )
    model: str | None = Field(
        None,
        description="product: matting model (kind matting); empty: the best installed (ISNet)",
        json_schema_extra=ui("抠图模型", "Matting model", widget="model", model_kind="matting", group="more"),
    )

    @field_validator("background")
    @classmethod
    def _colour(cls, v: str | None) -> str | None:
        if v is None or v.strip().lower() in ("", "transparent", "none"):
            return None
        if not _HEX.match(v.strip()):
            raise ValueError("use a hex colour like '#ffffff' or 'transparent'")
        return "#{:02x}{:02x}{:02x}".format(*parse_colour(v.strip()))

    @field_validator("key_colour")
    @classmethod
    def _key(cls, v: str) -> str:
        if v.strip().lower() == "auto":
            return "auto"
        if not _HEX.match(v.strip()):
            raise ValueError("use a hex colour like '#00ff00' or 'auto'")
        return "#{:02x}{:02x}{:02x}".format(*parse_colour(v.strip()))


def prepare_video_cutout(env: PrepareEnv, p: VideoCutoutParams) -> VideoCutoutParams:
    check_video_asset(env, p.video, "params.video")
    if p.background_image is not None:
        if p.background is not None:
            raise InvalidInput(
                "give either background (a colour) or background_image, not both",
                code="background_conflict",
                field="params.background_image",
            )
        env.assets.get(p.background_image, owner_id=env.owner_id, field="params.background_image")
    if p.mode != "product":
        return p.model_copy(update={"model": None})
    name = pick_matting(env.catalog, p.model, field="params.model")  # pinned: the job row alone re-makes it
    if name is None:
        raise InvalidInput(NO_MATTING, code="no_matting_model", field="params.model")
    return p.model_copy(update={"model": name})


def _chroma_mattes(p: VideoCutoutParams, frames: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    from zhike.video.matte import MIN_KEY_CHROMA, border_key, chroma_key, key_strength

    key: tuple[int, int, int] | None = None if p.key_colour == "auto" else parse_colour(p.key_colour)
    for rgb in frames:
        if key is None:
            key = border_key(rgb)
        if key_strength(key) < MIN_KEY_CHROMA:
            raise InvalidInput(
                "params.key_colour: the screen colour {} is too grey to key; give the screen's colour".format(
                    "#{:02x}{:02x}{:02x}".format(*key)
                ),
                code="chroma_key_unclear",
                field="params.key_colour",
                ctx={"colour": "#{:02x}{:02x}{:02x}".format(*key)},
            )
        yield chroma_key(rgb, key, tolerance=p.tolerance, softness=p.softness, spill=p.despill)


def _person_mattes(ctx: RunContext, frames: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    import numpy as np

    from zhike.backends.matting import SELFIE

    with ctx.models.use(SELFIE) as seg:
        for rgb in frames:
            yield rgb, np.clip(seg.mask(np.ascontiguousarray(rgb)), 0.0, 1.0)


def _key_matte(ctx: RunContext, p: VideoCutoutParams, rgb: np.ndarray, index: int) -> np.ndarray:
    """ISNet's matte of frame `index`, kept in the work folder (uint8) so a retried job does not redo it."""
    import numpy as np
    from PIL import Image

    from zhike.backends.matting import alpha_matte

    path = ctx.work_dir / f"key-{p.model}-{index:06d}.npy"
    if path.exists():
        return np.load(path).astype(np.float32) / 255
    alpha = np.asarray(alpha_matte(ctx.models, Image.fromarray(rgb), mode="product", model=p.model))
    np.save(path, alpha)
    return alpha.astype(np.float32) / 255


def _product_mattes(
    ctx: RunContext, p: VideoCutoutParams, frames: Iterator[np.ndarray], fps: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each frame with a matte blended between the key frames before and after it (frames are held back until the
    next key frame is matted: at most `keyframe_s` seconds of frames in memory)."""
    step = max(1, round(p.keyframe_s * fps))
    held: list[np.ndarray] = []
    prev: tuple[int, np.ndarray] | None = None
    index = -1
    for index, rgb in enumerate(frames):
        if index % step:
            held.append(rgb)
            continue
        key = (index, _key_matte(ctx, p, rgb, index))
        yield from _blend(held, prev, key)
        held, prev = [], key
        yield rgb, key[1]
    if held:  # frames after the last key frame: matte the last frame too, blend towards it
        last = (index, _key_matte(ctx, p, held[-1], index))
        yield from _blend(held[:-1], prev, last)
        yield held[-1], last[1]


def _blend(
    held: list[np.ndarray], a: tuple[int, np.ndarray] | None, b: tuple[int, np.ndarray]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    start = b[0] - len(held)
    for i, rgb in enumerate(held):
        if a is None:
            yield rgb, b[1]
            continue
        t = (start + i - a[0]) / (b[0] - a[0])
        yield rgb, (1 - t) * a[1] + t * b[1]


def _background(ctx: RunContext, p: VideoCutoutParams, clip: Clip) -> np.ndarray | tuple[int, int, int] | None:
    if p.background is not None:
        return parse_colour(p.background)
    if p.background_image is None:
        return None
    import numpy as np
    from PIL import ImageOps

    image = ctx.load_image(p.background_image, field="params.background_image").convert("RGB")
    return np.asarray(ImageOps.fit(image, (clip.width, clip.height)))


@operation(
    "video_cutout",
    lane="cpu",
    version=1,
    params=VideoCutoutParams,
    result=MediaResult,
    prepare=prepare_video_cutout,
    title={"en": "Video cutout", "zh": "视频抠像"},
    tags=("video", "edit"),
    studio=Studio(
        tool=True,
        help=(
            "逐帧抠出视频里的人物、商品或绿幕前的主体，换成纯色、图片背景或透明背景（WebM），保留声音。",
            "Cut the person, product or green-screen subject out of a video: a colour, an image or a transparent "
            "background (WebM); the sound is kept.",
        ),
    ),
)
def video_cutout(ctx: RunContext, p: VideoCutoutParams) -> MediaResult:
    """Matte each frame, smooth the mattes over time, composite onto the background, encode with the sound."""
    from zhike.video.frames import FrameWriter, read_frames
    from zhike.video.matte import MatteSmoother, composite

    t0 = time.perf_counter()
    clip = open_clip(ctx, p.video, "params.video")
    background = _background(ctx, p, clip)
    transparent = background is None
    out = ctx.work_dir / ("cutout.webm" if transparent else "cutout.mp4")
    mark, marked_args = video_mark(ctx, clip.width, clip.height)
    # closed explicitly: a cancel or a refusal mid-clip stops the decoding ffmpeg at once, not at garbage collection
    frames = closing(read_frames(clip.path, fps=clip.fps, size=(clip.width, clip.height)))
    mattes: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]] = {
        "chroma": lambda: _chroma_mattes(p, frames.thing),
        "person": lambda: _person_mattes(ctx, frames.thing),
        "product": lambda: _product_mattes(ctx, p, frames.thing, clip.fps),
    }[p.mode]
    smooth = MatteSmoother(p.smoothing)
    progress = Progress(ctx, clip.frames)
    ctx.progress(0, clip.frames)
    coverage, n = 0.0, 0
    with (
        frames,
        FrameWriter(
            out,
            size=(clip.width, clip.height),
            fps=clip.fps,
            pix_fmt="rgba" if transparent else "rgb24",
            audio_from=clip.path if clip.has_audio else None,
            extra=marked_args,
        ) as writer,
    ):
        for rgb, alpha in mattes():
            alpha = smooth(alpha)
            frame = composite(rgb, alpha, None if transparent else background)
            writer.write(mark.draw(frame) if mark is not None else frame)
            coverage += float(alpha.mean())
            n += 1
            progress(n)
    t_render = time.perf_counter()
    ctx.progress(clip.frames, clip.frames)
    mime = "video/webm" if transparent else "video/mp4"
    aid = ctx.save_media(out, mime=mime, params=p.model_dump(mode="json"), model=p.model, parent_id=p.video)
    result = MediaResult(
        asset_id=aid,
        kind="video",
        duration_s=round(n / clip.fps, 3),
        model=p.model or ("mediapipe-selfie" if p.mode == "person" else None),
        data={
            "width": clip.width,
            "height": clip.height,
            "fps": round(clip.fps, 3),
            "frames": n,
            "mode": p.mode,
            "transparent": transparent,
            "audio": clip.has_audio,
            "coverage": round(coverage / max(n, 1), 4),
            "seconds_per_frame": round((t_render - t0) / max(n, 1), 4),
        },
        timings={"render": t_render - t0, "save": time.perf_counter() - t_render},
    )
    if coverage / max(n, 1) < 0.002:
        result.warn(note("cutout_empty", "no subject was found: the cut-out is empty; try another mode or model"))
    return result
