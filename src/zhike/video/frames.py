"""Frames through ffmpeg pipes: decode a video into numpy frames one at a time, encode numpy frames into a file.

Raw frames (rawvideo rgb24 / rgba) flow through the child process's stdin/stdout, so a long clip never sits in
memory: one frame at a time. Both ends force a constant frame rate (`fps`), so two passes over one clip see the same
frames with the same indices, and the written file plays at the rate it was read.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

import numpy as np

from zhike.core.errors import MediaFailed
from zhike.media.ffmpeg import last_lines, tool

PixFmt = Literal["rgb24", "rgba"]
_CHANNELS = {"rgb24": 3, "rgba": 4}


def even(n: float) -> int:
    """The nearest even size >= 2 (yuv420p needs even widths and heights)."""
    return max(2, int(round(n / 2)) * 2)


def display_size(path: Path, width: int, height: int) -> tuple[int, int]:
    """(w, h) as the frames decode: phones store portrait clips as landscape with a 90/270 degree rotation (side data
    or an old `rotate` tag), which ffmpeg applies when decoding, so the stored width and height swap."""
    cmd = [tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries"]
    cmd += ["stream_tags=rotate:stream_side_data=rotation", "-of", "json", str(path)]
    done = subprocess.run(cmd, capture_output=True, timeout=30, check=False)
    try:
        stream = (json.loads(done.stdout or b"{}").get("streams") or [{}])[0]
    except ValueError:
        return width, height
    turns = [stream.get("tags", {}).get("rotate")] + [d.get("rotation") for d in stream.get("side_data_list", [])]
    for turn in turns:
        try:
            if round(float(turn)) % 180 == 90:
                return height, width
        except (TypeError, ValueError):
            continue
    return width, height


class _Child:
    """An ffmpeg child whose stderr is drained on a thread (a full pipe would block it) and kept for the error."""

    def __init__(self, args: Sequence[str | Path], *, stdin: bool, stdout: bool) -> None:
        cmd = [tool("ffmpeg"), "-hide_banner", "-y", "-loglevel", "error", *([] if stdin else ["-nostdin"])]
        cmd += [*map(str, args)]
        pipe = subprocess.PIPE
        self.proc = subprocess.Popen(
            cmd, stdin=pipe if stdin else subprocess.DEVNULL, stdout=pipe if stdout else subprocess.DEVNULL, stderr=pipe
        )
        self.tail: deque[str] = deque(maxlen=12)
        self._reader = threading.Thread(target=self._drain, daemon=True, name="ffmpeg-stderr")
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self.tail.append(line)

    def fail(self, what: str) -> MediaFailed:
        self._reader.join(timeout=5)
        detail = last_lines("\n".join(self.tail)) or f"exit status {self.proc.returncode}"
        return MediaFailed(f"ffmpeg failed {what}: {detail}", code="media_failed", ctx={"detail": detail[-1000:]})

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=5)


def read_frames(
    path: Path, *, fps: float, size: tuple[int, int] | None = None, pix_fmt: PixFmt = "rgb24"
) -> Iterator[np.ndarray]:
    """The video's frames at a constant `fps` as HxWxC uint8 arrays, scaled to `size` (w, h) when given (area
    resampling: a cheap, clean downscale for analysis). The caller passes the probed width/height when size is None.
    Closing the generator early stops ffmpeg."""
    if size is None:
        raise ValueError("size (w, h) is required: the raw stream has no header")
    w, h = size
    vf = f"fps={fps:.6f},scale={w}:{h}:flags=area,format={pix_fmt}"
    child = _Child(["-i", path, "-map", "0:v:0", "-vf", vf, "-f", "rawvideo", "pipe:1"], stdin=False, stdout=True)
    frame_bytes = w * h * _CHANNELS[pix_fmt]
    assert child.proc.stdout is not None
    try:
        while True:
            buf = child.proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            yield np.frombuffer(buf, np.uint8).reshape(h, w, _CHANNELS[pix_fmt])
        if child.proc.wait() != 0:
            raise child.fail("decoding the video")
    finally:
        child.kill()


class FrameWriter:
    """Encode frames written one by one (`write(HxWxC uint8)`) into `out`; `audio_from` adds that file's first audio
    stream (re-encoded for the container). Use as a context manager: a clean exit closes and checks ffmpeg, an
    exception kills it.

    VP9 WebM with `pix_fmt="rgba"` keeps the alpha (yuva420p; ffprobe shows the stream tag alpha_mode=1); MP4 is H.264
    yuv420p + AAC. `extra` output options go before the output path (e.g. zhike.provenance.media.MARKED_ARGS)."""

    def __init__(
        self,
        out: Path,
        *,
        size: tuple[int, int],
        fps: float,
        pix_fmt: PixFmt = "rgb24",
        audio_from: Path | None = None,
        extra: Sequence[str] = (),
        vf: str | None = None,
    ) -> None:
        self.size, self.pix_fmt, self.frames = size, pix_fmt, 0
        webm = out.suffix.lower() == ".webm"
        args: list[str | Path] = ["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{size[0]}x{size[1]}"]
        args += ["-r", f"{fps:.6f}", "-i", "pipe:0"]
        if audio_from is not None:
            args += ["-i", audio_from, "-map", "0:v:0", "-map", "1:a:0", "-shortest"]
        if vf:
            args += ["-vf", vf]
        if webm:
            alpha = pix_fmt == "rgba"
            args += ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"]
            args += ["-crf", "30", "-b:v", "0", "-pix_fmt", "yuva420p" if alpha else "yuv420p"]
            args += ["-auto-alt-ref", "0"] if alpha else []  # libvpx cannot keep alpha with alt-ref frames
            args += ["-c:a", "libopus", "-b:a", "96k"] if audio_from is not None else []
        else:
            args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
            args += ["-c:a", "aac", "-b:a", "128k"] if audio_from is not None else []
        self._child = _Child([*args, *extra, out], stdin=True, stdout=False)

    def write(self, frame: np.ndarray) -> None:
        w, h = self.size
        if frame.shape != (h, w, _CHANNELS[self.pix_fmt]) or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype} is not {h}x{w}x{_CHANNELS[self.pix_fmt]} uint8")
        assert self._child.proc.stdin is not None
        try:
            self._child.proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            self._child.proc.wait()
            raise self._child.fail("encoding the video") from None
        self.frames += 1

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self._child.kill()
            return
        assert self._child.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # ffmpeg died: its exit status says why
            self._child.proc.stdin.close()
        if self._child.proc.wait() != 0 or self.frames == 0:
            raise self._child.fail("encoding the video")
        self._child.kill()
