"""What the per-frame video ops (video_cutout, reframe) share: the input clip checked against the limits, the frame
rate and size they stream at, and the visible AI mark drawn in the same encode (docs/VIDEO.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput, asset_wrong_kind
from zhike.media import MediaInfo, MediaLimits, check_input
from zhike.video.frames import display_size, even
from zhike.video.matte import Mark

# Per-frame work in Python costs ~10-50 ms a frame at 1080p on 2 cores: these keep a job within tens of minutes.
MAX_SECONDS = 600.0
MAX_PIXELS = 1920 * 1088
MAX_FPS = 60.0
DEFAULT_FPS = 25.0


@dataclass(frozen=True)
class Clip:
    path: Path
    info: MediaInfo
    width: int  # even (yuv420p), the size frames are streamed at
    height: int
    fps: float
    frames: int  # expected count (duration x fps), for progress

    @property
    def has_audio(self) -> bool:
        return self.info.has_audio


def check_video_asset(env: PrepareEnv, asset_id: str, field: str) -> None:
    """At submission: the asset exists and is a video (an audio, image or text asset is 422 asset_wrong_kind)."""
    row = env.assets.get(asset_id, owner_id=env.owner_id, field=field)
    if row.kind != "video":
        raise asset_wrong_kind(asset_id, field, row.kind, "video")


def open_clip(ctx: RunContext, asset_id: str, field: str) -> Clip:
    """The input video, probed and refused with a 4xx naming `field` when it cannot be used: damaged, no picture,
    longer than MAX_SECONDS (or media_max_seconds), more pixels than MAX_PIXELS."""
    row, path = ctx.media_file(asset_id, field=field, kinds=("video",))
    base = MediaLimits.from_settings(ctx.settings)
    limits = MediaLimits(base.max_bytes, min(base.max_seconds, MAX_SECONDS), base.silence_db)
    info = check_input(path, field=field, want="video", limits=limits, name=row.name, silence=False)
    v = info.video
    assert v is not None and info.duration_s is not None  # check_input refused the rest
    w, h = display_size(path, v.width or 0, v.height or 0)  # a phone's portrait clip decodes portrait
    if w * h > MAX_PIXELS or w < 16 or h < 16:
        raise InvalidInput(
            f"{field}: the video is {w}x{h}; up to {MAX_PIXELS:,} pixels a frame (1920x1080) and at least 16x16",
            code="video_size_unsupported",
            field=field,
            ctx={"width": w, "height": h, "limit": MAX_PIXELS},
        )
    fps = min(v.fps or DEFAULT_FPS, MAX_FPS)
    return Clip(path, info, even(w), even(h), fps, max(1, math.ceil(info.duration_s * fps - 1e-6)))


def video_mark(ctx: RunContext, width: int, height: int) -> tuple[Mark | None, list[str]]:
    """(the mark to draw on each frame, the output options saying it was drawn), or (None, []) when exports are
    not to mark videos (label_video_mark off): the export then leaves the file as it is."""
    if not ctx.settings.label_video_mark:
        return None, []
    import numpy as np

    from zhike.provenance.labels import LabelConfig
    from zhike.provenance.media import MARKED_ARGS, mark_overlay

    overlay = mark_overlay(width, height, LabelConfig.from_settings(ctx.settings))
    return Mark(np.asarray(overlay.convert("RGBA"))), list(MARKED_ARGS)


class Progress:
    """ctx.progress per frame, handed to the worker at most every ~1 % (it batches writes anyway)."""

    def __init__(self, ctx: RunContext, total: int) -> None:
        self.ctx, self.total, self.every = ctx, max(1, total), max(1, total // 100)

    def __call__(self, done: int) -> None:
        if done % self.every == 0 or done >= self.total:
            self.ctx.progress(min(done, self.total), self.total)  # raises JobCancelled: the encoders are killed
