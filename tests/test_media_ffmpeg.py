"""zhike.media: ffprobe's view of real files made by ffmpeg's lavfi sources, ffmpeg runs with progress, cancel and
errors, and the checks on what users hand in (corrupt, silent, too long, no audio stream)."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from zhike.core.errors import InvalidInput, JobCancelled, MediaFailed, TooLarge
from zhike.media import MediaLimits, check_input, probe, run_ffmpeg
from zhike.media.limits import max_volume
from zhike.media.poster import poster_frame, waveform
from zhike.media.sniff import looks_like_media, stored_mime


def ff(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    out = {
        k: d / v for k, v in {"mp4": "clip.mp4", "wav": "tone.wav", "mp3": "tone.mp3", "silent": "quiet.wav"}.items()
    }
    video = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=1.2"]
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=1.2"]
    ff(*video, *tone, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(out["mp4"]))
    ff(*tone, "-ac", "2", str(out["wav"]))
    ff(*tone, "-c:a", "libmp3lame", str(out["mp3"]))
    ff("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "1", str(out["silent"]))
    corrupt = d / "broken.mp3"  # an ID3 header and then noise: it sniffs as MP3 and holds no audio
    corrupt.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40)
    out["corrupt"] = corrupt
    truncated = d / "cut.mp4"  # the first 2 KB of a real MP4: ftyp and a piece of the media data, no moov
    truncated.write_bytes(out["mp4"].read_bytes()[:2048])
    out["truncated"] = truncated
    return out


def test_probe_reads_streams_size_rate_and_length(files: dict[str, Path]) -> None:
    info = probe(files["mp4"])
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.width, info.video.height, info.video.fps) == ("h264", 320, 180, 25.0)
    assert info.audio.codec == "aac" and info.audio.sample_rate == 22050 and info.audio.channels == 1
    assert info.duration_s == pytest.approx(1.2, abs=0.1)
    wav = probe(files["wav"])
    assert wav.video is None and wav.audio is not None and wav.audio.channels == 2
    assert stored_mime(info) == "video/mp4" and stored_mime(wav) == "audio/wav"
    assert stored_mime(probe(files["mp3"])) == "audio/mpeg"


def test_a_damaged_file_is_a_422_naming_the_field(files: dict[str, Path]) -> None:
    for name in ("truncated", "corrupt"):
        with pytest.raises(InvalidInput) as e:
            check_input(files[name], field="params.voice_file", want="audio")
        assert e.value.code == "media_damaged" and e.value.field == "params.voice_file"
        assert str(files[name].parent) not in e.value.message  # ffmpeg's words without the server's folders


def test_silent_long_large_and_streamless_inputs_are_refused(files: dict[str, Path]) -> None:
    with pytest.raises(InvalidInput) as e:
        check_input(files["silent"], field="voice", want="audio")
    assert (e.value.code, e.value.field) == ("media_silent", "voice")
    assert float(e.value.ctx["db"]) <= -90  # digital silence reads as the 16-bit floor (-91 dB)
    assert max_volume(files["wav"]) > -30  # lavfi sine is 1/8 of full scale (about -18 dB): measured, not guessed
    with pytest.raises(InvalidInput) as e:
        check_input(files["wav"], field="song", limits=MediaLimits(max_seconds=1.0))
    assert e.value.code == "media_too_long" and e.value.ctx == {"seconds": 1, "limit": 1}
    with pytest.raises(TooLarge) as e:
        check_input(files["mp4"], field="clip", limits=MediaLimits(max_bytes=1000))
    assert e.value.code == "file_too_large" and e.value.field == "clip"
    with pytest.raises(InvalidInput) as e:
        check_input(files["wav"], field="clip", want="video")
    assert e.value.code == "media_no_stream" and e.value.ctx == {"what": "video"}
    assert check_input(files["mp4"], field="clip", want="video").has_audio


def test_run_ffmpeg_reports_progress_and_fails_with_its_own_words(tmp_path: Path) -> None:
    seen: list[float] = []
    out = tmp_path / "out.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=duration=3", out], total_s=3.0, progress=seen.append)
    assert seen and seen[-1] == pytest.approx(3.0, abs=0.05) and seen == sorted(seen)
    assert probe(out).duration_s == pytest.approx(3.0, abs=0.05)
    with pytest.raises(MediaFailed) as e:
        run_ffmpeg(["-i", tmp_path / "missing.wav", tmp_path / "x.wav"])
    assert e.value.status == 500 and e.value.code == "media_failed"
    assert "missing.wav: No such file or directory" in e.value.message and str(tmp_path) not in e.value.message


def test_run_ffmpeg_stops_when_cancelled(tmp_path: Path) -> None:
    """A long encode (realtime-paced input) is killed at the next progress block once cancel() says so."""
    stop = threading.Event()
    threading.Timer(0.6, stop.set).start()
    start = time.monotonic()
    with pytest.raises(JobCancelled):
        run_ffmpeg(["-re", "-f", "lavfi", "-i", "sine=duration=30", tmp_path / "long.wav"], cancel=stop.is_set)
    assert time.monotonic() - start < 5


def test_sniffing_and_pictures(files: dict[str, Path]) -> None:
    for name in ("mp4", "wav", "mp3", "corrupt"):
        assert looks_like_media(files[name].read_bytes()[:16]), name
    png = b"\x89PNG\r\n\x1a\n" + bytes(8)
    jpeg = b"\xff\xd8\xff\xe0" + bytes(12)
    heic = b"\x00\x00\x00\x18ftypheic" + bytes(4)
    assert not any(looks_like_media(h) for h in (png, jpeg, heic))
    frame = poster_frame(files["mp4"], at_s=0.5, max_side=128)
    assert frame.size == (128, 72)
    late = poster_frame(files["mp4"], at_s=60, max_side=128)  # past the end: the first frame instead
    assert late.size == (128, 72)
    wave = waveform(files["wav"], size=128).convert("L")
    assert wave.size == (128, 64)
    column = [wave.getpixel((64, y)) for y in range(64)]
    assert min(column) < 200 and max(column) == 255  # ink in the middle column, white around it
