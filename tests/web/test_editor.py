"""The canvas editor (#/edit) end to end: paint a mask (brush, eraser, undo) and erase; drag an edge to extend;
preview a control map and generate with ControlNet; run tools; the picker. Real server, tiny model, real browser."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image, ImageFilter
from playwright.sync_api import Page

from tests.helpers.server import Server, run_cli_inprocess, server_fixture
from tests.web.conftest import (
    DESKTOP,
    GENERATION_MS,
    PASSWORD,
    PHONE,
    api_json,
    expect,
    login_client,
    open_studio,
    shot,
    sign_in,
)

SIZE = 96
SQUARE = (60, 20, 76, 36)  # x0, y0, x1, y1 of the yellow square erase should remove


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path, tiny_cn15: Path
) -> Iterator[Server]:
    """This module's server: the tiny model, a tiny ControlNet `cn` and the embedded weights where present."""
    embedded = Path(os.environ["ZHIKE_EMBEDDED_DIR"])
    settings = {"embedded_dir": str(embedded)} if embedded.is_dir() else {}
    for srv in server_fixture(request, tmp_path_factory.mktemp("web-edit"), tiny_sd15, **settings):
        run_cli_inprocess(srv.home, "models", "add", str(tiny_cn15), "--name", "cn")
        yield srv


def sample_image() -> Image.Image:
    """A gradient (so "kept exactly" means something) with a yellow square on it."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    arr = np.stack([x * 2, y * 2, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    x0, y0, x1, y1 = SQUARE
    arr[y0:y1, x0:x1] = (250, 230, 40)  # bright: clear edges for canny
    return Image.fromarray(arr)


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def alice(server: Server, users: dict[str, str]) -> Iterator[httpx.Client]:
    c = login_client(server, "alice")  # already opened by its login request
    yield c
    c.close()


def upload(client: httpx.Client, img: Image.Image, tags: str | None = None) -> str:
    data = {"tags": tags} if tags else {}
    r = client.post("/api/v1/assets", files={"file": ("in.png", png(img), "image/png")}, data=data)
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def asset(alice: httpx.Client) -> str:
    return upload(alice, sample_image())


def pixels(client: httpx.Client, asset_id: str, mode: str = "RGB") -> np.ndarray:
    r = client.get(f"/api/v1/assets/{asset_id}/file")
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content)).convert(mode), dtype=np.int16)


def open_editor(new_context: Any, server: Server, asset_id: str, locale: str = "zh-CN", viewport=DESKTOP) -> Page:
    page = open_studio(new_context(locale=locale, viewport=viewport), server)
    sign_in(page, "alice", PASSWORD)
    expect(page.locator("#home")).to_be_visible()  # signing in lands on Home
    page.goto(f"{server.base_url}/?test=1#/edit?asset={asset_id}")
    expect(page.locator("#edit-stage")).to_have_attribute("data-ready", "true")
    expect(page.locator(".edit-side")).to_have_attribute("data-loaded", "true")
    return page


def to_screen(page: Page, x: float, y: float) -> tuple[float, float]:
    """Image pixel (x, y) -> page coordinates over the mask canvas."""
    box = page.locator("#mask-canvas").bounding_box()
    assert box
    return box["x"] + x * box["width"] / SIZE, box["y"] + y * box["height"] / SIZE


def stroke(page: Page, points: list[tuple[float, float]]) -> None:
    page.mouse.move(*to_screen(page, *points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*to_screen(page, *p), steps=10)
    page.mouse.up()


def painted(page: Page) -> int:
    """Pixels of the mask layer painted now (what the page would export as white)."""
    return page.evaluate(
        """() => { const c = document.getElementById('mask-canvas');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] >= 128) n++; return n; }"""
    )


def set_brush(page: Page, size: int) -> None:
    page.locator("#brush-size").evaluate(
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", size
    )
    expect(page.locator("#brush-size-value")).to_have_text(f"{size} px")


def wait_result(page: Page) -> str:
    result = page.locator("#edit-result-image[data-asset-id]")
    expect(result).to_be_visible(timeout=GENERATION_MS)
    expect(page.locator("#edit-progress")).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#edit-continue")).to_be_visible()
    asset_id = result.get_attribute("data-asset-id")
    assert asset_id
    expect(page.locator("#edit-open-library")).to_have_attribute("href", f"#/library?asset={asset_id}")
    return asset_id


def last_job(page: Page) -> dict[str, Any]:
    return api_json(page, "/api/v1/jobs?limit=1")["jobs"][0]


def test_paint_a_mask_and_erase(server: Server, alice: httpx.Client, asset: str, new_context: Any) -> None:
    page = open_editor(new_context, server, asset)
    expect(page.locator("[data-mode=erase]")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#edit-run")).to_have_text("开始消除")
    assert page.evaluate("(c => [c.width, c.height])(document.getElementById('mask-canvas'))") == [SIZE, SIZE]

    # Nothing painted: the page says so instead of sending an empty mask.
    page.click("#edit-run")
    expect(page.locator("#edit-error")).to_have_text("请先用画笔涂抹要处理的区域。")

    # [ and ] change the brush like A1111.
    start = int(page.locator("#brush-size").input_value())
    page.locator("#mask-canvas").hover()
    page.keyboard.press("]")
    page.keyboard.press("]")
    bigger = int(page.locator("#brush-size").input_value())
    assert bigger > start
    page.keyboard.press("[")
    assert int(page.locator("#brush-size").input_value()) < bigger

    set_brush(page, 24)
    stroke(page, [(56, 28), (80, 28)])  # covers the yellow square (60..76 x 20..36)
    full = painted(page)
    assert full > 24 * 24
    expect(page.locator("#mask-undo")).to_be_enabled()

    # The eraser takes part of the stroke away; undo brings it back; erase it again.
    page.click("#tool-eraser")
    expect(page.locator("#tool-eraser")).to_have_attribute("aria-pressed", "true")
    set_brush(page, 8)
    stroke(page, [(88, 8), (88, 48)])
    erased = painted(page)
    assert 0 < erased < full
    page.click("#mask-undo")
    assert painted(page) == full
    stroke(page, [(88, 8), (88, 48)])
    assert painted(page) == erased
    page.click("#tool-brush")
    shot(page, "edit-mask-zh")

    # A model is installed, yet the quick classical erase stays the default; AI fill is an explicit choice.
    expect(page.locator("#fill-classical")).to_be_checked()
    expect(page.locator("#fill-diffusion")).to_be_enabled()
    expect(page.locator("label:has(#fill-classical)")).to_have_text("快速擦除")
    page.click("#edit-run")
    expect(page.locator("#edit-error")).to_be_hidden()
    result_id = wait_result(page)
    expect(page.locator("#edit-progress-text")).to_contain_text("完成")  # then the op's note on the classical fill
    shot(page, "edit-erase-done-zh")

    job = last_job(page)
    assert job["op"] == "erase" and job["params"]["image"] == asset
    assert job["params"]["method"] == "classical"
    mask_id = job["params"]["mask"]
    mask_record = alice.get(f"/api/v1/assets/{mask_id}").json()
    assert "mask" in mask_record["tags"]
    assert any(a["id"] == mask_id for a in alice.get("/api/v1/assets", params={"tag": "mask"}).json()["assets"])

    # The uploaded mask: image-sized, pure black/white, white where painted, black where erased and far away.
    mask = pixels(alice, mask_id, "L")
    assert mask.shape == (SIZE, SIZE)
    assert set(np.unique(mask).tolist()) <= {0, 255}
    x0, y0, x1, y1 = SQUARE
    assert (mask[y0:y1, x0:x1] == 255).all()  # the whole square was painted
    assert mask[28, 88] == 0  # the eraser's line
    assert mask[80, 10] == 0 and mask[5, 5] == 0  # far from the stroke
    assert abs(int((mask == 255).sum()) - erased) <= 0.02 * erased  # what the page showed is what was sent

    # Erase keeps every pixel outside the (grown) mask exactly and changes the masked square.
    src = np.asarray(sample_image(), dtype=np.int16)
    out = pixels(alice, result_id)
    assert out.shape == src.shape
    grow = job["params"].get("mask_grow", 6)
    outside = np.asarray(Image.fromarray(mask.astype(np.uint8)).filter(ImageFilter.MaxFilter(2 * grow + 3))) == 0
    assert outside.sum() > SIZE * SIZE / 2
    assert np.array_equal(out[outside], src[outside])
    assert np.abs(out[y0:y1, x0:x1] - src[y0:y1, x0:x1]).mean() > 10
    assert alice.get(f"/api/v1/assets/{result_id}").json()["parent_id"] == asset

    # Continue editing the result: the canvas loads it.
    page.click("#edit-continue")
    expect(page).to_have_url(f"{server.base_url}/?test=1#/edit?asset={result_id}")
    expect(page.locator("#edit-stage")).to_have_attribute("data-ready", "true")
    assert result_id in (page.locator("#edit-image").get_attribute("src") or "")
    assert painted(page) == 0  # a fresh mask
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_inpaint_with_prompt_and_strength(server: Server, alice: httpx.Client, asset: str, new_context: Any) -> None:
    page = open_editor(new_context, server, asset)
    page.click("[data-mode=inpaint]")
    expect(page.locator("#edit-run")).to_have_text("开始重绘")
    expect(page.locator("#edit-prompt")).to_be_visible()
    set_brush(page, 20)
    stroke(page, [(20, 60), (40, 70)])
    page.fill("#edit-prompt", "a white tulip")
    page.locator("#inpaint-strength").evaluate("el => { el.value = 0.7; el.dispatchEvent(new Event('input')); }")
    page.click("#edit-run")
    result_id = wait_result(page)
    job = last_job(page)
    assert job["op"] == "inpaint" and job["params"]["strength"] == 0.7 and job["params"]["steps"] == 3
    assert job["params"]["prompt"].startswith("a white tulip")
    mask = pixels(alice, job["params"]["mask"], "L")
    assert mask[65, 30] == 255 and mask[10, 80] == 0
    out = pixels(alice, result_id)
    outside = mask == 0
    assert np.array_equal(out[outside], np.asarray(sample_image(), dtype=np.int16)[outside])
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_drag_an_edge_to_extend(server: Server, alice: httpx.Client, asset: str, new_context: Any) -> None:
    page = open_editor(new_context, server, asset, locale="en-US")
    page.click("[data-mode=extend]")
    expect(page.locator("#edit-run")).to_have_text("Extend")
    expect(page.locator("#mask-tools")).to_be_hidden()
    handle = page.locator(".extend-handle[data-side=right]")
    expect(handle).to_be_visible()
    for side in ("left", "top", "bottom"):
        expect(page.locator(f".extend-handle[data-side={side}]")).to_be_visible()

    scale = float(page.locator("#edit-stage").get_attribute("data-scale") or 0)
    assert scale > 1  # a 96 px image is enlarged on the stage
    box = handle.bounding_box()
    assert box
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    drag = 60
    expected = page.evaluate("([d, s]) => Math.round(d / s)", [drag, scale])
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + drag, cy, steps=8)
    moved = handle.bounding_box()
    assert moved and abs(moved["x"] - (box["x"] + drag)) <= 2  # the handle stays under the pointer
    page.mouse.up()
    expect(page.locator("#extend-right")).to_have_value(str(expected))
    expect(page.locator(".extend-amount[data-side=right]")).to_have_text(f"+{expected} px")
    page.fill("#extend-bottom", "8")
    expect(page.locator("#extend-size")).to_contain_text(f"New size {SIZE + expected} × {SIZE + 8}")
    page.fill("#edit-prompt", "a wooden table")
    shot(page, "edit-extend-en")

    page.click("#edit-run")
    result_id = wait_result(page)
    page.wait_for_function("w => document.querySelector('#edit-result-image').naturalWidth === w", arg=SIZE + expected)
    job = last_job(page)
    assert job["op"] == "outpaint"
    assert (job["params"]["left"], job["params"]["right"], job["params"]["top"], job["params"]["bottom"]) == (
        0,
        expected,
        0,
        8,
    )
    out = pixels(alice, result_id)
    assert out.shape == (SIZE + 8, SIZE + expected, 3)
    assert np.array_equal(out[:SIZE, :SIZE], np.asarray(sample_image(), dtype=np.int16))  # the original is kept
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_control_preview_map_and_generate(server: Server, alice: httpx.Client, asset: str, new_context: Any) -> None:
    page = open_editor(new_context, server, asset, locale="en-US")
    page.click("[data-mode=control]")
    expect(page.locator("#edit-run")).to_have_text("Generate")
    expect(page.locator("#control-net")).to_have_value("cn")
    page.select_option("#control-detector", "canny")
    page.click("#control-preview")
    the_map = page.locator("#control-map[data-asset-id]")
    expect(the_map).to_be_visible(timeout=GENERATION_MS)
    page.wait_for_function(f"() => document.querySelector('#control-map').naturalWidth === {SIZE}")
    map_id = the_map.get_attribute("data-asset-id")
    record = alice.get(f"/api/v1/assets/{map_id}").json()
    assert record["op"] == "preprocess" and record["parent_id"] == asset and record["params"]["mode"] == "canny"
    edges = pixels(alice, map_id, "L")
    assert edges.max() == 255 and (edges == 0).mean() > 0.5  # the square's outline on black
    expect(page.locator("#control-uses")).to_have_text("Generate uses the map previewed above.")
    page.check("#control-overlay")
    expect(page.locator(".control-overlay")).to_be_visible()
    page.fill("#edit-prompt", "a watercolour city street")
    shot(page, "edit-control-en")

    page.click("#edit-run")
    wait_result(page)
    job = last_job(page)
    assert job["op"] == "control"
    unit = job["params"]["controls"][0]
    assert unit["model"] == "cn" and unit["image"] == map_id and unit["preprocess"] == "none"
    assert job["params"]["prompt"].startswith("a watercolour city street")

    # Another detector drops the previewed map: Generate would preprocess the photo itself.
    page.select_option("#control-detector", "lineart")
    expect(page.locator("#control-map")).to_be_hidden()
    expect(page.locator("#control-uses")).to_have_text("Generate makes the map from the photo with the chosen type.")

    # The language switch relabels the page in place, the choices kept.
    page.click("#lang")
    expect(page.locator("#edit-run")).to_have_text("生成")
    expect(page.locator("[data-mode=control]")).to_have_text("控制")
    expect(page.locator("#control-detector")).to_have_value("lineart")
    expect(page.locator("#control-detector option[value=canny]")).to_have_text("边缘（Canny）")
    expect(page.locator("#control-uses")).to_have_text("生成时会按所选方式自动处理原图。")
    assert page.js_errors == []  # type: ignore[attr-defined]


def embedded_upscaler(server: Server) -> bool:
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        r = c.get("/api/v1/models", headers={"Authorization": f"Bearer {server.key_a}"})
        return any(m["name"] == "realesrgan-x4plus" for m in r.json()["models"])


def test_tools_upscale(server: Server, alice: httpx.Client, asset: str, new_context: Any) -> None:
    if not embedded_upscaler(server):
        pytest.skip("the embedded Real-ESRGAN weights are missing (run `make embedded`); upscale cannot run")
    page = open_editor(new_context, server, asset)
    page.click("[data-mode=tools]")
    expect(page.locator("#mask-tools")).to_be_hidden()
    page.select_option("#tool-op", "upscale")
    expect(page.locator("#tool-help")).to_contain_text("放大")
    page.fill("#tool-scale", "2")
    shot(page, "edit-tools-zh")
    page.click("#edit-run")
    result_id = wait_result(page)
    page.wait_for_function(f"() => document.querySelector('#edit-result-image').naturalWidth === {2 * SIZE}")
    job = last_job(page)
    assert job["op"] == "upscale" and job["params"]["scale"] == 2 and job["params"]["image"] == asset
    assert alice.get(f"/api/v1/assets/{result_id}").json()["height"] == 2 * SIZE
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_tools_resize_design_and_field_errors(server: Server, asset: str, new_context: Any) -> None:
    """A tool that needs no weights: marketplace sizes; a bad parameter's error shows next to its field."""
    page = open_editor(new_context, server, asset)
    page.click("[data-mode=tools]")
    page.select_option("#tool-op", "resize_design")
    sizes = page.locator(".sizes-pick input[type=checkbox]")
    expect(sizes.first).to_be_checked()
    first_size = sizes.first.get_attribute("value")
    page.select_option("#tool-mode", "fit")
    # A required field left empty is said at the field, in the page's language, before anything is sent.
    sizes.first.uncheck()
    page.click("#edit-run")
    expect(page.locator("[data-error-for=sizes]")).to_contain_text("必填")
    sizes.first.check()
    # Colours are swatches: black, then the run sends its hex.
    page.click("[data-field=fill_color] .sf-colour[data-value='#000000']")
    expect(page.locator("[data-field=fill_color] .sf-colour[data-value='#000000']")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.click("#edit-run")
    result_id = wait_result(page)
    job = last_job(page)
    assert job["op"] == "resize_design" and job["params"]["sizes"] == [first_size]
    assert job["params"]["fill_color"] == "#000000"
    size = next(s for s in api_json(page, "/api/v1/sizes")["sizes"] if s["id"] == first_size)
    record = api_json(page, f"/api/v1/assets/{result_id}")
    assert (record["width"], record["height"]) == (size["width"], size["height"])
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_picker_lists_images_not_masks_and_uploads(
    server: Server, alice: httpx.Client, asset: str, new_context: Any, tmp_path: Path
) -> None:
    mask_id = upload(alice, Image.new("L", (SIZE, SIZE), 255), tags="mask")
    page = open_studio(new_context(locale="zh-CN"), server)
    sign_in(page, "alice", PASSWORD)
    expect(page.locator("#home")).to_be_visible()  # signing in lands on Home
    page.goto(f"{server.base_url}/?test=1#/edit")
    grid = page.locator("#edit-picker")
    expect(grid).to_have_attribute("aria-busy", "false")
    expect(page.locator(f"#edit-picker [data-asset-id='{asset}']")).to_be_visible()
    expect(page.locator(f"#edit-picker [data-asset-id='{mask_id}']")).to_have_count(0)
    shot(page, "edit-picker-zh")

    f = tmp_path / "new.png"
    sample_image().rotate(90).save(f)
    page.set_input_files("#edit-upload", str(f))
    expect(page.locator("#edit-stage")).to_have_attribute("data-ready", "true")
    new_id = page.evaluate("new URLSearchParams(location.hash.split('?')[1]).get('asset')")
    assert new_id and new_id != asset
    assert alice.get(f"/api/v1/assets/{new_id}").json()["width"] == SIZE

    page.click("#edit-change")
    page.click(f"#edit-picker [data-asset-id='{asset}']")
    expect(page.locator("#edit-stage")).to_have_attribute("data-ready", "true")
    assert asset in (page.locator("#edit-image").get_attribute("src") or "")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_touch_painting_on_a_phone(server: Server, asset: str, new_context: Any) -> None:
    page = open_editor(new_context, server, asset, viewport=PHONE)
    stage = page.locator("#edit-stage").bounding_box()
    side = page.locator(".edit-side").bounding_box()
    assert stage and side and side["y"] >= stage["y"] + stage["height"]  # stage on top, controls below
    assert stage["width"] <= PHONE["width"]
    # Real touch events (CDP): a finger drag paints instead of scrolling.
    cdp = page.context.new_cdp_session(page)
    points = [to_screen(page, x, 48) for x in (20, 35, 50, 65, 80)]
    first = {"x": points[0][0], "y": points[0][1]}
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [first]})
    for x, y in points[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    expect(page.locator("#mask-undo")).to_be_enabled()
    assert painted(page) > 60 * 4
    shot(page, "edit-mask-zh-phone")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_material_swap_keeps_unmasked_pixels(server: Server, alice: httpx.Client, asset: str, new_context: Any) -> None:
    """材质替换: paint the object, name the material; pixels outside the mask are kept exactly."""
    page = open_editor(new_context, server, asset)
    page.click("[data-mode=material]")
    expect(page.locator("#edit-run")).to_have_text("替换材质")
    expect(page.locator("#edit-prompt")).to_be_visible()  # the prompt box serves the op's `prompt`-role field
    expect(page.locator(".prompt-field")).to_contain_text("新材质")
    set_brush(page, 20)
    stroke(page, [(20, 60), (40, 70)])
    page.click("#edit-run")  # no material yet: the API's message, next to the field
    expect(page.locator("[data-error-for=material]")).to_be_visible()
    page.fill("#edit-prompt", "棕色真皮")
    page.click("#edit-run")
    result_id = wait_result(page)
    job = last_job(page)
    assert job["op"] == "material_swap" and job["params"]["material"] == "棕色真皮"
    mask = pixels(alice, job["params"]["mask"], "L")
    assert mask[65, 30] == 255 and mask[10, 80] == 0
    out = pixels(alice, result_id)
    outside = mask == 0
    assert np.array_equal(out[outside], np.asarray(sample_image(), dtype=np.int16)[outside])
    shot(page, "edit-material-zh")
    assert page.js_errors == []  # type: ignore[attr-defined]
