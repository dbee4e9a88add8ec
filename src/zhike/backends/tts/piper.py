"""Piper (VITS, ONNX) voices: the embedded English voice en_US-joe-medium (CC0) and any Piper .onnx + .onnx.json
a user adds. piper-tts reads the text with its bundled espeak-ng (numbers, abbreviations) — no system package.

The engine piper-tts is GPL-3.0 and links espeak-ng into the process, so it is an optional extra
(`pip install 'zhike[piper]'`), imported only here and only when a Piper voice is loaded."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from zhike.backends.loaders import LoadEnv, loader
from zhike.backends.tts.base import engine_missing, pitch_shift
from zhike.core.specs import ModelSpec


class PiperTTS:
    def __init__(self, name: str, model: Path, config: Path) -> None:
        try:
            from piper import PiperVoice
        except ImportError:
            raise engine_missing(name, "piper") from None

        self.name = name
        self._voice = PiperVoice.load(model, config)
        self.sample_rate = int(self._voice.config.sample_rate)
        self.nbytes = model.stat().st_size
        self._lock = threading.Lock()  # one onnxruntime session; runs are serialised per voice

    def _render(self, text: str, speed: float) -> np.ndarray:
        from piper import SynthesisConfig

        base = self._voice.config.length_scale or 1.0
        cfg = SynthesisConfig(length_scale=base / speed, normalize_audio=False)
        with self._lock:
            chunks = [c.audio_float_array for c in self._voice.synthesize(text, syn_config=cfg)]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)

    def synthesize(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, speaker: str | None = None
    ) -> tuple[np.ndarray, int]:
        """`speaker` is unused: the embedded Piper voice has one (a multi-speaker model would take its id)."""
        return pitch_shift(self._render, text, speed, pitch), self.sample_rate


@loader(kind="voice", family="piper", format="onnx")
def _load_piper(spec: ModelSpec, env: LoadEnv) -> PiperTTS:
    folder = Path(spec.path)
    model = folder / "model.onnx" if folder.is_dir() else folder
    return PiperTTS(spec.name, model, Path(f"{model}.json"))
