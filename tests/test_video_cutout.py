"""video_cutout through a real app and worker with the real ffmpeg: a green-screen clip keyed to a WebM with alpha
(VP9 yuva420p) and onto a colour (MP4), the sound kept, the edge steady over time; person mode (MediaPipe) and
product mode (ISNet) on a few frames; bad inputs refused naming the field."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_settings
from tests.helpers.images import upload
from tests.helpers.video_clips import decode, encode, green_screen, probe_json, subject_mask
from zhike.core.errors import InvalidInput
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path_factory.mktemp("vcut") / "home", embedded_dir=embedded_dir))
    yield z
    z.engine.dispose()


@pytest.fixture(scope="module")
def screen(app: Zhike, tmp_path_factory: pytest.TempPathFactory) -> str:
    clip = green_screen(tmp_path_factory.mktemp("clips") / "green.mp4")
    return app.assets.upload_media(clip, owner_id="local", name="green.mp4").id


def run(z: Zhike, params: dict) -> object:
    job, _ = z.submit("video_cutout", params, "local")
    assert Worker(z).run_one(job.id)
    return z.jobs.get(job.id)


def output(z: Zhike, row: object, tmp: Path) -> tuple[Path, dict]:
    assert row.state == "succeeded", row.error
    asset = z.assets.get(row.result["asset_id"], owner_id="local")
    path = tmp / ("out.webm" if asset.mime == "video/webm" else "out.mp4")
    path.write_bytes(z.assets.read_bytes(asset))
    return path, row.result


def keyed_alpha(app: Zhike, screen: str, tmp: Path, smoothing: float) -> tuple[np.ndarray, dict, Path]:
    row = run(app, {"video": screen, "mode": "chroma", "smoothing": smoothing})
    path, res = output(app, row, tmp)
    return decode(path, pix_fmt="rgba", vp9_alpha=True)[..., 3].astype(np.float32), res, path


def regions() -> tuple[np.ndarray, np.ndarray]:
    """(inside the subject, 4 px from its edge; the screen, 6 px from the subject and off the AI mark's corner)."""
    subject = subject_mask()
    inner, far = subject.copy(), ~subject
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        inner &= np.roll(subject, (4 * dy, 4 * dx), (0, 1))
        far &= ~np.roll(subject, (6 * dy, 6 * dx), (0, 1))
    far[140:, 220:] = False  # the mark is opaque on purpose
    return inner, far


def test_green_screen_becomes_webm_with_alpha_and_sound(app: Zhike, screen: str, tmp_path: Path) -> None:
    alpha, res, path = keyed_alpha(app, screen, tmp_path, 0.6)
    info = probe_json(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert video["codec_name"] == "vp9" and video["tags"].get("alpha_mode") == "1"
    assert (video["width"], video["height"]) == (320, 180)
    assert audio and audio[0]["codec_name"] == "opus"  # the tone is kept
    assert info["format"]["tags"].get("zhike_labels", info["format"]["tags"].get("ZHIKE_LABELS")) == "visible"
    assert res["kind"] == "video" and res["data"]["transparent"] and res["data"]["frames"] == 25
    assert res["duration_s"] == pytest.approx(1.0, abs=0.05)
    inner, far = regions()
    assert alpha[:, inner].mean() > 250 and alpha[:, inner].min() > 200
    assert alpha[:, far].mean() < 3 and np.percentile(alpha[:, far], 99.9) < 40
    assert alpha[:, 150:, 250:].max() > 200  # the mark is visible on the transparent frame
    # The download (labelled export) is a remux of the marked render: the same VP9 packets, alpha and all.
    exported = tmp_path / "exported.webm"
    exported.write_bytes(app.exports.file(app.assets.get(res["asset_id"], owner_id="local")).data)
    assert packets(exported) == packets(path) and len(packets(path)) == 25
    tags = next(s for s in probe_json(exported)["streams"] if s["codec_type"] == "video")["tags"]
    assert {k.lower(): v for k, v in tags.items()}.get("alpha_mode") == "1"


def packets(path: Path) -> list[str]:
    """The video stream's packet hashes, as ffmpeg's framemd5 lists them (no decoding, no timing)."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-c", "copy", "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.rsplit(",", 1)[-1].strip() for line in out.splitlines() if line and not line.startswith("#")]


def test_smoothing_keeps_the_edge_from_flickering(app: Zhike, screen: str, tmp_path: Path) -> None:
    # The subject stands still and every frame has fresh noise: any change of the matte is flicker.
    def flicker(alpha: np.ndarray) -> float:
        return float(np.abs(np.diff(alpha[2:], axis=0)).mean())  # mean change per pixel per frame (0..255)

    raw, _, _ = keyed_alpha(app, screen, tmp_path, 0.0)
    smooth, _, _ = keyed_alpha(app, screen, tmp_path, 0.8)
    assert flicker(smooth) < 0.6 * flicker(raw)
    assert flicker(smooth) < 1.0


def test_background_colour_replaces_the_screen(app: Zhike, screen: str, tmp_path: Path) -> None:
    row = run(app, {"video": screen, "mode": "chroma", "background": "#FF00FF", "key_colour": "#14b43c"})
    path, res = output(app, row, tmp_path)
    info = probe_json(path)
    assert {s["codec_name"] for s in info["streams"]} == {"h264", "aac"} and not res["data"]["transparent"]
    frames = decode(path).astype(np.int16)
    _, far = regions()
    bg = frames[:, far].reshape(-1, 3).mean(axis=0)
    assert bg[0] > 235 and bg[1] < 20 and bg[2] > 235  # magenta, no green left
    face = frames[:, 60:80, 150:170].reshape(-1, 3).mean(axis=0)
    assert np.abs(face - (225, 180, 150)).max() < 25  # the subject keeps its colours (despill leaves skin alone)


def test_person_mode_on_a_few_frames(app: Zhike, tmp_path: Path) -> None:
    from PIL import Image
    from skimage import data

    person = np.asarray(Image.fromarray(data.astronaut()).resize((192, 192)))
    clip = encode([person, np.roll(person, 2, axis=1), np.roll(person, 4, axis=1)], tmp_path / "p.mp4", fps=10)
    vid = app.assets.upload_media(clip, owner_id="local").id
    row = run(app, {"video": vid, "mode": "person", "background": "#0000ff"})
    path, res = output(app, row, tmp_path)
    frames = decode(path).astype(np.int16)
    assert res["model"] == "mediapipe-selfie" and res["data"]["frames"] == 3
    assert 0.15 < res["data"]["coverage"] < 0.8
    assert np.abs(frames[:, 5:30, 5:30] - (0, 0, 255)).max() < 40  # the top-left corner is backdrop: now blue
    assert np.abs(frames[:, 100:120, 85:105] - person[100:120, 85:105]).mean() < 25  # the suit stays


def test_product_mode_mattes_with_isnet(app: Zhike, tmp_path: Path) -> None:
    from PIL import Image
    from skimage import data

    cup = np.asarray(Image.fromarray(data.coffee()).resize((192, 128)))  # a cup of coffee on a table, from above
    clip = encode([cup], tmp_path / "product.mp4", fps=10, tone=False)  # one frame: one ISNet run (seconds)
    vid = app.assets.upload_media(clip, owner_id="local").id
    row = run(app, {"video": vid, "mode": "product", "background": "#000000", "model": "isnet-small"})
    path, res = output(app, row, tmp_path)
    out = decode(path).astype(np.int16)[0]
    assert res["model"] == "isnet-small" and not res["data"]["audio"] and 0.1 < res["data"]["coverage"] < 0.8
    assert out[:12, :12].mean() < 15 and out[-12:, :12].mean() < 15  # the table's corners are now black
    assert np.abs(out[50:78, 80:112] - cup[50:78, 80:112]).mean() < 20  # the coffee stays


def test_bad_inputs_are_refused_naming_the_field(app: Zhike, screen: str, tmp_path: Path) -> None:
    from PIL import Image

    png = upload(app, Image.new("RGB", (8, 8), "white"))
    with pytest.raises(InvalidInput) as e:
        app.submit("video_cutout", {"video": png}, "local")
    assert (e.value.code, e.value.field) == ("asset_wrong_kind", "params.video")
    tone = tmp_path / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=300:duration=1", str(tone)], check=True
    )
    sound = app.assets.upload_media(tone, owner_id="local").id
    with pytest.raises(InvalidInput) as e:
        app.submit("video_cutout", {"video": sound}, "local")
    assert (e.value.code, e.value.field, e.value.ctx["kind"]) == ("asset_wrong_kind", "params.video", "audio")
    with pytest.raises(InvalidInput) as e:
        app.submit("video_cutout", {"video": screen, "background": "#fff", "background_image": png}, "local")
    assert e.value.field == "params.background_image"
    with pytest.raises(InvalidInput) as e:
        app.submit("video_cutout", {"video": screen, "key_colour": "green-ish"}, "local")
    assert "params.key_colour" in (e.value.field or "")
    long = tmp_path / "long.mp4"  # 601 s of a 32x32 card at 1 fps: over the op's 600 s
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=green:s=32x32:r=1:d=601", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(long)],
        check=True,
    )  # fmt: skip
    row = run(app, {"video": app.assets.upload_media(long, owner_id="local").id, "mode": "chroma"})
    assert row.state == "failed" and (row.error["code"], row.error["field"]) == ("media_too_long", "params.video")
    grey = tmp_path / "grey.mp4"
    encode([np.full((64, 64, 3), 128, np.uint8)] * 3, grey, fps=10, tone=False)
    row = run(app, {"video": app.assets.upload_media(grey, owner_id="local").id, "mode": "chroma"})
    assert row.state == "failed" and (row.error["code"], row.error["field"]) == (
        "chroma_key_unclear",
        "params.key_colour",
    )


def test_frames_between_key_frames_blend_their_mattes() -> None:
    from zhike.ops.video_cutout import _blend

    frames = [np.full((2, 2, 3), i, np.uint8) for i in (1, 2, 3)]  # frames 1..3 between key frames 0 and 4
    a, b = (0, np.zeros((2, 2), np.float32)), (4, np.ones((2, 2), np.float32))
    out = list(_blend(frames, a, b))
    assert [int(rgb[0, 0, 0]) for rgb, _ in out] == [1, 2, 3]  # order kept
    assert [float(m[0, 0]) for _, m in out] == [0.25, 0.5, 0.75]
    assert [float(m[0, 0]) for _, m in _blend(frames, None, b)] == [1.0, 1.0, 1.0]  # before the first: held
