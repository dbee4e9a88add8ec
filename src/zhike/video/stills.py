"""Scenes, their timeline and their camera paths: plain arithmetic, no ffmpeg.

Timeline: scene i lasts D_i and the next one starts `crossfade` seconds before it ends (ffmpeg xfade), so a video of
n scenes lasts sum(D_i) - (n-1)*crossfade. With a synthetic voice each scene's voice is its own: D_i = voice_i +
padding, the voice starting padding/2 into the scene (so it ends before the next cross-fade when crossfade <=
padding/2). With one uploaded recording the voice is continuous: the scenes cut it by their share of the script's
characters, and the cross-fades are centred on the cuts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PIL import Image

FRAMES = {"9:16": (1080, 1920), "16:9": (1920, 1080), "1:1": (1080, 1080)}
_SEPARATOR = re.compile(r"\s*(?:-{3,})?\s*")  # a blank line, or a line of three or more dashes


def split_blocks(script: str) -> list[str]:
    """The script's blocks where blank lines or `---` lines separate them (each with its exact characters); one
    block when there is no separator (script_video then makes a scene of each sentence)."""
    blocks: list[list[str]] = [[]]
    for line in script.splitlines():
        if _SEPARATOR.fullmatch(line):
            if blocks[-1]:
                blocks.append([])
        else:
            blocks[-1].append(line)
    return ["\n".join(b).strip() for b in blocks if any(c.isalnum() for c in "".join(b))]


@dataclass(frozen=True)
class SceneTiming:
    start: float  # when the scene's clip starts in the video (its cross-fade in begins here)
    duration: float  # the clip's length, cross-fades included
    voice_start: float  # when its voice (or its share of the recording) starts in the video
    voice_len: float


def timeline(voices: list[float], *, padding: float, crossfade: float, continuous: bool = False) -> list[SceneTiming]:
    """Each scene's place in the video from its voice length. `continuous`: the voices are back to back (one
    recording cut in shares), else each scene is its voice plus `padding`."""
    out: list[SceneTiming] = []
    if not continuous:
        at = 0.0
        for v in voices:
            out.append(SceneTiming(at, v + padding, at + padding / 2, v))
            at += v + padding - crossfade
        return out
    n = len(voices)
    cuts = [padding / 2]
    for v in voices:
        cuts.append(cuts[-1] + v)
    cuts[0], cuts[-1] = 0.0, cuts[-1] + padding / 2  # the ends carry the lead-in and the tail
    for i in range(n):
        start = 0.0 if i == 0 else cuts[i] - crossfade / 2
        end = cuts[i + 1] if i == n - 1 else cuts[i + 1] + crossfade / 2
        out.append(SceneTiming(start, end - start, padding / 2 + sum(voices[:i]), voices[i]))
    return out


def total_duration(scenes: list[SceneTiming]) -> float:
    return scenes[-1].start + scenes[-1].duration if scenes else 0.0


Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Motion:
    """A Ken Burns move over one image: the crop window (frame-shaped) at the start and at the end, in the
    image's pixels as (left, top, width, height); frames in between interpolate zoom and centre."""

    start: Box
    end: Box

    def at(self, t: float) -> Box:
        """The window at t in [0, 1] (zoom interpolated linearly, the centre too)."""
        (x0, y0, w0, h0), (x1, y1, w1, h1) = self.start, self.end
        w, h = w0 + (w1 - w0) * t, h0 + (h1 - h0) * t
        cx = x0 + w0 / 2 + (x1 + w1 / 2 - x0 - w0 / 2) * t
        cy = y0 + h0 / 2 + (y1 + h1 / 2 - y0 - h0 / 2) * t
        return cx - w / 2, cy - h / 2, w, h


def _window(size: tuple[int, int], aspect: float, zoom: float, centre: tuple[float, float]) -> Box:
    """The largest frame-shaped window of the image divided by `zoom`, centred on `centre` as far as it can be."""
    iw, ih = size
    w = min(iw, ih * aspect) / zoom
    h = w / aspect
    x = min(max(centre[0] - w / 2, 0.0), iw - w)
    y = min(max(centre[1] - h / 2, 0.0), ih - h)
    return x, y, w, h


def ken_burns(
    size: tuple[int, int], frame: tuple[int, int], subject: Box, *, zoom: float = 1.15, inward: bool
) -> Motion:
    """A slow zoom (in when `inward`, else out) between the widest frame-shaped view of the image that holds the
    subject and a closer one on the subject, zoomed only as far as the subject (left, top, right, bottom) still
    fits: the subject stays in frame the whole way (both ends hold it, and so does every window between)."""
    aspect = frame[0] / frame[1]
    sx0, sy0, sx1, sy1 = subject
    centre = ((sx0 + sx1) / 2, (sy0 + sy1) / 2)
    wide = _window(size, aspect, 1.0, centre)
    fits = min(wide[2] / max(sx1 - sx0, 1.0), wide[3] / max(sy1 - sy0, 1.0))  # zoom at which it just fits
    close = _window(size, aspect, max(1.0, min(zoom, fits)), centre)
    if close == wide:  # the subject fills the view: drift across the image instead, still holding the subject
        close = _window(size, aspect, 1.0 + (zoom - 1.0) / 3, centre)
    return Motion(wide, close) if inward else Motion(close, wide)


def contains(window: Box, box: Box, slack: float = 0.5) -> bool:
    x, y, w, h = window
    return box[0] >= x - slack and box[1] >= y - slack and box[2] <= x + w + slack and box[3] <= y + h + slack


def still(
    image: Image.Image, frame: tuple[int, int], motion: Motion, oversample: float = 2.0
) -> tuple[Image.Image, Motion]:
    """The part of `image` the camera sees (the motion's larger window), resized to `oversample` x the frame so
    zoompan's whole-pixel crops move smoothly, and the motion in that image's pixels."""
    bx, by, bw, bh = max(motion.start, motion.end, key=lambda b: b[2])  # the wider window holds the other
    size = (round(frame[0] * oversample), round(frame[1] * oversample))
    k = size[0] / bw
    crop = image.resize(size, Image.LANCZOS, box=(bx, by, bx + bw, by + bh))

    def moved(b: Box) -> Box:
        return (b[0] - bx) * k, (b[1] - by) * k, b[2] * k, b[3] * k

    return crop, Motion(moved(motion.start), moved(motion.end))
