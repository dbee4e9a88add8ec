"""Audio and video assets end to end on a real app and worker: an op renders with ffmpeg in its work folder and
stores through ctx.save_media; the job lists its outputs, the library filters by kind, downloads carry the labels
(read back by ffprobe, exiftool and c2pa), thumbnails are a poster frame or a waveform, uploads of recordings are
checked (silent, corrupt → 4xx naming the field), and media where an image is needed is a clear 422."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageChops, ImageStat
from pydantic import BaseModel, Field

from tests.conftest import make_settings
from zhike.core.context import RunContext
from zhike.core.registry import _REGISTRY, operation
from zhike.core.types import MediaAssetId, MediaResult
from zhike.core.ui import ui
from zhike.core.work import JobWork
from zhike.media import check_input, probe, run_ffmpeg
from zhike.provenance.c2pa_manifest import read as read_c2pa
from zhike.services.container import Zhike

OWNER = "owner-m"
PROBE = "media_probe_test"
SRT = "1\n00:00:00,000 --> 00:00:01,000\n保温杯 99 元\n\n"


class MediaProbe(BaseModel):
    """Renders a short test clip with ffmpeg's lavfi sources and stores it (with an SRT beside a video)."""

    kind: Literal["video", "audio"] = Field("video", json_schema_extra=ui("类型", "Kind"))
    seconds: float = Field(1.0, gt=0, le=5, json_schema_extra=ui("时长", "Seconds"))
    source: MediaAssetId | None = Field(None, json_schema_extra=ui("素材", "Source"))  # audio: made MP3 from it


def run_probe(ctx: RunContext, p: MediaProbe) -> MediaResult:
    tone = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={p.seconds}"]
    total = round(p.seconds * 10)

    def progress(done: float) -> None:
        ctx.progress(round(done * 10), total)

    if p.source is not None:  # read in place from the store, checked, and stored again as MP3 with lineage
        row, src = ctx.media_file(p.source, field="params.source", kinds=("audio",))
        info = check_input(src, field="params.source", want="audio")
        out = ctx.work_dir / "voice.mp3"
        run_ffmpeg(["-i", src, "-c:a", "libmp3lame", out], total_s=info.duration_s, progress=progress)
        asset = ctx.save_media(out, mime="audio/mpeg", params=p.model_dump(), model=None, parent_id=row.id)
        return MediaResult(asset_id=asset, kind="audio", duration_s=probe(out).duration_s)
    if p.kind == "audio":
        out = ctx.work_dir / "voice.wav"
        run_ffmpeg([*tone, out], total_s=p.seconds, progress=progress)
        asset = ctx.save_media(out, mime="audio/wav", params=p.model_dump(), model="test-voice", name="配音")
        return MediaResult(asset_id=asset, kind="audio", duration_s=probe(out).duration_s, model="test-voice")
    out = ctx.work_dir / "clip.mp4"
    video = ["-f", "lavfi", "-i", f"testsrc2=size=360x640:rate=30:duration={p.seconds}"]
    codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    run_ffmpeg([*video, *tone, *codecs, out], total_s=p.seconds, progress=progress)
    asset = ctx.save_media(out, mime="video/mp4", params=p.model_dump(), model=None, name="主图视频")
    srt = ctx.work_dir / "clip.srt"
    srt.write_text(SRT, encoding="utf-8")
    subs = ctx.save_media(srt, mime="text/srt", params=p.model_dump(), model=None, parent_id=None, name="主图视频")
    info = probe(out)
    return MediaResult(
        asset_id=asset, kind="video", duration_s=info.duration_s, extra_asset_ids=[subs], data={"fps": 30}
    )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Zhike, dict[str, str]]]:
    from zhike.api.app import create_app

    operation(PROBE, params=MediaProbe, result=MediaResult, title={"zh": "测试音视频", "en": "Media probe"})(run_probe)
    home = tmp_path_factory.mktemp("media") / "home"
    settings = make_settings(home, workers_gpu=0, workers_quick=0, workers_cpu=1)
    application = create_app(settings, start_worker=True)
    with TestClient(application) as client:
        z = application.state.zhike
        _, key = z.keys.create("m", owner_id=OWNER)
        yield client, z, {"Authorization": f"Bearer {key}"}
    _REGISTRY.pop(PROBE, None)


def run_job(client: TestClient, auth: dict[str, str], params: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v1/jobs", json={"op": PROBE, "params": params}, headers=auth)
    assert r.status_code == 201, r.text
    job = client.get(f"/api/v1/jobs/{r.json()['id']}?wait=60", headers=auth).json()
    assert job["state"] == "succeeded", job
    return job


@pytest.fixture(scope="module")
def video_job(api: tuple[TestClient, Zhike, dict[str, str]]) -> dict[str, Any]:
    client, _, auth = api
    return run_job(client, auth, {"kind": "video", "seconds": 1.0})


def ffprobe_tags(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)["format"].get("tags", {})


def exiftool(path: Path) -> dict[str, Any]:
    out = subprocess.run(["exiftool", "-j", "-G1", "-a", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def test_a_rendered_video_is_stored_with_its_srt_listed_and_downloaded_labelled(
    api: tuple[TestClient, Zhike, dict[str, str]], video_job: dict[str, Any], tmp_path: Path
) -> None:
    client, z, auth = api
    result = video_job["result"]
    vid, srt = result["asset_id"], result["extra_asset_ids"][0]
    assert result["kind"] == "video" and result["duration_s"] == pytest.approx(1.0, abs=0.1)
    assert [o["asset_id"] for o in video_job["outputs"]] == [vid, srt]
    asset = client.get(f"/api/v1/assets/{vid}", headers=auth).json()
    assert (asset["mime"], asset["kind"], asset["width"], asset["height"]) == ("video/mp4", "video", 360, 640)
    assert asset["name"] == "主图视频" and asset["op"] == PROBE
    sub = client.get(f"/api/v1/assets/{srt}", headers=auth).json()
    assert (sub["mime"], sub["kind"], sub["width"]) == ("application/x-subrip", "subtitles", None)
    kinds = {
        k: [a["id"] for a in client.get(f"/api/v1/assets?kind={k}", headers=auth).json()["assets"]]
        for k in ("video", "subtitles", "image", "audio")
    }
    assert kinds["video"] == [vid] and kinds["subtitles"] == [srt] and vid not in kinds["image"]

    r = client.get(f"/api/v1/assets/{vid}/file?download=1", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert unquote(r.headers["content-disposition"]).endswith("主图视频-360x640.mp4")
    path = tmp_path / "out.mp4"
    path.write_bytes(r.content)
    # ffprobe: still the same video, and the AIGC tag names this asset
    info = probe(path)
    assert info.video is not None and (info.video.width, info.video.height) == (360, 640) and info.has_audio
    fields = json.loads(ffprobe_tags(path)["AIGC"])
    assert fields["Label"] == "1" and fields["ProduceID"] == vid and fields["ContentProducer"] == "Zhike"
    # exiftool: the same seven fields in the XMP packet images carry, and in the MP4 keys
    meta = exiftool(path)
    assert json.loads(meta["XMP-TC260:Aigc"]) == fields and json.loads(meta["Keys:AIGC"]) == fields
    # c2pa: a valid manifest, signed by this deployment (trusted with its CA), naming the asset and the mark
    manifest = read_c2pa(r.content, "video/mp4", z.labels.trust_pem)
    assert manifest["status"] == "trusted" and manifest["asset_id"] == vid
    assert "visible" in manifest["labels"]["applied"]
    # The corner mark: the exported frame differs from the stored one in the bottom-right corner (the AI生成
    # plate), and only there (elsewhere re-encoding noise)
    marked = _frame(path, 0.5)
    stored = _frame(z.assets.blobs.path_for(z.assets.get(vid, owner_id=OWNER).sha256, "video/mp4"), 0.5)
    diff = ImageChops.difference(marked, stored).convert("L")
    corner, rest = diff.crop((290, 600, 355, 635)), diff.crop((0, 100, 360, 560))
    assert ImageStat.Stat(corner).mean[0] > 40 and ImageStat.Stat(rest).mean[0] < 6
    # Subtitles leave as stored (UTF-8 text)
    r = client.get(f"/api/v1/assets/{srt}/file", headers=auth)
    assert r.status_code == 200 and r.content.decode("utf-8") == SRT
    # A conversion or a size is for images only
    assert client.get(f"/api/v1/assets/{vid}/file?format=png", headers=auth).json()["error"]["field"] == "format"
    bad = client.get(f"/api/v1/assets/{vid}/file?size=800x800", headers=auth)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "asset_wrong_kind"


def _frame(path: Path, at: float) -> Image.Image:
    png = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-ss",
            str(at),
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "image2pipe",
            "-c:v",
            "png",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return Image.open(io.BytesIO(png)).convert("RGB")


def test_thumbnails_are_a_poster_frame_a_waveform_and_a_subtitle_card(
    api: tuple[TestClient, Zhike, dict[str, str]], video_job: dict[str, Any]
) -> None:
    client, _, auth = api
    audio = run_job(client, auth, {"kind": "audio", "seconds": 1.0})["result"]
    assert audio["kind"] == "audio" and audio["model"] == "test-voice"
    sizes = {}
    for aid in (video_job["result"]["asset_id"], audio["asset_id"], video_job["result"]["extra_asset_ids"][0]):
        r = client.get(f"/api/v1/assets/{aid}/thumb?size=128", headers=auth)
        assert r.status_code == 200 and r.headers["content-type"] == "image/webp", r.text
        sizes[aid] = Image.open(io.BytesIO(r.content)).size
    assert list(sizes.values()) == [(72, 128), (128, 64), (128, 128)]  # 9:16 frame, 2:1 waveform, square card


def test_downloaded_audio_carries_the_label_and_verifies(
    api: tuple[TestClient, Zhike, dict[str, str]], tmp_path: Path
) -> None:
    client, _, auth = api
    aid = run_job(client, auth, {"kind": "audio", "seconds": 1.0})["result"]["asset_id"]
    r = client.get(f"/api/v1/assets/{aid}/file", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    path = tmp_path / "voice.wav"
    path.write_bytes(r.content)
    assert ffprobe_tags(path)["comment"].startswith('AIGC={"Label":"1"')
    assert json.loads(exiftool(path)["XMP-TC260:Aigc"])["ProduceID"] == aid
    assert probe(path).duration_s == pytest.approx(1.0, abs=0.05)  # no notice by default: the audio as made
    v = client.post("/api/v1/verify", files={"file": ("voice.wav", r.content, "audio/wav")}, headers=auth)
    assert v.status_code == 200, v.text
    report = v.json()
    assert report["implicit"]["status"] == "valid" and report["implicit"]["integrity"] == "ok"
    assert report["c2pa"]["status"] == "trusted" and report["asset"]["id"] == aid
    assert report["asset"]["in_deployment"] is True


def test_uploaded_recordings_are_checked(
    api: tuple[TestClient, Zhike, dict[str, str]], video_job: dict[str, Any], tmp_path: Path
) -> None:
    client, _, auth = api

    def make(name: str, *args: str) -> bytes:
        out = tmp_path / name
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(out)], check=True)
        return out.read_bytes()

    def upload(name: str, data: bytes) -> Any:
        return client.post("/api/v1/assets", files={"file": (name, data, "application/octet-stream")}, headers=auth)

    r = upload("我的录音.mp3", make("voice.mp3", "-f", "lavfi", "-i", "sine=frequency=300:duration=1"))
    assert r.status_code == 201, r.text
    row = r.json()
    assert (row["mime"], row["kind"], row["origin"], row["name"]) == ("audio/mpeg", "audio", "upload", "我的录音")
    ogg = make("voice.ogg", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "libvorbis")
    r = upload("voice.ogg", ogg)
    assert r.status_code == 201 and r.json()["mime"] == "audio/mp4", r.text  # converted once to M4A
    # An upload is the user's own file: returned as stored, never labelled AI-generated
    got = client.get(f"/api/v1/assets/{row['id']}/file", headers=auth).content
    assert b"AIGC" not in got

    silent = make("silent.wav", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "1")
    corrupt = b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40
    for name, data, code in [("silent.wav", silent, "media_silent"), ("broken.mp3", corrupt, "media_damaged")]:
        r = upload(name, data)
        assert r.status_code == 422, r.text
        assert (r.json()["error"]["code"], r.json()["error"]["field"]) == (code, "file")

    # An op reads an uploaded recording in place (ctx.media_file) and stores what it made from it, with lineage
    made = run_job(client, auth, {"kind": "audio", "source": row["id"]})["result"]
    out = client.get(f"/api/v1/assets/{made['asset_id']}", headers=auth).json()
    assert (out["mime"], out["parent_id"], out["name"]) == ("audio/mpeg", row["id"], "我的录音")
    assert made["duration_s"] == pytest.approx(1.0, abs=0.1)
    # ... and a video where audio is needed fails the job naming the field
    video_id = client.get("/api/v1/assets?kind=video", headers=auth).json()["assets"][0]["id"]
    r = client.post("/api/v1/jobs", json={"op": PROBE, "params": {"kind": "audio", "source": video_id}}, headers=auth)
    job = client.get(f"/api/v1/jobs/{r.json()['id']}?wait=60", headers=auth).json()
    assert job["state"] == "failed" and job["error"]["code"] == "asset_wrong_kind", job
    assert job["error"]["field"] == "params.source" and job["error"]["ctx"]["expected"] == "audio"

    # Audio where an image is needed: 422 naming the field and both kinds
    r = client.post("/api/v1/jobs", json={"op": "upscale", "params": {"image": row["id"]}}, headers=auth)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "asset_wrong_kind" and err["field"] == "params.image"
    assert err["ctx"]["kind"] == "audio" and err["ctx"]["expected"] == "image"


def test_a_retried_job_finds_its_work_files_and_its_stored_output(
    api: tuple[TestClient, Zhike, dict[str, str]], tmp_path: Path
) -> None:
    """What a killed render relies on: files in ctx.work_dir are still there for the next attempt of the job, and a
    stored output recorded with record_staged comes back (same asset id) instead of being made again."""
    _, z, _ = api

    def attempt() -> RunContext:
        work = JobWork(z.settings.work_dir, "retriedjob01")
        return RunContext(
            job_id="retriedjob01", owner_id=OWNER, op=PROBE, params={}, settings=z.settings, models=None,  # type: ignore[arg-type]
            assets=z.assets, sink=lambda *a: None, work=work,
        )  # fmt: skip

    first = attempt()
    scene = first.work_dir / "scene-001.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=duration=0.5", scene])
    aid = first.save_media(scene, mime="audio/wav", params={"scene": 1}, model=None)
    first.record_staged("scene-001", first.staged[-1], duration_s=0.5)
    # the worker dies here; another attempt of the same job starts
    second = attempt()
    assert (second.work_dir / "scene-001.wav").is_file()
    staged, data = second.restage("scene-001") or (None, None)
    assert staged is not None and staged.row.id == aid and data == {"duration_s": 0.5}
    assert staged.row.mime == "audio/wav" and staged.data == scene.read_bytes()
    second.work.remove()
