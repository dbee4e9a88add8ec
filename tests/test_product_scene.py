"""subject_swap places a product in a scene photo so it looks placed, not pasted: standing on the scene's table or
floor (found by backends.scene) or at the user's spot, its colour temperature moved toward the scene's light
(bounded), its shadow cast away from the light; with an image model, a light diffusion pass over the edge band.

Scenes are drawn here with known geometry (a wall, a tabletop between two known rows, a window light on one
side); the product is a front-view bottle PNG (its own alpha: no matting model needed). Sheets are saved under
test-artifacts/product_scene/ for a look.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from skimage import color as skcolor
from skimage import data as skdata

from tests.conftest import ARTIFACTS, make_settings
from tests.helpers.images import save_sheet, upload
from tests.helpers.tiny_iclight import build_tiny_iclight
from tests.test_generate import pixels, run
from zhike.core.errors import InvalidInput
from zhike.ops.scene_fit import MAX_AB_SHIFT
from zhike.services.container import Zhike

ART = ARTIFACTS / "product_scene"
TOP, FRONT = 0.55, 0.82  # the tabletop's back and front edge, shares of the height


def table_scene(
    w: int = 480, h: int = 336, light: str = "left", tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
) -> Image.Image:
    """A wall, a wooden tabletop from TOP to FRONT, its dark front face below; a window light high on one side."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    yt, yf = int(TOP * h), int(FRONT * h)
    img[:yt] = (200, 196, 188)
    img[yt:yf] = np.array([168, 120, 78]) + (np.sin(xx[yt:yf] / 7 + np.sin(yy[yt:yf] / 40) * 3) * 6)[..., None]
    img[yf:] = (96, 66, 42)
    lx = 0.12 if light == "left" else 0.88
    img *= (0.65 + 0.5 * np.exp(-(((xx / w - lx) / 0.3) ** 2 + ((yy / h - 0.1) / 0.45) ** 2)))[..., None]
    img *= np.array(tint, np.float32)
    noise = np.random.default_rng(3).normal(0, 2, img.shape)
    return Image.fromarray(np.clip(img + noise, 0, 255).astype(np.uint8))


def bottle(h: int = 150, body: tuple[int, int, int] = (40, 110, 70)) -> Image.Image:
    """A front-view bottle with a cream label, as a cut-out PNG (transparent around it)."""
    w = int(h * 0.36)
    a = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(a)
    d.rounded_rectangle((0, int(h * 0.3), w - 1, h - 1), radius=int(w * 0.18), fill=255)
    d.polygon(
        [(0, int(h * 0.36)), (int(w * 0.34), int(h * 0.14)), (int(w * 0.66), int(h * 0.14)), (w - 1, int(h * 0.36))],
        fill=255,
    )
    d.rectangle((int(w * 0.32), 0, int(w * 0.68), int(h * 0.2)), fill=255)
    shade = 0.6 + 0.4 * np.sqrt(np.clip(1 - np.linspace(-1, 1, w) ** 2, 0, 1))[None, :, None]
    rgb = np.ones((h, w, 3)) * np.array(body) * shade
    rgb[int(h * 0.5) : int(h * 0.8)] = np.array([236, 226, 200]) * shade[0]
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).convert("RGBA")
    img.putalpha(a.filter(ImageFilter.GaussianBlur(0.8)))
    return img


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path_factory.mktemp("home")))  # no image model: classical placement only
    yield z
    z.engine.dispose()


def swap(z: Zhike, product: Image.Image, scene: Image.Image, **params: object) -> tuple[dict, np.ndarray]:
    row = run(z, "subject_swap", {"image": upload(z, product), "scene_image": upload(z, scene), **params})
    return row.result, pixels(z, row.result["images"][0]["asset_id"]).astype(np.uint8)


def product_mask(res: dict, product: Image.Image, shape: tuple[int, ...], inset: int = 2) -> np.ndarray:
    """Where the placed product is solid (its alpha resized to product_box), shrunk by `inset` px (grown if < 0)."""
    x0, y0, x1, y1 = res["product_box"]
    a = product.getchannel("A").crop(tuple(res["source_box"])).resize((x1 - x0, y1 - y0), Image.LANCZOS)
    full = Image.new("L", (shape[1], shape[0]), 0)
    full.paste(a.point(lambda v: 255 if v >= 128 else 0), (x0, y0))
    if inset:
        full = full.filter((ImageFilter.MinFilter if inset > 0 else ImageFilter.MaxFilter)(2 * abs(inset) + 1))
    return np.asarray(full) > 0


def test_the_product_stands_on_the_detected_table_not_mid_air(app: Zhike) -> None:
    scene, product = table_scene(), bottle()
    res, out = swap(app, product, scene)
    save_sheet([scene, out], ART, "sheet_on_table.png", height=336)
    h = scene.height
    assert res["placed_on"] == "surface"
    back, _, front = res["surface"]
    assert abs(back - TOP) <= 0.03 and abs(front - FRONT) <= 0.03  # both table edges found
    x0, y0, x1, y1 = res["product_box"]
    assert TOP - 0.03 <= y1 / h <= FRONT + 0.03  # its foot is on the tabletop...
    assert y1 / h > TOP + 0.03  # ...on it, not on the wall's edge
    assert 0.15 <= (y1 - y0) / h <= 0.45  # a plausible size for the room above it


def test_a_user_position_and_scale_are_honoured(app: Zhike) -> None:
    scene, product = table_scene(), bottle()
    res, out = swap(app, product, scene, placement={"x": 0.25, "y": 0.78, "scale": 0.4})
    save_sheet([scene, out], ART, "sheet_user_position.png", height=336)
    x0, y0, x1, y1 = res["product_box"]
    assert res["placed_on"] == "position"
    assert abs((x0 + x1) / 2 - 0.25 * scene.width) <= 1 and abs(y1 - 0.78 * scene.height) <= 1
    assert max(x1 - x0, y1 - y0) == round(0.4 * scene.height)


def test_a_warm_scene_warms_the_product_bounded(app: Zhike) -> None:
    product = bottle(body=(150, 150, 150))  # grey and cream: a neutral product
    warm = table_scene(tint=(1.1, 1.0, 0.72))
    args = {"shadow": False, "harmonize": 0, "placement": {"x": 0.5, "y": 0.7}}
    res_0, out_0 = swap(app, product, warm, light_match=0, **args)
    res_1, out_1 = swap(app, product, warm, light_match=1, **args)
    res_h, out_h = swap(app, product, warm, light_match=0.5, **args)
    save_sheet([warm, out_0, out_h, out_1], ART, "sheet_warm_scene.png", height=336)
    inside = product_mask(res_0, product, out_0.shape)
    b_of = lambda img: float(skcolor.rgb2lab(img[inside])[..., 2].mean())  # noqa: E731
    b_scene = float(skcolor.rgb2lab(np.asarray(warm))[..., 2].mean())
    b0, b_half, b1 = b_of(out_0), b_of(out_h), b_of(out_1)
    assert b_scene > b0 + 15  # the scene is much warmer than the product
    assert b0 < b_half < b1  # it moves toward the scene's, more with more strength...
    assert b1 - b0 <= MAX_AB_SHIFT + 1.5  # ...bounded: the product stays recognisable
    assert b1 - b0 >= 4  # a visible shift
    assert res_1["light_shift"][2] > 0 and res_0["light_shift"] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("light", ["left", "right"])
def test_the_shadow_falls_away_from_the_light(app: Zhike, light: str) -> None:
    scene, product = table_scene(light=light), bottle()
    res, out = swap(app, product, scene, harmonize=0, light_match=0, placement={"x": 0.5, "y": 0.75})
    save_sheet([scene, out], ART, f"sheet_shadow_light_{light}.png", height=336)
    assert (res["light"][0] < -0.2) == (light == "left") and res["light"][2] > 0.3
    x0, y0, x1, y1 = res["product_box"]
    dark = np.asarray(scene, np.float32).mean(2) - out.astype(np.float32).mean(2)
    dark[product_mask(res, product, out.shape, inset=-2)] = 0  # the product itself is not shadow
    cx = (x0 + x1) // 2
    left, right = dark[y0:, :cx].clip(0).sum(), dark[y0:, cx:].clip(0).sum()
    away, toward = (right, left) if light == "left" else (left, right)
    assert away > 2 * toward  # most of the shadow lies on the side away from the light
    assert dark[: int(TOP * scene.height) - 2].max() < 1  # on the table, not up the wall behind it


def test_on_a_real_photo_the_cup_stands_on_free_ground(app: Zhike) -> None:
    """scikit-image's coffee cup (cut out by the matting model) into scikit-image's cameraman: on the lawn,
    beside the man rather than over his coat."""
    cup = Image.fromarray(skdata.coffee()).resize((180, 120), Image.LANCZOS)
    scene = Image.fromarray(skdata.camera()).convert("RGB").resize((256, 256), Image.LANCZOS)
    res, out = swap(app, cup, scene)
    save_sheet([cup, scene, out], ART, "sheet_real_cup_on_lawn.png", height=256)
    assert res["placed_on"] == "surface"
    x0, y0, x1, y1 = res["product_box"]
    base = np.asarray(scene.convert("L"), np.float32)[y1 - (y1 - y0) // 3 : y1, x0:x1]
    assert base.mean() > 90  # the lawn (grey), not the black coat


def test_edge_blend_changes_only_the_band_around_the_product(zhike: Zhike) -> None:
    """With an image model (the tiny SD 1.5), the composite gets a low-strength pass over a thin band around the
    product's edge: pixels inside the band change, everything farther from the edge is the plain composite's."""
    scene, product = table_scene(w=160, h=112), bottle(h=64)
    args = {"seed": 5, "steps": 2, "placement": {"x": 0.5, "y": 0.75}}
    res_0, plain = swap(zhike, product, scene, edge_blend=0, **args)
    res_1, blended = swap(zhike, product, scene, edge_blend=0.6, **args)
    save_sheet([plain, blended], ART, "sheet_edge_blend_tiny.png", height=224)
    assert res_1["model"] == "tiny" and res_0["edge_band_px"] == 0
    r = res_1["edge_band_px"]
    assert r >= 3 and res_1["product_box"] == res_0["product_box"]
    hard = product_mask(res_1, product, plain.shape, inset=0)
    near = np.asarray(Image.fromarray(hard.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * r + 3))) > 0
    near &= ~(np.asarray(Image.fromarray(hard.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(2 * r + 3))) > 0)
    changed = np.abs(plain.astype(np.int16) - blended).max(axis=2) > 0
    assert changed.any() and changed[near].mean() > 0.2  # the band was repainted
    assert not changed[~near].any()  # nothing beyond it


def grown(mask: np.ndarray, px: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * px + 1))) > 0


@pytest.mark.parametrize("channels", [8, 12])
def test_a_tiny_iclight_unet_loads_and_relights_only_the_product(
    zhike: Zhike, tiny_sd15: Path, tmp_path: Path, channels: int
) -> None:
    """An IC-Light-style UNet in the diffusers format (fc: 8 input channels, fbc: 12) registers as a `relight`
    model, loads like the others and relights the placed product; the scene around it stays the composite's."""
    path = build_tiny_iclight(tiny_sd15, tmp_path / f"iclight-{channels}", in_channels=channels)
    spec = zhike.catalog.add(str(path), name="light")
    assert (spec.kind, spec.variant) == ("relight", "fc" if channels == 8 else "fbc")
    with zhike.models.use_named("light", kind="relight") as loaded:
        assert loaded.unet.config.in_channels == channels and loaded.variant == spec.variant
    scene, product = table_scene(w=160, h=112), bottle(h=64)
    args = {"model": "tiny", "seed": 5, "steps": 2, "edge_blend": 0, "placement": {"x": 0.5, "y": 0.75}}
    res_0, plain = swap(zhike, product, scene, **args)
    res_1, relit = swap(zhike, product, scene, relight_model="light", **args)
    save_sheet([plain, relit], ART, f"sheet_relight_tiny_{spec.variant}.png", height=224)
    assert res_1["relight_model"] == "light" and res_1["model"] == "tiny" and res_0["relight_model"] is None
    hard = product_mask(res_1, product, plain.shape, inset=0)
    changed = np.abs(plain.astype(np.int16) - relit).max(axis=2) > 0
    assert changed[hard].mean() > 0.5  # the product was relit (a random UNet: much changes)
    assert not changed[~grown(hard, 3)].any()  # the scene around it was not
    with pytest.raises(InvalidInput) as e:  # a checkpoint is not a relighting model
        zhike.submit(
            "subject_swap",
            {"image": upload(zhike, product), "scene_image": upload(zhike, scene), "relight_model": "tiny"},
            "local",
        )
    assert e.value.field == "params.relight_model" and e.value.code == "model_wrong_kind"


def test_without_a_support_it_stands_at_the_bottom_at_a_plausible_size(app: Zhike) -> None:
    """The issue's own case: a product into scikit-image's rocket launch (night sky, the ground a thin strip at
    the bottom). Before: a 0.6-of-the-canvas cut-out in mid-air; now it stands at the bottom, sized for the room."""
    scene = Image.fromarray(skdata.rocket()).resize((320, 214), Image.LANCZOS)
    res, out = swap(app, bottle(), scene)
    save_sheet([scene, out], ART, "sheet_rocket_no_support.png", height=214)
    x0, y0, x1, y1 = res["product_box"]
    h = scene.height
    assert res["placed_on"] in ("anchor", "surface")
    assert y1 >= 0.85 * h and (y1 - y0) <= 0.45 * h
