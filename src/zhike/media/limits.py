"""Checks on audio/video a user hands in (an upload, a recording instead of TTS, a song): size, readable, the
stream the field needs, length, not silent. Each refusal is a 4xx naming the field."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from zhike.core.errors import InvalidInput, TooLarge
from zhike.media.ffmpeg import MediaInfo, damaged, last_lines, probe, tool

if TYPE_CHECKING:
    from zhike.settings import Settings

SILENT_DB = -200.0  # what `max_volume` says for digital silence (ffmpeg prints -inf)
_MAX_VOLUME = re.compile(rb"max_volume:\s*(-?inf|-?[\d.]+)\s*dB")
_SAMPLES = re.compile(rb"n_samples:\s*(\d+)")


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int = 300_000_000  # MB as max_upload_mb counts them (1e6 bytes)
    max_seconds: float = 1800.0
    silence_db: float = -50.0

    @classmethod
    def from_settings(cls, s: Settings) -> MediaLimits:
        return cls(int(s.media_max_mb * 1e6), s.media_max_seconds, s.media_silence_db)


def max_volume(path: Path, *, field: str = "file", name: str | None = None, timeout_s: float = 120.0) -> float:
    """The loudest sample of the first audio stream in dBFS (SILENT_DB for digital silence). Decodes the whole
    stream: 422 media_damaged when nothing decodes (a corrupt MP3 whose header still probes)."""
    cmd = [tool("ffmpeg"), "-hide_banner", "-nostdin", "-v", "info", "-i", str(path), "-map", "0:a:0"]
    cmd += ["-af", "volumedetect", "-f", "null", "-"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise damaged(field, name, "decoding the audio took too long") from None
    samples = _SAMPLES.search(done.stderr)
    found = _MAX_VOLUME.search(done.stderr)
    if done.returncode != 0 or samples is None or int(samples[1]) == 0 or found is None:
        raise damaged(field, name, last_lines(done.stderr.decode("utf-8", "replace"), 3) or "no audio decoded")
    return SILENT_DB if found[1].endswith(b"inf") else float(found[1])


def check_input(
    path: Path,
    *,
    field: str,
    want: Literal["audio", "video", "any"] = "any",
    limits: MediaLimits | None = None,
    name: str | None = None,
    silence: bool | None = None,
) -> MediaInfo:
    """Probe a user's file and refuse what no op can use: larger than `max_bytes` (413 file_too_large), unreadable
    (422 media_damaged), without the stream `want` names (media_no_stream), longer than `max_seconds`
    (media_too_long), or, for audio, silent (media_silent; `silence` defaults to on when `want` is audio)."""
    limits = limits or MediaLimits()
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise InvalidInput(f"{field}: the file is empty (0 bytes)", code="file_empty", field=field)
    if size > limits.max_bytes:
        mb = round(limits.max_bytes / 1e6)
        raise TooLarge(
            f"{field}: the file is larger than {mb} MB",
            code="file_too_large",
            field=field,
            limit=limits.max_bytes,
            ctx={"mb": mb},
        )
    info = probe(path, field=field, name=name)
    for kind in ("audio", "video"):
        if want == kind and not (info.has_audio if kind == "audio" else info.has_video):
            raise InvalidInput(
                f"{field}: the file has no {kind} stream", code="media_no_stream", field=field, ctx={"what": kind}
            )
    if info.duration_s is None or info.duration_s <= 0:
        raise damaged(field, name, "it has no length")
    if info.duration_s > limits.max_seconds:
        seconds, limit = round(info.duration_s), round(limits.max_seconds)
        raise InvalidInput(
            f"{field}: {seconds} s long; the limit is {limit} s",
            code="media_too_long",
            field=field,
            limit=limit,
            ctx={"seconds": seconds, "limit": limit},
        )
    if (want == "audio" if silence is None else silence) and info.has_audio:
        refuse_silent(path, field=field, limits=limits, name=name)
    return info


def refuse_silent(path: Path, *, field: str, limits: MediaLimits, name: str | None = None) -> None:
    """422 media_silent when the loudest sample is under `limits.silence_db` (media_damaged when nothing decodes)."""
    loudest = max_volume(path, field=field, name=name)
    if loudest < limits.silence_db:
        db = "-inf" if loudest <= SILENT_DB else f"{loudest:.0f}"
        raise InvalidInput(
            f"{field}: the audio is silent (loudest {db} dB, below {limits.silence_db:.0f} dB)",
            code="media_silent",
            field=field,
            ctx={"db": db},
        )
