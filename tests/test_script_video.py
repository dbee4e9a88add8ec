"""The `script_video` op (图片成片) on the real job path with real ffmpeg: streams, size, frame rate and length read
back by ffprobe, motion between frames, the SRT carrying the script's exact characters, the music ducked under the
voice (measured), a killed render resuming without saying finished scenes again, and bad input as 4xx naming the
field. Plus the plain planning (scenes, timeline, a Ken Burns path that keeps the subject in frame).

The voice is the remote backend on a real local voice server (tests/helpers/voice_server.py): instant, each
sentence a 0.73 s tone, and it counts what it is asked to say. Renders are 1:1 with three short scenes."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sqlalchemy import update

from tests.conftest import make_settings
from tests.helpers.images import upload
from tests.helpers.voice_server import VoiceServer, voice_server
from tests.test_live_script import DiesAtStep, Killed
from zhike.core.errors import ZhikeError
from zhike.core.rows import JobRow
from zhike.core.work import JobWork
from zhike.ops.script_video import split_scenes
from zhike.services.container import Zhike
from zhike.services.db import jobs
from zhike.services.jobs.worker import Worker
from zhike.video.stills import contains, ken_burns, timeline, total_duration

SCRIPT = "今天给大家推荐一款保温杯。它能保温十二个小时，出门带着特别方便！现在下单还送杯套。"
TONE_S = 16000 / 22050  # what the server says for each sentence (CosyVoice's 22.05 kHz PCM)
MUSIC_HZ = 3000  # the music is a tone far above the voice's (276 Hz), so a band filter tells them apart


def picture(colour: tuple[int, int, int], centre: tuple[int, int]) -> Image.Image:
    """A 640x480 photo-like test image: a gradient backdrop with one bright subject (a disc) off centre."""
    x = np.linspace(0, 1, 640)[None, :, None]
    y = np.linspace(0, 1, 480)[:, None, None]
    arr = (np.array(colour) * (0.6 + 0.3 * x + 0.1 * y)).astype(np.uint8)
    img = Image.fromarray(arr)
    d = ImageDraw.Draw(img)
    cx, cy = centre
    d.ellipse((cx - 60, cy - 60, cx + 60, cy + 60), fill=(250, 40, 30))
    d.rectangle((cx - 20, cy - 20, cx + 20, cy + 20), fill=(255, 255, 255))
    return img


@pytest.fixture(scope="module")
def z(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhike]:
    with voice_server() as url:
        home = tmp_path_factory.mktemp("sv") / "home"
        zh = Zhike(make_settings(home, tts_remote_url=url, tts_remote_api="cosyvoice"))
        yield zh
        zh.engine.dispose()


@pytest.fixture(scope="module")
def images(z: Zhike) -> list[str]:
    return [upload(z, picture((40, 90, 160), (460, 300)), "u1"), upload(z, picture((30, 140, 70), (200, 180)), "u1")]


@pytest.fixture(scope="module")
def music(z: Zhike, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("music") / "music.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency={MUSIC_HZ}:duration=3", "-ac", "2", path],
        check=True,
    )
    return z.assets.upload_media(path, owner_id="u1", name="music.wav").id


def said() -> list[str]:
    return [parse_qs(body.decode())["tts_text"][0] for _, body in VoiceServer.seen]


def finish(z: Zhike, job_id: str, **worker: object) -> JobRow:
    assert Worker(z, **worker).run_one(job_id)  # type: ignore[arg-type]
    row = z.jobs.get(job_id)
    assert row.state == "succeeded", row.error
    return row


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path],
        capture_output=True,
        check=True,
    ).stdout
    return json.loads(out)


def asset_path(z: Zhike, asset_id: str, tmp: Path, name: str) -> Path:
    path = tmp / name
    path.write_bytes(z.assets.read_bytes(z.assets.get(asset_id, owner_id="u1")))
    return path


def srt_text(srt: str) -> str:
    """The shown characters of an SRT, cue lines joined."""
    return "".join(line for line in srt.splitlines() if line and not line.isdigit() and "-->" not in line)


@pytest.fixture(scope="module")
def rendered(z: Zhike, images: list[str], music: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    VoiceServer.seen.clear()
    params = {"script": SCRIPT, "images": images, "voice": "remote", "aspect": "1:1", "music": music}
    job, _ = z.submit("script_video", params, "u1")
    row = finish(z, job.id)
    tmp = tmp_path_factory.mktemp("out")
    return row.result, asset_path(z, row.result["asset_id"], tmp, "video.mp4")


def test_the_video_has_its_streams_size_rate_and_length(z: Zhike, rendered: tuple[dict, Path]) -> None:
    res, mp4 = rendered
    assert said() == ["今天给大家推荐一款保温杯。", "它能保温十二个小时，出门带着特别方便！", "现在下单还送杯套。"]
    info = ffprobe(mp4)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], audio["codec_name"]) == ("h264", "aac")
    assert (video["width"], video["height"]) == (1080, 1080) and video["pix_fmt"] == "yuv420p"
    assert video["avg_frame_rate"] == "30/1"
    # three scenes of voice + 1 s padding, two 0.4 s cross-fades overlapping
    want = 3 * (TONE_S + 1.0) - 2 * 0.4
    assert float(info["format"]["duration"]) == pytest.approx(want, abs=0.1)
    assert float(video["duration"]) == pytest.approx(want, abs=0.1) and res["duration_s"] == pytest.approx(want, 0.01)
    assert info["format"]["tags"].get("zhike_labels") == "visible"  # the AI mark was drawn in this pass
    assert [s["text"] for s in res["data"]["scenes"]] == split_scenes(SCRIPT)
    assert res["data"]["scenes"][2]["image"] == res["data"]["scenes"][0]["image"]  # two images, reused in turn


def test_the_srt_carries_the_script_exactly_timed_by_the_voice(z: Zhike, rendered: tuple[dict, Path]) -> None:
    res, _ = rendered
    (srt_id,) = res["extra_asset_ids"]
    row = z.assets.get(srt_id, owner_id="u1")
    assert row.mime == "application/x-subrip"
    srt = z.assets.read_bytes(row).decode("utf-8")
    assert srt_text(srt) == SCRIPT
    starts = [
        float(m[0]) * 3600 + float(m[1]) * 60 + float(m[2].replace(",", "."))
        for m in re.findall(r"(\d+):(\d+):(\d+,\d+) -->", srt)
    ]
    voice_starts = [s["voice_start"] for s in res["data"]["scenes"]]
    for at in voice_starts:  # each scene's first cue starts with its voice
        assert min(abs(s - at) for s in starts) < 0.01
    assert max(len(line) for line in srt.splitlines() if "-->" not in line) <= 14  # 1:1 lines of ≤ 14 characters


def rgb_frames(mp4: Path, size: int = 270) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", mp4, "-vf", f"scale={size}:{size}", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, size, size, 3).astype(np.float32)


def test_the_camera_moves_and_keeps_the_subject_in_frame(rendered: tuple[dict, Path]) -> None:
    res, mp4 = rendered
    frames = rgb_frames(mp4)
    scenes = res["data"]["scenes"]
    assert len(frames) == pytest.approx(res["duration_s"] * 30, abs=2)
    gray = frames.mean(axis=3)
    red = (frames[..., 0] > 200) & (frames[..., 1] < 90) & (frames[..., 2] < 90)  # the subject: a red disc
    for sc, nxt in zip(scenes, scenes[1:], strict=False):  # within each scene, away from the cross-fades
        a, b = round((sc["start"] + 0.45) * 30), round(nxt["start"] * 30) - 2
        diffs = np.abs(np.diff(gray[a:b], axis=0)).mean(axis=(1, 2))
        assert diffs.size > 10 and diffs.min() > 0.05, diffs  # every frame differs from the one before
        for mask in red[a:b]:  # the disc is in view and whole: it touches no edge of the frame
            assert mask.sum() > 500
            assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def band_rms_db(samples: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spec = np.fft.rfft(samples * np.hanning(len(samples)))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = np.abs(spec[(freqs >= lo) & (freqs <= hi)]) ** 2
    return 10 * np.log10(band.sum() / len(samples) ** 2 + 1e-20)


def test_the_music_is_ducked_under_the_voice(rendered: tuple[dict, Path]) -> None:
    res, mp4 = rendered
    rate = 48000
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", mp4, "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    audio = np.frombuffer(raw, np.float32)

    def music_db(t0: float, t1: float) -> float:
        return band_rms_db(audio[round(t0 * rate) : round(t1 * rate)], rate, MUSIC_HZ - 200, MUSIC_HZ + 200)

    free = music_db(0.05, 0.45)  # the lead-in: music alone
    assert free > -45  # it is there: lavfi's sine (amplitude 1/8) at music_volume 0.3 is ~-31 dBFS RMS
    for sc in res["data"]["scenes"]:
        under = music_db(sc["voice_start"] + 0.15, sc["voice_start"] + sc["voice_s"] - 0.05)
        assert free - under >= 8, (free, under)
        voice = band_rms_db(
            audio[round((sc["voice_start"] + 0.15) * rate) : round((sc["voice_start"] + 0.6) * rate)], rate, 200, 350
        )
        assert voice > under + 10  # the voice itself is not ducked


def test_a_killed_render_resumes_without_saying_finished_scenes_again(z: Zhike, images: list[str]) -> None:
    script = "第一段，开场。\n---\n第二段，产品亮点。还有第二句！\n\n第三段，下单。"
    params = {"script": script, "images": images[:1], "voice": "remote", "aspect": "1:1", "style": "xiaohongshu"}
    params |= {"padding": 0.6, "crossfade": 0.3}  # a short render: what is tested is the resume
    job, _ = z.submit("script_video", params, "u1")
    VoiceServer.seen.clear()
    with pytest.raises(Killed):  # dies once two scenes are spoken
        Worker(z, executor=DiesAtStep(20), worker_id="first").run_one(job.id)
    work = JobWork(z.settings.work_dir, job.id)
    assert work.keys() == ["scene000", "scene001"]
    assert said() == ["第一段，开场。", "第二段，产品亮点。", "还有第二句！"]
    with z.engine.begin() as conn:  # its lease runs out
        conn.execute(update(jobs).where(jobs.c.id == job.id).values(lease_expires_at=0))
    row = finish(z, job.id, worker_id="second")
    assert row.attempts == 2 and row.result["data"]["resumed"] == 2
    assert said()[3:] == ["第三段，下单。"]  # only the unfinished scene was spoken again
    res = row.result
    assert [s["text"] for s in res["data"]["scenes"]] == [
        "第一段，开场。",
        "第二段，产品亮点。还有第二句！",
        "第三段，下单。",
    ]
    # scene 2 says two sentences with the 0.3 s pause between them
    assert res["data"]["scenes"][1]["voice_s"] == pytest.approx(2 * TONE_S + 0.3, abs=0.01)
    video = z.assets.get(res["asset_id"], owner_id="u1")
    assert (video.width, video.height) == (1080, 1080)
    assert res["duration_s"] == pytest.approx(4 * TONE_S + 0.3 + 3 * 0.6 - 2 * 0.3, abs=0.01)
    assert not work.path.exists()


def test_a_recording_stands_in_for_the_voice_and_the_scenes_share_it(
    z: Zhike, images: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "mine.wav"  # the user's own 2.4 s recording (a tone stands in for their voice)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=300:duration=2.4", path], check=True)
    rec = z.assets.upload_media(path, owner_id="u1", name="mine.wav").id
    script = "第一句话比较长一点。短句。"
    VoiceServer.seen.clear()
    job, _ = z.submit("script_video", {"script": script, "images": images, "recording": rec, "aspect": "1:1"}, "u1")
    res = finish(z, job.id).result
    assert VoiceServer.seen == [] and res["data"]["voice"] == "recording"
    scenes = res["data"]["scenes"]
    assert [s["voice_s"] for s in scenes] == pytest.approx([2.4 * 9 / 11, 2.4 * 2 / 11], abs=0.01)  # by characters
    assert scenes[1]["voice_start"] == pytest.approx(scenes[0]["voice_start"] + scenes[0]["voice_s"], abs=0.01)
    mp4 = asset_path(z, res["asset_id"], tmp_path, "video.mp4")
    assert float(ffprobe(mp4)["format"]["duration"]) == pytest.approx(2.4 + 1.0, abs=0.1)  # + lead-in and tail
    srt = z.assets.read_bytes(z.assets.get(res["extra_asset_ids"][0], owner_id="u1")).decode()
    assert srt_text(srt) == script


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"script": "   "}, "validation_failed", "params.script"),
        ({"script": "很长的脚本。" * 16_667}, "validation_failed", "params.script"),  # 100,002 characters
        ({"script": "好。" * 61}, "too_many_scenes", "params.script"),
        ({"images": ["nosuchimage"]}, "asset_not_found", "params.images.0"),
        ({"images": ["MUSIC"]}, "asset_wrong_kind", "params.images.0"),
        ({"music": "IMAGE"}, "asset_wrong_kind", "params.music"),
        ({"recording": "IMAGE"}, "asset_wrong_kind", "params.recording"),
        ({"voice": "robot-9000"}, "voice_unknown", "params.voice"),
        ({"crossfade": 1.0, "padding": 0.8}, "invalid_input", "params.crossfade"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    z: Zhike, images: list[str], music: str, params: dict[str, object], code: str, field: str
) -> None:
    base: dict[str, object] = {"script": SCRIPT, "images": images, "voice": "remote"}
    given = {k: ([music] if v == ["MUSIC"] else images[0] if v == "IMAGE" else v) for k, v in params.items()}
    with pytest.raises(ZhikeError) as e:
        z.submit("script_video", {**base, **given}, "u1")
    assert e.value.code == code and e.value.field == field and 400 <= e.value.status < 500, e.value.message


def test_scenes_are_sentences_or_marked_blocks() -> None:
    assert split_scenes("第一句。第二句！\n第三句？") == ["第一句。", "第二句！", "第三句？"]
    assert split_scenes("甲。乙。\n\n丙。\n---\n丁。") == ["甲。乙。", "丙。", "丁。"]


def test_the_timeline_overlaps_cross_fades_and_a_recording_is_cut_by_scene() -> None:
    plan = timeline([1.0, 2.0, 0.5], padding=1.0, crossfade=0.4)
    assert total_duration(plan) == pytest.approx(3.5 + 3.0 - 0.8)
    assert [s.voice_start for s in plan] == pytest.approx([0.5, 1.6 + 0.5, 1.6 + 2.6 + 0.5])
    rec = timeline([1.0, 2.0, 0.5], padding=1.0, crossfade=0.4, continuous=True)
    assert total_duration(rec) == pytest.approx(3.5 + 1.0)  # the recording plus the lead-in and tail
    assert [s.voice_start for s in rec] == pytest.approx([0.5, 1.5, 3.5])
    for a, b in zip(rec, rec[1:], strict=False):  # each cross-fade centred on the cut between two voices
        assert b.start == pytest.approx(a.start + a.duration - 0.4)
        assert b.start + 0.2 == pytest.approx(b.voice_start)


@pytest.mark.parametrize("frame", [(1080, 1920), (1920, 1080), (1080, 1080)])
@pytest.mark.parametrize("subject", [(40, 30, 140, 130), (500, 300, 620, 470), (200, 100, 440, 380), (0, 0, 640, 480)])
def test_the_camera_path_keeps_the_subject_in_frame(frame: tuple[int, int], subject: tuple[int, int, int, int]) -> None:
    for inward in (True, False):
        motion = ken_burns((640, 480), frame, subject, zoom=1.3, inward=inward)
        assert motion.start != motion.end  # the camera moves
        for t in np.linspace(0, 1, 11):
            x, y, w, h = motion.at(float(t))
            assert w / h == pytest.approx(frame[0] / frame[1], rel=1e-6)
            assert x >= -1e-6 and y >= -1e-6 and x + w <= 640 + 1e-6 and y + h <= 480 + 1e-6  # inside the image
            sub_w, sub_h = subject[2] - subject[0], subject[3] - subject[1]
            if sub_w <= w and sub_h <= h:  # a subject that fits the widest view stays whole in every frame
                assert contains(motion.at(float(t)), subject)
