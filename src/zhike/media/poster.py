"""Pictures of media for grids and pickers: a video's poster frame, an audio file's waveform."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from PIL import Image

from zhike.core.errors import MediaFailed
from zhike.media.ffmpeg import last_lines, tool

POSTER_SECONDS = 30.0


def _png(cmd: list[str]) -> Image.Image:
    done = subprocess.run(cmd, capture_output=True, timeout=POSTER_SECONDS, check=False)
    if done.returncode != 0 or not done.stdout:
        detail = last_lines(done.stderr.decode("utf-8", "replace")) or "no picture"
        raise MediaFailed(f"ffmpeg could not make a picture: {detail}", code="media_failed", ctx={"detail": detail})
    img = Image.open(io.BytesIO(done.stdout))
    img.load()
    return img


def poster_frame(path: Path, *, at_s: float, max_side: int) -> Image.Image:
    """The frame at `at_s` seconds (the first frame when the video is shorter), at most `max_side` px."""
    fit = f"scale='min({max_side},iw)':'min({max_side},ih)':force_original_aspect_ratio=decrease"
    cmd = [tool("ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", "-ss", f"{at_s:.3f}", "-i", str(path)]
    cmd += ["-frames:v", "1", "-vf", fit, "-f", "image2pipe", "-c:v", "png", "-"]
    try:
        return _png(cmd)
    except MediaFailed:
        if at_s == 0:
            raise
        return poster_frame(path, at_s=0, max_side=max_side)  # seeking past the end gives no frame


def waveform(path: Path, *, size: int, colour: str = "#3b6cf6") -> Image.Image:
    """The audio's waveform drawn on white, `size` x `size` / 2 (RGB)."""
    width, height = size, max(1, size // 2)
    cmd = [tool("ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-filter_complex"]
    cmd += [f"[0:a:0]aformat=channel_layouts=mono,showwavespic=s={width}x{height}:colors={colour}"]
    cmd += ["-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "-"]
    wave = _png(cmd).convert("RGBA")
    out = Image.new("RGBA", wave.size, (255, 255, 255, 255))
    return Image.alpha_composite(out, wave).convert("RGB")
