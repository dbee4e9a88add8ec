"""Editing operations keep what they must: inpaint/erase/material_swap keep unmasked pixels exactly,
outpaint keeps the original, hires enlarges, restyle applies a style. Real photo: skimage's coffee."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tests.helpers.images import upload
from tests.test_generate import BASE, pixels, run
from zhike.core.errors import InvalidInput
from zhike.core.rows import JobRow
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker


def photo(size: tuple[int, int] = (96, 72)) -> Image.Image:
    return Image.fromarray(data.coffee()).resize(size, Image.LANCZOS)


def square_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    m = Image.new("L", size, 0)
    m.paste(255, box)
    return m


def kept_outside(out: np.ndarray, original: Image.Image, mask: Image.Image) -> bool:
    """Every pixel outside the (black part of the) mask is bit-identical to the original."""
    outside = np.asarray(mask) == 0
    return np.array_equal(out[outside], np.asarray(original, dtype=np.int16)[outside])


def outputs(z: Zhike, row: JobRow) -> list[np.ndarray]:
    return [pixels(z, i["asset_id"]) for i in row.result["images"]]


def test_inpaint_keeps_unmasked_pixels_exactly(zhike: Zhike) -> None:
    img = photo()
    mask = square_mask(img.size, (30, 20, 60, 50))
    row = run(
        zhike,
        "inpaint",
        {
            "prompt": "a red flower",
            "image": upload(zhike, img),
            "mask": upload(zhike, mask),
            "model": "tiny",
            "steps": 3,
            "seed": 1,
        },
    )
    out = outputs(zhike, row)[0]
    src = np.asarray(img, dtype=np.int16)
    outside = np.asarray(mask) == 0
    assert out.shape == src.shape
    assert np.array_equal(out[outside], src[outside])
    assert np.abs(out[~outside] - src[~outside]).mean() > 5  # the masked area was redrawn


def test_inpaint_crop_mode_on_a_large_image_keeps_the_rest(zhike: Zhike) -> None:
    img = photo((800, 600))
    mask = square_mask(img.size, (400, 300, 440, 340))
    row = run(
        zhike,
        "inpaint",
        {
            "image": upload(zhike, img),
            "mask": upload(zhike, mask),
            "model": "tiny",
            "steps": 2,
            "seed": 3,
            "area": "masked",
            "width": 64,
            "height": 64,
        },
    )
    out = outputs(zhike, row)[0]
    assert out.shape == (600, 800, 3) and kept_outside(out, img, mask)


def test_empty_mask_is_refused(zhike: Zhike) -> None:
    img = photo()
    job, _ = zhike.submit(
        "inpaint",
        {"image": upload(zhike, img), "mask": upload(zhike, Image.new("L", img.size)), "model": "tiny", "steps": 2},
        "local",
    )
    Worker(zhike).run_one(job.id)
    row = zhike.jobs.get(job.id)
    assert row.state == "failed" and row.error["field"] == "params.mask"


def green_square_on_photo() -> tuple[Image.Image, Image.Image, tuple[int, int, int, int], np.ndarray]:
    """A green square pasted on the (reddish) coffee photo, its mask, its box and the clean photo."""
    img = photo((128, 96))
    box = (50, 30, 80, 60)
    arr = np.asarray(img).copy()
    arr[box[1] : box[3], box[0] : box[2]] = (0, 255, 0)
    mask = square_mask(img.size, (box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2))
    return Image.fromarray(arr), mask, box, np.asarray(img, dtype=np.int16)


def box_error(a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int]) -> float:
    return float(np.abs(a[box[1] : box[3], box[0] : box[2]] - b[box[1] : box[3], box[0] : box[2]]).mean())


def test_erase_without_any_model_uses_the_named_classical_fill(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    z = Zhike(make_settings(tmp_path / "empty"))  # no model installed at all
    img, mask, box, clean = green_square_on_photo()
    row = run(z, "erase", {"image": upload(z, img), "mask": upload(z, mask)})
    assert row.result["method"] == "classical-telea" and row.result["warnings"]
    out = outputs(z, row)[0]
    src = np.asarray(img, dtype=np.int16)
    # The filled area is far closer to the photo under the object than the object was.
    assert box_error(out, clean, box) < 0.45 * box_error(src, clean, box)
    assert float(out[box[1] : box[3], box[0] : box[2], 1].mean()) < 120  # no green left
    grown = np.asarray(mask.filter(__import__("PIL.ImageFilter", fromlist=["x"]).MaxFilter(13))) == 0
    assert np.array_equal(out[grown], src[grown])


def test_a_classical_erase_chosen_with_a_model_installed_says_nothing_about_models(zhike: Zhike) -> None:
    """The canvas sends 快速擦除 (classical) on purpose: no "add a model" warning when one is installed."""
    img, mask, _, _ = green_square_on_photo()
    row = run(zhike, "erase", {"image": upload(zhike, img), "mask": upload(zhike, mask), "method": "classical"})
    assert row.result["method"] == "classical-telea" and row.result["warnings"] == []


def test_erase_with_a_model_refines_and_keeps_the_rest(zhike: Zhike) -> None:
    img, mask, _, _ = green_square_on_photo()
    row = run(
        zhike,
        "erase",
        {"image": upload(zhike, img), "mask": upload(zhike, mask), "steps": 3, "seed": 2, "mask_grow": 0},
    )
    assert row.result["method"] == "diffusion:tiny"
    out = outputs(zhike, row)[0]
    assert kept_outside(out, img, mask)


def test_material_swap_keeps_outside_and_names_the_material(zhike: Zhike) -> None:
    img = photo()
    mask = square_mask(img.size, (20, 10, 70, 60))
    row = run(
        zhike,
        "material_swap",
        {
            "image": upload(zhike, img),
            "mask": upload(zhike, mask),
            "material": "brown leather",
            "model": "tiny",
            "steps": 2,
            "seed": 4,
        },
    )
    assert "made of brown leather" in row.params["prompt"]
    again, _ = zhike.submit("material_swap", row.params, "local")
    assert again.params["prompt"] == row.params["prompt"]  # re-submitting does not expand twice
    out = outputs(zhike, row)[0]
    assert kept_outside(out, img, mask)


@pytest.mark.parametrize("method", ["classical", "diffusion"])
def test_outpaint_keeps_the_original_and_grows_as_asked(zhike: Zhike, method: str) -> None:
    img = photo((64, 48))
    params = {
        "image": upload(zhike, img),
        "aspect": "16:9",
        "anchor": "left",
        "method": method,
        "steps": 2,
        "seed": 5,
        "prompt": "a kitchen table",
    }
    row = run(zhike, "outpaint", params)
    out = outputs(zhike, row)[0]
    # 64x48 to 16:9 at the same height: 85 wide, the original on the left.
    assert out.shape == (48, 85, 3) and row.result["added"] == {"left": 0, "right": 21, "top": 0, "bottom": 0}
    assert np.array_equal(out[:, :64], np.asarray(img, dtype=np.int16))
    assert row.params["right"] == 21 and row.params["aspect"] is None  # stored resolved
    assert row.result["method"].startswith("classical" if method == "classical" else "diffusion")


def test_outpaint_refuses_nothing_to_do_and_huge_canvases(zhike: Zhike) -> None:
    img_id = upload(zhike, photo((64, 48)))
    with pytest.raises(InvalidInput) as e:
        zhike.submit("outpaint", {"image": img_id, "aspect": "4:3"}, "local")
    assert e.value.field == "params.aspect"
    with pytest.raises(InvalidInput) as e:
        zhike.submit("outpaint", {"image": img_id, "right": 4096}, "local")
    assert e.value.field == "params.right"


def test_hires_enlarges_and_refines(zhike: Zhike) -> None:
    row = run(zhike, "hires", {**BASE, "hires_scale": 2.0, "hires_strength": 0.5, "batch_size": 2})
    imgs = row.result["images"]
    assert [(i["width"], i["height"], i["seed"]) for i in imgs] == [(128, 128, 42), (128, 128, 43)]
    assert row.total_steps == 3 + 1 and row.step == row.total_steps
    plain = pixels(zhike, run(zhike, "txt2img", BASE).result["images"][0]["asset_id"])
    big = pixels(zhike, imgs[0]["asset_id"])
    small = np.asarray(Image.fromarray(big.astype(np.uint8)).resize((64, 64), Image.LANCZOS), dtype=np.int16)
    assert np.abs(small - plain).mean() < np.abs(small - np.roll(plain, 32, axis=1)).mean()  # same picture


def test_restyle_applies_a_style_and_records_lineage(zhike: Zhike) -> None:
    init = upload(zhike, photo((64, 64)))
    row = run(
        zhike,
        "restyle",
        {"init_image": init, "prompt": "a cup of coffee", "preset": "guofeng", "model": "tiny", "steps": 4, "seed": 6},
    )
    assert row.params["applied_preset"] == "guofeng" and "ink wash" in row.params["prompt"]
    asset = zhike.assets.get(row.result["images"][0]["asset_id"], owner_id="local")
    assert asset.parent_id == init and asset.op == "restyle"


def test_inpainting_checkpoints_only_inpaint(zhike: Zhike, tmp_path: Path) -> None:
    from tests.helpers.tiny_sd import build_tiny_sd15

    spec = zhike.catalog.add(str(build_tiny_sd15(tmp_path / "inp", in_channels=9)), name="tiny-inpaint")
    assert spec.variant == "inpaint"
    with pytest.raises(InvalidInput, match="inpainting model"):
        zhike.submit("txt2img", {**BASE, "model": "tiny-inpaint"}, "local")
    img = photo()
    mask = square_mask(img.size, (30, 20, 60, 50))
    params = {"image": upload(zhike, img), "mask": upload(zhike, mask), "steps": 2, "seed": 7}
    job, _ = zhike.submit("inpaint", params, "local")
    assert job.params["model"] == "tiny-inpaint"  # preferred for edits when none is named
    Worker(zhike).run_one(job.id)
    row = zhike.jobs.get(job.id)
    assert row.state == "succeeded", row.error
    out = outputs(zhike, row)[0]
    assert kept_outside(out, img, mask)
    assert zhike.submit("txt2img", {**BASE, "model": None}, "local")[0].params["model"] == "tiny"


def test_sdxl_inpaint_keeps_unmasked_pixels(zhike: Zhike, tiny_sdxl: Path) -> None:
    zhike.catalog.add(str(tiny_sdxl), name="xl")
    img = photo((64, 64))
    mask = square_mask(img.size, (16, 16, 48, 48))
    row = run(
        zhike,
        "inpaint",
        {
            "prompt": "a plant",
            "image": upload(zhike, img),
            "mask": upload(zhike, mask),
            "model": "xl",
            "steps": 2,
            "seed": 8,
        },
    )
    out = outputs(zhike, row)[0]
    assert kept_outside(out, img, mask)


def test_hires_with_real_esrgan_first_pass(zhike: Zhike, embedded_dir: Path) -> None:
    row = run(zhike, "hires", {**BASE, "hires_scale": 2.0, "upscaler": "realesrgan-animevideov3-x2", "steps": 2})
    assert (row.result["images"][0]["width"], row.result["images"][0]["height"]) == (128, 128)
    with pytest.raises(InvalidInput) as e:
        zhike.submit("hires", {**BASE, "upscaler": "isnet-small"}, "local")
    assert e.value.field == "params.upscaler" and "not an upscaler" in e.value.message
