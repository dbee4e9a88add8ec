"""subject_swap (主体迁移) on a real product photo (scikit-image's coffee cup): the product's pixels are kept
exactly (composite and diffusion paths), the contact shadow darkens the ground under the product and nothing above
it, harmonisation touches only the rim, and a scene prompt without an image model gets a clear error.

Results are saved under test-artifacts/subject_swap/ for a look.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from skimage import data as skdata  # noqa: E402

from tests.conftest import ARTIFACTS, make_settings
from tests.helpers.images import save_artifact, save_sheet, upload
from tests.test_generate import pixels, run
from zhike.backends.matting import alpha_matte
from zhike.core.errors import InvalidInput
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker

ART = ARTIFACTS / "subject_swap"


def save(img: Image.Image | np.ndarray, name: str) -> None:
    save_artifact(img, ART, name)


def sheet(images: list[Image.Image | np.ndarray], name: str, height: int = 240) -> None:
    save_sheet(images, ART, name, height=height, background="white")


def gradient_scene(w: int, h: int) -> Image.Image:
    """Sky blue at the top to sand at the bottom: a plain 'scene' where any darkening is easy to see."""
    t = np.linspace(0, 1, h)[:, None, None]
    rgb = np.array([110, 165, 230]) * (1 - t) + np.array([225, 205, 170]) * t
    return Image.fromarray(np.repeat(rgb, w, axis=1).astype(np.uint8))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path_factory.mktemp("home")))  # no image model: the composite path needs none
    yield z
    z.engine.dispose()


@pytest.fixture(scope="module")
def cup() -> Image.Image:
    return Image.fromarray(skdata.coffee()).resize((180, 120), Image.LANCZOS)


@pytest.fixture(scope="module")
def cup_alpha(app: Zhike, cup: Image.Image) -> Image.Image:
    """The test's own product matte, made as the op makes it (isnet-medium, no edge refinement)."""
    return alpha_matte(app.models, cup, mode="product", model="isnet-medium", refine=False)


def kept_region(alpha: Image.Image, result: dict, extra: int = 1) -> np.ndarray:
    """Where the op promises the cut-out's own pixels: the product (alpha >= 128) eroded by kept_inset_px (+1 for
    rounding), in product_box coordinates."""
    x0, y0, x1, y1 = result["product_box"]
    a = alpha.crop(tuple(result["source_box"])).resize((x1 - x0, y1 - y0), Image.LANCZOS)
    hard = a.point(lambda v: 255 if v >= 128 else 0)
    r = result["kept_inset_px"] + extra
    return np.asarray(hard.filter(ImageFilter.MinFilter(2 * r + 1))) > 0


def cutout_pixels(photo: Image.Image, result: dict) -> np.ndarray:
    """The cut-out product as the op defines it: the photo's box, resized (Lanczos) to the placed size."""
    x0, y0, x1, y1 = result["product_box"]
    return np.asarray(photo.crop(tuple(result["source_box"])).resize((x1 - x0, y1 - y0), Image.LANCZOS), np.int16)


def test_composite_keeps_the_product_and_shadows_only_the_ground_under_it(
    app: Zhike, cup: Image.Image, cup_alpha: Image.Image
) -> None:
    scene = gradient_scene(200, 150)
    row = run(
        app,
        "subject_swap",
        {
            "image": upload(app, cup),
            "scene_image": upload(app, scene),
            "harmonize": 0,
            "light_match": 0,  # the product's exact pixels: tests/test_product_scene.py covers the relighting
            "placement": {"margin": 0.1, "anchor": "bottom-center"},
        },
    )
    res = row.result
    assert res["method"] == "composite" and res["model"] is None
    assert res["placed_on"] == "anchor" and res["surface"] is None  # the anchor asked for (and no table edge)
    assert row.params["matting_model"] == "isnet-medium"  # the cleaner ISNet, pinned at submission
    out = pixels(app, res["images"][0]["asset_id"])
    sheet([cup, scene, out], "sheet_composite_gradient.png")
    assert out.shape == (150, 200, 3)  # the scene's size by default
    x0, y0, x1, y1 = res["product_box"]
    assert max(x1 - x0, y1 - y0) == round(0.6 * 150)  # a fixed anchor: 0.6 of the shorter side
    assert y1 == 150 - 15 and abs((x0 + x1) / 2 - 100) <= 1  # bottom-center, 10 % margin

    kept = kept_region(cup_alpha, res)
    assert kept.mean() > 0.5  # most of the box is checked, not a sliver
    assert np.array_equal(out[y0:y1, x0:x1][kept], cutout_pixels(cup, res)[kept])

    src = np.asarray(scene, np.int16)
    assert np.array_equal(out[:y0], src[:y0])  # nothing above the product changed: no halo, no drop shadow
    mid = (y0 + y1) // 2
    assert np.array_equal(out[y0:mid, : x0 - 2], src[y0:mid, : x0 - 2])  # nor beside its upper half
    assert np.array_equal(out[y0:mid, x1 + 2 :], src[y0:mid, x1 + 2 :])
    w = x1 - x0
    under = (src - out)[y1 : y1 + 4, x0 + w // 4 : x1 - w // 4]
    assert under.min() >= 0 and under.mean() > 15  # the ground just under the product is darker
    reach = y1 + (y1 - y0) // 4
    assert np.array_equal(out[reach:], src[reach:])  # a contact shadow: short, not a long smear


def test_harmonize_changes_only_the_rim_on_a_photo_scene(app: Zhike, cup: Image.Image, cup_alpha: Image.Image) -> None:
    scene = Image.fromarray(skdata.astronaut()).resize((192, 192), Image.LANCZOS)
    row = run(
        app,
        "subject_swap",
        {
            "image": upload(app, cup),
            "scene_image": upload(app, scene),
            "harmonize": 1.0,
            "light_match": 0,
            "shadow": False,
            "width": 240,  # wider than the scene: it is scaled to cover
            "placement": {"anchor": "bottom-left", "scale": 0.5, "margin": 0.05},
        },
    )
    res = row.result
    out = pixels(app, res["images"][0]["asset_id"])
    sheet([cup, scene, out], "sheet_composite_astronaut_harmonized.png")
    assert out.shape == (240, 240, 3)  # width given: the scene's aspect (square) kept
    x0, y0, x1, y1 = res["product_box"]
    assert x0 == 12 and y1 == 240 - 12
    assert res["kept_inset_px"] > 1
    expected = cutout_pixels(cup, res)
    got = out[y0:y1, x0:x1]
    kept = kept_region(cup_alpha, res)
    assert np.array_equal(got[kept], expected[kept])  # the core is the product's own colour
    rim = kept_region(cup_alpha, res, extra=-res["kept_inset_px"] + 1) & ~kept_region(cup_alpha, res, extra=0)
    assert np.abs(got[rim] - expected[rim]).mean() > 3  # the rim took on the scene's colours


def synthetic_product() -> tuple[Image.Image, np.ndarray]:
    """The coffee cup as an RGBA PNG with an elliptical alpha (a pre-cut product: the op uses its own alpha)."""
    cup = Image.fromarray(skdata.coffee()).resize((96, 64), Image.LANCZOS)
    alpha = Image.new("L", cup.size, 0)
    ImageDraw.Draw(alpha).ellipse((10, 4, 86, 60), fill=255)
    alpha = alpha.filter(ImageFilter.GaussianBlur(1.5))
    rgba = cup.convert("RGBA")
    rgba.putalpha(alpha)
    return rgba, np.asarray(alpha)


@pytest.mark.parametrize("with_scene", [False, True])
def test_diffusion_generates_the_scene_around_the_kept_product(zhike: Zhike, with_scene: bool) -> None:
    product, alpha = synthetic_product()
    params = {
        "image": upload(zhike, product),
        "prompt": "雪山日照 snowy mountain in sunshine",
        "model": "tiny",
        "steps": 2,
        "seed": 11,
        "width": 96,
        "height": 96,
        "harmonize": 0,
        "light_match": 0,
        "placement": {"anchor": "center", "scale": 0.8},
    }
    if with_scene:
        params["scene_image"] = upload(zhike, gradient_scene(120, 120))
    row = run(zhike, "subject_swap", params)
    res = row.result
    assert res["method"] == "diffusion:tiny" and row.params["seed"] == 11
    out = pixels(zhike, res["images"][0]["asset_id"])
    sheet([product, out], f"sheet_diffusion_tiny{'_scene' if with_scene else ''}.png")
    assert out.shape == (96, 96, 3)
    x0, y0, x1, y1 = res["product_box"]
    assert max(x1 - x0, y1 - y0) == round(0.8 * 96) and abs((x0 + x1) / 2 - 48) <= 1 and abs((y0 + y1) / 2 - 48) <= 1
    expected = cutout_pixels(product.convert("RGB"), res)
    kept = kept_region(Image.fromarray(alpha), res)  # the PNG's own alpha is the matte
    assert kept.mean() > 0.4
    assert np.array_equal(out[y0:y1, x0:x1][kept], expected[kept])
    corner = out[:8, :8].reshape(-1, 3)
    assert np.abs(corner - 128).mean() > 5  # the scene was generated, not the grey start
    if with_scene:  # the scene image was the start: the generated corners move from it, the product stays
        assert np.abs(out[:8, :8] - np.asarray(gradient_scene(96, 96), np.int16)[:8, :8]).mean() > 1


def test_a_scene_prompt_without_an_image_model_says_what_to_add(app: Zhike, cup: Image.Image) -> None:
    img = upload(app, cup)
    with pytest.raises(InvalidInput) as e:
        app.submit("subject_swap", {"image": img, "prompt": "snowy mountain in sunshine"}, "local")
    assert e.value.field == "params.prompt"
    assert "zhike models add" in e.value.message and "scene_image" in e.value.message
    assert "inpainting" in e.value.message
    with pytest.raises(InvalidInput) as e:
        app.submit("subject_swap", {"image": img}, "local")  # neither a prompt nor a scene
    assert e.value.field == "params.prompt"
    with pytest.raises(InvalidInput) as e:
        app.submit("subject_swap", {"image": img, "scene_image": img, "placement": {"size": 2}}, "local")
    assert e.value.field.startswith("params.placement")


def test_an_empty_cutout_is_refused(app: Zhike) -> None:
    empty = Image.new("RGBA", (64, 64), (200, 200, 200, 0))  # a PNG cut-out with nothing left in it
    scene = upload(app, gradient_scene(64, 64))
    job, _ = app.submit("subject_swap", {"image": upload(app, empty), "scene_image": scene}, "local")
    Worker(app).run_one(job.id)
    row = app.jobs.get(job.id)
    assert row.state == "failed" and row.error["field"] == "params.image"
    assert "no product found" in row.error["message"]
