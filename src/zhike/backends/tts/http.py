"""Voices on a voice-cloning server the user runs: CosyVoice (its FastAPI server), GPT-SoVITS (api_v2.py) or
fish-speech (`/v1/tts`). Zhike sends one sentence per request and gets WAV (or CosyVoice's raw 16-bit PCM) back.
Speed is sent where the API takes it (GPT-SoVITS `speed_factor`, fish-speech `prosody.speed`); CosyVoice's server
and pitch shifts are not offered by these APIs, so a remote voice speaks at its own speed and pitch there.

`speaker` is what the server calls the voice: CosyVoice's `spk_id`, GPT-SoVITS's reference audio path on the
server, fish-speech's `reference_id`. Every failure is a ModelError on field `voice` with a stable code
(tts_unreachable, tts_timeout, tts_remote_error) whose message names the server but never credentials.
"""

from __future__ import annotations

import io
import wave
from typing import Any, Literal

import httpx
import numpy as np

from zhike.backends.llm.openai_http import public_url
from zhike.core.errors import ModelError

Api = Literal["cosyvoice", "gpt-sovits", "fish-speech"]
COSYVOICE_RATE = 22_050  # CosyVoice's server streams bare PCM: its rate is the model's (CosyVoice 1: 22.05 kHz)


def _error(code: str, message: str, status: int, url: str) -> ModelError:
    err = ModelError(message, code=code, field="voice", ctx={"url": url})
    err.status = status  # the server failed (502/504), not the caller's input
    return err


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples of a 16-bit PCM WAV."""
    with wave.open(io.BytesIO(data)) as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        frames = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{8 * width}-bit WAV (16-bit expected)")
    a = np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0
    return (a.reshape(-1, channels).mean(axis=1) if channels > 1 else a), rate


class RemoteVoice:
    nbytes = 0

    def __init__(
        self,
        base_url: str,
        api: Api,
        *,
        timeout: float = 120.0,
        language: str = "zh",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = api
        self.language = language
        self.name = f"remote:{api}"
        self.sample_rate = COSYVOICE_RATE
        self._where = public_url(self.base_url)
        limits = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._client = httpx.Client(timeout=limits, follow_redirects=False, transport=transport)

    def close(self) -> None:
        self._client.close()

    def _request(self, text: str, speed: float, speaker: str) -> httpx.Request:
        if self.api == "cosyvoice":
            return self._client.build_request(
                "POST", f"{self.base_url}/inference_sft", data={"tts_text": text, "spk_id": speaker or "中文女"}
            )
        if self.api == "gpt-sovits":
            body: dict[str, Any] = {
                "text": text,
                "text_lang": self.language,
                "ref_audio_path": speaker,
                "prompt_lang": self.language,
                "media_type": "wav",
                "streaming_mode": False,
                "speed_factor": speed,
            }
            return self._client.build_request("POST", f"{self.base_url}/tts", json=body)
        body = {
            "text": text,
            "format": "wav",
            "reference_id": speaker or None,
            "normalize": True,
            "prosody": {"speed": speed, "volume": 0},
        }
        return self._client.build_request("POST", f"{self.base_url}/v1/tts", json=body)

    def synthesize(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, speaker: str | None = None
    ) -> tuple[np.ndarray, int]:
        try:
            r = self._client.send(self._request(text, speed, speaker or ""))
        except httpx.TimeoutException as e:
            raise _error(
                "tts_timeout", f"the voice server {self._where} did not answer in time", 504, self._where
            ) from e
        except httpx.TransportError as e:
            raise _error(
                "tts_unreachable", f"the voice server {self._where} cannot be reached: {e}", 502, self._where
            ) from e
        if r.status_code >= 400:
            raise _error(
                "tts_remote_error",
                f"the voice server {self._where} answered {r.status_code}: {r.text[:200]}",
                502,
                self._where,
            )
        try:
            if r.content[:4] == b"RIFF":
                samples, rate = read_wav(r.content)
            elif self.api == "cosyvoice":  # bare little-endian 16-bit PCM
                samples, rate = np.frombuffer(r.content[: len(r.content) // 2 * 2], "<i2") / 32768.0, COSYVOICE_RATE
            else:
                raise ValueError("not a WAV file")
        except (ValueError, wave.Error, EOFError) as e:
            raise _error(
                "tts_remote_error", f"the voice server {self._where} sent no usable audio: {e}", 502, self._where
            ) from e
        return np.asarray(samples, np.float32), rate
