"""reframe through a real app and worker with the real ffmpeg: a 16:9 clip of a disc crossing a textured background
becomes 9:16 with the disc whole inside every frame, the crop moving smoothly, the sound kept; the path smoothing
and crop maths on their own; bad inputs refused naming the field."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_settings
from tests.helpers.images import upload
from tests.helpers.video_clips import RED, decode, moving_disc, probe_json
from zhike.core.errors import InvalidInput
from zhike.ops.reframe import ReframeParams, output_size
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker
from zhike.video.track import crop_origins, crop_size, smooth_path

DISC_AREA = np.pi * 16**2


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path_factory.mktemp("reframe") / "home", embedded_dir=embedded_dir))
    yield z
    z.engine.dispose()


@pytest.fixture(scope="module")
def clip(app: Zhike, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = moving_disc(tmp_path_factory.mktemp("clips") / "disc.mp4")
    return app.assets.upload_media(path, owner_id="local", name="disc.mp4").id


def run(z: Zhike, params: dict) -> object:
    job, _ = z.submit("reframe", params, "local")
    assert Worker(z).run_one(job.id)
    return z.jobs.get(job.id)


def red_pixels(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.int16)
    return ((np.abs(f - RED) < 60).all(axis=-1)).sum(axis=(1, 2))


@pytest.fixture(scope="module")
def portrait(app: Zhike, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The disc clip as a phone stores a portrait video: landscape pixels with a 90 degree rotation (side data), so it
    plays 180x320 with the disc moving down (or up)."""
    d = tmp_path_factory.mktemp("clips")
    src = moving_disc(d / "disc.mp4")
    out = d / "phone.mp4"
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(out)]
    subprocess.run(cmd, check=True, timeout=60)
    return app.assets.upload_media(out, owner_id="local", name="phone.mp4").id


@pytest.mark.parametrize(
    ("follow", "source", "aspect", "size", "axis"),
    [
        ("motion", "clip", "9:16", (100, 180), 1),
        ("auto", "clip", "9:16", (100, 180), 1),
        ("motion", "portrait", "16:9", (180, 100), 2),  # 9:16 -> 16:9: the crop follows the disc vertically
    ],
)
def test_the_crop_follows_the_disc(
    app: Zhike,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    follow: str,
    source: str,
    aspect: str,
    size: tuple[int, int],
    axis: int,
) -> None:
    clip = request.getfixturevalue(source)
    row = run(app, {"video": clip, "aspect": aspect, "follow": follow, "size": "source"})
    assert row.state == "succeeded", row.error
    res = row.result
    asset = app.assets.get(res["asset_id"], owner_id="local")
    assert asset.mime == "video/mp4" and asset.parent_id == clip
    out = tmp_path / "out.mp4"
    out.write_bytes(app.assets.read_bytes(asset))
    info = probe_json(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert video["codec_name"] == "h264" and (video["width"], video["height"]) == size
    w, h = (int(v) for v in aspect.split(":"))
    assert abs(video["width"] / video["height"] - w / h) < 0.04
    assert any(s["codec_type"] == "audio" and s["codec_name"] == "aac" for s in info["streams"])  # tone kept
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    frames = decode(out)
    assert len(frames) == res["data"]["frames"] == 60
    # the disc is whole in every frame: its red area never shrinks below ~90 % of a full disc
    assert red_pixels(frames).min() > 0.85 * DISC_AREA
    x = np.asarray([corner[axis] for corner in res["data"]["track"]], np.float64)
    assert abs(x[-1] - x[0]) > 150  # the crop crossed the frame with the disc
    assert np.abs(np.diff(x, 2)).max() <= 2.0  # smooth: no jumps, no jitter
    assert res["data"]["found_share"] > 0.9


def test_portrait_to_square_and_platform_sizes() -> None:
    assert crop_size(320, 180, 9 / 16) == (100, 180)
    assert crop_size(180, 320, 16 / 9) == (180, 100)
    assert crop_size(1080, 1920, 1.0) == (1080, 1080)
    p = ReframeParams(video="abcdef", aspect="9:16")
    assert output_size(p, (606, 1080)) == (1080, 1920)  # auto: at most 2x up
    assert output_size(p, (100, 180)) == (100, 180)  # a tiny crop is not blown up 10x
    assert output_size(p.model_copy(update={"size": "1080"}), (100, 180)) == (1080, 1920)


def test_the_path_is_smooth_and_clamped() -> None:
    rng = np.random.default_rng(3)
    truth = np.linspace(20, 300, 90)
    noisy = [(x + rng.normal(0, 6), 90.0) if i % 7 else None for i, x in enumerate(truth)]  # jitter and gaps
    path = smooth_path(noisy, window=30, default=(160, 90))
    assert np.abs(path[:, 0] - truth).max() < 6  # follows the subject without lag (odd-reflected ends)
    assert np.abs(np.diff(path[:, 0], 2)).max() < np.abs(np.diff([p[0] for p in noisy if p], 2)).max() / 10
    origins = crop_origins(path, (320, 180), (100, 180))
    assert origins[:, 0].min() == 0 and origins[:, 0].max() == 220 and (origins[:, 1] == 0).all()
    assert (smooth_path([None] * 5, window=9, default=(160, 90)) == (160, 90)).all()


def test_bad_inputs_are_refused_naming_the_field(app: Zhike, clip: str, tmp_path: Path) -> None:
    from PIL import Image

    png = upload(app, Image.new("RGB", (8, 8), "white"))
    with pytest.raises(InvalidInput) as e:
        app.submit("reframe", {"video": png}, "local")
    assert (e.value.code, e.value.field) == ("asset_wrong_kind", "params.video")
    tone = tmp_path / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=300:duration=1", str(tone)], check=True
    )
    sound = app.assets.upload_media(tone, owner_id="local").id
    with pytest.raises(InvalidInput) as e:
        app.submit("reframe", {"video": sound}, "local")
    assert (e.value.code, e.value.field) == ("asset_wrong_kind", "params.video")
    with pytest.raises(InvalidInput) as e:
        app.submit("reframe", {"video": clip, "aspect": "3:7"}, "local")
    assert "params.aspect" in (e.value.field or "")
    big = tmp_path / "big.mp4"  # 2560x1440: over the per-frame ops' 1080p limit
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=gray:s=2560x1440:r=5:d=0.4", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(big)],
        check=True,
    )  # fmt: skip
    row = run(app, {"video": app.assets.upload_media(big, owner_id="local").id})
    assert row.state == "failed" and row.error["code"] == "video_size_unsupported"
    assert row.error["field"] == "params.video"
