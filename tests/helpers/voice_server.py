"""A real HTTP voice server on this machine speaking the three voice-cloning APIs Zhike's remote voice talks to
(backends/tts/http.py): instant, so op tests that are about the job (progress, pauses, resume) use it as their voice.

CosyVoice's /inference_sft streams bare PCM (22.05 kHz); GPT-SoVITS /tts and fish-speech /v1/tts answer WAV (32 kHz).
Every request is one second-long tone (16,000 samples); `VoiceServer.seen` keeps (path, body) of each request."""

from __future__ import annotations

import io
import threading
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    return buf.getvalue()


class VoiceServer(BaseHTTPRequestHandler):
    tone = (0.3 * np.sin(np.linspace(0, 400 * np.pi, 16000))).astype(np.float32)
    seen: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append((self.path, body))
        if self.path == "/inference_sft":
            data, kind = (self.tone * 32767).astype("<i2").tobytes(), "application/octet-stream"
        elif self.path in ("/tts", "/v1/tts"):
            data, kind = wav_bytes(self.tone, 32000), "audio/wav"
        else:
            self.send_error(500, "boom")
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def voice_server() -> Iterator[str]:
    """The server's base URL while the block runs."""
    httpd = HTTPServer(("127.0.0.1", 0), VoiceServer)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
