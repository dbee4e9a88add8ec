"""The subtitles op through a real app (container + worker + the embedded Whisper): a video with speech becomes SRT,
VTT and ASS assets carrying the script's exact words; bad inputs are refused naming the field."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from zhike.core.errors import InvalidInput, TooLarge, ZhikeError
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker

CLIP = Path(__file__).parent / "fixtures" / "audio" / "piper_joe_bottle.mp3"
SCRIPT = "Our new steel water bottle keeps drinks cold for twelve hours. Order today and get free shipping."


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path_factory.mktemp("subs") / "home", embedded_dir=embedded_dir))
    yield z
    z.engine.dispose()


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=60)


def video(tmp: Path, audio: str | None, name: str = "clip.mp4") -> Path:
    """A small H.264 MP4: a colour card with `audio` (a file, "silence", or None for no sound)."""
    out = tmp / name
    args = ["-f", "lavfi", "-i", "color=c=0x204060:s=160x284:r=10:d=5.4"]
    if audio == "silence":
        args += ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono"]
    elif audio:
        args += ["-i", audio]
    args += ["-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    ffmpeg(*args, *(["-c:a", "aac", "-b:a", "48k"] if audio else []), str(out))
    return out


def run(z: Zhike, params: dict) -> object:
    job, _ = z.submit("subtitles", params, "local")
    assert Worker(z).run_one(job.id)
    return z.jobs.get(job.id)


def srt_cues(text: str) -> list[tuple[str, str]]:
    return [(b.splitlines()[1], "\n".join(b.splitlines()[2:])) for b in text.strip().split("\n\n")]


def test_a_video_becomes_subtitle_files_with_the_scripts_words(app: Zhike, tmp_path: Path) -> None:
    clip = app.assets.upload_media(video(tmp_path, str(CLIP)), owner_id="local", name="bottle.mp4")
    assert clip.kind == "video"
    row = run(
        app,
        {
            "audio": clip.id,
            "script": SCRIPT,
            "language": "auto",
            "aspect": "16:9",
            "formats": ["srt", "vtt", "ass"],
            "style": "xiaohongshu",
        },
    )
    assert row.state == "succeeded", row.error
    res = row.result
    assert res["kind"] == "subtitles" and res["model"] == "whisper-base" and len(res["extra_asset_ids"]) == 2
    assert res["data"]["language"] == "en" and res["data"]["aligned"] is True
    assert res["duration_s"] == pytest.approx(5.4, abs=0.2)
    files = {}
    for aid in [res["asset_id"], *res["extra_asset_ids"]]:
        asset = app.assets.get(aid, owner_id="local")
        assert asset.kind == "subtitles" and asset.parent_id == clip.id and asset.op == "subtitles"
        files[asset.mime] = app.assets.read_bytes(asset).decode("utf-8")
    assert set(files) == {"application/x-subrip", "text/vtt", "text/x-ass"}
    cues = srt_cues(files["application/x-subrip"])
    assert " ".join(t.replace("\n", " ") for _, t in cues) == SCRIPT  # "twelve", as written; Whisper wrote "12"
    assert "12" in res["data"]["heard"]
    first_start = cues[0][0].split(" --> ")[0]
    assert re.fullmatch(r"00:00:00,[0-4]\d\d", first_start)  # speech starts at once in the clip
    assert files["text/vtt"].startswith("WEBVTT") and "Style: xiaohongshu,Source Han Sans SC" in files["text/x-ass"]
    assert "PlayResX: 1920" in files["text/x-ass"]
    assert row.total_steps and row.step == row.total_steps


def test_bad_requests_are_refused_at_submission(app: Zhike) -> None:
    png = _tiny_png_asset(app)
    with pytest.raises(InvalidInput) as e:
        app.submit("subtitles", {"audio": png}, "local")
    assert e.value.field == "params.audio" and e.value.code == "asset_wrong_kind"
    with pytest.raises(ZhikeError) as e:
        app.submit("subtitles", {"audio": png, "script": "字" * 100_001}, "local")
    assert e.value.field == "params.script"
    with pytest.raises(ZhikeError) as e:
        app.submit("subtitles", {"audio": png, "formats": ["docx"]}, "local")
    assert "params.formats" in (e.value.field or "")
    with pytest.raises(ZhikeError) as e:
        app.submit("subtitles", {"audio": "nosuchasset1"}, "local")
    assert e.value.field == "params.audio"


def _tiny_png_asset(app: Zhike) -> str:
    from PIL import Image

    from tests.helpers.images import upload

    return upload(app, Image.new("RGB", (8, 8), "white"))


def test_unusable_audio_is_refused_naming_the_field(app: Zhike, tmp_path: Path) -> None:
    # a video whose sound is silence passes the upload (it is a video); the op refuses it before recognising
    silent = app.assets.upload_media(video(tmp_path, "silence", "silent.mp4"), owner_id="local")
    row = run(app, {"audio": silent.id})
    assert row.state == "failed" and row.error["code"] == "media_silent" and row.error["field"] == "params.audio"
    mute = app.assets.upload_media(video(tmp_path, None, "mute.mp4"), owner_id="local")
    row = run(app, {"audio": mute.id})
    assert row.state == "failed" and row.error["code"] == "media_no_stream" and row.error["field"] == "params.audio"
    # silent audio, a corrupt MP3 and 3 hours of audio never become assets
    quiet = tmp_path / "quiet.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3", str(quiet))
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40)
    for path, code in ((quiet, "media_silent"), (corrupt, "media_damaged"), (_three_hours(tmp_path), "media_too_long")):
        with pytest.raises((InvalidInput, TooLarge)) as e:
            app.assets.upload_media(path, owner_id="local", field="file")
        assert e.value.code == code and e.value.field == "file", (path.name, e.value.code)


def _three_hours(tmp: Path) -> Path:
    """Three hours of MP3 made in a second: 10 s of CBR frames (no header) repeated, as a long recording holds them."""
    ten = tmp / "ten.mp3"
    args = ["-f", "lavfi", "-i", "sine=f=220:r=8000:d=10", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "8k"]
    ffmpeg(*args, "-write_xing", "0", "-id3v2_version", "0", str(ten))
    path = tmp / "three_hours.mp3"
    path.write_bytes(ten.read_bytes() * 1080)
    return path
