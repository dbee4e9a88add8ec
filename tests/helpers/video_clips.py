"""Small synthetic clips for the per-frame video ops (video_cutout, reframe): frames made in numpy, encoded by the
real ffmpeg, a sine tone as the sound; and the decoded frames of an output for checking."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

RED = (230, 30, 40)


def encode(frames: list[np.ndarray], out: Path, *, fps: int, tone: bool = True) -> Path:
    """RGB frames (+ a 440 Hz tone as long as them) -> H.264/AAC MP4."""
    h, w = frames[0].shape[:2]
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    cmd += ["-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0"]
    if tone:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={len(frames) / fps}", "-c:a", "aac"]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p", "-shortest", str(out)]
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True, timeout=60)
    return out


def disc(frame: np.ndarray, cx: float, cy: float, r: float, colour: tuple[int, int, int]) -> None:
    ys, xs = np.ogrid[: frame.shape[0], : frame.shape[1]]
    frame[(xs - cx) ** 2 + (ys - cy) ** 2 <= r * r] = colour


def texture(w: int, h: int, seed: int = 1) -> np.ndarray:
    """A static grey-blue checker with fine noise: busy, but never red or green."""
    rng = np.random.default_rng(seed)
    ys, xs = np.indices((h, w))
    base = np.where(((xs // 16) + (ys // 16)) % 2 == 0, 90, 140).astype(np.int16)
    grey = base + rng.integers(-20, 21, (h, w))
    return np.clip(np.dstack([grey, grey, grey + 30]), 0, 255).astype(np.uint8)


def moving_disc(path: Path, *, w: int = 320, h: int = 180, fps: int = 30, seconds: float = 2.0, r: int = 16) -> Path:
    """A red disc crossing a textured background left to right (x = 40 .. w - 40), bobbing a little up and down."""
    n = round(seconds * fps)
    bg = texture(w, h)
    frames = []
    for i in range(n):
        f = bg.copy()
        t = i / (n - 1)
        disc(f, 40 + t * (w - 80), h / 2 + 10 * np.sin(2 * np.pi * t), r, RED)
        frames.append(f)
    return encode(frames, path, fps=fps)


def green_screen(
    path: Path, *, w: int = 320, h: int = 180, fps: int = 25, seconds: float = 1.0, noise: int = 10
) -> Path:
    """A still subject (a skin-toned disc on a blue body) before an unevenly lit green screen, with fresh sensor
    noise in every frame (what makes a key's edge flicker)."""
    rng = np.random.default_rng(7)
    ys, xs = np.indices((h, w))
    light = 0.75 + 0.25 * (xs / w)  # brighter to the right: the key must not depend on brightness
    screen = np.dstack([20 * light, 180 * light, 60 * light])
    body = screen.copy()
    body[(xs > 130) & (xs < 190) & (ys > 90)] = (40, 60, 170)
    subject = body.astype(np.uint8)
    disc(subject, 160, 70, 28, (225, 180, 150))
    frames = []
    for _ in range(round(seconds * fps)):
        f = subject.astype(np.int16) + rng.integers(-noise, noise + 1, subject.shape)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return encode(frames, path, fps=fps)


def subject_mask(w: int = 320, h: int = 180) -> np.ndarray:
    """Where green_screen's subject is (True)."""
    ys, xs = np.indices((h, w))
    body = (xs > 130) & (xs < 190) & (ys > 90)
    return body | ((xs - 160) ** 2 + (ys - 70) ** 2 <= 28 * 28)


def decode(path: Path, *, pix_fmt: str = "rgb24", vp9_alpha: bool = False) -> np.ndarray:
    """(n, h, w, c) uint8 frames of a video; `vp9_alpha` decodes with libvpx, which reads WebM's alpha channel
    (ffmpeg's own VP9 decoder drops it)."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0",
         str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    w, h = (int(v) for v in probe.stdout.strip().split(","))
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", *(["-c:v", "libvpx-vp9"] if vp9_alpha else [])]
    cmd += ["-i", str(path), "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]
    raw = subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout
    c = {"rgb24": 3, "rgba": 4}[pix_fmt]
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, c)


def probe_json(path: Path) -> dict:
    """ffprobe's streams and format of a file."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)
