"""GB 45438 labels on audio and video (provenance/media.py) read back by independent readers: ffprobe (the AIGC tag),
exiftool (XMP-TC260 and the container's own tag), c2pa-python (the signed manifest); our verify and `zhike verify`
agree, and notice that a label was altered."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.conftest import make_settings
from zhike.cli.main import app as cli_app
from zhike.core.rows import AssetRow
from zhike.media import probe
from zhike.provenance.c2pa_manifest import read as read_c2pa
from zhike.provenance.labels import LabelConfig
from zhike.provenance.media import MARKED_ARGS, RHYTHM, mark_overlay
from zhike.provenance.service import LabelService
from zhike.provenance.verify import IdIndex
from zhike.provenance.xmp import read_label
from zhike.settings import get_settings

AID = "mediaLabelTest01"
TONE = ["-f", "lavfi", "-i", "sine=frequency=500:duration=1"]
CLIP = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def ff(out: Path, *args: str) -> bytes:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(out)], check=True)
    return out.read_bytes()


def row(mime: str, origin: str = "generated") -> AssetRow:
    return AssetRow(
        id=AID, owner_id="o", sha256="0" * 64, mime=mime, width=None, height=None, size_bytes=1, origin=origin,
        op="tts", params={"text": "保温杯"}, model="voice", seed=None, zhike_version="t", parent_id=None, job_id="j",
        tags=[], created_at=datetime(2026, 12, 7), name=None,
    )  # fmt: skip


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("made")
    return {
        "audio/wav": ff(d / "a.wav", *TONE),
        "audio/mpeg": ff(d / "a.mp3", *TONE, "-c:a", "libmp3lame"),
        "audio/mp4": ff(d / "a.m4a", *TONE, "-c:a", "aac"),
        "video/mp4": ff(d / "v.mp4", *CLIP, *TONE, *X264, "-c:a", "aac"),
        "video/webm": ff(d / "v.webm", *CLIP, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"),
    }


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> LabelService:
    return LabelService(LabelConfig(), labels_dir=tmp_path_factory.mktemp("labels"), secret=b"media-secret")


def readers(data: bytes, suffix: str, tmp: Path) -> tuple[dict[str, str], dict[str, Any]]:
    path = tmp / f"labelled{suffix}"
    path.write_bytes(data)
    tags = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", str(path)],
            capture_output=True, text=True, check=True,
        ).stdout
    )["format"].get("tags", {})  # fmt: skip
    exif = json.loads(subprocess.run(["exiftool", "-j", "-G1", "-a", str(path)], capture_output=True, text=True).stdout)
    return tags, exif[0]


@pytest.mark.parametrize(
    ("mime", "suffix", "exif_tags", "signed"),
    [
        ("audio/wav", ".wav", ["XMP-TC260:Aigc"], True),
        ("audio/mpeg", ".mp3", ["ID3v2_4:UserDefinedText"], True),
        ("audio/mp4", ".m4a", ["XMP-TC260:Aigc", "Keys:AIGC"], True),
        ("video/mp4", ".mp4", ["XMP-TC260:Aigc", "Keys:AIGC"], True),
        ("video/webm", ".webm", [], False),
    ],
)
def test_each_format_carries_the_label_where_readers_find_it(
    svc: LabelService,
    made: dict[str, bytes],
    tmp_path: Path,
    mime: str,
    suffix: str,
    exif_tags: list[str],
    signed: bool,
) -> None:
    out = svc.label(made[mime], mime, row(mime))
    assert "implicit" in out.applied and ("c2pa" in out.applied) == signed
    want = svc.tc260_fields(row(mime))
    tags, exif = readers(out.data, suffix, tmp_path)
    # ffprobe: the tag AIGC, or a WAV's INFO comment "AIGC=<json>"
    raw = tags.get("AIGC") or tags.get("comment", "").removeprefix("AIGC=")
    assert json.loads(raw) == want
    for tag in exif_tags:  # exiftool: the XMP packet images carry, and the container's own tag
        assert json.loads(str(exif[tag]).removeprefix("(AIGC) ")) == want, tag
    manifest = read_c2pa(out.data, mime, svc.trust_pem) if signed else {"status": "absent"}
    assert manifest["status"] == ("trusted" if signed else "absent")
    if not signed:
        assert "C2PA does not support video/webm" in out.skipped["c2pa"]
    # Still the same media: the streams and length survive the labels
    before, after = tmp_path / f"before{suffix}", tmp_path / f"after{suffix}"
    before.write_bytes(made[mime])
    after.write_bytes(out.data)
    a, b = probe(before), probe(after)
    assert [s.kind for s in a.streams] == [s.kind for s in b.streams]
    assert b.duration_s == pytest.approx(a.duration_s, abs=0.06)
    report = svc.verify(out.data, mime, IdIndex([AID]))
    assert report["implicit"]["status"] == "valid" and report["implicit"]["integrity"] == "ok"
    assert report["asset"] == {"id": AID, "in_deployment": True, "found_by": report["asset"]["found_by"],
                               "consistent": True, "asset": {"id": AID}}  # fmt: skip
    assert set(report["asset"]["found_by"]) == ({"implicit", "c2pa"} if signed else {"implicit"})


def test_an_altered_label_and_an_unlabelled_file_are_told_apart(svc: LabelService, made: dict[str, bytes]) -> None:
    out = svc.label(made["audio/wav"], "audio/wav", row("audio/wav"))
    forged = out.data.replace(b'"ProduceID":"' + AID.encode(), b'"ProduceID":"' + b"x" * len(AID))
    report = svc.verify(forged, "audio/wav", IdIndex([AID]))
    assert report["implicit"]["status"] == "invalid" and report["implicit"]["integrity"] == "mismatch"
    assert report["c2pa"]["status"] == "invalid"  # the signed bytes changed
    plain = svc.verify(made["audio/wav"], "audio/wav", IdIndex([AID]))
    assert plain["implicit"]["status"] == "absent" and plain["c2pa"]["status"] == "absent"
    assert plain["summary"]["en"] == "no valid AI-content label found"


def test_the_audio_notice_and_a_mark_the_render_drew(tmp_path: Path, made: dict[str, bytes]) -> None:
    """The tone notice (no TTS voice set) comes first and lengthens the audio; the spoken-notice hook is used when
    set. A video whose render drew the mark itself (mark_overlay + MARKED_ARGS) is not marked twice."""
    svc = LabelService(LabelConfig(audio_notice="start"), labels_dir=tmp_path / "l", secret=b"s")
    out = svc.label(made["audio/mp4"], "audio/mp4", row("audio/mp4"))
    assert "notice-start" in out.applied
    path = tmp_path / "n.m4a"
    path.write_bytes(out.data)
    tone = sum(on + off for on, off in RHYTHM)  # short-long-short-short: 1.5 s
    assert probe(path).duration_s == pytest.approx(1.0 + tone, abs=0.06)
    assert svc.verify(out.data, "audio/mp4", None)["notice"]["where"] == "start"

    said: list[tuple[str, str]] = []

    def speak(text: str, lang: str) -> Path:
        said.append((text, lang))
        voice = tmp_path / "notice.wav"  # stands in for a TTS voice saying it
        ff(voice, "-f", "lavfi", "-i", "sine=frequency=200:duration=0.5")
        return voice

    svc.media.spoken_notice = speak
    out = svc.label(made["audio/wav"], "audio/wav", row("audio/wav"))
    path = tmp_path / "s.wav"
    path.write_bytes(out.data)
    assert said == [("本内容由人工智能生成", "zh")] and probe(path).duration_s == pytest.approx(1.5, abs=0.05)

    mark = tmp_path / "mark.png"
    mark_overlay(320, 240, svc.config).save(mark)
    drawn = ff(
        tmp_path / "drawn.mp4", *CLIP, "-i", str(mark), "-filter_complex", "[0:v][1:v]overlay=0:0", *X264, *MARKED_ARGS
    )
    out = svc.label(drawn, "video/mp4", row("video/mp4"))
    assert "visible" in out.applied
    # Not re-encoded: the video stream's bytes are the render's own (a second mark would re-encode it)
    assert drawn[drawn.index(b"mdat") : drawn.index(b"mdat") + 4096] in out.data


def test_an_animated_webp_keeps_its_frames_and_gets_the_metadata_labels(svc: LabelService) -> None:
    frames = [Image.new("RGB", (96, 96), (40 * i, 90, 200 - 40 * i)) for i in range(4)]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = svc.label(buf.getvalue(), "image/webp", row("image/webp"))
    assert out.skipped["watermark"] == "animated image: its frames are kept as made"
    assert Image.open(io.BytesIO(out.data)).n_frames == 4
    assert read_label(out.data)["fields"]["ProduceID"] == AID  # type: ignore[index]
    assert read_c2pa(out.data, "image/webp", svc.trust_pem)["status"] == "trusted"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("ZHIKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZHIKE_DEVICE", "cpu")
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(cli_app, list(args), catch_exceptions=False)
    get_settings.cache_clear()


def test_zhike_verify_reads_media(cli: Any, tmp_path: Path, made: dict[str, bytes]) -> None:
    from zhike.services.container import Zhike

    z = Zhike(make_settings(tmp_path / "home"))
    labelled = tmp_path / "voice.mp3"
    labelled.write_bytes(z.labels.label(made["audio/mpeg"], "audio/mpeg", row("audio/mpeg")).data)
    res = cli("verify", str(labelled))
    assert res.exit_code == 0, res.output
    assert AID in res.output and "trusted" in res.output and "audio/mpeg" in res.output
    plain = tmp_path / "plain.mp3"
    plain.write_bytes(made["audio/mpeg"])
    assert cli("verify", str(plain)).exit_code == 1
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40)
    res = cli("verify", str(broken))
    assert res.exit_code == 2 and "FILE" in res.output
    z.engine.dispose()
