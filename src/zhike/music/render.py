"""MIDI to a finished audio file: fluidsynth renders it with a General MIDI soundfont, ffmpeg trims it to the asked
length, normalises its loudness (EBU R128 loudnorm) and fades it out, in WAV, MP3 or M4A.

fluidsynth and the soundfont are Debian packages (scripts/system-packages.sh: fluidsynth, fluid-soundfont-gm), run
as a child process like ffmpeg, never linked.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Literal, cast

from zhike.core.errors import MediaFailed, hide_paths
from zhike.media import run_ffmpeg
from zhike.music.arrange import Arrangement, arrange
from zhike.music.moods import Mood

# Debian's fluid-soundfont-gm (MIT); default-GM.sf2 is the alternatives link other GM soundfont packages also set
SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/sounds/sf2/default-GM.sf2"))
SAMPLE_RATE = 44100
AudioFormat = Literal["wav", "mp3", "m4a"]
MIMES: dict[str, str] = {"wav": "audio/wav", "mp3": "audio/mpeg", "m4a": "audio/mp4"}
_CODECS: dict[str, list[str]] = {
    "wav": ["-c:a", "pcm_s16le"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    "m4a": ["-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart"],
}


def soundfont(configured: Path | None = None) -> Path:
    """The General MIDI soundfont to render with; 500 music_tools_missing naming the packages when there is none."""
    for path in (configured,) if configured else SOUNDFONTS:
        if path and path.is_file():
            return path
    raise MediaFailed(
        "no General MIDI soundfont on the server: install fluid-soundfont-gm (scripts/system-packages.sh)"
        + (f" or fix music_soundfont ({configured.name})" if configured else ""),
        code="music_tools_missing",
        ctx={"name": "fluid-soundfont-gm"},
    )


def synthesize(midi: Path, out: Path, *, font: Path, timeout_s: float = 600.0) -> Path:
    """fluidsynth renders `midi` to a 44.1 kHz stereo WAV as fast as the CPU allows (no audio device)."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise MediaFailed(
            "fluidsynth is not installed on the server: install it (scripts/system-packages.sh)",
            code="music_tools_missing",
            ctx={"name": "fluidsynth"},
        )
    # -g 1.0: the design notes' gain (the default 0.2 is quiet); loudness is normalised afterwards anyway
    cmd = [exe, "-ni", "-q", "-g", "1.0", "-r", str(SAMPLE_RATE), "-F", str(out), str(font), str(midi)]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as e:
        raise MediaFailed(f"fluidsynth took longer than {timeout_s:.0f} s", code="media_failed") from e
    if done.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
        detail = hide_paths(done.stderr.decode("utf-8", "replace").strip()[-800:]) or f"exit status {done.returncode}"
        raise MediaFailed(f"fluidsynth failed: {detail}", code="media_failed", ctx={"detail": detail})
    return out


def finish(
    raw: Path,
    out: Path,
    *,
    seconds: float,
    fade_s: float,
    lufs: float,
    fmt: AudioFormat,
    sample_rate: int = SAMPLE_RATE,
    channels: int = 2,
    progress: Callable[[float], None] | None = None,
) -> Path:
    """Pad or trim to `seconds`, normalise to `lufs` integrated loudness, fade out the last `fade_s`, encode."""
    fade = min(fade_s, seconds / 2)
    # fluidsynth's WAV names no channel layout, which some filters cannot negotiate: name it first
    chain = [f"aresample=ochl={'stereo' if channels == 2 else 'mono'}"]
    chain += ["apad", f"atrim=0:{seconds:.3f}", "asetpts=N/SR/TB"]  # a model may stop a few frames short
    # loudnorm resamples to 192 kHz internally: back to the source's rate; the fade comes after it, so it is not undone
    chain += [f"loudnorm=I={lufs:g}:TP=-1.5:LRA=11", f"aresample={sample_rate}"]
    if fade > 0:
        chain.append(f"afade=t=out:st={seconds - fade:.3f}:d={fade:.3f}")
    args: list[str | Path] = ["-i", raw, "-af", ",".join(chain), "-t", f"{seconds:.3f}", "-ar", str(sample_rate)]
    run_ffmpeg([*args, *_CODECS[fmt], out], total_s=seconds, progress=progress)
    return out


def backing_track(
    mood: Mood,
    out: Path,
    *,
    seconds: float,
    bpm: int | None = None,
    key: str | None = None,
    seed: int = 0,
    fade_s: float = 2.0,
    lufs: float = -16.0,
    font: Path | None = None,
    progress: Callable[[float], None] | None = None,
) -> Arrangement:
    """Arrange, render and finish a backing track in one call (the `music` op; a video's music bed): `out`'s suffix
    (.wav/.mp3/.m4a) picks the format; the MIDI and the raw render are kept beside it (NAME.mid, NAME.raw.wav).
    `progress(fraction)` runs from 0 to 1 and may raise JobCancelled."""
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in MIMES:
        raise ValueError(f"{out.name}: the format is one of {', '.join(MIMES)}")
    song = arrange(mood, seconds=seconds, bpm=bpm, key=key, seed=seed)
    midi, raw = out.with_suffix(".mid"), out.with_suffix(".raw.wav")
    midi.write_bytes(song.midi())
    synthesize(midi, raw, font=font or soundfont())
    report = progress or (lambda _: None)
    report(0.4)  # fluidsynth is about a third of the time, the loudnorm pass the rest
    finish(
        raw,
        out,
        seconds=seconds,
        fade_s=fade_s,
        lufs=lufs,
        fmt=cast(AudioFormat, fmt),
        progress=lambda done: report(0.4 + 0.6 * done / seconds),
    )
    return song
