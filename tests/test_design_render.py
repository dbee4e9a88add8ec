"""The design renderer: text stays in its box, shrinks, wraps with 避头尾, goes vertical, never draws tofu;
optional/required columns; images, shapes and generated layers; determinism; other sizes."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from zhike.design.render import RenderError, render_design
from zhike.design.template import Template, bundled_templates, parse_template
from zhike.ops.resize_design import SIZE_PRESETS

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "design"


def save_artifact(img: Image.Image, name: str) -> None:
    """For looking at by eye; a fresh clone has no artifacts folder yet."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    img.save(ARTIFACTS / name)


BG = (255, 255, 255)


def one_text(**layer: Any) -> Template:
    """A white canvas with a single text layer (box 100,100 400x200 unless given)."""
    spec = {"type": "text", "text": "{{t}}", "box": {"x": 100, "y": 100, "w": 400, "h": 200}, **layer}
    return parse_template(
        {"id": "one", "name": {"zh": "一", "en": "one"}, "width": 600, "height": 400, "background": "#ffffff",
         "layers": [spec]}
    )  # fmt: skip


def ink_bbox(img: Image.Image) -> tuple[int, int, int, int] | None:
    """Bounding box of every pixel that differs from the white background."""
    a = np.asarray(img.convert("RGB")).astype(int)
    ys, xs = np.nonzero(np.abs(a - np.array(BG)).sum(-1) > 0)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def assert_inside(img: Image.Image, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    bb = ink_bbox(img)
    assert bb is not None, "nothing was drawn"
    x, y, w, h = box
    assert bb[0] >= x and bb[1] >= y and bb[2] <= x + w and bb[3] <= y + h, (bb, box)
    return bb


@cache
def cmap(path: str, index: int) -> frozenset[int]:
    with TTFont(path, fontNumber=index, lazy=True) as f:
        return frozenset(f.getBestCmap())


@pytest.mark.parametrize(
    "text",
    [
        "Fresh Roasted Coffee Beans",
        "云南小粒咖啡豆，中度烘焙",
        "Aurora 蓝牙降噪耳机 Pro，限时 ¥499！",
    ],
)
@pytest.mark.parametrize("align", ["left", "center", "right"])
def test_text_stays_inside_its_box(text: str, align: str) -> None:
    t = one_text(font_size=56, align=align, valign="bottom", weight="bold", stroke={"width": 3, "color": "#ff0000"})
    img, report = render_design(t, {"t": text})
    assert_inside(img, report.text[0].box)
    assert not report.text[0].overflow


def test_long_name_shrinks_but_stays_inside() -> None:
    t = one_text(font_size=80, min_size=12, max_lines=2)
    short, rs = render_design(t, {"t": "短名"})
    assert rs.text[0].font_size == 80 and not rs.text[0].shrunk
    long_name = "超长商品名称：云南高山小粒咖啡豆 中深烘焙 手冲意式通用 500g 大包装 Extra Long English Name"
    img, report = render_design(t, {"t": long_name})
    tr = report.text[0]
    assert tr.shrunk and 12 <= tr.font_size < 80 and not tr.overflow
    assert len(tr.lines) <= 2
    assert "".join(tr.lines).replace(" ", "") == long_name.replace(" ", "")
    assert_inside(img, tr.box)
    save_artifact(img, "shrink.png")


def test_too_long_even_at_min_size_is_cut_and_reported() -> None:
    t = one_text(font_size=60, min_size=40, max_lines=1)
    img, report = render_design(t, {"t": "这是一段无论如何也放不进一行的非常非常长的商品描述文字"})
    tr = report.text[0]
    assert tr.overflow and tr.font_size == 40 and tr.lines[0].endswith("…")
    assert any("does not fit" in w for w in report.warnings)
    assert_inside(img, tr.box)


def test_wrap_never_starts_a_line_with_closing_punctuation() -> None:
    # Width chosen so a plain per-character wrap would put "，" at a line start.
    t = one_text(font_size=40, min_size=40, box={"x": 0, "y": 0, "w": 203, "h": 400})
    for text in (
        "一二三四五，六七八九十。",
        "一二三四五六七八九十一二三四，五六",
        "你好，世界！这是测试。好的、谢谢？",
    ):
        _, report = render_design(t, {"t": text})
        lines = report.text[0].lines
        assert len(lines) > 1
        assert all(ln[0] not in "，。！？、；：" for ln in lines), lines
        assert "".join(lines) == text


def test_latin_wraps_per_word_cjk_per_character() -> None:
    t = one_text(font_size=40, min_size=40, box={"x": 0, "y": 0, "w": 300, "h": 400})
    _, report = render_design(t, {"t": "wireless noise cancelling headphones"})
    words = {w for ln in report.text[0].lines for w in ln.split()}
    assert words <= {"wireless", "noise", "cancelling", "headphones"}
    _, report = render_design(t, {"t": "无线降噪耳机超长续航版本"})
    assert len(report.text[0].lines) == 2


def test_vertical_text_is_taller_than_wide() -> None:
    t = one_text(font_size=48, vertical=True, box={"x": 100, "y": 20, "w": 400, "h": 360}, align="right")
    img, report = render_design(t, {"t": "秋日限定，温暖上新"})
    bb = assert_inside(img, report.text[0].box)
    assert bb[3] - bb[1] > 2 * (bb[2] - bb[0])
    # Two columns, the first on the right: its ink is right of the second column's.
    t2 = one_text(font_size=48, vertical=True, box={"x": 100, "y": 20, "w": 400, "h": 260}, align="right")
    img2, r2 = render_design(t2, {"t": "秋日限定温暖上新好"})
    assert len(r2.text[0].lines) == 2 and r2.text[0].lines[0].startswith("秋")
    a = np.asarray(img2.convert("L"))
    first = np.nonzero(a[20:70] < 128)[1]  # top cell row: 秋 (column 1) and 上 (column 2)
    assert first.max() > 400 and first.min() < 440
    save_artifact(img, "vertical.png")


def test_no_tofu_every_character_from_a_font_that_has_it() -> None:
    text = "中文 English 0123456789 ¥199 ％ 50% ，。！？、「」（）— 😀 \ue000"  # U+E000: private use, no font
    t = one_text(font_size=28, min_size=10, box={"x": 0, "y": 0, "w": 600, "h": 400})
    img, report = render_design(t, {"t": text})
    tr = report.text[0]
    drawn = "".join(c for c, _ in tr.fonts)
    assert drawn == "".join(c for c in text if not c.isspace() and c != "\ue000")
    for ch, face in tr.fonts:
        path, index = tr.font_files[face]
        assert ord(ch) in cmap(path, index), f"{ch!r} drawn with {face}, which has no glyph for it"
    assert any("U+E000" in w for w in report.warnings)


def test_missing_optional_column_leaves_its_layer_empty() -> None:
    t = bundled_templates()["price_card"]
    full_row = {"name": "纯棉T恤", "price": "59", "title": "限时特惠", "subtitle": "三色可选"}
    full, _ = render_design(t, full_row)
    part, report = render_design(t, {"name": "纯棉T恤", "price": "59", "subtitle": ""})
    by = {r.layer: r for r in report.layers}
    assert by["title"].empty and by["subtitle"].empty and by["image"].empty
    assert report.text_layer("name").lines == ["纯棉T恤"] and report.text_layer("price").lines == ["¥59"]
    # The title area differs (title drawn vs not); name and price areas are identical.
    a, b = np.asarray(full), np.asarray(part)
    x, y, w, h = report.text_layer("title").box
    assert (a[y : y + h, x : x + w] != b[y : y + h, x : x + w]).any()
    x, y, w, h = report.text_layer("price").box
    assert (a[y : y + h, x : x + w] == b[y : y + h, x : x + w]).all()


def test_missing_required_column_raises_naming_it() -> None:
    t = bundled_templates()["price_card"]
    with pytest.raises(RenderError, match="'price'") as e:
        render_design(t, {"name": "T恤"})
    assert e.value.field == "price"
    with pytest.raises(RenderError, match="'name'"):
        render_design(t, {"name": "  ", "price": 5})


def test_bad_image_raises_for_the_row() -> None:
    t = bundled_templates()["xiaohongshu_cover"]

    def broken(value: str) -> Image.Image:
        raise OSError("cannot identify image file")

    with pytest.raises(RenderError, match="cannot read image") as e:
        render_design(t, {"title": "x", "image": "asset123"}, resolve_image=broken)
    assert e.value.field == "layers.0.src"
    with pytest.raises(RenderError, match="not found"):
        render_design(t, {"title": "x", "image": "asset123"}, resolve_image=lambda v: None)


def test_same_input_same_pixels() -> None:
    t = bundled_templates()["product_poster"]
    row = {
        "name": "Aurora 蓝牙耳机",
        "price": "499",
        "subtitle": "40 小时续航",
        "image": Image.new("RGB", (80, 60), "red"),
    }
    a, ra = render_design(t, row)
    b, rb = render_design(t, dict(row))
    assert a.tobytes() == b.tobytes() and ra == rb


@pytest.mark.parametrize("preset", ["banner", "douyin", "wechat_cover", "taobao"])
def test_other_size_keeps_text_inside_boxes(preset: str) -> None:
    p = SIZE_PRESETS[preset]
    t = parse_template(
        {"id": "s", "name": {"zh": "s", "en": "s"}, "width": 1080, "height": 1080, "background": "#ffffff",
         "layers": [{"type": "text", "text": "{{t}}", "box": [80, 400, 920, 260], "font_size": 96, "min_size": 8,
                     "align": "center", "valign": "middle"}]}
    )  # fmt: skip
    img, report = render_design(t, {"t": "秋季新品 Autumn Collection，全场包邮"}, size=(p.width, p.height))
    assert img.size == (p.width, p.height)
    tr = report.text[0]
    sx, sy = p.width / 1080, p.height / 1080
    assert tr.box == (round(80 * sx), round(400 * sy), round(920 * sx), round(260 * sy))
    assert tr.requested_size == max(4, round(96 * min(sx, sy)))
    assert not tr.overflow
    assert_inside(img, tr.box)


def test_generated_layer_gets_filled_prompt_and_multiple_of_8() -> None:
    t = parse_template(
        {"id": "g", "name": {"zh": "g", "en": "g"}, "width": 1000, "height": 700,
         "layers": [{"type": "generated", "prompt": "{{product}} on a marble table, soft light",
                     "box": [10, 20, 333, 301]}]}
    )  # fmt: skip
    calls: list[tuple[str, int, int]] = []

    def gen(prompt: str, w: int, h: int) -> Image.Image:
        calls.append((prompt, w, h))
        return Image.new("RGB", (w, h), (0, 128, 0))

    img, report = render_design(t, {"product": "香水"}, generate=gen)
    assert calls == [("香水 on a marble table, soft light", 336, 304)]
    assert img.getpixel((10 + 166, 20 + 150)) == (0, 128, 0) and img.getpixel((5, 5)) == BG
    with pytest.raises(RenderError, match="generate") as e:
        render_design(t, {"product": "香水"})
    assert e.value.field == "layers.0"


def test_image_layer_fit_radius_and_cutout() -> None:
    t = parse_template(
        {"id": "i", "name": {"zh": "i", "en": "i"}, "width": 400, "height": 400, "background": "#ffffff",
         "layers": [{"type": "image", "src": "{{image}}", "box": [100, 100, 200, 100], "fit": "contain",
                     "radius": 20, "cutout": True}]}
    )  # fmt: skip
    photo = Image.new("RGB", (100, 100), (0, 0, 255))

    def cut(img: Image.Image) -> Image.Image:  # keeps a centre disc, like a subject mask
        out = img.convert("RGBA")
        a = Image.new("L", img.size, 0)
        a.paste(255, (25, 25, 75, 75))
        out.putalpha(a)
        return out

    img, report = render_design(t, {"image": "p.png"}, resolve_image=lambda v: photo, cutout=cut)
    assert report.layers[0].detail["cutout"] == "applied"
    assert img.getpixel((200, 150)) == (0, 0, 255)  # subject
    assert img.getpixel((160, 110)) == BG  # cut away (contain: 100x100 centred at x 150..250)
    assert ink_bbox(img) == (175, 125, 225, 175)
    _, r2 = render_design(t, {"image": "p.png"}, resolve_image=lambda v: photo)
    assert r2.layers[0].detail["cutout"] == "unavailable" and r2.warnings


def test_starter_previews() -> None:
    """Renders every starter template with full rows into test-artifacts/design/ to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:  # a real photo (scikit-image is a dev dependency) makes the previews worth looking at
        from skimage import data

        photo = Image.fromarray(data.coffee())
    except ImportError:
        photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8))
    rows = {
        "price_card": {"name": "云南小粒咖啡豆 中度烘焙 500g 装，香醇浓郁", "price": "89.9", "title": "限时特惠",
                       "subtitle": "产地直发 · 新鲜烘焙", "image": photo},
        "product_poster": {"name": "Aurora 蓝牙降噪耳机 Pro", "price": "499", "subtitle": "40 小时续航！",
                           "image": photo},
        "coupon": {"amount": "50", "title": "全场通用满减券，新人专享", "condition": "满299元可用",
                   "expires": "2025-12-31"},
        "xiaohongshu_cover": {"title": "周末咖啡探店｜藏在胡同里的宝藏小店！", "subtitle": "人均 ¥45", "tag": "探店",
                              "image": photo},
        "story_9x16": {"title": "秋日限定，温暖上新。", "subtitle": "Autumn collection — 精选羊毛针织，舒适百搭。",
                       "date": "2025.10.01", "brand": "ZHIKE", "image": photo},
    }  # fmt: skip
    for tid, row in rows.items():
        img, report = render_design(bundled_templates()[tid], row)
        assert not any(tr.overflow for tr in report.text), (tid, report.warnings)
        img.save(ARTIFACTS / f"{tid}.png")
