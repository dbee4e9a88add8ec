"""id_photo (证件照) on a real portrait (scikit-image's astronaut): exact sizes, head proportions measured again on
the output (a fresh face mesh on the photo, the crown from the non-background pixels), centring, levelling,
background colour, the print sheet, bad inputs, and the op through the job queue.

Photos are saved under test-artifacts/id_photo/ for a look.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata  # noqa: E402

from tests.conftest import ARTIFACTS, make_settings
from tests.helpers.images import upload
from zhike.backends.face import FaceInfo, LoadedFaceMesh, face_landmarks, load_face_mesh, person_alpha
from zhike.core.errors import InvalidInput
from zhike.imaging.id_photo import STANDARDS, hex_rgb, make_sheet, sheet_layout
from zhike.ops.id_photo import IdPhoto, IdPhotoParams, compose_id_photo
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker

ART = ARTIFACTS / "id_photo"
EXPECTED_PX = {
    "1inch": (295, 413),
    "2inch": (413, 579),
    "small1inch": (260, 378),
    "big1inch": (390, 567),
    "passport_cn": (390, 567),
    "visa_us": (600, 600),
}
BACKGROUND = {"1inch": "white", "2inch": "blue", "small1inch": "red", "big1inch": "blue", "passport_cn": "white"}


def save(img: Image.Image | np.ndarray, name: str) -> None:
    ART.mkdir(parents=True, exist_ok=True)
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(ART / name)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path_factory.mktemp("home")))  # no checkpoint: ID photos need none
    yield z
    z.engine.dispose()


@pytest.fixture(scope="module")
def mesh() -> LoadedFaceMesh:
    return load_face_mesh()


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skdata.astronaut())


@pytest.fixture(scope="module")
def astronaut_alpha(app: Zhike, astronaut: Image.Image) -> np.ndarray:
    """The person matte (ISNet gated by MediaPipe, backends.matting), made once: it takes seconds on a CPU."""
    alpha = person_alpha(app.models, astronaut)
    save((alpha * 255).astype(np.uint8), "astronaut_alpha.png")
    return alpha


@pytest.fixture(scope="module")
def photos(app: Zhike, astronaut: Image.Image, astronaut_alpha: np.ndarray) -> dict[str, IdPhoto]:
    """Every preset, made once (the tests below only measure)."""
    out = {}
    for size in EXPECTED_PX:
        p = IdPhotoParams(image="astronaut", size=size, background=BACKGROUND.get(size, "white"))
        out[size] = compose_id_photo(app.models, astronaut, p, alpha=astronaut_alpha)
        save(out[size].photo, f"astronaut_{size}.png")
    return out


def not_background(photo: np.ndarray, bg: tuple[int, int, int], tol: float = 40) -> np.ndarray:
    return np.linalg.norm(photo.astype(np.float32) - np.array(bg, np.float32), axis=2) > tol


def measure(mesh: LoadedFaceMesh, photo: np.ndarray, bg: tuple[int, int, int]) -> tuple[FaceInfo, float]:
    """The face found again on the output, and the crown: the topmost non-background row between the eyes."""
    face = face_landmarks(mesh, Image.fromarray(photo))
    x0, x1 = sorted((round(face.eye_left[0]), round(face.eye_right[0])))
    rows = np.nonzero(not_background(photo, bg)[: round(face.forehead[1]), x0:x1].mean(axis=1) > 0.5)[0]
    return face, float(rows[0]) if len(rows) else 0.0


# -- the face backend -----------------------------------------------------------------------------------------------
def test_face_landmarks_on_the_astronaut(
    mesh: LoadedFaceMesh, astronaut: Image.Image, astronaut_alpha: np.ndarray
) -> None:
    face = face_landmarks(mesh, astronaut, alpha=astronaut_alpha)
    assert face.points.shape == (478, 2)
    (lx, ly), (rx, ry) = face.eye_left, face.eye_right
    assert 195 < lx < 215 and 235 < rx < 255 and 95 < ly < 110 and 95 < ry < 110  # her eyes, by eye
    assert 170 < face.chin[1] < 185 and 65 < face.forehead[1] < 80
    assert face.crown_from == "matte" and not face.crown_clipped
    assert 10 < face.crown[1] < 24  # the top of her hair (y ~17 in the photo)
    assert face.box[0] < lx < rx < face.box[2] and 2 < face.roll < 4.5  # she tilts her head a little
    estimate = face_landmarks(mesh, astronaut)  # no matte: the crown is estimated above the forehead
    assert estimate.crown_from == "estimate" and 15 < estimate.crown[1] < face.forehead[1] - 30
    # Moving the face with the image: after a rotation by its roll the eyes are level.
    import cv2

    rot = cv2.getRotationMatrix2D(face.eye_mid, face.roll, 1.0)
    up = face.transformed(rot)
    assert abs(up.roll) < 1e-3 and np.allclose(up.eye_mid, face.eye_mid, atol=1e-3)
    assert abs(up.head_height - face.head_height) < 1e-3 and up.crown_from == "matte"


# -- layout on the presets -------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", list(EXPECTED_PX))
def test_preset_has_the_exact_size_a_centred_face_and_the_standard_head_height(
    size: str, photos: dict[str, IdPhoto], mesh: LoadedFaceMesh
) -> None:
    made, std = photos[size], STANDARDS[size]
    w, h = EXPECTED_PX[size]
    assert std.size_px(300) == (w, h) and made.size_px == (w, h) and made.photo.shape == (h, w, 3)
    lo, hi = std.head
    assert lo <= made.head_ratio <= hi and std.top[0] <= made.top_margin <= std.top[1]
    assert made.crown_from == "matte"
    face, crown = measure(mesh, made.photo, hex_rgb(BACKGROUND.get(size, "white")))
    eye_x = face.eye_mid[0]
    assert abs(eye_x - w / 2) < 0.03 * w, (eye_x, w)  # centred
    assert abs(face.roll) < 1.5  # straightened (the astronaut tilts her head ~3 degrees)
    head = (face.chin[1] - crown) / h  # measured on the output, independent of the op's own numbers
    assert lo <= head <= hi, (head, std.head)
    assert abs(head - made.head_ratio) < 0.03
    assert abs(crown / h - made.top_margin) < 0.03  # the crown sits where the layout put it
    if std.eyes:
        assert std.eyes[0] <= 1 - face.eye_mid[1] / h <= std.eyes[1]
    assert 0.1 * h < face.chin[1] - crown  # sanity: a head, not a sliver


def test_background_is_the_colour_far_from_the_person_and_the_person_is_not(
    photos: dict[str, IdPhoto], mesh: LoadedFaceMesh
) -> None:
    for size, made in photos.items():
        bg = hex_rgb(BACKGROUND.get(size, "white"))
        photo = made.photo
        k = max(6, photo.shape[1] // 20)
        for corner in (photo[:k, :k], photo[:k, -k:]):  # top corners: far from hair and shoulders
            assert (corner == np.array(bg, np.uint8)).all(), size
        face = face_landmarks(mesh, Image.fromarray(photo))
        x0, y0, x1, y1 = (round(v) for v in face.box)
        dx, dy = (x1 - x0) // 4, (y1 - y0) // 4
        inner_face = photo[y0 + dy : y1 - dy, x0 + dx : x1 - dx]
        assert not_background(inner_face, bg).mean() > 0.97, size  # the face kept its own colour
        assert not_background(photo, bg).mean() > 0.4  # the person fills a good part of an ID photo
    assert (
        hex_rgb("blue") == (0x43, 0x8E, 0xDB) and hex_rgb("red") == (255, 0, 0) and hex_rgb("#0a0B0c") == (10, 11, 12)
    )


def test_small_input_warns_and_reports(photos: dict[str, IdPhoto]) -> None:
    assert any("enlarged" in w for w in photos["2inch"].warnings)  # 512-px photo -> 579-px ID photo: >2x
    assert photos["2inch"].scale > 2
    assert 2 < photos["1inch"].roll < 4.5 and photos["1inch"].rotated == photos["1inch"].roll


def test_straighten_levels_a_tilted_portrait(app: Zhike, astronaut: Image.Image, mesh: LoadedFaceMesh) -> None:
    tilted = astronaut.rotate(8, resample=Image.Resampling.BICUBIC, fillcolor=(200, 200, 200))
    save(tilted, "tilted_input.png")
    alpha = person_alpha(app.models, tilted)
    p = IdPhotoParams(image="astronaut", size="1inch", background="blue")
    level = compose_id_photo(app.models, tilted, p, alpha=alpha)
    save(level.photo, "tilted_straightened.png")
    assert -6 < level.roll < -3.5 and level.rotated == level.roll  # 8 degrees against her own ~3
    face = face_landmarks(mesh, Image.fromarray(level.photo))
    assert abs(face.roll) < 1.0
    assert abs(face.eye_mid[0] - 295 / 2) < 0.03 * 295
    kept = compose_id_photo(app.models, tilted, p.model_copy(update={"straighten": False}), alpha=alpha)
    save(kept.photo, "tilted_kept.png")
    assert kept.rotated == 0 and abs(face_landmarks(mesh, Image.fromarray(kept.photo)).roll - kept.roll) < 1.5


def test_custom_size_and_hex_background(
    app: Zhike, astronaut: Image.Image, astronaut_alpha: np.ndarray, mesh: LoadedFaceMesh
) -> None:
    p = IdPhotoParams(image="astronaut", size="custom", width=358, height=441, background="#E0F0FF")
    made = compose_id_photo(app.models, astronaut, p, alpha=astronaut_alpha)
    save(made.photo, "custom_358x441.png")
    assert made.photo.shape == (441, 358, 3) and (made.photo[:8, :8] == (0xE0, 0xF0, 0xFF)).all()
    face, crown = measure(mesh, made.photo, (0xE0, 0xF0, 0xFF))
    assert 0.55 <= (face.chin[1] - crown) / 441 <= 0.65


def test_cut_out_input_with_transparency(app: Zhike, astronaut: Image.Image, astronaut_alpha: np.ndarray) -> None:
    rgb = np.asarray(astronaut).copy()
    rgb[astronaut_alpha < 0.5] = 0  # what lies under transparent pixels is arbitrary (often black)
    rgba = Image.fromarray(np.dstack([rgb, np.round(astronaut_alpha * 255).astype(np.uint8)]), "RGBA")
    made = compose_id_photo(
        app.models, rgba, IdPhotoParams(image="astronaut", background="blue"), alpha=astronaut_alpha
    )
    save(made.photo, "cutout_input.png")
    assert (made.photo[:20, :20] == hex_rgb("blue")).all() and 0.55 <= made.head_ratio <= 0.65


def test_head_cut_off_at_the_top_is_reported(app: Zhike, astronaut: Image.Image, astronaut_alpha: np.ndarray) -> None:
    p = IdPhotoParams(image="astronaut", size="1inch")

    def crop(box: tuple[int, int, int, int]) -> IdPhoto:  # the same pixels: the same matte, cropped
        x0, y0, x1, y1 = box
        return compose_id_photo(app.models, astronaut.crop(box), p, alpha=astronaut_alpha[y0:y1, x0:x1].copy())

    cut = crop((90, 40, 370, 330))  # the hair starts at y~18: this cuts through it
    save(cut.photo, "hair_cut_off.png")
    assert any("cut off" in w for w in cut.warnings), cut.warnings
    tight = crop((150, 0, 310, 250))  # room above the hair, but the shoulders leave the frame
    save(tight.photo, "tight_crop.png")
    assert not any("cut off" in w for w in tight.warnings)
    assert any("extended to the edge" in w for w in tight.warnings), tight.warnings
    assert (tight.photo[-1] != 255).any(axis=1).mean() > 0.5  # the clothes reach the bottom edge


# -- the print sheet ---------------------------------------------------------------------------------------------
def test_sheet_layout_fits_the_most_copies_on_a_6_inch_print() -> None:
    assert sheet_layout((295, 413), 300) == sheet_layout((295, 413), 300)
    (sw, sh), spots = sheet_layout((295, 413), 300)
    assert {sw, sh} == {1800, 1200} and len(spots) == 12  # 1寸: 3 x 4 on the upright sheet
    (sw, sh), spots = sheet_layout((413, 579), 300)
    assert (sw, sh) == (1800, 1200) and len(spots) == 4  # 2寸: 4 x 1
    assert len(sheet_layout((600, 600), 300)[1]) == 2  # 2x2 in: with margins and gaps 2 fit
    assert len(sheet_layout((390, 567), 300)[1]) == 8  # passport 33x48 mm: 4 x 2
    for photo in ((295, 413), (260, 378), (600, 600)):  # inside the sheet, never overlapping
        (sw, sh), spots = sheet_layout(photo, 300)
        boxes = [(x, y, x + photo[0], y + photo[1]) for x, y in spots]
        assert all(x0 > 0 and y0 > 0 and x1 < sw and y1 < sh for x0, y0, x1, y1 in boxes)
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]


def test_sheet_holds_exact_copies_with_cut_lines(photos: dict[str, IdPhoto]) -> None:
    photo = photos["1inch"].photo
    sheet, n = make_sheet(photo, 300)
    save(sheet, "sheet_1inch.png")
    _, spots = sheet_layout((295, 413), 300)
    assert sheet.shape == (1800, 1200, 3) and n == len(spots) == 12
    for x, y in spots:
        assert np.array_equal(sheet[y : y + 413, x : x + 295], photo)
        assert (sheet[y - 1, x : x + 295] == 170).all() and (sheet[y : y + 413, x + 295] == 170).all()
    assert (sheet[:5] == 255).all()  # the border stays white


# -- refusals ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["cat", "flat", "two"])
def test_no_face_or_two_faces_is_a_clear_error(
    which: str, app: Zhike, mesh: LoadedFaceMesh, astronaut: Image.Image
) -> None:
    if which == "cat":
        img = Image.fromarray(skdata.chelsea())
    elif which == "flat":
        img = Image.new("RGB", (300, 400), (128, 128, 128))
    else:
        img = Image.new("RGB", (1024, 512))
        img.paste(astronaut, (0, 0)), img.paste(astronaut, (512, 0))
    with pytest.raises(InvalidInput, match="use a photo") as e:
        face_landmarks(mesh, img)
    assert e.value.field == "params.image" and e.value.code == ("many_faces" if which == "two" else "no_face_found")
    assert ("2 faces" in e.value.message) == (which == "two")
    with pytest.raises(InvalidInput, match="one"):
        compose_id_photo(app.models, img, IdPhotoParams(image="astronaut"))


def test_params_are_checked() -> None:
    from pydantic import ValidationError

    for bad in (
        {"size": "custom"},
        {"size": "custom", "width": 300},
        {"size": "1inch", "width": 300, "height": 400},
        {"background": "green"},
        {"background": "#12345"},
        {"sheet": "5inch"},
        {"dpi": 10},
        {"colour": "white"},
    ):
        with pytest.raises(ValidationError):
            IdPhotoParams(image="astronaut", **bad)
    p = IdPhotoParams(image="astronaut")
    assert (p.size, p.background, p.straighten, p.sheet, p.dpi) == ("1inch", "white", True, "none", 300)


# -- the operation, through the job queue ------------------------------------------------------------------------
def test_id_photo_op_saves_photo_and_sheet_with_dpi_and_lineage(app: Zhike, astronaut: Image.Image) -> None:
    from zhike.core.registry import get_op

    op = get_op("id_photo")
    assert op.title == {"en": "ID photo", "zh": "证件照"}
    assert set(op.schema()["params_schema"]["properties"]["size"]["enum"]) == set(STANDARDS)
    # A phone-style JPEG: stored sideways, upright by its EXIF orientation tag (6: turn 90 degrees clockwise).
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    astronaut.transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", quality=95, exif=exif.tobytes())
    src = app.assets.upload(buf.getvalue(), owner_id="local").id
    job, _ = app.submit("id_photo", {"image": src, "size": "passport_cn", "sheet": "6inch"}, "local")
    assert Worker(app).run_one(job.id)
    row = app.jobs.get(job.id)
    assert row.state == "succeeded", row.error
    res = row.result
    assert tuple(res["size_px"]) == (390, 567) and res["dpi"] == 300 and res["background"] == "#FFFFFF"
    assert 28 / 48 <= res["head_ratio"] <= 33 / 48 and res["sheet_copies"] == 8 and res["crown_from"] == "matte"
    assert any("enlarged" in w for w in res["warnings"]) and abs(res["roll"] - 3.3) < 1  # upright, her own tilt
    photo, sheet = res["images"]
    for out, size, tags in ((photo, (390, 567), ["id_photo", "passport_cn"]), (sheet, (1800, 1200), None)):
        asset = app.assets.get(out["asset_id"], owner_id="local")
        assert asset.parent_id == src and asset.op == "id_photo" and asset.job_id == job.id
        assert asset.tags == (tags or ["id_photo", "passport_cn", "sheet"])
        img = Image.open(io.BytesIO(app.assets.read_bytes(asset)))
        assert img.size == size == (out["width"], out["height"]) and img.format == "PNG"
        assert tuple(round(v) for v in img.info["dpi"]) == (300, 300)  # pHYs: prints at 33x48 mm
        assert "zhike" in img.info
    save(Image.open(io.BytesIO(app.assets.read_bytes(app.assets.get(photo["asset_id"], owner_id="local")))),
         "job_passport_cn.png")  # fmt: skip


def test_dpi_sets_the_pixel_size_of_mm_standards(
    app: Zhike, astronaut: Image.Image, astronaut_alpha: np.ndarray
) -> None:
    p = IdPhotoParams(image="astronaut", size="1inch", dpi=600, background="red")
    made = compose_id_photo(app.models, astronaut, p, alpha=astronaut_alpha)
    assert made.size_px == (591, 827) and made.photo.shape == (827, 591, 3)  # 25x35 mm at 600 dpi
    assert abs(made.head_ratio - 0.60) < 1e-3
    assert sheet_layout((591, 827), 600)[0] in ((3600, 2400), (2400, 3600))


def test_id_photo_job_rejects_bad_requests_and_reports_no_face(app: Zhike) -> None:
    with pytest.raises(InvalidInput):
        app.submit("id_photo", {"image": "nosuchasset1", "size": "custom"}, "local")
    src = upload(app, Image.fromarray(skdata.chelsea()))
    job, _ = app.submit("id_photo", {"image": src}, "local")
    Worker(app).run_one(job.id)
    row = app.jobs.get(job.id)
    assert row.state == "failed" and row.error and row.error["code"] == "no_face_found"


def test_models_are_loaded_once(app: Zhike, photos: dict[str, IdPhoto], astronaut: Image.Image) -> None:
    # Face mesh, ISNet and MediaPipe's selfie mask (matting's person gate): each loaded once, then cached.
    # (Runs last: by now there were many photos and jobs.)
    assert (
        app.models.stats.misses == 3
        and app.models.stats.hits > 10
        and "mediapipe-face-mesh" in app.models.cached_names()
    )
