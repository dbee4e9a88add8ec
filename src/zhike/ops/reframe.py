"""reframe (智能改尺寸 / 横转竖): a video cut to another shape (16:9 -> 9:16, 9:16 -> 16:9, 1:1, 4:5) by a crop
window that follows the subject, with the sound kept.

Two passes over the clip. The first looks at small frames (long side 256 px) and finds the subject's centre: the
person (MediaPipe selfie segmentation, every frame, ~10 ms), the salient subject (ISNet on a frame every
`sample_s` seconds: seconds a frame on a CPU), or motion (what changed since the last frame: no model, fast), or
`auto` (the person where MediaPipe sees one, motion elsewhere). The centres become a lag-free smooth path
(zhike/video/track.py) and crop windows clamped inside the frame. The second pass cuts each full-size frame,
draws the visible AI mark, and ffmpeg scales and encodes it (H.264 + AAC).
"""

from __future__ import annotations

import time
from contextlib import ExitStack, closing
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import operation
from zhike.core.types import MediaAssetId, MediaResult, note
from zhike.core.ui import Studio, ui
from zhike.ops.placement import NO_MATTING, pick_matting
from zhike.ops.video_common import Clip, Progress, check_video_asset, open_clip, video_mark

if TYPE_CHECKING:
    import numpy as np

Aspect = Literal["9:16", "16:9", "1:1", "4:5"]
Follow = Literal["auto", "person", "subject", "motion", "centre"]
PLATFORM = {"9:16": (1080, 1920), "16:9": (1920, 1080), "1:1": (1080, 1080), "4:5": (1080, 1350)}
ANALYSIS_SIDE = 256  # the subject's centre needs no detail: small frames keep the first pass cheap
TRACK_POINTS_PER_S = 10  # data.track: the crop's corner this often (every frame for short clips)


class ReframeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video: MediaAssetId = Field(
        ..., description="Video asset to reframe", json_schema_extra=ui("视频", "Video", cli_argument=True)
    )
    aspect: Aspect = Field(
        "9:16",
        description="Shape of the new video (width:height)",
        json_schema_extra=ui(
            "画面比例",
            "Aspect ratio",
            choices={
                "9:16": ("9:16 竖屏", "9:16 portrait"),
                "16:9": ("16:9 横屏", "16:9 landscape"),
                "1:1": ("1:1 方形", "1:1 square"),
                "4:5": ("4:5", "4:5"),
            },
        ),
    )
    follow: Follow = Field(
        "auto",
        description="What the crop follows: auto (a person if seen, else motion), person, subject (ISNet, slow), "
        "motion (no model), centre (a fixed centre crop)",
        json_schema_extra=ui(
            "跟随",
            "Follow",
            help_zh="裁切框跟随的对象：自动（有人跟人，否则跟运动）、人物、主体（较慢）、运动、居中不动",
            choices={
                "auto": ("自动", "Auto"),
                "person": ("人物", "Person"),
                "subject": ("主体", "Subject"),
                "motion": ("运动", "Motion"),
                "centre": ("居中", "Centre"),
            },
        ),
    )
    size: Literal["auto", "source", "1080"] = Field(
        "auto",
        description="Output size: 1080 = 1080x1920 / 1920x1080 / 1080x1080; source = the crop's own pixels; "
        "auto = 1080 when that enlarges the crop at most 2x, else source",
        json_schema_extra=ui(
            "输出尺寸",
            "Output size",
            choices={"auto": ("自动", "Auto"), "source": ("原始像素", "Crop's pixels"), "1080": ("1080P", "1080p")},
        ),
    )
    smoothness: float = Field(
        1.0,
        ge=0.1,
        le=5.0,
        description="Seconds the crop's path is averaged over: longer is calmer, shorter follows faster moves",
        json_schema_extra=ui("平滑（秒）", "Smoothness (s)", widget="slider", group="more"),
    )
    sample_s: float = Field(
        1.0,
        ge=0.1,
        le=10.0,
        description="subject: seconds between the frames ISNet looks at",
        json_schema_extra=ui("主体检测间隔（秒）", "Subject sampling (s)", group="more"),
    )
    model: str | None = Field(
        None,
        description="subject: matting model (kind matting); empty: the best installed (ISNet)",
        json_schema_extra=ui("抠图模型", "Matting model", widget="model", model_kind="matting", group="more"),
    )


def prepare_reframe(env: PrepareEnv, p: ReframeParams) -> ReframeParams:
    check_video_asset(env, p.video, "params.video")
    if p.follow != "subject":
        return p.model_copy(update={"model": None})
    name = pick_matting(env.catalog, p.model, field="params.model")
    if name is None:
        raise InvalidInput(NO_MATTING, code="no_matting_model", field="params.model")
    return p.model_copy(update={"model": name})


def output_size(p: ReframeParams, crop: tuple[int, int]) -> tuple[int, int]:
    big = PLATFORM[p.aspect]
    if p.size == "1080" or (p.size == "auto" and big[0] <= 2 * crop[0]):
        return big
    return crop


def _centres(ctx: RunContext, p: ReframeParams, clip: Clip, small: tuple[int, int]) -> list[tuple[float, float] | None]:
    """The subject's centre in each frame in full-frame pixels (None where nothing was found), from small frames."""
    import numpy as np

    from zhike.video.frames import read_frames
    from zhike.video.track import mask_centre, motion_mask

    scale = clip.width / small[0], clip.height / small[1]
    step = max(1, round(p.sample_s * clip.fps))
    out: list[tuple[float, float] | None] = []
    prev: np.ndarray | None = None
    progress = Progress(ctx, 2 * clip.frames)
    with ExitStack() as stack:
        seg = None
        if p.follow in ("auto", "person"):
            from zhike.backends.matting import SELFIE

            seg = stack.enter_context(ctx.models.use(SELFIE))
        frames = stack.enter_context(closing(read_frames(clip.path, fps=clip.fps, size=small)))
        for i, rgb in enumerate(frames):
            found = None
            if seg is not None:
                found = mask_centre(np.clip(seg.mask(np.ascontiguousarray(rgb)), 0, 1))
            if found is None and p.follow in ("auto", "motion") and prev is not None:
                found = mask_centre(motion_mask(prev, rgb))
            if p.follow == "subject" and (i % step == 0 or i == clip.frames - 1):  # the last too: no held end
                found = _subject_centre(ctx, p, rgb)
            prev = rgb
            out.append(None if found is None else (found[0] * scale[0], found[1] * scale[1]))
            progress(i + 1)
    return out


def _subject_centre(ctx: RunContext, p: ReframeParams, rgb: np.ndarray) -> tuple[float, float] | None:
    import numpy as np
    from PIL import Image

    from zhike.backends.matting import alpha_matte
    from zhike.video.track import mask_centre

    alpha = alpha_matte(ctx.models, Image.fromarray(rgb), mode="product", model=p.model, refine=False)
    return mask_centre(np.asarray(alpha, np.float32) / 255)


@operation(
    "reframe",
    lane="cpu",
    version=1,
    params=ReframeParams,
    result=MediaResult,
    prepare=prepare_reframe,
    title={"en": "Reframe", "zh": "横竖屏转换"},
    tags=("video", "edit"),
    studio=Studio(
        tool=True,
        help=(
            "把横屏视频改成竖屏（或竖屏改横屏、方形），裁切框自动跟随人物或主体，保留声音。",
            "Turn a landscape video portrait (or portrait landscape, or square): the crop follows the person or "
            "subject; the sound is kept.",
        ),
    ),
)
def reframe(ctx: RunContext, p: ReframeParams) -> MediaResult:
    """Find the subject per frame, smooth its path, cut and encode the crop."""
    from zhike.video.frames import FrameWriter, even, read_frames
    from zhike.video.track import crop_origins, crop_size, parse_aspect, smooth_path

    t0 = time.perf_counter()
    clip = open_clip(ctx, p.video, "params.video")
    s = ANALYSIS_SIDE / max(clip.width, clip.height)
    small = (even(clip.width * s), even(clip.height * s)) if s < 1 else (clip.width, clip.height)
    ctx.progress(0, 2 * clip.frames)
    centres = [None] * clip.frames if p.follow == "centre" else _centres(ctx, p, clip, small)
    t_track = time.perf_counter()
    found = sum(c is not None for c in centres)
    centre = (clip.width / 2, clip.height / 2)
    crop = crop_size(clip.width, clip.height, parse_aspect(p.aspect))
    bounds = ((crop[0] / 2, clip.width - crop[0] / 2), (crop[1] / 2, clip.height - crop[1] / 2))
    path = smooth_path(centres, window=max(1, round(p.smoothness * clip.fps)), default=centre, bounds=bounds)
    origins = crop_origins(path, (clip.width, clip.height), crop)
    size = output_size(p, crop)
    out = ctx.work_dir / f"reframe-{p.aspect.replace(':', 'x')}.mp4"
    mark, marked_args = video_mark(ctx, *crop)
    progress = Progress(ctx, 2 * clip.frames)
    n = 0
    frames = closing(read_frames(clip.path, fps=clip.fps, size=(clip.width, clip.height)))
    with (
        frames as source,
        FrameWriter(
            out,
            size=crop,
            fps=clip.fps,
            audio_from=clip.path if clip.has_audio else None,
            extra=marked_args,
            vf=None if size == crop else f"scale={size[0]}:{size[1]}:flags=lanczos",
        ) as writer,
    ):
        for i, rgb in enumerate(source):
            x0, y0 = (int(v) for v in origins[min(i, len(origins) - 1)])
            frame = rgb[y0 : y0 + crop[1], x0 : x0 + crop[0]]
            writer.write(mark.draw(frame) if mark is not None else frame)
            n = i + 1
            progress(clip.frames + n)
    t_render = time.perf_counter()
    ctx.progress(2 * clip.frames, 2 * clip.frames)
    aid = ctx.save_media(out, mime="video/mp4", params=p.model_dump(mode="json"), model=p.model, parent_id=p.video)
    every = max(1, round(clip.fps / TRACK_POINTS_PER_S)) if len(origins) > 600 else 1
    result = MediaResult(
        asset_id=aid,
        kind="video",
        duration_s=round(n / clip.fps, 3),
        model=p.model or ("mediapipe-selfie" if p.follow in ("auto", "person") else None),
        data={
            "width": size[0],
            "height": size[1],
            "fps": round(clip.fps, 3),
            "frames": n,
            "crop": list(crop),
            "source": [clip.width, clip.height],
            "follow": p.follow,
            "found_share": round(found / max(len(centres), 1), 4),
            "audio": clip.has_audio,
            # [frame, x0, y0] of the crop window in source pixels
            "track": [[i, int(origins[i][0]), int(origins[i][1])] for i in range(0, len(origins), every)],
        },
        timings={"track": t_track - t0, "render": t_render - t_track, "save": time.perf_counter() - t_render},
    )
    if p.follow != "centre" and found == 0:
        result.warn(note("reframe_no_subject", "no subject was found to follow: the crop stays in the centre"))
    return result
