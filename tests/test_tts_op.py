"""The `tts` op on the real job path: progress sentence by sentence, the stored WAV/MP3, resume after a crash without
saying finished sentences again, a recording standing in for the voice, and bad input (unknown voice, a
100,000-character script) as 4xx errors naming the field.

The voice is the remote backend talking to a real local voice server (tests/helpers/voice_server.py): instant, and
it counts what it is asked to say, so the resume is seen from the server's side. The embedded voices themselves are
heard back by Whisper in tests/test_tts.py."""

from __future__ import annotations

import importlib.util
import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from sqlalchemy import update

from tests.conftest import make_settings
from tests.helpers.jobs import run as run_job
from tests.helpers.voice_server import VoiceServer, voice_server
from tests.test_live_script import DiesAtStep, Killed
from zhike.core.errors import InvalidInput
from zhike.core.rows import JobRow
from zhike.core.work import JobWork
from zhike.ops.tts import pieces_of
from zhike.services.container import Zhike
from zhike.services.db import jobs
from zhike.services.jobs.worker import Worker
from zhike.voice import Piece

SCRIPT = "Welcome to our shop. This bottle keeps drinks hot. [pause 1s] Order today!"


TONE_S = 16000 / 22050  # each sentence the server says: 16,000 samples of CosyVoice's 22.05 kHz PCM


@pytest.fixture(scope="module")
def z(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhike]:
    with voice_server() as url:
        home = tmp_path_factory.mktemp("tts") / "home"  # embedded voices from ZHIKE_EMBEDDED_DIR
        zh = Zhike(make_settings(home, tts_remote_url=url, tts_remote_api="cosyvoice"))
        yield zh
        zh.engine.dispose()


def run(z: Zhike, params: dict[str, object]) -> JobRow:
    return run_job(z, "tts", params)


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getnframes() / w.getframerate()


def said() -> list[str]:
    """The sentences the voice server was asked to say, in order."""
    return [parse_qs(body.decode())["tts_text"][0] for _, body in VoiceServer.seen]  # CosyVoice's form fields


def test_auto_picks_the_installed_english_voice_at_submission(z: Zhike) -> None:
    job, _ = z.submit("tts", {"text": SCRIPT}, "u1")  # not run: the voice is fixed when the job is accepted
    piper = importlib.util.find_spec("piper") is not None  # the optional GPL engine: preferred only when installed
    assert job.params["voice"] == ("piper-en-joe" if piper else "kokoro-en-female") and job.params["language"] == "en"
    z.jobs.cancel(job.id, "u1")


def test_tts_speaks_sentence_by_sentence_with_progress_and_pauses(z: Zhike) -> None:
    VoiceServer.seen.clear()
    row = run(z, {"text": SCRIPT, "pause": 0.4, "voice": "remote"})
    res = row.result
    assert row.params["voice"] == "remote" and row.params["language"] == "en"
    assert (row.step, row.total_steps) == (3, 3)
    assert said() == ["Welcome to our shop.", "This bottle keeps drinks hot.", "Order today!"]
    sentences = res["data"]["sentences"]
    assert [s["text"] for s in sentences] == ["Welcome to our shop.", "This bottle keeps drinks hot.", "Order today!"]
    # each starts after the one before and its pause: 0.4 s, then the 1 s of the pause mark
    assert sentences[1]["start"] - sentences[0]["end"] == pytest.approx(0.4, abs=0.01)
    assert sentences[2]["start"] - sentences[1]["end"] == pytest.approx(1.0, abs=0.01)
    asset = z.assets.get(res["asset_id"], owner_id="u1")
    assert asset.mime == "audio/wav" and res["kind"] == "audio"
    seconds = wav_seconds(z.assets.read_bytes(asset))
    assert seconds == pytest.approx(res["duration_s"], abs=0.01) == pytest.approx(sentences[-1]["end"], abs=0.01)
    assert seconds == pytest.approx(3 * TONE_S + 0.4 + 1.0, abs=0.02)  # three sentences and the two pauses
    assert res["data"]["resumed"] == 0 and res["data"]["rtf"] > 0


def test_a_retried_job_resumes_after_the_finished_sentences(z: Zhike) -> None:
    job, _ = z.submit("tts", {"text": SCRIPT, "format": "mp3", "voice": "remote"}, "u1")
    VoiceServer.seen.clear()
    with pytest.raises(Killed):
        Worker(z, executor=DiesAtStep(2), worker_id="first").run_one(job.id)
    work = JobWork(z.settings.work_dir, job.id)
    assert work.keys() == ["s00000", "s00001"]
    with z.engine.begin() as conn:  # its lease runs out
        conn.execute(update(jobs).where(jobs.c.id == job.id).values(lease_expires_at=0))
    assert said() == ["Welcome to our shop.", "This bottle keeps drinks hot."]
    assert Worker(z, worker_id="second").run_one(job.id)
    row = z.jobs.get(job.id)
    assert row.state == "succeeded" and row.attempts == 2, row.error
    assert row.result["data"]["resumed"] == 2
    assert said()[2:] == ["Order today!"]  # only the third sentence was synthesised again
    asset = z.assets.get(row.result["asset_id"], owner_id="u1")
    assert asset.mime == "audio/mpeg" and z.assets.read_bytes(asset)[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")
    assert not work.path.exists()


def test_a_recording_stands_in_for_the_voice(z: Zhike, tmp_path: Path) -> None:
    first = run(z, {"text": "Thank you for watching.", "voice": "remote"}).result
    path = tmp_path / "mine.wav"
    path.write_bytes(z.assets.read_bytes(z.assets.get(first["asset_id"], owner_id="u1")))
    rec = z.assets.upload_media(path, owner_id="u1", field="file", name="mine.wav")
    res = run(z, {"recording": rec.id}).result
    assert res["asset_id"] == rec.id and res["data"]["voice"] == "recording"
    assert res["duration_s"] == pytest.approx(first["duration_s"], abs=0.05)


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"text": "你好", "voice": "robot-9000"}, "voice_unknown", "params.voice"),
        ({"text": "Hello there.", "voice": "kokoro-zh-female"}, "voice_language", "params.voice"),
        ({"text": "很长的脚本。" * 16_667}, "validation_failed", "params.text"),  # 100,002 characters
        ({"text": "hi", "text_asset": "abcdefgh"}, "validation_failed", "params"),
        ({"voice": "auto"}, "validation_failed", "params"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(z: Zhike, params: dict[str, object], code: str, field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        z.submit("tts", params, "u1")
    assert (e.value.code, e.value.status) == (code, 422)
    assert e.value.field == field


def test_a_live_script_json_is_read_segment_by_segment_with_its_pauses() -> None:
    segments = [
        {"text": "家人们好！今天福利多。", "pause_after_ms": 1500},
        {"text": "点关注不迷路", "pause_after_ms": 300},
    ]
    doc = json.dumps({"schema": "live_script", "segments": segments}, ensure_ascii=False)
    assert pieces_of(doc, "application/json", 0.3) == [
        Piece("家人们好！", 0.3),
        Piece("今天福利多。", 1.5),
        Piece("点关注不迷路", 0.3),
    ]
    assert pieces_of("# 标题\n- **卖点**一", "text/markdown", 0.2) == [Piece("标题", 0.2), Piece("卖点一", 0.2)]
