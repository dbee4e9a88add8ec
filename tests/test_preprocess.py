"""ControlNet preprocessors on real photos (scikit-image's astronaut, cat, coffee): the maps must mean something.

Maps are saved under test-artifacts/preprocess/ for a look.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata  # noqa: E402

from tests.conftest import ARTIFACTS, make_settings
from tests.helpers.images import upload
from tests.test_generate import run
from zhike.backends.preprocessors import MODES, run_preprocessor
from zhike.backends.preprocessors.canny import canny_edges
from zhike.backends.preprocessors.hed import HedNet, LoadedAux, hed_edges, load_hed, read_h5_state_dict, weights_path
from zhike.backends.preprocessors.lineart import lineart_map, scribble_map
from zhike.backends.preprocessors.pose import OPENPOSE_NAMES, LoadedPose, load_pose, pose_map
from zhike.core.errors import InvalidInput, NotFound
from zhike.core.rows import JobRow
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker

ART = ARTIFACTS / "preprocess"


def save(img: Image.Image | np.ndarray, name: str) -> None:
    ART.mkdir(parents=True, exist_ok=True)
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(ART / name)


def far_from(mask: np.ndarray, px: float) -> np.ndarray:
    """Pixels farther than `px` from any True pixel of `mask`."""
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3) > px


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k) > 0


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skdata.astronaut())


@pytest.fixture(scope="module")
def person_mask() -> np.ndarray:
    """Where the astronaut is (MediaPipe selfie segmentation; it includes the helmet she holds)."""
    import mediapipe as mp

    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        mask = seg.process(skdata.astronaut()).segmentation_mask > 0.5
    save((mask * 255).astype(np.uint8), "astronaut_person_mask.png")
    assert 0.3 < mask.mean() < 0.7  # the person fills about half the photo
    return mask


@pytest.fixture(scope="module")
def hed() -> LoadedAux:
    return load_hed("cpu")


@pytest.fixture(scope="module")
def pose_model() -> LoadedPose:
    return load_pose()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path / "home"))  # no checkpoint: preprocessing needs none
    yield z
    z.engine.dispose()


# -- canny -------------------------------------------------------------------------------------------------
def test_canny_edges_follow_the_outline_and_skip_flat_areas(astronaut: Image.Image, person_mask: np.ndarray) -> None:
    out = canny_edges(astronaut)
    save(out, "astronaut_canny.png")
    a = np.asarray(out)
    assert a.shape == (512, 512, 3) and set(np.unique(a)) <= {0, 255}
    assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()
    edges = a[..., 0] > 0
    outline = person_mask ^ cv2.erode(person_mask.astype(np.uint8), np.ones((3, 3))).astype(bool)
    outline[:, :3] = outline[:, -3:] = outline[-3:, :] = False  # the photo's edge is no outline
    assert (~far_from(edges, 4))[outline].mean() > 0.6  # most of the person's outline has a canny edge near it
    gray = np.asarray(astronaut.convert("L"), np.float32)
    local_std = np.sqrt(np.maximum(cv2.blur(gray**2, (15, 15)) - cv2.blur(gray, (15, 15)) ** 2, 0))
    flat = local_std < 3
    assert flat.sum() > 5000 and edges[flat].mean() < 0.002
    # Higher thresholds keep fewer (a subset of the strongest) edges.
    strict = np.asarray(canny_edges(astronaut, low=200, high=400))[..., 0] > 0
    assert strict.sum() < 0.7 * edges.sum() and (edges | ~strict).mean() > 0.99


# -- HED soft edges ----------------------------------------------------------------------------------------
def test_hed_weights_load_with_the_known_vgg_shapes(hed: LoadedAux) -> None:
    import h5py

    sd = read_h5_state_dict(weights_path())
    assert sd["blocks.0.0.weight"].shape == (64, 3, 3, 3)
    assert sd["blocks.2.2.weight"].shape == (256, 256, 3, 3)
    assert sd["blocks.4.2.weight"].shape == (512, 512, 3, 3)
    assert sd["dsn.4.weight"].shape == (1, 512, 1, 1) and sd["fuse.weight"].shape == (1, 5, 1, 1)
    assert set(sd) == set(HedNet().state_dict())
    with h5py.File(weights_path(), "r") as f:  # Keras HWIO [kh, kw, in, out] == torch OIHW [out, in, kh, kw]
        k = f["block3/layers/conv2d_1/vars/0"]
        assert f["block3/layers/conv2d_1/vars"].attrs["name"] == "block3_conv2"
        assert float(k[0, 2, 17, 101]) == float(sd["blocks.2.1.weight"][101, 17, 0, 2])
    assert 14_000_000 < hed.nbytes // 4 < 15_000_000  # VGG16 convs + 6 tiny heads, fp32


def test_softedge_is_high_on_boundaries_and_low_in_flat_areas(hed: LoadedAux, astronaut: Image.Image) -> None:
    out = hed_edges(hed.model, astronaut)
    save(out, "astronaut_softedge.png")
    a = np.asarray(out)
    assert a.shape == (512, 512, 3) and (a[..., 0] == a[..., 2]).all()
    y = a[..., 0].astype(np.float32) / 255
    canny = np.asarray(canny_edges(astronaut))[..., 0] > 0
    on, off = y[canny].mean(), y[far_from(canny, 15)].mean()
    assert on > 0.4 and off < 0.08 and on > 8 * off
    assert len(np.unique(a)) > 50  # soft: many grey levels


def test_softedge_safe_has_few_levels_and_the_same_edges(hed: LoadedAux) -> None:
    coffee = Image.fromarray(skdata.coffee()).resize((300, 200))  # odd sizes are rounded to 8 and back
    soft, safe = hed_edges(hed.model, coffee), hed_edges(hed.model, coffee, safe=True)
    save(safe, "coffee_softedge_safe.png")
    assert safe.size == (300, 200)
    assert set(np.unique(np.asarray(safe))) <= {0, 128, 255}
    strong = np.asarray(soft)[..., 0] > 200
    assert (np.asarray(safe)[..., 0][strong] == 255).mean() > 0.95


# -- scribble / lineart --------------------------------------------------------------------------------------
def drawing(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A pencil drawing photographed on unevenly lit paper: (grey image with dark lines, where the lines are).

    Lines are anti-aliased and slightly blurred; one is faint (a light pencil stroke)."""
    ink = np.zeros((size, size), np.float32)
    cv2.rectangle(ink, (30, 40), (120, 110), 1.0, 2, cv2.LINE_AA)
    cv2.circle(ink, (180, 170), 45, 1.0, 2, cv2.LINE_AA)
    cv2.line(ink, (20, 230), (230, 20), 0.6, 1, cv2.LINE_AA)  # faint and thin
    truth = ink > 0.3
    ink = cv2.GaussianBlur(ink, (0, 0), 0.6)
    yy, xx = np.mgrid[0:size, 0:size]
    paper = 225 - 50 * xx / size - 25 * yy / size  # darker towards one corner, like a phone photo
    noise = np.random.default_rng(0).normal(0, 4, (size, size))
    img = paper * (1 - 0.8 * np.clip(ink * 1.3, 0, 1)) + noise
    return np.clip(img, 0, 255).astype(np.uint8), truth


@pytest.mark.parametrize("dark_lines", [True, False], ids=["dark-on-light", "light-on-dark"])
def test_lineart_and_scribble_give_white_lines_where_drawn(dark_lines: bool) -> None:
    img, truth = drawing()
    if not dark_lines:
        img = 255 - img
    src = Image.fromarray(img).convert("RGB")
    thin, info = lineart_map(src)
    thick, sinfo = scribble_map(src)
    suffix = "dark" if dark_lines else "light"
    save(img, f"drawing_{suffix}.png"), save(thin, f"drawing_{suffix}_lineart.png")
    save(thick, f"drawing_{suffix}_scribble.png")
    assert info["inverted"] is dark_lines and sinfo["inverted"] is dark_lines
    t, s = np.asarray(thin)[..., 0] > 127, np.asarray(thick)[..., 0] > 127
    assert t[truth].mean() > 0.95 and s[truth].mean() > 0.98  # white where the lines are
    assert t[far_from(truth, 2)].mean() < 0.002  # black elsewhere: no paper texture, no lighting gradient
    assert s[far_from(truth, 6)].mean() < 0.002
    assert s.sum() > 1.4 * t.sum()  # scribble strokes are wider
    assert t.sum() < 1.6 * truth.sum()  # lineart keeps them thin


def test_blank_page_gives_an_empty_map() -> None:
    page = np.clip(np.random.default_rng(1).normal(200, 4, (128, 128)), 0, 255).astype(np.uint8)
    for fn in (lineart_map, scribble_map):
        assert np.asarray(fn(Image.fromarray(page))[0]).max() == 0


def test_scribble_from_photo_and_hed_is_cached(app: Zhike, astronaut: Image.Image, person_mask: np.ndarray) -> None:
    soft = run_preprocessor(app.models, "softedge", astronaut, {})
    scr = run_preprocessor(app.models, "scribble", astronaut, {"from_photo": True})
    assert (app.models.stats.misses, app.models.stats.hits) == (1, 1)  # one HED load for both
    save(scr.image, "astronaut_scribble_from_photo.png")
    s = np.asarray(scr.image)[..., 0] > 127
    assert set(np.unique(np.asarray(scr.image))) <= {0, 255}
    assert 0.05 < s.mean() < 0.4  # strokes, neither empty nor everything
    hard = np.asarray(soft.image)[..., 0] > 200
    assert s[hard].mean() > 0.9  # strong soft edges become strokes


# -- pose ------------------------------------------------------------------------------------------------------
def test_pose_on_astronaut_draws_an_openpose_skeleton_on_her(
    pose_model: LoadedPose, astronaut: Image.Image, person_mask: np.ndarray
) -> None:
    out, kps = pose_map(pose_model, astronaut)
    save(out, "astronaut_pose.png")
    overlay = (np.asarray(astronaut) * 0.4 + np.asarray(out)).clip(0, 255).astype(np.uint8)
    save(overlay, "astronaut_pose_overlay.png")
    assert [k["name"] for k in kps] == list(OPENPOSE_NAMES) and out.size == astronaut.size
    by = {k["name"]: k for k in kps}
    near_person = dilate(person_mask, 10)
    for name in ("nose", "neck", "right_shoulder", "left_shoulder", "right_elbow", "left_elbow"):
        x, y = int(by[name]["x"]), int(by[name]["y"])
        assert near_person[y, x], name
    for name in ("nose", "right_shoulder", "left_shoulder", "right_elbow"):
        assert by[name]["present"], name
    # The person's right shoulder is on the viewer's left; the nose is above the neck.
    assert by["right_shoulder"]["x"] < by["neck"]["x"] < by["left_shoulder"]["x"]
    assert by["nose"]["y"] < by["neck"]["y"]
    a = np.asarray(out)
    drawn = a.max(axis=2) > 0
    assert drawn.sum() > 1500 and near_person[drawn].mean() > 0.8
    for name in ("right_shoulder", "left_shoulder"):
        x, y = int(by[name]["x"]), int(by[name]["y"])
        assert drawn[y - 6 : y + 7, x - 6 : x + 7].sum() > 40, name
    # OpenPose colours: joints full colour, limbs at 60 % (right shoulder joint orange, neck->r.shoulder red).
    rs, neck = by["right_shoulder"], by["neck"]
    assert tuple(a[int(rs["y"]), int(rs["x"])]) == (255, 170, 0)
    mid = (int((rs["x"] + neck["x"]) / 2), int((rs["y"] + neck["y"]) / 2))
    assert tuple(a[mid[1], mid[0]]) == (153, 0, 0)
    assert tuple(a[int(neck["y"]), int(neck["x"])]) == (255, 85, 0)


def test_pose_model_is_shared_safely_between_threads(pose_model: LoadedPose, astronaut: Image.Image) -> None:
    from concurrent.futures import ThreadPoolExecutor

    small = astronaut.resize((256, 256))
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda _: pose_map(pose_model, small)[1], range(6)))
    assert all(r == results[0] for r in results)  # the lock serialises the graph; same input, same keypoints


@pytest.mark.parametrize("which", ["cat", "flat"])
def test_no_person_is_a_clear_error(pose_model: LoadedPose, which: str) -> None:
    img = Image.fromarray(skdata.chelsea()) if which == "cat" else Image.new("RGB", (256, 256), (128, 128, 128))
    with pytest.raises(InvalidInput, match="no person") as e:
        pose_map(pose_model, img)
    assert e.value.field == "params.image"


# -- the operation, through the job queue ------------------------------------------------------------------------
def run_job(z: Zhike, params: dict) -> JobRow:
    return run(z, "preprocess", params)


def test_preprocess_op_saves_a_control_map_child_of_the_input(app: Zhike, astronaut: Image.Image) -> None:
    src = upload(app, astronaut)
    row = run_job(app, {"image": src, "mode": "canny", "low_threshold": 50, "high_threshold": 150})
    out = row.result["images"][0]
    asset = app.assets.get(out["asset_id"], owner_id="local")
    assert asset.parent_id == src and asset.tags == ["control-map", "canny"] and asset.op == "preprocess"
    got = np.asarray(Image.open(io.BytesIO(app.assets.read_bytes(asset))).convert("RGB"))
    assert np.array_equal(got, np.asarray(canny_edges(astronaut, low=50, high=150)))
    # resolution: the long side of the map
    row = run_job(app, {"image": src, "mode": "pose", "resolution": 256})
    img = row.result["images"][0]
    assert (img["width"], img["height"]) == (256, 256)
    kps = row.result["info"]["keypoints"]
    assert len(kps) == 18 and all(0 <= k["x"] < 256 for k in kps if k["present"])


def test_preprocess_op_rejects_bad_requests_at_submission(app: Zhike) -> None:
    from zhike.core.registry import get_op

    assert set(MODES) == {"canny", "softedge", "scribble", "lineart", "pose"}
    schema = get_op("preprocess").schema()["params_schema"]
    assert set(schema["properties"]["mode"]["enum"]) == set(MODES) and schema["required"] == ["image", "mode"]
    with pytest.raises(NotFound):
        app.submit("preprocess", {"image": "nosuchasset1", "mode": "canny"}, "local")
    src = upload(app, Image.new("RGB", (64, 64)))
    for bad in ({"mode": "depth"}, {"mode": "canny", "low_threshold": 220}, {"mode": "canny", "colour": 1}):
        with pytest.raises(InvalidInput):
            app.submit("preprocess", {"image": src, **bad}, "local")


def test_pose_job_without_a_person_fails_with_the_message(app: Zhike) -> None:
    src = upload(app, Image.fromarray(skdata.chelsea()))
    job, _ = app.submit("preprocess", {"image": src, "mode": "pose"}, "local")
    Worker(app).run_one(job.id)
    row = app.jobs.get(job.id)
    assert row.state == "failed" and "no person" in str(row.error)
