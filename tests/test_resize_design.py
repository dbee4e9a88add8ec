"""resize_design (设计尺寸变换): every marketplace preset in one job, exact sizes, crop filling every frame (no
bands) with the subject (a cat placed at the left of a wide canvas) whole wherever it fits, fit and extend keep
the whole image (extend: its pixels exactly, classical and tiny-model diffusion), one asset per size with lineage,
bad sizes named.

Outputs are saved under test-artifacts/resize_design/ for a look.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata  # noqa: E402

from tests.conftest import ARTIFACTS, make_settings
from tests.helpers.images import save_artifact, save_sheet, upload
from tests.test_generate import pixels, run
from zhike.core.errors import InvalidInput
from zhike.ops.resize_design import SIZE_PRESETS, frame_fit, frame_subject
from zhike.services.container import Zhike

ART = ARTIFACTS / "resize_design"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED = {
    "taobao": (800, 800),
    "douyin": (1080, 1920),
    "xiaohongshu": (1242, 1660),
    "banner": (1200, 628),
    "jd": (800, 800),
    "wechat_cover": (900, 383),
}


def save(img: Image.Image | np.ndarray, name: str) -> None:
    save_artifact(img, ART, name)


def sheet(images: list[Image.Image | np.ndarray], name: str, height: int = 240) -> None:
    save_sheet(images, ART, name, height=height, background="black")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path_factory.mktemp("home")))  # no image model: crop, fit, classical extend
    yield z
    z.engine.dispose()


def cat_at_left() -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Chelsea the cat (cut out with the fixture's hand mask) near the left edge of a wide 360x130 canvas, and the
    cat's true box: a naive centre crop cuts it."""
    cat = Image.fromarray(skdata.chelsea())
    mask = Image.open(FIXTURES / "chelsea_cat_mask.png").convert("L")
    size = (round(cat.width * 100 / cat.height), 100)
    cat, mask = cat.resize(size, Image.LANCZOS), mask.resize(size, Image.LANCZOS)
    t = np.linspace(0, 1, 360)[None, :, None]
    backdrop = np.array([236, 228, 214]) * (1 - t) + np.array([205, 215, 228]) * t
    canvas = Image.fromarray(np.repeat(backdrop, 130, axis=0).astype(np.uint8))
    canvas.paste(cat, (6, 15), mask)
    ys, xs = np.nonzero(np.asarray(mask) >= 128)
    return canvas, (int(xs.min()) + 6, int(ys.min()) + 15, int(xs.max()) + 7, int(ys.max()) + 16)


def mapped(box: tuple[int, ...] | list[int], placed: list[int], src: tuple[int, int]) -> tuple[float, ...]:
    """A box of the input, in an output's pixels, through the reported placement of the whole input."""
    sx, sy = (placed[2] - placed[0]) / src[0], (placed[3] - placed[1]) / src[1]
    return placed[0] + box[0] * sx, placed[1] + box[1] * sy, placed[0] + box[2] * sx, placed[1] + box[3] * sy


def inside(box: tuple[float, ...], w: int, h: int, tol: float = 0.0) -> bool:
    return box[0] >= -tol and box[1] >= -tol and box[2] <= w + tol and box[3] <= h + tol


def test_crop_keeps_the_off_centre_cat_whole_in_every_preset(app: Zhike) -> None:
    canvas, cat_box = cat_at_left()
    image_id = upload(app, canvas)
    sizes = [*EXPECTED, "200x300"]
    row = run(app, "resize_design", {"image": image_id, "sizes": sizes})
    res = row.result
    assert res["subject_source"] == "matte" and row.params["matting_model"] == "isnet-medium"
    found = res["subject_box"]  # the matte's box agrees with the cat's true box
    assert all(abs(a - b) <= 3 for a, b in zip(found, cat_box, strict=True)), (found, cat_box)
    assert [o["size"] for o in res["outputs"]] == sizes and len(res["images"]) == len(sizes)
    assert row.step == row.total_steps == len(sizes)  # progress per size
    naive_cuts = 0
    looks: list[Image.Image | np.ndarray] = [canvas]
    for out_info, img in zip(res["outputs"], res["images"], strict=True):
        w, h = EXPECTED.get(out_info["size"], (200, 300))
        out = pixels(app, img["asset_id"])
        looks.append(out)
        assert out.shape == (h, w, 3) and (img["width"], img["height"]) == (w, h)
        placed = out_info["placed_box"]
        # Crop fills the frame: the scaled input covers it (no blurred bands), and the pixels below say so too.
        assert placed[0] <= 0 and placed[1] <= 0 and placed[2] >= w and placed[3] >= h, placed
        assert out_info["method"] == "crop"
        s = max(w / 360, h / 130)
        cat_w, cat_h = (cat_box[2] - cat_box[0]) * s, (cat_box[3] - cat_box[1]) * s
        if cat_w <= w - 2 and cat_h <= h - 2:  # the cat fits the frame at cover scale: it is whole
            assert inside(out_info["subject_box"], w, h)
            assert inside(mapped(found, placed, canvas.size), w, h)  # the matte's box, mapped by the test
            assert inside(mapped(cat_box, placed, canvas.size), w, h)  # and the true box
        else:  # too big for the frame (a tall 9:16 of a wide photo): centred on the cat, its edges cropped
            x0, _, x1, _ = mapped(cat_box, placed, canvas.size)
            assert abs((x0 + x1) / 2 - w / 2) <= 0.03 * w, (x0, x1, w)
        # The placement is what the pixels show: the input scaled to placed_box, cropped by the output's edges.
        scaled = np.asarray(canvas.resize((placed[2] - placed[0], placed[3] - placed[1]), Image.LANCZOS), np.int16)
        vx0, vy0, vx1, vy1 = max(0, placed[0]), max(0, placed[1]), min(w, placed[2]), min(h, placed[3])
        seen = scaled[vy0 - placed[1] : vy1 - placed[1], vx0 - placed[0] : vx1 - placed[0]]
        assert np.abs(out[vy0:vy1, vx0:vx1] - seen).max() <= 3
        assert (vx0, vy0, vx1, vy1) == (0, 0, w, h)
        # A plain centre crop at cover scale would have cut the cat here.
        ox, oy = (w - 360 * s) / 2, (h - 130 * s) / 2
        naive_cuts += not inside(mapped(cat_box, [ox, oy, ox + 360 * s, oy + 130 * s], canvas.size), w, h)
        asset = app.assets.get(img["asset_id"], owner_id="local")
        assert asset.parent_id == image_id and asset.op == "resize_design"
    sheet(looks, "sheet_crop_cat_left.png")
    assert naive_cuts >= 4


def test_fit_shows_the_whole_image_on_the_fill_colour(app: Zhike) -> None:
    photo = Image.fromarray(skdata.coffee()).resize((120, 80), Image.LANCZOS)
    row = run(
        app,
        "resize_design",
        {
            "image": upload(app, photo),
            "sizes": ["300x300", "Banner"],
            "mode": "fit",
            "fill": "color",
            "fill_color": "#102030",
        },
    )
    res = row.result
    assert [o["size"] for o in res["outputs"]] == ["300x300", "banner"]
    assert res["subject_source"] == "none" and res["subject_box"] is None  # fit shows it all: no matting needed
    looks: list[Image.Image | np.ndarray] = [photo]
    for info, img in zip(res["outputs"], res["images"], strict=True):
        out = pixels(app, img["asset_id"])
        looks.append(out)
        w, h = info["width"], info["height"]
        assert out.shape == (h, w, 3) and info["method"] == "fit-color"
        x0, y0, x1, y1 = info["placed_box"]
        assert (x0, y0) >= (0, 0) and (x1, y1) <= (w, h) and (x1 - x0 == w or y1 - y0 == h)  # contained
        outside = np.ones((h, w), bool)
        outside[y0:y1, x0:x1] = False
        assert outside.any() and np.all(out[outside] == (16, 32, 48))
    sheet(looks, "sheet_fit_color.png")


def test_extend_without_a_model_mirrors_and_keeps_the_pixels(app: Zhike) -> None:
    photo = Image.fromarray(skdata.coffee()).resize((96, 72), Image.LANCZOS)
    row = run(
        app, "resize_design", {"image": upload(app, photo), "sizes": ["96x128", "160x72", "taobao"], "mode": "extend"}
    )
    assert row.params["method"] == "classical"  # no model installed: auto picked the classical fill
    src = np.asarray(photo, np.int16)
    looks: list[Image.Image | np.ndarray] = [photo]
    for info, img, at in zip(row.result["outputs"], row.result["images"], [(0, 28), (32, 0), None], strict=True):
        out = pixels(app, img["asset_id"])
        looks.append(out)
        assert info["method"] == "extend:classical-mirror"
        x0, y0, x1, y1 = info["placed_box"]
        if at is not None:  # same scale: the photo, bit for bit, where it was placed
            assert (x0, y0) == at and np.array_equal(out[y0:y1, x0:x1], src)
        else:  # scaled up to 800x600 on the 800x800 canvas: exactly the Lanczos-scaled photo
            assert (x0, y0, x1, y1) == (0, 100, 800, 700)
            assert np.array_equal(out[y0:y1, x0:x1], np.asarray(photo.resize((800, 600), Image.LANCZOS), np.int16))
        assert np.abs(out[: y0 or None, : x0 or None] - 0).mean() > 20  # the new area is filled, not black
    sheet(looks, "sheet_extend_classical.png")


def test_extend_with_the_tiny_model_generates_and_keeps_the_pixels(zhike: Zhike) -> None:
    photo = Image.fromarray(skdata.coffee()).resize((96, 72), Image.LANCZOS)
    row = run(
        zhike,
        "resize_design",
        {
            "image": upload(zhike, photo),
            "sizes": ["96x128"],
            "mode": "extend",
            "prompt": "a wooden table",
            "steps": 2,
            "seed": 9,
        },
    )
    info, img = row.result["outputs"][0], row.result["images"][0]
    assert info["method"] == "extend:diffusion:tiny" and img["seed"] == 9
    assert row.total_steps == 2 and row.step == 2
    out = pixels(zhike, img["asset_id"])
    sheet([photo, out], "sheet_extend_tiny.png")
    assert np.array_equal(out[28:100], np.asarray(photo, np.int16))
    mirrored = np.asarray(photo, np.int16)[1:29][::-1]  # what the classical fill would put above
    assert np.abs(out[:28] - mirrored).mean() > 5  # generated, not the mirror


def test_bad_sizes_are_named(app: Zhike) -> None:
    image_id = upload(app, Image.new("RGB", (32, 32)))
    for sizes, field in (
        (["taobao", "square"], "params.sizes.1"),
        (["8x8"], "params.sizes.0"),
        ([], "params.sizes"),
        (["taobao"] * 13, "params.sizes"),
    ):
        with pytest.raises(InvalidInput) as e:
            app.submit("resize_design", {"image": image_id, "sizes": sizes}, "local")
        assert e.value.field == field, (sizes, e.value.message)
    with pytest.raises(InvalidInput, match="xiaohongshu"):
        app.submit("resize_design", {"image": image_id, "sizes": ["weibo"]}, "local")
    job, _ = app.submit(
        "resize_design", {"image": image_id, "sizes": ["Kuaishou", "1242X1660", "wechat-cover"]}, "local"
    )
    assert job.params["sizes"] == ["douyin", "1242x1660", "wechat_cover"]  # stored canonical


def test_framing_keeps_random_subjects_whole() -> None:
    """The crop solver on many random photos, subjects and sizes: always at cover scale (the frame filled, no
    bands), and the subject inside whenever the subject plus margin fits there."""
    rnd = random.Random(3)
    presets = [(p.width, p.height) for p in SIZE_PRESETS.values()]
    for _ in range(400):
        w, h = rnd.randint(50, 3000), rnd.randint(50, 3000)
        x0, y0 = rnd.randint(0, w - 2), rnd.randint(0, h - 2)
        box = (x0, y0, rnd.randint(x0 + 1, w), rnd.randint(y0 + 1, h))
        size = rnd.choice([*presets, (rnd.randint(16, 2000), rnd.randint(16, 2000))])
        f = frame_subject((w, h), size, box, 0.04)
        assert f.covers(size), (w, h, box, size, f)
        cover = max(size[0] / w, size[1] / h)
        need_w = min(w, box[2] + 0.04 * min(size) / cover) - max(0, box[0] - 0.04 * min(size) / cover)
        need_h = min(h, box[3] + 0.04 * min(size) / cover) - max(0, box[1] - 0.04 * min(size) / cover)
        if need_w * cover <= size[0] - 2 and need_h * cover <= size[1] - 2:
            assert inside(f.map_box(box, (w, h)), *size), (w, h, box, size, f)
        fit = frame_fit((w, h), size)
        assert inside(fit.placed_box(), *size)


def test_without_matting_weights_saliency_finds_the_subject(app: Zhike) -> None:
    from zhike.ops.placement import find_subject

    canvas, cat_box = cat_at_left()
    box, source = find_subject(app.models, canvas, None)  # None: no matting model installed
    assert source == "saliency"
    overlap = max(0, min(box[2], cat_box[2]) - max(box[0], cat_box[0])) * max(
        0, min(box[3], cat_box[3]) - max(box[1], cat_box[1])
    )
    area = (cat_box[2] - cat_box[0]) * (cat_box[3] - cat_box[1])
    assert overlap > 0.8 * area and box[2] < 200  # most of the cat, not the empty right side
