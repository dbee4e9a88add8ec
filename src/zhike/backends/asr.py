"""Speech recognition with faster-whisper (CTranslate2): the embedded Whisper base or a user's CTranslate2 Whisper
folder, words with timestamps, Chinese given back in Simplified characters.

Whisper writes Mandarin in Traditional or Simplified characters at random unless its prompt shows it which; the
initial prompt below is written in Simplified Chinese, and what still comes back Traditional is converted with
OpenCC (t2s), so subtitles never mix the two.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import opencc

from zhike.backends.loaders import LoadEnv, loader
from zhike.core.errors import ModelError
from zhike.core.specs import ModelSpec
from zhike.subtitles.cues import Word

SAMPLE_RATE = 16_000  # what Whisper hears; callers hand in mono float32 at this rate
ZH_PROMPT = "以下是普通话的句子，使用简体中文。"
LANGUAGES = ("zh", "en")
_T2S = opencc.OpenCC("t2s")
_LIVE: dict[str, WhisperASR] = {}
_LIVE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Transcript:
    language: str  # the language spoken ("zh", "en", or what Whisper detected)
    words: list[Word]
    duration: float  # seconds of audio heard
    seconds: float  # wall time of the recognition

    @property
    def text(self) -> str:
        return "".join(w.text for w in self.words).strip()  # English words carry their leading space


def simplified(text: str) -> str:
    """Traditional characters as Simplified (OpenCC t2s); Simplified text and Latin come back unchanged."""
    return _T2S.convert(text)


class WhisperASR:
    """A loaded faster-whisper model. `transcribe` may run on several worker threads at once (CTranslate2 is)."""

    def __init__(self, name: str, model: Any, nbytes: int) -> None:
        self.name = name
        self.model = model
        self.nbytes = nbytes

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        language: str | None = None,
        vad: bool = True,
        prompt: str | None = None,
        on_progress: Callable[[float, float], None] | None = None,
    ) -> Transcript:
        """Words with start/end seconds. `language` None detects it. `vad` skips silence with Silero VAD (fewer
        invented words over music or pauses). `on_progress(heard, total)` is called after each segment; raising
        from it (JobCancelled) stops the recognition there."""
        start = time.perf_counter()
        total = len(audio) / SAMPLE_RATE
        if language is None:  # detected here (as transcribe would) so that Chinese gets its Simplified prompt too
            language = self.model.detect_language(audio.astype(np.float32, copy=False), vad_filter=vad)[0]
        if prompt is None and language == "zh":
            prompt = ZH_PROMPT
        segments, _ = self.model.transcribe(
            audio.astype(np.float32, copy=False),
            language=language,
            word_timestamps=True,
            vad_filter=vad,
            vad_parameters={"min_silence_duration_ms": 500} if vad else None,
            initial_prompt=prompt,
            beam_size=5,
            condition_on_previous_text=False,  # one misheard sentence does not steer the next ones
        )
        lang = language
        words: list[Word] = []
        for seg in segments:  # a generator: decoding happens here, segment by segment
            for w in seg.words or ():
                text = simplified(w.word) if lang == "zh" else w.word
                words.append(Word(text, float(w.start), float(w.end), float(w.probability)))
            if on_progress is not None:
                on_progress(min(float(seg.end), total), total)
        return Transcript(lang, words, total, time.perf_counter() - start)


def load_whisper(spec: ModelSpec, env: LoadEnv) -> WhisperASR:
    """One live model per folder and device (int8 on CPU: 2-3x faster than float32, same words here)."""
    from faster_whisper import WhisperModel

    folder = Path(spec.path)
    device = "cuda" if env.device == "cuda" else "cpu"  # CTranslate2 has no MPS: Apple runs it on the CPU
    key = f"{folder.resolve()}|{device}"
    with _LIVE_LOCK:
        if (live := _LIVE.get(key)) is not None:
            return live
        try:
            model = WhisperModel(
                str(folder),
                device=device,
                compute_type="int8" if device == "cpu" else "float16",
                cpu_threads=0,  # CTranslate2's default: the cores it sees
                local_files_only=True,
            )
        except Exception as e:  # noqa: BLE001 - every failure to read the folder means the same to the user
            raise ModelError(
                f"could not load speech model {spec.name!r} from {folder}: {type(e).__name__}: {e}",
                code="model_load_failed",
                field="model",
                ctx={"name": spec.name},
            ) from e
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        _LIVE[key] = WhisperASR(spec.name, model, size)
        return _LIVE[key]


@loader(kind="asr", family="whisper", format="ctranslate2")
def _load_asr(spec: ModelSpec, env: LoadEnv) -> WhisperASR:
    return load_whisper(spec, env)


def decode_audio(path: Path) -> np.ndarray:
    """Any audio or video file's first audio stream as mono float32 at 16 kHz (PyAV, as faster-whisper reads it)."""
    from faster_whisper.audio import decode_audio as _decode

    return _decode(str(path), sampling_rate=SAMPLE_RATE)
