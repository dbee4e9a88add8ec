"""animate (图生视频) through a real app and worker: the parallax default with the embedded ISNet on a synthetic photo
(a red disc on a textured backdrop), read back by ffprobe and decoded frame by frame; GIF/WebP; bad input; and the
video-model loaders on tiny random SVD and AnimateDiff models in their diffusers formats."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_settings
from tests.helpers.jobs import run as run_job
from zhike.core.errors import ZhikeError
from zhike.services.container import Zhike

W, H, R = 320, 240, 44
RED = (220, 30, 30)


def disc_photo(cx: int, cy: int) -> bytes:
    """A red disc on a blue-green textured backdrop (stripes and noise: a shift shows in every pixel)."""
    yy, xx = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(0)
    base = np.stack([40 + 20 * np.sin(xx / 7.0), 110 + 40 * np.sin((xx + yy) / 11.0), 150 + 30 * np.cos(yy / 9.0)], -1)
    img = np.clip(base + rng.normal(0, 12, (H, W, 1)), 0, 255)
    img[(xx - cx) ** 2 + (yy - cy) ** 2 <= R * R] = RED
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path_factory.mktemp("animate") / "home", embedded_dir=embedded_dir))
    yield z
    z.engine.dispose()


@pytest.fixture(scope="module")
def photo(app: Zhike) -> str:
    """The disc near the right edge. Every parallax test animates this one photo at one size: the op keeps recent
    mattes, so ISNet runs once for the module."""
    return app.assets.upload(disc_photo(W - R - 30, H // 2), owner_id="local", name="disc.png").id


def run(z: Zhike, params: dict[str, Any]) -> dict[str, Any]:
    return run_job(z, "animate", params, owner="local").result


def stored(z: Zhike, res: dict[str, Any], tmp: Path, suffix: str) -> Path:
    asset = z.assets.get(res["asset_id"], owner_id="local")
    out = tmp / f"out.{suffix}"
    out.write_bytes(z.assets.read_bytes(asset))
    return out


def ffprobe(path: Path) -> dict[str, Any]:
    cmd = ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", str(path)]
    return json.loads(subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout)


def decode(path: Path, w: int, h: int) -> np.ndarray:
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3).astype(np.int16)


def red(frame: np.ndarray) -> np.ndarray:
    return (frame[..., 0] > 150) & (frame[..., 1] < 90) & (frame[..., 2] < 90)


def test_parallax_mp4_moves_every_frame_and_keeps_the_subject_whole(app: Zhike, photo: str, tmp_path: Path) -> None:
    # The camera panning left (the picture moves right) at full strength: unchecked, the foreground layer would
    # carry the disc near the right edge 51 px past it.
    res = run(app, {"image": photo, "preset": "pan_left", "duration": 2, "fps": 24, "strength": 2})
    assert res["kind"] == "video" and res["data"]["method"] == "parallax" and res["model"] == "isnet-medium"
    assert (res["data"]["width"], res["data"]["height"], res["data"]["frames"]) == (W, H, 48)
    path = stored(app, res, tmp_path, "mp4")
    info = ffprobe(path)
    (v,) = info["streams"]
    assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p" and (v["width"], v["height"]) == (W, H)
    assert v["r_frame_rate"] == "24/1" and int(v["nb_read_frames"]) == 48
    assert abs(float(info["format"]["duration"]) - 2.0) <= 1 / 24 + 1e-6
    assert info["format"]["tags"]["zhike_labels"] == "visible"  # the AI mark was drawn in the same pass

    frames = decode(path, W, H)
    assert len(frames) == 48
    diffs = [np.abs(frames[i + 1] - frames[i]).mean() for i in range(47)]
    assert min(diffs) > 0.3, diffs  # every frame moves (H.264 noise alone is far below this on a still)
    disc_area = np.pi * R * R
    for i, f in enumerate(frames):
        ys, xs = np.nonzero(red(f))
        assert abs(len(xs) - disc_area) < 0.15 * disc_area, (i, len(xs))  # the disc whole in every frame...
        assert xs.min() > 0 and xs.max() < W - 1 and ys.min() > 0 and ys.max() < H - 1, i  # ...and inside it
        x0, y0, x1, y1 = res["data"]["subject_boxes"][i]  # the matte's box as placed agrees with the pixels
        assert abs(x0 - xs.min()) <= 4 and abs(x1 - 1 - xs.max()) <= 4 and abs(y0 - ys.min()) <= 4, i
    assert xs.mean() - np.nonzero(red(frames[0]))[1].mean() > 15  # it did move right, as far as the edge allowed


def test_the_background_behind_the_subject_is_filled(app: Zhike, photo: str, tmp_path: Path) -> None:
    res = run(app, {"image": photo, "preset": "pan_right", "duration": 2, "fps": 30, "format": "mp4"})
    frames = decode(stored(app, res, tmp_path, "mp4"), W, H)
    assert len(frames) == 60
    yy, xx = np.mgrid[0:H, 0:W]

    def centre(f: np.ndarray) -> tuple[float, float]:
        ys, xs = np.nonzero(red(f))
        return xs.mean(), ys.mean()

    (x_a, y_a), (x_b, y_b) = centre(frames[0]), centre(frames[-1])
    assert x_a - x_b > 30  # panning right moved the subject left
    # Where the disc was at the start and is no more at the end: the backdrop must show there, not the red disc
    # (an unfilled background layer would still hold the original disc).
    was = (xx - x_a) ** 2 + (yy - y_a) ** 2 <= (R - 3) ** 2
    left = was & ((xx - x_b) ** 2 + (yy - y_b) ** 2 > (R + 4) ** 2)
    assert left.sum() > 800
    assert red(frames[-1])[left].mean() < 0.02
    assert np.abs(frames[-1][left] - np.array(RED)).sum(-1).min() > 60  # no pixel of it is the disc's colour


@pytest.mark.parametrize(("fmt", "preset"), [("gif", "sway"), ("webp", "push_in")])
def test_animated_gif_and_webp(app: Zhike, photo: str, tmp_path: Path, fmt: str, preset: str) -> None:
    res = run(app, {"image": photo, "preset": preset, "duration": 2, "fps": 24, "format": fmt})
    assert res["kind"] == "image" and res["data"]["frames"] == 48
    asset = app.assets.get(res["asset_id"], owner_id="local")
    assert asset.mime == f"image/{fmt}"
    with Image.open(stored(app, res, tmp_path, fmt)) as im:
        assert im.format == fmt.upper() and im.is_animated and im.n_frames == 48 and im.size == (W, H)
        im.seek(0)
        first = np.asarray(im.convert("RGB"), np.int16)
        im.seek(24)
        assert np.abs(np.asarray(im.convert("RGB"), np.int16) - first).mean() > 1


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"duration": 10}, "params.duration", "validation_failed"),
        ({"duration": 1}, "params.duration", "validation_failed"),
        ({"preset": "spin"}, "params.preset", "validation_failed"),
        ({"fps": 60}, "params.fps", "validation_failed"),
        ({"format": "avi"}, "params.format", "validation_failed"),
        ({"model": "isnet-small"}, "params.model", "model_wrong_kind"),
        ({"model": "nope"}, "params.model", "model_not_installed"),
    ],
)
def test_bad_input_names_the_field(app: Zhike, photo: str, change: dict, field: str, code: str) -> None:
    with pytest.raises(ZhikeError) as e:
        app.submit("animate", {"image": photo, **change}, "local")
    assert 400 <= e.value.status < 500 and e.value.field == field and e.value.code == code, e.value


def test_a_non_image_asset_is_refused(app: Zhike, tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=440:d=1", str(wav)]
    subprocess.run(cmd, check=True, timeout=60)
    audio = app.assets.upload_media(wav, owner_id="local", name="tone.wav")
    with pytest.raises(ZhikeError) as e:
        app.submit("animate", {"image": audio.id}, "local")
    assert e.value.status == 422 and e.value.field == "params.image" and e.value.code == "asset_wrong_kind"


# -- video models users add: tiny random ones in their real diffusers formats ----------------------------------
@pytest.fixture(scope="module")
def video_models(app: Zhike, tiny_sd15: Path, models_root: Path) -> dict[str, str]:
    from tests.helpers.tiny_video import build_tiny_motion_adapter, build_tiny_svd

    svd = app.catalog.add(str(build_tiny_svd(models_root / "tiny-svd")), name="tiny-svd")
    motion = app.catalog.add(str(build_tiny_motion_adapter(models_root / "tiny-motion")), name="tiny-motion")
    base = app.catalog.add(str(tiny_sd15), name="tiny-sd15")
    assert (svd.kind, svd.family, motion.kind, motion.family) == ("video", "svd", "video", "animatediff")
    return {"svd": svd.name, "animatediff": motion.name, "base": base.name}


def test_stable_video_diffusion_makes_the_asked_frames(
    app: Zhike, photo: str, video_models: dict[str, str], tmp_path: Path
) -> None:
    params = {"image": photo, "model": "tiny-svd", "frames": 4, "steps": 2, "max_side": 64, "duration": 2}
    res = run(app, params)
    assert res["model"] == "tiny-svd" and res["data"]["frames"] == 4 and res["data"]["method"] == "tiny-svd"
    info = ffprobe(stored(app, res, tmp_path, "mp4"))
    (v,) = info["streams"]
    assert int(v["nb_read_frames"]) == 4 and (v["width"], v["height"]) == (64, 64) and v["r_frame_rate"] == "2/1"
    assert abs(float(info["format"]["duration"]) - 2.0) <= 0.5 + 1e-6  # 4 frames over the asked 2 s


def test_animatediff_animates_an_sd15_checkpoint(
    app: Zhike, photo: str, video_models: dict[str, str], tmp_path: Path
) -> None:
    params = {"image": photo, "model": "tiny-motion", "prompt": "a red ball rolls", "frames": 5, "steps": 4}
    res = run(app, {**params, "max_side": 64, "format": "gif"})
    job_params = app.jobs.get(app.assets.get(res["asset_id"], owner_id="local").job_id).params
    assert job_params["base_model"] == "tiny-sd15"  # the default SD 1.5 checkpoint, pinned at submission
    assert res["data"]["frames"] == 5
    with Image.open(stored(app, res, tmp_path, "gif")) as im:
        assert im.n_frames == 5 and im.size == (64, 64)
    with pytest.raises(ZhikeError) as e:  # a video model is no base for AnimateDiff
        app.submit("animate", {**params, "base_model": "tiny-svd"}, "local")
    assert e.value.field == "params.base_model" and e.value.code == "model_wrong_kind"


# -- the camera path alone (no model) --------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["push_in", "pan_left", "pan_right", "sway"])
def test_a_subject_cut_by_the_border_stays_attached(preset: str) -> None:
    """A portrait's shoulders run off the bottom and left edges: moving them would open a gap of filled background
    there; the free sides still stay inside the frame."""
    from zhike.video.parallax import frames

    w, h = 96, 64
    image = Image.new("RGB", (w, h), (40, 90, 160))
    alpha = np.zeros((h, w), np.uint8)
    alpha[20:, :60] = 255  # touches left and bottom
    image.paste((230, 30, 30), (0, 20, 60, 64))
    clip = list(frames(image, Image.fromarray(alpha), image, preset=preset, count=12, strength=2))
    for f in clip:
        x0, y0, x1, y1 = f.box
        px = np.asarray(f.image, np.int16)
        assert x0 == 0 and y1 == h and x1 < w and y0 > 0, f.box
        assert red(px[-1:, :40]).all() and red(px[30:, :1]).all()  # still red along the borders it was cut by
