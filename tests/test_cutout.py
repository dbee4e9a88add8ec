"""cutout (智能抠图) on real photos with the real embedded ISNet weights, plus logos drawn here.

Fixture masks (tests/fixtures, 1-bit PNGs at the photos' own size, derived once and checked by eye at 4x):
- astronaut_person_mask.png: the person with the helmet she holds (no flag, no shuttle model). ISNet-medium's
  alpha at 0.5, largest component, holes filled; every edge (hair, shoulders, helmet ring) checked against the
  photo. Because ISNet made it, the IoU below is a regression bound for the person recipe, not an independent
  accuracy figure.
- chelsea_cat_mask.png: a hand-drawn polygon (independent of any model): the cat's head and chest, its ear at the
  top right, the bokeh to the right and the pale backdrop top-left excluded. Vertices (x, y): (0,125) (15,118)
  (30,105) (35,90) (36,40) (38,0) (400,0) (375,32) (362,65) (360,75) (362,112) (357,150) (350,180) (337,205)
  (325,220) (315,235) (310,262) (315,300) (0,300).
Result images go to test-artifacts/cutout/ for a look.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from skimage import data as skdata  # noqa: E402

from tests.conftest import ARTIFACTS, make_settings
from tests.helpers.images import upload
from tests.test_generate import run
from zhike.backends.alpha import composite, feather_alpha
from zhike.backends.matting import alpha_matte, load_onnx_matting, logo_alpha
from zhike.core.errors import InvalidInput, ModelError, NotFound
from zhike.core.rows import AssetRow, JobRow
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker

ART = ARTIFACTS / "cutout"
FIXTURES = Path(__file__).parent / "fixtures"
LOGO_BG = (245, 222, 179)


def fixture_mask(name: str) -> np.ndarray:
    return np.asarray(Image.open(FIXTURES / name).convert("L")) > 127


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def dist_from(mask: np.ndarray) -> np.ndarray:
    """Distance (px) of every pixel from the nearest True pixel of `mask`."""
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)


def checker(size: tuple[int, int], cell: int = 16) -> Image.Image:
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    return Image.fromarray(np.where(((yy // cell + xx // cell) % 2)[..., None] == 0, 200, 255).astype(np.uint8)[..., 0])


def on_checker(rgba: Image.Image) -> Image.Image:
    base = checker(rgba.size).convert("RGBA")
    return Image.alpha_composite(base, rgba.convert("RGBA")).convert("RGB")


def draw_logo(bg: tuple[int, int, int], size: tuple[int, int] = (480, 240), ss: int = 4) -> Image.Image:
    """Shapes and text on a flat colour, drawn 4x and box-downsampled: exact anti-aliased coverage."""
    im = Image.new("RGB", (size[0] * ss, size[1] * ss), bg)
    d = ImageDraw.Draw(im)
    d.ellipse((20 * ss, 40 * ss, 180 * ss, 200 * ss), fill=(200, 30, 40))
    d.rectangle((60 * ss, 80 * ss, 140 * ss, 160 * ss), fill=(250, 200, 30))
    d.text((200 * ss, 70 * ss), "Zk", font=ImageFont.load_default(size=64 * ss), fill=(20, 40, 120))
    d.line((200 * ss, 190 * ss, 460 * ss, 190 * ss), fill=(20, 40, 120), width=6 * ss)
    return im.resize(size, Image.Resampling.BOX)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path_factory.mktemp("cutout") / "home"))  # ISNet comes from the embedded dir
    yield z
    z.engine.dispose()


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skdata.astronaut())


@pytest.fixture(scope="module")
def person_alpha(app: Zhike, astronaut: Image.Image, embedded_dir: Path) -> np.ndarray:
    a = alpha_matte(app.models, astronaut, mode="person")
    assert a.mode == "L" and a.size == astronaut.size
    return np.asarray(a)


@pytest.fixture(scope="module")
def cat_alpha(app: Zhike, embedded_dir: Path) -> np.ndarray:
    return np.asarray(alpha_matte(app.models, Image.fromarray(skdata.chelsea()), mode="auto"))


def save(img: Image.Image, name: str) -> None:
    ART.mkdir(parents=True, exist_ok=True)
    img.save(ART / name)


# -- photos ------------------------------------------------------------------------------------------------------
def test_person_mode_cuts_out_the_astronaut(person_alpha: np.ndarray) -> None:
    truth = fixture_mask("astronaut_person_mask.png")
    # Measured 0.998 (isnet-small, refined); the fixture came from ISNet-medium, so this is a regression bound.
    assert iou(person_alpha > 127, truth) > 0.97
    d = dist_from(truth)
    far = person_alpha[d > 20] / 255  # flag, shuttle model, backdrop
    assert far.mean() < 0.002 and far.max() < 0.1
    assert (person_alpha[cv2.erode(truth.astype(np.uint8), np.ones((9, 9))) > 0] > 250).mean() > 0.99
    edge = (d > 0) & (d < 3) | (dist_from(~truth) < 3) & truth
    assert ((person_alpha[edge] > 0) & (person_alpha[edge] < 255)).mean() > 0.2  # a soft edge, not a cut


def test_auto_mode_cuts_out_the_cat(cat_alpha: np.ndarray) -> None:
    truth = fixture_mask("chelsea_cat_mask.png")
    # Measured 0.933 against the hand-drawn polygon. ISNet misses part of the (blurred) right ear and takes in
    # the out-of-focus pale blob below the right cheek, which the polygon calls backdrop.
    assert iou(cat_alpha > 127, truth) > 0.88
    far = cat_alpha[dist_from(truth) > 80] / 255  # the bokeh on the right, clear of that disputed blob
    assert far.mean() < 0.02 and np.percentile(far, 99) < 0.15
    assert (cat_alpha[cv2.erode(truth.astype(np.uint8), np.ones((31, 31))) > 0] > 200).mean() > 0.98


def test_person_mode_without_a_person_says_so(app: Zhike, embedded_dir: Path) -> None:
    flat = Image.new("RGB", (320, 240), (120, 130, 140))
    with pytest.raises(InvalidInput, match="no person") as e:
        alpha_matte(app.models, flat, mode="person")
    assert e.value.field == "params.image"


# -- logos -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bg", [LOGO_BG, (255, 255, 255), (0, 150, 80)], ids=["wheat", "white", "green"])
def test_logo_mode_is_clear_outside_opaque_inside_and_has_no_halo(bg: tuple[int, int, int]) -> None:
    logo = draw_logo(bg)
    ideal = np.asarray(draw_logo((0, 0, 0)), np.float32)  # the same logo drawn on black
    cov = ideal.max(axis=2) > 0  # where anything of the logo is
    a = logo_alpha(np.asarray(logo))
    inside = cv2.erode(cov.astype(np.uint8), np.ones((5, 5))) > 0
    outside = dist_from(cov) > 2
    assert (a[outside] == 0).mean() > 0.999 and a[inside].min() > 0.99
    # On black, the cut-out must look like the logo drawn on black: edge pixels carry no backdrop colour.
    alpha = Image.fromarray(np.round(a * 255).astype(np.uint8))
    out = np.asarray(composite(logo, alpha, background=(0, 0, 0)), np.float32)
    naive = np.asarray(logo, np.float32) * a[..., None]  # alpha without decontamination
    edge = (a > 0.02) & (a < 0.98)
    err, naive_err = np.abs(out - ideal).max(axis=2)[edge], np.abs(naive - ideal).max(axis=2)[edge]
    assert edge.sum() > 500 and err.mean() < 4 and np.percentile(err, 99) < 20
    assert naive_err.mean() > 4 * err.mean()  # without decontamination the backdrop shows (a halo)
    assert np.abs(out - ideal).max(axis=2)[a == 0].max() <= 8


def test_logo_mode_needs_a_flat_background(astronaut: Image.Image) -> None:
    with pytest.raises(InvalidInput, match="plain background") as e:
        logo_alpha(np.asarray(astronaut))
    assert e.value.field == "params.mode"


# -- compositing -------------------------------------------------------------------------------------------------
def test_background_colour_and_image_keep_the_subject(astronaut: Image.Image, person_alpha: np.ndarray) -> None:
    alpha = Image.fromarray(person_alpha)
    src = np.asarray(astronaut)
    solid, full = person_alpha == 255, person_alpha == 0
    on_white = composite(astronaut, alpha, background=(255, 255, 255))
    assert on_white.mode == "RGB" and on_white.size == astronaut.size  # no alpha channel at all
    w = np.asarray(on_white)
    assert np.array_equal(w[solid], src[solid]) and (w[full] == 255).all()
    coffee = Image.fromarray(skdata.coffee())  # 600x400: scaled to cover 512x512 and centre-cropped
    scene = composite(astronaut, alpha, background=coffee)
    s = np.asarray(scene)
    fitted = np.asarray(coffee.resize((768, 512), Image.Resampling.LANCZOS).crop((128, 0, 640, 512)), np.int16)
    assert scene.mode == "RGB" and np.array_equal(s[solid], src[solid])
    assert np.abs(s[full].astype(np.int16) - fitted[full]).max() <= 3
    cut = composite(astronaut, alpha, background=None)
    assert cut.mode == "RGBA" and np.array_equal(np.asarray(cut)[..., 3], person_alpha)
    assert np.array_equal(np.asarray(cut)[..., :3][solid], src[solid])
    save(on_white, "astronaut_on_white.png"), save(scene, "astronaut_on_coffee.png")


def test_feather_softens_only_the_edge(person_alpha: np.ndarray) -> None:
    alpha = Image.fromarray(person_alpha)
    soft = np.asarray(feather_alpha(alpha, 12)).astype(np.int16)
    hard = person_alpha > 127
    inside, outside = dist_from(~hard), dist_from(hard)
    assert (soft <= person_alpha.astype(np.int16) + 1).all()  # never grows past the subject
    deep = inside > 20
    assert (np.abs(soft[deep] - person_alpha[deep]) <= 1).all()  # the inside stays as it was
    assert soft[outside > 0].mean() <= person_alpha[outside > 0].mean()  # no glow outside her outline
    band = (inside > 0) & (inside <= 10)
    assert soft[band].mean() < person_alpha[band].mean() - 40  # the edge did soften
    ramp = soft[(inside > 2) & (inside < 10)]
    assert ((ramp > 10) & (ramp < 245)).mean() > 0.6  # ... gradually
    assert np.array_equal(feather_alpha(alpha, 0), alpha)


def test_shadow_falls_under_the_subject(astronaut: Image.Image, person_alpha: np.ndarray) -> None:
    alpha = Image.fromarray(person_alpha)
    flat = np.asarray(composite(astronaut, alpha, background=(255, 255, 255)), np.int16)
    shaded = np.asarray(composite(astronaut, alpha, background=(255, 255, 255), shadow=True), np.int16)
    diff = (flat - shaded).max(axis=2)
    assert (diff >= 0).all() and np.array_equal(shaded[person_alpha == 255], flat[person_alpha == 255])
    subject = person_alpha > 127
    assert (diff > 10).sum() > 2000 and diff[dist_from(subject) > 50].max() <= 2  # darker backdrop beside her
    right = ~subject & np.roll(subject, 8, axis=1)  # just right of her outline
    left = ~subject & np.roll(subject, -8, axis=1)
    assert diff[right].mean() > 2 * diff[left].mean()  # the light comes from the upper left
    rgba = composite(astronaut, alpha, background=None, shadow=True)
    assert np.asarray(rgba)[..., 3][person_alpha == 0].max() > 30  # the shadow is in the cut-out's alpha
    save(Image.fromarray(shaded.astype(np.uint8)), "astronaut_shadow.png")


# -- user ONNX matting models ------------------------------------------------------------------------------------
def _pb(field: int, value: bytes | int | str) -> bytes:
    """One protobuf field (varint or length-delimited): enough to write a tiny ONNX file without `onnx`."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += struct.pack("B", b | (0x80 if n else 0))
            if not n:
                return out

    if isinstance(value, int):
        return varint(field << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(field << 3 | 2) + varint(len(data)) + data


def tiny_matting_onnx(path: Path) -> Path:
    """A 'matting net' with a dynamic input size whose output is logits: ReduceMean over channels of the input."""

    def tensor(name: str, dims: list[int | str]) -> bytes:
        shape = b"".join(_pb(1, _pb(1, d) if isinstance(d, int) else _pb(2, d)) for d in dims)
        return _pb(1, name) + _pb(2, _pb(1, _pb(1, 1) + _pb(2, shape)))  # elem_type FLOAT

    attr = _pb(1, "axes") + _pb(8, 1) + _pb(20, 7) + b""  # ints [1], type INTS
    node = _pb(1, "img") + _pb(2, "alpha") + _pb(4, "ReduceMean") + _pb(5, attr)
    graph = (
        _pb(1, node)
        + _pb(2, "g")
        + _pb(11, tensor("img", [1, 3, "h", "w"]))
        + _pb(12, tensor("alpha", [1, 1, "h", "w"]))
    )
    model = _pb(1, 7) + _pb(8, _pb(2, 13)) + _pb(7, graph)  # IR 7, opset 13
    path.write_bytes(model)
    return path


def test_user_onnx_matting_models_load(tmp_path: Path, embedded_dir: Path) -> None:
    tiny = load_onnx_matting(tiny_matting_onnx(tmp_path / "my-birefnet.onnx"))
    assert tiny.size == (1024, 1024) and tiny.normalize == "imagenet"  # dynamic size -> 1024; BiRefNet norm
    assert tiny.nbytes == (tmp_path / "my-birefnet.onnx").stat().st_size
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[:, 40:] = 255
    y = tiny.predict(rgb)
    assert y.shape == (1024, 1024) and y.min() >= 0 and y.max() <= 1  # logits were squashed
    assert y[:, :400].mean() < 0.2 and y[:, -400:].mean() > 0.8  # ImageNet-normalised black / white
    real = embedded_dir / "isnet-small" / "model.onnx"
    isnet = load_onnx_matting(real)
    assert isnet.size == (1024, 1024) and isnet.normalize == "isnet" and isnet.input_name == "input"
    assert isnet.output_name == "output" and isnet.nbytes == real.stat().st_size
    (tmp_path / "notes.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot be loaded"):
        load_onnx_matting(tmp_path / "notes.onnx")


# -- the operation, through the job queue ------------------------------------------------------------------------
def run_job(z: Zhike, params: dict) -> JobRow:
    return run(z, "cutout", params)


def stored(z: Zhike, asset_id: str) -> tuple[AssetRow, Image.Image]:
    row = z.assets.get(asset_id, owner_id="local")
    img = Image.open(io.BytesIO(z.assets.read_bytes(row)))
    img.load()
    return row, img


def test_cutout_op_saves_an_rgba_child_and_its_mask(app: Zhike, astronaut: Image.Image, embedded_dir: Path) -> None:
    src = upload(app, astronaut)
    row = run_job(app, {"image": src, "return_mask": True})
    assert (
        row.params["model"] == "isnet-medium" and row.params["mode"] == "auto"
    )  # the preferred installed model, pinned at submission
    res = row.result
    asset, cut = stored(app, res["images"][0]["asset_id"])
    assert asset.parent_id == src and asset.op == "cutout" and asset.tags == ["cutout", "auto"]
    assert asset.model == "isnet-medium" and cut.mode == "RGBA" and cut.size == astronaut.size
    mrow, mask = stored(app, res["mask"])
    assert mask.mode == "L" and mrow.parent_id == src and "mask" in mrow.tags
    assert np.array_equal(np.asarray(mask), np.asarray(cut.getchannel("A")))
    assert iou(np.asarray(mask) > 127, fixture_mask("astronaut_person_mask.png")) > 0.97
    x0, y0, x1, y1 = res["subject_box"]
    assert x0 < 40 and y0 < 30 and x1 == 512 and y1 == 512 and 0.5 < res["coverage"] < 0.58
    save(cut, "op_astronaut_rgba.png")


def test_cutout_op_logo_on_a_colour_and_on_an_image(app: Zhike) -> None:
    logo = upload(app, draw_logo(LOGO_BG))
    row = run_job(app, {"image": logo, "mode": "logo", "background": "#000"})
    assert row.params["model"] is None and row.params["background"] == "#000000"
    asset, out = stored(app, row.result["images"][0]["asset_id"])
    assert out.mode == "RGB" and asset.tags == ["cutout", "logo"] and asset.model is None
    assert np.abs(np.asarray(out, np.int16) - np.asarray(draw_logo((0, 0, 0)), np.int16)).mean() < 1.5
    bg = upload(app, Image.new("RGB", (100, 50), (0, 90, 200)))
    row = run_job(app, {"image": logo, "mode": "logo", "background_image": bg, "feather": 2, "shadow": True})
    _, out = stored(app, row.result["images"][0]["asset_id"])
    assert out.mode == "RGB" and out.size == (480, 240) and tuple(out.getpixel((470, 5))) == (0, 90, 200)
    save(out, "op_logo_on_image.png")


def test_cutout_op_rejects_bad_requests_with_the_field(app: Zhike, embedded_dir: Path) -> None:
    src = upload(app, Image.new("RGB", (64, 64), (200, 200, 200)))
    cases = [
        ({"image": src, "model": "nosuchmodel"}, InvalidInput, "params.model", "unknown model"),
        ({"image": src, "model": "realesrgan-x4plus"}, InvalidInput, "params.model", "not a matting model"),
        ({"image": "nosuchasset1"}, NotFound, "params.image", "not found"),
        ({"image": src, "background_image": "nosuchasset2"}, NotFound, "params.background_image", "not found"),
        ({"image": src, "background": "#fff", "background_image": src}, InvalidInput, "params.background_image", ""),
        ({"image": src, "background": "white"}, InvalidInput, "params.background", "hex colour"),
        ({"image": src, "feather": 51}, InvalidInput, "params.feather", ""),
        ({"image": src, "mode": "hair"}, InvalidInput, "params.mode", ""),
        ({"image": src, "colour": 1}, InvalidInput, "params.colour", ""),
    ]
    for params, err, field, words in cases:
        with pytest.raises(err, match=words or None) as e:
            app.submit("cutout", params, "local")
        assert e.value.field == field, (params, e.value.field)
    from zhike.core.registry import get_op

    schema = get_op("cutout").schema()
    assert schema["title"] == {"en": "Cutout", "zh": "智能抠图"} and schema["params_schema"]["required"] == ["image"]


# -- a sheet to look at -------------------------------------------------------------------------------------------
def test_visual_sheet(astronaut: Image.Image, person_alpha: np.ndarray, cat_alpha: np.ndarray) -> None:
    cat = Image.fromarray(skdata.chelsea())
    logo = draw_logo(LOGO_BG)
    logo_a = Image.fromarray(np.round(logo_alpha(np.asarray(logo)) * 255).astype(np.uint8))
    tiles = [
        astronaut,
        Image.fromarray(person_alpha),
        on_checker(composite(astronaut, Image.fromarray(person_alpha), background=None)),
        composite(astronaut, Image.fromarray(person_alpha), background=(40, 90, 200), feather=6, shadow=True),
        cat,
        Image.fromarray(cat_alpha),
        on_checker(composite(cat, Image.fromarray(cat_alpha), background=None)),
        composite(cat, Image.fromarray(cat_alpha), background=(255, 255, 255)),
        logo,
        logo_a,
        on_checker(composite(logo, logo_a, background=None)),
        composite(logo, logo_a, background=(0, 0, 0)),
    ]
    cell = 256
    sheet = Image.new("RGB", (4 * cell, 3 * cell), (90, 90, 90))
    for i, t in enumerate(tiles):
        t = t.convert("RGB")
        t.thumbnail((cell, cell))
        sheet.paste(t, ((i % 4) * cell + (cell - t.width) // 2, (i // 4) * cell + (cell - t.height) // 2))
    save(sheet, "sheet.png")
    # Zoomed edges: hair and the cat's ear on a saturated colour, where a halo would show.
    for name, img, a, box in (
        ("zoom_hair.png", astronaut, person_alpha, (150, 10, 310, 130)),
        ("zoom_ear.png", cat, cat_alpha, (300, 0, 420, 90)),
    ):
        comp = composite(img, Image.fromarray(a), background=(0, 160, 60)).crop(box)
        save(comp.resize((comp.width * 4, comp.height * 4), Image.Resampling.NEAREST), name)


def test_user_onnx_matting_model_registers_and_cuts(zhike: Zhike, embedded_dir: Path, tmp_path: Path) -> None:
    """A user's ONNX matting export (here a copy of ISNet under a BiRefNet-like name) registers as kind matting."""
    import shutil

    from zhike.backends.checkpoint_inspect import CheckpointError, inspect_checkpoint

    mine = tmp_path / "my-matting.onnx"
    shutil.copy(embedded_dir / "isnet-small" / "model.onnx", mine)
    spec = zhike.catalog.add(str(mine), name="my-matting")
    assert (spec.kind, spec.format, spec.family) == ("matting", "onnx", "isnet")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(CheckpointError, match="not a readable ONNX"):
        inspect_checkpoint(bad)
    img = Image.fromarray(skdata.chelsea())  # ISNet needs real detail: tiny inputs (~128 px) come out empty
    buf = io.BytesIO()
    img.save(buf, "PNG")
    up = zhike.assets.upload(buf.getvalue(), owner_id="local").id
    job, _ = zhike.submit("cutout", {"image": up, "model": "my-matting"}, "local")
    Worker(zhike).run_one(job.id)
    row = zhike.jobs.get(job.id)
    assert row.state == "succeeded", row.error
    assert row.result["coverage"] > 0.5  # the cat fills most of the frame


def test_very_wide_images_are_letterboxed_not_squashed(embedded_dir: Path) -> None:
    net = load_onnx_matting(embedded_dir / "isnet-small" / "model.onnx")
    assert net.grid(300, 400) == (1024, 1024)  # ordinary aspects: squashed to the net's square, as ISNet trained
    assert net.grid(100, 400) == (256, 1024)  # beyond 2:1 the aspect is kept inside the square
    wide = np.full((100, 400, 3), 230, np.uint8)
    wide[20:80, 30:90] = (200, 40, 40)
    alpha = net.predict(wide)
    assert alpha.shape == (256, 1024)
    assert alpha[64:192, 100:220].mean() > alpha[:, 600:].mean()  # the object, not the empty right side
