"""The design editor (#/design) in Chromium: open a saved template, drag a text layer, recolour it, undo and redo,
save it as a new template, and batch-render with it: the server draws the text where the editor put it."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from tests.helpers.server import Server, wait_job
from tests.web.conftest import DESKTOP, expect, login_client, open_studio, shot, sign_in

RED = "#e4393c"
START = {"x": 40, "y": 40, "w": 300, "h": 90}
TEMPLATE = {
    "schema_version": 1, "id": "draft", "name": {"zh": "编辑器测试", "en": "Editor test"},
    "width": 600, "height": 400, "background": "#ffffff",
    "layers": [
        {"type": "text", "id": "title", "text": "{{name}}", "box": START, "font_size": 60, "weight": "bold",
         "color": "#000000"},
        {"type": "shape", "id": "bar", "shape": "rect", "box": [0, 360, 600, 40], "fill": "#1677ff"},
    ],
}  # fmt: skip


def layer_box(page: Any, index: int) -> dict[str, float]:
    el = page.locator(f".dz-layer[data-index='{index}']")
    return {k: float(el.get_attribute(f"data-{k}")) for k in ("x", "y", "w", "h")}


def text_colour(page: Any, index: int) -> str:
    return page.locator(f".dz-layer[data-index='{index}'] .dz-text").evaluate("e => getComputedStyle(e).color")


def red_ink(img: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Pixels inside box (x, y, w, h) that are clearly the red text colour."""
    x, y, w, h = box
    a = np.asarray(img.convert("RGB"))[y : y + h, x : x + w].astype(int)
    return int(((a[..., 0] > 180) & (a[..., 1] < 110) & (a[..., 2] < 110)).sum())


def test_drag_recolour_undo_save_and_batch(server: Server, users: dict[str, str], new_context: Any) -> None:
    alice = login_client(server, "alice")
    saved = alice.post("/api/v1/templates", json=TEMPLATE)
    assert saved.status_code == 201, saved.text
    source_id = saved.json()["id"]

    page = open_studio(new_context(locale="zh-CN", viewport=DESKTOP), server)
    sign_in(page, "alice", users["alice"])
    expect(page.locator("#nav")).to_be_visible()
    page.goto(f"{server.base_url}/?test=1#/design")
    gallery = page.locator("#design-picker #design-gallery")  # the shared template gallery, the user's own in it
    expect(gallery).to_have_attribute("data-loaded", "true")
    gallery.locator(f".tg-grid [data-template='{source_id}']").click()
    expect(page.locator(".dz-work")).to_have_attribute("data-template", source_id)
    expect(page.locator(".dz-layer")).to_have_count(2)
    expect(page.locator("#design-preview")).to_have_attribute("data-state", "ready")

    # Drag the title by a distance that lands on no snap line; the box moves by that distance in template pixels.
    scale = float(page.locator("#design-stage").get_attribute("data-scale"))
    title = page.locator(".dz-layer[data-index='0']")
    r = title.bounding_box()
    sx, sy = r["x"] + r["width"] / 2, r["y"] + r["height"] / 2
    dx, dy = 150 * scale + 0.4, 170 * scale - 0.3
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move(sx + dx / 2, sy + dy / 2, steps=4)
    page.mouse.move(sx + dx, sy + dy, steps=4)
    page.mouse.up()
    moved = {**START, "x": START["x"] + round(dx / scale), "y": START["y"] + round(dy / scale)}
    assert layer_box(page, 0) == {k: float(v) for k, v in moved.items()}
    expect(page.locator("#design-props [data-prop='box.x']")).to_have_value(str(moved["x"]))

    # Recolour with a swatch; undo puts back the colour, then the position; redo replays both.
    page.locator(f"#design-props [data-colour-of='color'] .dz-swatch[data-colour='{RED}']").click()
    expect(title.locator(".dz-text")).to_have_css("color", "rgb(228, 57, 60)")
    page.click("#design-undo")
    expect(title.locator(".dz-text")).to_have_css("color", "rgb(0, 0, 0)")
    assert layer_box(page, 0)["x"] == moved["x"]
    page.keyboard.press("Control+z")  # focus is not in a field: the editor's shortcut
    expect(title).to_have_attribute("data-x", str(START["x"]))
    page.click("#design-redo")
    expect(title).to_have_attribute("data-x", str(moved["x"]))
    page.keyboard.press("Control+Shift+z")
    expect(title.locator(".dz-text")).to_have_css("color", "rgb(228, 57, 60)")
    expect(page.locator("#design-preview")).to_have_attribute("data-state", "ready")
    shot(page, "designer-edited-zh")

    # Save as a new template: a new id, version 1, the original left as it was.
    page.click("#design-save-new")
    expect(page.locator("#design-notice")).to_contain_text("已保存")
    new_id = page.locator(".dz-work").get_attribute("data-template")
    assert new_id != source_id and new_id.startswith("my_")
    assert alice.get(f"/api/v1/templates/{source_id}").json()["template"]["layers"][0]["box"] == START
    stored = alice.get(f"/api/v1/templates/{new_id}").json()
    assert stored["version"] == 1 and stored["template"]["layers"][0]["box"] == moved
    assert stored["template"]["layers"][0]["color"] == RED
    # A second save is a new version of the user's own template.
    page.click("#design-save-version")
    expect(page.locator("#design-notice")).to_contain_text("版本 2")
    assert alice.get(f"/api/v1/templates/{new_id}").json()["version"] == 2
    assert page.js_errors == []

    # Batch design with it: the text is red where it was dragged, and gone from where it was.
    job = alice.post(
        "/api/v1/jobs",
        json={
            "op": "batch_design",
            "params": {"template": new_id, "rows": [{"name": "青花瓷"}], "sizes": ["template"]},
        },
    )
    assert job.status_code == 201, job.text
    done = wait_job(alice, job.json()["id"], timeout=90)
    assert done["state"] == "succeeded", done
    png = alice.get(f"/api/v1/assets/{done['outputs'][0]['asset_id']}/file")
    img = Image.open(io.BytesIO(png.content))
    assert img.size == (600, 400)
    assert red_ink(img, (moved["x"], moved["y"], moved["w"], moved["h"])) > 300
    assert red_ink(img, (START["x"], START["y"], START["w"], moved["y"] - START["y"])) == 0

    # Keyboard: arrows nudge, Delete removes, Ctrl+Z brings it back; handles resize and rotate.
    title.click()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    expect(title).to_have_attribute("data-x", str(moved["x"] + 1))
    expect(title).to_have_attribute("data-y", str(moved["y"] + 10))
    page.keyboard.press("Delete")
    expect(page.locator(".dz-layer")).to_have_count(1)
    page.keyboard.press("Control+z")
    expect(page.locator(".dz-layer")).to_have_count(2)
    title.click()
    corner = page.locator(".dz-handle[data-handle='se']").bounding_box()
    cx, cy = corner["x"] + corner["width"] / 2, corner["y"] + corner["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 40 * scale, cy + 30 * scale, steps=4)
    page.mouse.up()
    box = layer_box(page, 0)
    assert (box["x"], box["y"], box["w"], box["h"]) == (
        moved["x"] + 1,
        moved["y"] + 10,
        START["w"] + 40,
        START["h"] + 30,
    )
    knob = page.locator(".dz-handle[data-handle='rotate']").bounding_box()
    centre = page.locator(".dz-sel").bounding_box()
    kx, ky = knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2
    page.mouse.move(kx, ky)
    page.mouse.down()
    page.mouse.move(centre["x"] + centre["width"] + 60, centre["y"] + centre["height"] / 2, steps=6)
    page.mouse.up()
    expect(title).to_have_attribute("data-rotate", "90")  # a right angle snaps
    shot(page, "designer-rotated-zh")
    assert page.js_errors == []
