"""The `control` operation end to end: registered ControlNets, preprocessing, img2img and inpaint modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.helpers.images import upload
from tests.test_edit_ops import kept_outside, photo, square_mask
from tests.test_generate import BASE, pixels, run
from zhike.core.errors import InvalidInput
from zhike.services.container import Zhike


@pytest.fixture
def zc(zhike: Zhike, tiny_cn15: Path) -> Zhike:
    spec = zhike.catalog.add(str(tiny_cn15), name="cn")
    assert spec.kind == "controlnet"
    return zhike


def line_art() -> Image.Image:
    img = Image.new("RGB", (64, 64), "white")
    d = ImageDraw.Draw(img)
    d.ellipse((12, 12, 52, 52), outline="black", width=3)
    d.line((0, 60, 64, 40), fill="black", width=2)
    return img


def test_weight_zero_equals_plain_txt2img_and_weight_one_steers(zc: Zhike) -> None:
    art = upload(zc, line_art())
    plain = pixels(zc, run(zc, "txt2img", BASE).result["images"][0]["asset_id"])
    unit = {"model": "cn", "image": art, "weight": 0.0}
    zero = run(zc, "control", {**BASE, "controls": [unit]})
    assert np.array_equal(pixels(zc, zero.result["images"][0]["asset_id"]), plain)
    one = run(zc, "control", {**BASE, "controls": [{**unit, "weight": 1.0}]})
    assert np.abs(pixels(zc, one.result["images"][0]["asset_id"]) - plain).mean() > 0.5


def test_preprocess_canny_on_a_photo_and_saved_maps(zc: Zhike) -> None:
    img = upload(zc, photo((96, 64)))
    row = run(
        zc,
        "control",
        {
            **BASE,
            "width": None,
            "height": None,
            "controls": [{"model": "cn", "image": img, "preprocess": "canny"}],
            "save_maps": True,
        },
    )
    out = row.result["images"][0]
    assert (out["width"], out["height"]) == (96, 64)  # the control image's aspect
    (map_id,) = row.result["maps"]
    m = zc.assets.get(map_id, owner_id="local")
    assert "control-map" in m.tags and m.parent_id == img
    edges = pixels(zc, map_id)
    assert 0.01 < (edges > 127).mean() < 0.5  # an edge map, not blank, not full


def test_line_art_colouring_and_control_inpaint_keep_what_they_must(zc: Zhike) -> None:
    art_img = line_art()
    art = upload(zc, art_img)
    row = run(
        zc,
        "control",
        {
            **BASE,
            "width": None,
            "height": None,
            "init_image": art,
            "strength": 0.9,
            "controls": [{"model": "cn", "image": art, "preprocess": "lineart"}],
        },
    )
    asset = zc.assets.get(row.result["images"][0]["asset_id"], owner_id="local")
    assert asset.parent_id == art and (asset.width, asset.height) == (64, 64)
    mask = square_mask((64, 64), (16, 16, 48, 48))
    row = run(
        zc,
        "control",
        {
            **BASE,
            "init_image": art,
            "mask": upload(zc, mask),
            "strength": 1.0,
            "controls": [{"model": "cn", "image": art}],
        },
    )
    out = pixels(zc, row.result["images"][0]["asset_id"])
    assert kept_outside(out, art_img, mask)


def test_control_errors_name_the_field(zc: Zhike, tiny_sdxl: Path, models_root: Path) -> None:
    from tests.helpers.tiny_controlnet import build_tiny_controlnet

    art = upload(zc, line_art())
    zc.catalog.add(str(build_tiny_controlnet(tiny_sdxl, models_root / "cn-xl-op")), name="cn-xl")
    cases = [
        ({"controls": [{"model": "cn-xl", "image": art}]}, "params.controls.0.model"),
        ({"controls": [{"model": "tiny", "image": art}]}, "params.controls.0.model"),
        ({"controls": [{"model": "cn", "image": "nope123"}]}, "params.controls.0.image"),
        ({"controls": [{"model": "cn", "image": art}], "mask": art}, "params.mask"),
        ({"controls": []}, "params.controls"),
        ({"controls": [{"model": "cn", "image": art, "start": 0.8, "end": 0.2}]}, "params.controls.0"),
    ]
    for extra, field in cases:
        with pytest.raises(Exception) as e:
            zc.submit("control", {**BASE, **extra}, "local")
        assert getattr(e.value, "field", None) == field, (extra, e.value)
    assert isinstance(e.value, InvalidInput)
