"""Layer features the design editor needs: `rotate` (any layer, about its box centre), `hidden`, and vertical text;
templates written before them render pixel-identical."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import numpy as np
from PIL import Image

from zhike.design.render import render_design
from zhike.design.template import parse_template

BG = (255, 255, 255)


def tpl(*layers: dict[str, Any], width: int = 400, height: int = 400) -> Any:
    return parse_template(
        {"id": "t", "name": {"zh": "测", "en": "t"}, "width": width, "height": height, "background": "#ffffff",
         "layers": list(layers)}
    )  # fmt: skip


def ink(img: Image.Image, box: tuple[int, int, int, int] | None = None) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the pixels that differ from the white background, within `box`."""
    a = np.asarray(img.convert("RGB")).astype(int)
    diff = np.abs(a - np.array(BG)).sum(-1) > 24  # ignore the faintest anti-aliasing
    if box is not None:
        mask = np.zeros_like(diff)
        mask[box[1] : box[3], box[0] : box[2]] = True
        diff &= mask
    ys, xs = np.nonzero(diff)
    assert len(xs), "nothing drawn"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def rect(rotate: float = 0, **more: Any) -> dict[str, Any]:
    return {"type": "shape", "box": [100, 180, 200, 40], "fill": "#d01010", "rotate": rotate, **more}


def test_a_rect_turns_about_its_centre() -> None:
    flat, _ = render_design(tpl(rect()), {})
    assert ink(flat) == (100, 180, 300, 220)
    upright, _ = render_design(tpl(rect(90)), {})
    x0, y0, x1, y1 = ink(upright)
    assert abs((x0 + x1) / 2 - 200) <= 1 and abs((y0 + y1) / 2 - 200) <= 1  # same centre
    assert abs((x1 - x0) - 40) <= 2 and abs((y1 - y0) - 200) <= 2  # width and height swapped
    tilted, _ = render_design(tpl(rect(30)), {})
    x0, y0, x1, y1 = ink(tilted)
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    assert abs((x1 - x0) - (200 * c + 40 * s)) <= 3 and abs((y1 - y0) - (200 * s + 40 * c)) <= 3
    # Clockwise (as CSS rotate in the editor): the right end goes down.
    right = np.asarray(tilted)[:, 280:300].astype(int)
    left = np.asarray(tilted)[:, 100:120].astype(int)
    red = lambda a: np.nonzero((a[..., 0] > 150) & (a[..., 1] < 90))[0].mean()  # noqa: E731 - mean row of red
    assert red(right) > red(left) + 60
    # The colour inside stays the layer's own (no dark fringe from the compositing).
    assert tuple(np.asarray(tilted)[200, 200]) == (208, 16, 16)


def test_rotated_text_keeps_its_look_and_turns() -> None:
    text = {"type": "text", "text": "旋转文字", "box": [80, 160, 240, 80], "font_size": 48, "color": "#202020",
            "align": "center", "valign": "middle", "stroke": {"width": 2, "color": "#ff0000"},
            "shadow": {"dx": 4, "dy": 4, "blur": 3, "color": "#0000ff80"}}  # fmt: skip
    flat, _ = render_design(tpl(text), {})
    fx0, fy0, fx1, fy1 = ink(flat)
    assert fx1 - fx0 > 2 * (fy1 - fy0)  # a line of text: wide
    turned, report = render_design(tpl({**text, "rotate": 90}), {})
    tx0, ty0, tx1, ty1 = ink(turned)
    assert ty1 - ty0 > 2 * (tx1 - tx0)  # turned a quarter: tall
    assert abs((ty1 - ty0) - (fx1 - fx0)) <= 4 and abs((tx1 - tx0) - (fy1 - fy0)) <= 4
    assert report.text[0].box == (80, 160, 240, 80) and report.text[0].lines == ["旋转文字"]
    # Turned by 180 the ink is the flat ink mirrored through the box centre (200, 200).
    half, _ = render_design(tpl({**text, "rotate": 180}), {})
    hx0, hy0, hx1, hy1 = ink(half)
    assert abs(hx0 - (400 - fx1)) <= 2 and abs(hy0 - (400 - fy1)) <= 2
    # Stroke, shadow and fill colours all survive the turn.
    px = np.asarray(turned).reshape(-1, 3).astype(int)
    assert ((px[:, 0] > 200) & (px[:, 1] < 60) & (px[:, 2] < 60)).any()  # red stroke
    assert ((px[:, 2] > 200) & (px[:, 0] < 200)).any()  # blue shadow
    assert (px.sum(1) < 150).any()  # dark fill


def test_vertical_text_stacks_top_to_bottom() -> None:
    layer = {"type": "text", "box": [160, 40, 80, 320], "font_size": 60, "vertical": True, "color": "#000000"}
    many, report = render_design(tpl({**layer, "text": "一二三"}), {})
    x0, y0, x1, y1 = ink(many)
    assert y1 - y0 > 2.5 * (x1 - x0)  # one column of three characters
    assert report.text[0].vertical and report.text[0].lines == ["一二三"]
    first, _ = render_design(tpl({**layer, "text": "一"}), {})
    cell = ink(first)
    assert cell[1] < y0 + 60  # the first character sits at the top
    top = (x0 - 10, cell[1] - 10, x1 + 10, cell[3] + 10)
    a, b = np.asarray(many), np.asarray(first)
    assert np.array_equal(a[top[1] : top[3], top[0] : top[2]], b[top[1] : top[3], top[0] : top[2]])
    # Below it: 二 (two strokes) then 三 (three), each in its own 60 px cell going down.
    rows = (np.abs(a.astype(int) - 255).sum(-1) > 200)[:, x0:x1].any(1)
    strokes = [int(v) for v in np.diff(rows.astype(int)) if v == 1]
    assert len(strokes) == 1 + 2 + 3


def test_hidden_layers_are_not_drawn_and_need_no_data() -> None:
    t = tpl(rect(), {"type": "text", "text": "{{name}}", "box": [0, 0, 400, 100], "hidden": True})
    assert t.columns() == (set(), set())
    img, report = render_design(t, {})
    assert ink(img) == (100, 180, 300, 220)
    assert report.layers[1].empty and report.layers[1].detail == {"hidden": True}
    hidden_rect, _ = render_design(tpl(rect(hidden=True)), {})
    assert np.asarray(hidden_rect).min() == 255


def test_a_rotated_image_layer_is_fetched_once() -> None:
    photo = Image.new("RGB", (50, 50), (10, 160, 30))
    calls: list[str] = []

    def resolve(value: str) -> Image.Image:
        calls.append(value)
        return photo

    t = tpl({"type": "image", "src": "{{photo}}", "box": [150, 150, 100, 100], "rotate": 45})
    img, report = render_design(t, {"photo": "asset1"}, resolve_image=resolve)
    assert calls == ["asset1"]
    assert tuple(np.asarray(img)[200, 200]) == (10, 160, 30)
    x0, y0, x1, y1 = ink(img)
    assert abs((x1 - x0) - 100 * 2**0.5) <= 3  # a diamond now
    assert report.layers[0].box == (150, 150, 100, 100)


# A template as written before rotate/hidden existed, and the SHA-256 of its pixels as rendered by the code before
# they were added (embedded Source Han Sans SC, Pillow's BASIC layout): their default must change nothing.
OLD = {"id": "old", "name": {"zh": "旧", "en": "old"}, "width": 640, "height": 480,
  "background": {"type": "linear", "angle": 45, "colors": ["#fff4ec", "#ffd9c7"]},
  "layers": [
    {"type": "shape", "shape": "rect", "box": [20, 20, 300, 120], "fill": "#e4393c", "radius": 24,
     "stroke": {"width": 3, "color": "#222222"}},
    {"type": "shape", "shape": "ellipse", "box": [360, 30, 200, 140],
     "fill": {"type": "linear", "angle": 0, "colors": ["#3366ff", "#33ccff"]}},
    {"type": "text", "text": "{{name}}", "box": [40, 180, 400, 120], "weight": "bold", "font_size": 56,
     "color": "#1a1a1a", "stroke": {"width": 2, "color": "#ffffff"},
     "shadow": {"dx": 3, "dy": 4, "blur": 5, "color": "#00000080"}},
    {"type": "text", "text": "竖排文字，测试", "box": [520, 180, 100, 280], "font_size": 40, "vertical": True,
     "color": "#333333"},
    {"type": "text", "text": "¥{{price}}", "box": [40, 330, 400, 110], "font_size": 72, "align": "center",
     "valign": "middle", "color": "#e4393c"}]}  # fmt: skip
OLD_ROW = {"name": "青花瓷茶壶 Tea pot", "price": "128"}
OLD_SHA256 = "cfa61c2e80666e68ed8dac980d30ab27e88434cca4af85a2e57f77a46183185b"


def test_old_templates_render_pixel_identical() -> None:
    img, _ = render_design(parse_template(OLD), OLD_ROW)
    assert (img.mode, img.size) == ("RGB", (640, 480))
    assert hashlib.sha256(img.tobytes()).hexdigest() == OLD_SHA256
    # A full turn, or an explicit 0, is the same as no rotate at all.
    for turn in (0, 360, -360):
        again = copy.deepcopy(OLD)
        for layer in again["layers"]:
            layer["rotate"] = turn
        img2, _ = render_design(parse_template(again), OLD_ROW)
        assert img2.tobytes() == img.tobytes()
