"""ffprobe and ffmpeg as subprocesses: what a file holds (`probe`), and running a command with progress, cancel and
errors that say what ffmpeg said (`run_ffmpeg`).

ffmpeg is a system package (scripts/system-packages.sh); nothing here loads it into the process, so a crash or a
hostile file costs one child process, never the worker.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from zhike.core.errors import InvalidInput, JobCancelled, MediaFailed, hide_paths

PROBE_SECONDS = 30.0  # ffprobe reads headers (and a few packets): longer means a pathological file
_TAIL_LINES = 12  # ffmpeg's last stderr lines kept for the error


def tool(name: str) -> str:
    """The path of ffmpeg or ffprobe; 500 media_tools_missing when the system package is not installed."""
    found = shutil.which(name)
    if found is None:
        raise MediaFailed(
            f"{name} is not installed on the server: install ffmpeg (scripts/system-packages.sh)",
            code="media_tools_missing",
            ctx={"name": name},
        )
    return found


@dataclass(frozen=True)
class Stream:
    kind: str  # audio | video | subtitle | data | attachment
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration_s: float | None = None
    # Cover art in an MP3/M4A shows up as a one-picture video stream: not a video
    picture: bool = False
    tags: dict[str, str] = field(default_factory=dict)  # the stream's own (a VP9 WebM's alpha_mode is here)


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float | None
    format: str  # ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "wav", "mp3", "srt"
    size_bytes: int
    streams: tuple[Stream, ...]
    tags: dict[str, str] = field(default_factory=dict)  # the container's metadata (title, comment, ...)

    def tag(self, name: str) -> str | None:
        """A container tag by name in any case: Matroska/WebM stores them upper-case (ZHIKE_LABELS), MP4 as given."""
        return next((v for k, v in self.tags.items() if k.lower() == name.lower()), None)

    @property
    def video(self) -> Stream | None:
        return next((s for s in self.streams if s.kind == "video" and not s.picture), None)

    @property
    def audio(self) -> Stream | None:
        return next((s for s in self.streams if s.kind == "audio"), None)

    @property
    def has_video(self) -> bool:
        return self.video is not None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None


def _num(value: Any, kind: type = float) -> Any:
    try:
        return kind(value) if value not in (None, "", "N/A") else None
    except (TypeError, ValueError):
        return None


def _fps(rate: str | None) -> float | None:
    """'30000/1001' -> 29.97; '0/0' (no constant rate) -> None."""
    try:
        f = Fraction(rate or "")
    except (ValueError, ZeroDivisionError):
        return None
    return round(float(f), 3) if f > 0 else None


def _stream(s: dict[str, Any]) -> Stream:
    kind = str(s.get("codec_type") or "data")
    disposition = s.get("disposition") or {}
    return Stream(
        kind=kind,
        codec=str(s.get("codec_name") or ""),
        width=_num(s.get("width"), int),
        height=_num(s.get("height"), int),
        fps=_fps(s.get("avg_frame_rate")) or _fps(s.get("r_frame_rate")) if kind == "video" else None,
        sample_rate=_num(s.get("sample_rate"), int),
        channels=_num(s.get("channels"), int),
        duration_s=_num(s.get("duration")),
        picture=bool(disposition.get("attached_pic")),
        tags={str(k): str(v) for k, v in (s.get("tags") or {}).items()},
    )


def parse_probe(data: dict[str, Any], size_bytes: int) -> MediaInfo:
    """MediaInfo from ffprobe's JSON (-show_format -show_streams)."""
    fmt = data.get("format") or {}
    streams = tuple(_stream(s) for s in data.get("streams") or [])
    duration = _num(fmt.get("duration"))
    if duration is None:  # some containers give it per stream only
        durations = [s.duration_s for s in streams if s.duration_s]
        duration = max(durations) if durations else None
    tags = {str(k): str(v) for k, v in (fmt.get("tags") or {}).items()}
    return MediaInfo(duration, str(fmt.get("format_name") or ""), size_bytes, streams, tags)


def probe(path: Path, *, field: str = "file", name: str | None = None) -> MediaInfo:
    """What the file holds. 422 media_damaged naming `field` when ffprobe cannot read it as media (corrupt,
    truncated, or not audio/video/subtitles at all)."""
    path = Path(path)
    cmd = [tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=PROBE_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise damaged(field, name, "ffprobe took too long to read it") from None
    detail = last_lines(done.stderr.decode("utf-8", "replace"))
    try:
        data = json.loads(done.stdout or b"{}")
    except ValueError:
        data = {}
    if done.returncode != 0 or not data.get("streams"):
        raise damaged(field, name, detail or "no audio, video or subtitle stream")
    return parse_probe(data, path.stat().st_size)


def damaged(field: str, name: str | None, detail: str) -> InvalidInput:
    what = f" ({name})" if name else ""
    return InvalidInput(
        f"{field}: the file{what} is damaged or not an audio, video or subtitle file: {detail}",
        code="media_damaged",
        field=field,
        ctx={"name": name or "", "detail": detail[:300]},
    )


def last_lines(text: str, n: int = _TAIL_LINES) -> str:
    """ffmpeg's last lines without the server's folders (it names files by their full path) or its [mp3 @ 0x...]."""
    lines = [re.sub(r"^\[[\w:]+ @ 0x[0-9a-f]+\]\s*", "", ln.strip()) for ln in text.splitlines() if ln.strip()]
    return hide_paths("\n".join(lines[-n:]))


def _seconds(progress: dict[str, str]) -> float | None:
    """The output time ffmpeg's -progress block reports (out_time_us; out_time_ms is also microseconds)."""
    for key in ("out_time_us", "out_time_ms"):
        value = _num(progress.get(key), int)
        if value is not None and value >= 0:
            return value / 1e6
    return None


def run_ffmpeg(
    args: Sequence[str | Path],
    *,
    total_s: float | None = None,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    timeout_s: float | None = None,
    cwd: Path | None = None,
) -> None:
    """Run `ffmpeg <args>` (the output path last, as usual; -y is added, so an existing output is replaced).

    `progress(seconds_done)` is called about twice a second from the -progress pipe (capped at `total_s` when given)
    and may raise JobCancelled (RunContext.progress does), which stops ffmpeg; so does `cancel()` returning True.
    A failure raises MediaFailed (500 media_failed) with ffmpeg's last stderr lines in the message and ctx detail:
    ops check user input with `probe`/`check_input` first, so a failure here is Zhike's, not the user's.
    """
    cmd = [tool("ffmpeg"), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats"]
    cmd += ["-progress", "pipe:1", "-stats_period", "0.5", *map(str, args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    tail: deque[str] = deque(maxlen=_TAIL_LINES)

    def drain() -> None:  # stderr read on its own thread: a full pipe would block ffmpeg
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                tail.append(line)

    reader = threading.Thread(target=drain, daemon=True, name="ffmpeg-stderr")
    reader.start()
    timer = threading.Timer(timeout_s, proc.kill) if timeout_s else None
    if timer is not None:
        timer.start()
    block: dict[str, str] = {}
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
            block[key] = value
            if key != "progress":  # "progress=continue|end" closes each block
                continue
            if cancel is not None and cancel():
                raise JobCancelled("cancelled by the user")
            done = _seconds(block)
            if progress is not None and done is not None:
                progress(min(done, total_s) if total_s else done)
            block = {}
        rc = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        if timer is not None:
            timer.cancel()
        reader.join(timeout=5)
    if rc != 0:
        detail = last_lines("\n".join(tail)) or f"exit status {rc}"
        if timeout_s and rc < 0:
            detail = f"took longer than {timeout_s:.0f} s\n{detail}"
        raise MediaFailed(f"ffmpeg failed: {detail}", code="media_failed", ctx={"detail": detail[-1000:]})
