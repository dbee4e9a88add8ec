"""The `music` op: a backing track arranged by mood and tempo, written as MIDI and rendered with fluidsynth and the
General MIDI soundfont (Debian's fluid-soundfont-gm), then cut, normalised and faded with ffmpeg; and the MusicGen
loader on a tiny random MusicGen saved in transformers' real format.

The rendered audio is measured, not trusted: its length (ffprobe), its level, and its beat (the onset envelope's
autocorrelation peaks at the tempo's beat period)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from tests.conftest import make_settings
from tests.helpers.jobs import run as run_job
from tests.helpers.tiny_musicgen import SAMPLE_RATE, make_tiny_musicgen
from zhike.core.errors import InvalidInput
from zhike.core.rows import JobRow
from zhike.music import MOODS, arrange, read_notes
from zhike.music.render import SOUNDFONTS
from zhike.music.smf import DRUM_CHANNEL
from zhike.ops.music import MoodId
from zhike.services.container import Zhike

pytestmark = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not any(f.is_file() for f in SOUNDFONTS),
    reason="fluidsynth and fluid-soundfont-gm are system packages (scripts/system-packages.sh)",
)


@pytest.fixture(scope="module")
def z(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhike]:
    zh = Zhike(make_settings(tmp_path_factory.mktemp("music") / "home"))
    yield zh
    zh.engine.dispose()


def run(z: Zhike, params: dict[str, object]) -> JobRow:
    return run_job(z, "music", params)


def stored(z: Zhike, row: JobRow, tmp_path: Path) -> Path:
    asset = z.assets.get(row.result["asset_id"], owner_id="u1")
    path = tmp_path / f"out.{row.params['format']}"
    path.write_bytes(z.assets.read_bytes(asset))
    return path


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        check=True,
    )
    return json.loads(out.stdout)


def mono(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
        return pcm.mean(axis=1) / 32768, w.getframerate()


def test_same_seed_same_midi_and_moods_differ() -> None:
    assert set(get_args(MoodId)) == set(MOODS)  # the op's choices are the moods' data
    a = arrange(MOODS["upbeat"], seconds=10, seed=7).midi()
    assert a == arrange(MOODS["upbeat"], seconds=10, seed=7).midi()
    assert a != arrange(MOODS["upbeat"], seconds=10, seed=8).midi()
    _, _, up = read_notes(a)
    _, tempo, calm = read_notes(arrange(MOODS["calm"], seconds=10, seed=7).midi())
    assert tempo == round(60e6 / MOODS["calm"].bpm)
    pitched = [{n.pitch % 12 for n in notes if n.channel != DRUM_CHANNEL} for notes in (up, calm)]
    assert pitched[0] != pitched[1]  # C major against D major: other notes, not only other timing
    assert {n.pitch for n in up if n.channel == DRUM_CHANNEL} >= {36, 38, 42}  # kick, snare, hats on GM channel 10
    minor = arrange(MOODS["upbeat"], seconds=10, key="Am", seed=7)
    assert minor.key == "A minor" and minor.chords[0] == "Am"


def test_drum_hits_fall_on_the_tempo_grid() -> None:
    song = arrange(MOODS["energetic"], seconds=12, bpm=140, seed=3)
    tpb, tempo, notes = read_notes(song.midi())
    assert tempo == round(60e6 / 140)
    kicks = sorted({n.start for n in notes if n.channel == DRUM_CHANNEL and n.pitch == 36})
    assert all(k % tpb == 0 for k in kicks)  # four on the floor: every kick on a beat
    beats = np.diff(kicks) / tpb
    assert np.median(beats) == 1.0
    last = kicks[-1] * tempo / tpb / 1e6  # the final chord's bar starts before the end and lasts past it
    assert last < 12 <= last + 4 * 60 / 140 + 1e-3


def onset_period(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    """The period (s) between lo and hi at which the signal's onset envelope repeats best."""
    hop = rate // 100  # 10 ms frames
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    energy = np.log1p(100 * np.sqrt((frames**2).mean(axis=1)))
    onset = np.maximum(np.diff(energy), 0)
    onset -= onset.mean()
    ac = np.correlate(onset, onset, "full")[len(onset) - 1 :]
    lags = np.arange(int(lo * 100), int(hi * 100) + 1)
    return float(lags[np.argmax(ac[lags])] / 100)


def test_music_renders_the_asked_length_loud_and_on_the_beat(z: Zhike, tmp_path: Path) -> None:
    row = run(z, {"mood": "欢快", "duration": 8, "tempo": 120, "format": "wav", "seed": 11})
    res = row.result
    assert row.params["mood"] == "upbeat" and res["data"]["tempo"] == 120 and res["kind"] == "audio"
    path = stored(z, row, tmp_path)
    info = ffprobe(path)
    assert float(info["format"]["duration"]) == pytest.approx(8, abs=0.2)
    assert info["streams"][0]["sample_rate"] == "44100"
    x, rate = mono(path.read_bytes())
    body = x[: 6 * rate]  # before the fade-out
    assert np.sqrt((body**2).mean()) > 0.03  # ~-30 dBFS RMS floor; -16 LUFS music sits near -18 dBFS
    tail = x[-int(0.1 * rate) :]
    assert np.sqrt((tail**2).mean()) < np.sqrt((body**2).mean()) / 10  # faded out
    ebur = subprocess.run(
        ["ffmpeg", "-nostats", "-i", str(path), "-af", "ebur128", "-f", "null", "-"], capture_output=True
    )
    integrated = float(ebur.stderr.decode().rsplit("I:", 1)[1].split("LUFS")[0])
    assert integrated == pytest.approx(-16, abs=1.5)  # loudnorm's target (the fade-out pulls it a little lower)
    # the beat: 0.5 s at 120 BPM (searched from 0.35 to 0.7 s, between an eighth and more than a beat)
    assert onset_period(body, rate, 0.35, 0.7) == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("fmt", ["mp3", "m4a"])
def test_compressed_formats_keep_the_length(z: Zhike, tmp_path: Path, fmt: str) -> None:
    row = run(z, {"mood": "calm", "duration": 3.5, "format": fmt, "fade": 1})
    path = stored(z, row, tmp_path)
    info = ffprobe(path)
    assert info["streams"][0]["codec_name"] == {"mp3": "mp3", "m4a": "aac"}[fmt]
    assert float(info["format"]["duration"]) == pytest.approx(3.5, abs=0.2)
    assert isinstance(row.params["seed"], int)  # fixed at submission: the job can be made again


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"duration": 0}, "params.duration"),
        ({"duration": 601}, "params.duration"),
        ({"mood": "jazzy-funk"}, "params.mood"),
        ({"tempo": 300}, "params.tempo"),
        ({"key": "H#"}, "params.key"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(z: Zhike, params: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        z.submit("music", params, "u1")
    assert (e.value.code, e.value.status, e.value.field) == ("validation_failed", 422, field)


def test_a_model_that_is_not_music_is_refused(z: Zhike) -> None:
    with pytest.raises(InvalidInput) as e:
        z.submit("music", {"model": "no-such-model"}, "u1")
    assert e.value.status in (404, 422) and e.value.field == "params.model"


def test_a_tiny_musicgen_makes_music_of_the_asked_length(z: Zhike, tmp_path: Path) -> None:
    folder = make_tiny_musicgen(tmp_path / "tiny-musicgen")
    spec = z.catalog.add(str(folder), name="tiny-musicgen")
    assert (spec.kind, spec.family, spec.format) == ("music", "musicgen", "transformers")
    row = run(z, {"model": "tiny-musicgen", "duration": 1.0, "format": "wav", "prompt": "happy piano music"})
    assert row.result["model"] == "tiny-musicgen" and row.result["data"]["engine"] == "musicgen"
    path = stored(z, row, tmp_path)
    info = ffprobe(path)
    assert info["streams"][0]["sample_rate"] == str(SAMPLE_RATE)  # the model's EnCodec rate, not resampled
    assert float(info["format"]["duration"]) == pytest.approx(1.0, abs=0.2)
    with pytest.raises(InvalidInput) as e:
        z.submit("music", {"model": "tiny-musicgen", "duration": 30}, "u1")  # 256 positions at 25 Hz: ~10 s
    assert (e.value.code, e.value.field, e.value.ctx["limit"]) == ("music_too_long", "params.duration", 10)


def test_the_cli_saves_the_track_under_the_suffix_of_what_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers.cli import cli_for

    invoke = next(cli_for(tmp_path / "home", monkeypatch))
    asked = tmp_path / "out" / "bgm.wav"  # an MP3 is made (the default format): saved as bgm.mp3, said so
    done = invoke("music", "upbeat", "--duration", "3", "--seed", "7", "-o", str(asked))
    assert done.exit_code == 0, done.output
    saved = asked.with_suffix(".mp3")
    assert saved.is_file() and not asked.exists() and "bgm.mp3" in done.output
    info = ffprobe(saved)
    assert info["streams"][0]["codec_name"] == "mp3" and abs(float(info["format"]["duration"]) - 3) < 0.3
    assert "AIGC" in json.dumps(info["format"].get("tags", {}))  # labelled like every export
