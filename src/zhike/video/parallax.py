"""2.5D parallax (图生视频's model-free default): a still becomes a short clip by moving two layers on a camera path.

The foreground is the subject (the image with its matte as alpha), the background the image with the subject
filled away (the op fills it; this module never sees a model). Each frame scales and shifts both layers about the
frame's centre, the foreground by more than the background, so the subject seems to stand in front of its scene.
The background is always scaled enough to cover the frame (no black edges); the foreground's shift is limited so
the subject's box stays inside the frame. numpy and PIL only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

Preset = Literal["push_in", "pan_left", "pan_right", "sway"]
PRESETS: tuple[Preset, ...] = ("push_in", "pan_left", "pan_right", "sway")
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)


@dataclass(frozen=True)
class Move:
    """One layer's placement in one frame: scale about the frame centre, then shift (fractions of width/height)."""

    scale: float
    dx: float = 0.0
    dy: float = 0.0


def _ease(u: float) -> float:
    # Half smoothstep, half linear: the camera eases in and out but never stands still, so every frame moves.
    return 0.5 * u + 0.5 * u * u * (3 - 2 * u)


def camera(preset: Preset, u: float, strength: float = 1.0) -> tuple[Move, Move]:
    """(background, foreground) moves at time u in [0, 1]; `strength` scales the motion (1 = the preset's own)."""
    e, k = _ease(u), strength
    if preset == "push_in":  # dolly in: the subject grows faster than the scene behind it
        return Move(1.0 + 0.04 * k * e), Move(1.0 + 0.12 * k * e)
    if preset in ("pan_left", "pan_right"):  # the camera slides sideways: near things pass faster
        sign = 1.0 if preset == "pan_left" else -1.0  # panning left moves the picture to the right
        t = sign * (e - 0.5) * 2  # -1..1
        return Move(1.0 + 0.05 * k, 0.02 * k * t), Move(1.0 + 0.02 * k, 0.08 * k * t)
    # sway: an orbit-ish arc, the layers swing opposite ways about the subject, with a slight breathing zoom
    s = math.sin(2 * math.pi * u)
    breathe = 0.02 * k * math.sin(math.pi * u)
    return (
        Move(1.0 + 0.04 * k + breathe, -0.012 * k * s, 0.004 * k * s),
        Move(1.0 + 0.02 * k + 2 * breathe, 0.04 * k * s, -0.008 * k * s),
    )


def _cover(m: Move) -> Move:
    """The background's move, scaled up so the shifted layer still covers the whole frame."""
    need = 1.0 + 2 * max(abs(m.dx), abs(m.dy))
    return Move(max(m.scale, need), m.dx, m.dy)


def _place(box: Box, m: Move, size: tuple[int, int]) -> tuple[float, float, float, float]:
    w, h = size
    cx, cy = w / 2, h / 2
    x0, y0, x1, y1 = box
    ox, oy = cx + m.dx * w, cy + m.dy * h
    return ((x0 - cx) * m.scale + ox, (y0 - cy) * m.scale + oy, (x1 - cx) * m.scale + ox, (y1 - cy) * m.scale + oy)


def _nudge(lo_edge: float, hi_edge: float, touches: tuple[bool, bool], extent: int) -> float:
    """The smallest shift (px) that keeps a placed span [lo_edge, hi_edge] inside [0, extent], except that a side
    where the subject touched the image's border keeps covering the frame's border (no gap opens behind it)."""
    lo, hi = -math.inf, math.inf
    if touches[0]:
        hi = min(hi, -lo_edge)  # lo_edge + shift <= 0
    else:
        lo = max(lo, -lo_edge)  # lo_edge + shift >= 0
    if touches[1]:
        lo = max(lo, extent - hi_edge)
    else:
        hi = min(hi, extent - hi_edge)
    if lo <= hi:
        return min(max(0.0, lo), hi)
    return (lo + hi) / 2  # cannot satisfy both sides (a subject wider than the frame): centre the error


def keep_inside(box: Box | None, m: Move, size: tuple[int, int]) -> Move:
    """`m` with its shift changed as little as possible so the subject's box stays inside the frame, and a subject
    cut by the image's border (a portrait's shoulders) stays attached to it."""
    if box is None:
        return m
    w, h = size
    x0, y0, x1, y1 = _place(box, m, size)
    dx = _nudge(x0, x1, (box[0] <= 1, box[2] >= w - 1), w)
    dy = _nudge(y0, y1, (box[1] <= 1, box[3] >= h - 1), h)
    return Move(m.scale, m.dx + dx / w, m.dy + dy / h)


def transform(layer: Image.Image, m: Move) -> Image.Image:
    """`layer` moved by `m` onto a frame of its own size (bilinear; outside the layer is transparent/black)."""
    w, h = layer.size
    cx, cy = w / 2, h / 2
    inv = 1.0 / m.scale
    # PIL maps each output pixel back to the input: x_in = (x_out - cx - dx) / s + cx
    data = (inv, 0.0, cx - (cx + m.dx * w) * inv, 0.0, inv, cy - (cy + m.dy * h) * inv)
    return layer.transform(layer.size, Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR)


def subject_box(alpha: np.ndarray, level: int = 128) -> Box | None:
    ys, xs = np.nonzero(alpha >= level)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@dataclass
class Frame:
    image: Image.Image  # RGB
    box: Box | None  # where the subject (matte >= 50 %) is in this frame


def frames(
    image: Image.Image,
    alpha: Image.Image,
    background: Image.Image,
    *,
    preset: Preset,
    count: int,
    strength: float = 1.0,
    overlay: Image.Image | None = None,
) -> Iterator[Frame]:
    """`count` frames of the parallax clip. `image`, `alpha` (L, 255 = subject) and `background` (the subject
    filled away) share one size, the frame's; `overlay` (RGBA, e.g. the visible AI mark) is drawn on each frame."""
    size = image.size
    fg = image.convert("RGB").copy()
    fg.putalpha(alpha.convert("L"))
    bg = background.convert("RGB")
    box = subject_box(np.asarray(alpha.convert("L")))
    for i in range(count):
        u = i / max(count - 1, 1)
        mb, mf = camera(preset, u, strength)
        mf = keep_inside(box, mf, size)
        frame = transform(bg, _cover(mb)).convert("RGBA")
        frame.alpha_composite(transform(fg, mf))
        if overlay is not None:
            frame.alpha_composite(overlay)
        placed = None
        if box is not None:
            x0, y0, x1, y1 = _place(box, mf, size)
            placed = (
                max(0, math.floor(x0)),
                max(0, math.floor(y0)),
                min(size[0], math.ceil(x1)),
                min(size[1], math.ceil(y1)),
            )
        yield Frame(frame.convert("RGB"), placed)


def frame_size(width: int, height: int, max_side: int, multiple: int = 2) -> tuple[int, int]:
    """The clip's size: the image's, scaled down so its long side is at most `max_side`, rounded down to `multiple`
    (H.264 in yuv420p needs even sides; diffusion models need multiples of 8 or 64)."""
    scale = min(1.0, max_side / max(width, height))
    w = max(multiple, int(width * scale) // multiple * multiple)
    h = max(multiple, int(height * scale) // multiple * multiple)
    return w, h
