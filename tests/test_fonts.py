"""Zhike brings its own CJK font (Source Han Sans SC from npm, `make embedded`): with every system font folder hidden,
batch designs and the visible label still draw real Chinese glyphs (not .notdef boxes), with a real bold; with the
system fonts present, the per-character fallback chain still reaches them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from zhike import fonts
from zhike.design.render import render_design
from zhike.design.template import Template, bundled_templates, parse_template
from zhike.models.embedded import BY_NAME, is_present
from zhike.provenance import visible
from zhike.settings import get_settings

ROW = {"name": "纯棉圆领T恤", "price": "59", "title": "限时特惠", "subtitle": "三色可选"}
# The same lengths, other characters: .notdef boxes would make both renders identical.
OTHER = {"name": "精梳棉长袖衫", "price": "59", "title": "新品上市", "subtitle": "五色可选"}


@pytest.fixture(scope="module")
def bundled() -> Path:
    """The bundled font's folder; a clear failure (not a skip) when it was never fetched."""
    folder = Path(os.environ["ZHIKE_EMBEDDED_DIR"])
    if not is_present(BY_NAME["source-han-sans-sc"], folder):
        pytest.fail(f"the bundled font Source Han Sans SC is missing in {folder}: run `make embedded`")
    assert get_settings().embedded_path == folder, "fonts.py finds the embedded folder through the settings"
    return folder / "source-han-sans-sc"


@pytest.fixture
def no_system_fonts(bundled: Path) -> Iterator[Path]:
    """A server with no fonts at all: every system font folder hidden, only Zhike's own font left."""
    saved = fonts.FONT_DIRS
    fonts.FONT_DIRS = ()
    fonts.refresh()
    try:
        assert list(fonts.installed()) == [fonts.BUNDLED_FAMILY], "the system fonts are hidden"
        yield bundled
    finally:
        fonts.FONT_DIRS = saved
        fonts.refresh()


def one_text(text_layer: dict[str, Any]) -> Template:
    spec = {"type": "text", "text": "{{t}}", "box": {"x": 20, "y": 20, "w": 560, "h": 160}, **text_layer}
    return parse_template(
        {"id": "one", "name": {"zh": "一", "en": "one"}, "width": 600, "height": 200, "background": "#ffffff",
         "layers": [spec]}
    )  # fmt: skip


def glyph(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray:
    im = Image.new("L", (128, 128), 0)
    ImageDraw.Draw(im).text((64, 64), ch, font=font, fill=255, anchor="mm")
    return np.asarray(im) > 127


def distinct(a: np.ndarray, b: np.ndarray) -> bool:
    """Two glyph bitmaps differ in more than a fifth of their ink."""
    return int((a ^ b).sum()) > 0.2 * max(int(a.sum()), int(b.sum()))


def ink(img: Image.Image, box: tuple[int, int, int, int], other: Image.Image) -> int:
    """Pixels inside `box` where two renders differ."""
    x, y, w, h = box
    a = np.asarray(img.convert("RGB"), np.int16)[y : y + h, x : x + w]
    b = np.asarray(other.convert("RGB"), np.int16)[y : y + h, x : x + w]
    return int((np.abs(a - b).sum(-1) > 60).sum())


def test_price_card_draws_chinese_with_no_system_fonts(no_system_fonts: Path) -> None:
    t = bundled_templates()["price_card"]
    img, report = render_design(t, ROW)
    other, _ = render_design(t, OTHER)
    assert report.warnings == []
    by = {r.layer: r for r in report.text}
    for layer in ("title", "name", "subtitle"):
        r = by[layer]
        assert "".join(c for c, _ in r.fonts) == ROW[layer], layer
        assert {f for _, f in r.fonts} <= {"Source Han Sans SC", "Source Han Sans SC Bold"}, r.fonts
        assert all(Path(p).parent == no_system_fonts for p, _ in r.font_files.values()), r.font_files
        # Other characters in the same box: real glyphs differ, boxes would not; the ink stays in the box.
        assert ink(img, r.box, other) > 200, layer
    changed = np.abs(np.asarray(img.convert("RGB"), np.int16) - np.asarray(other.convert("RGB"), np.int16)).sum(-1)
    for r in report.text:  # nothing changes outside the text boxes (grown by 16 px: the title's shadow blur)
        x, y, w, h = r.box
        changed[max(0, y - 16) : y + h + 16, max(0, x - 16) : x + w + 16] = 0
    assert not changed.any()
    assert by["price"].fonts[0] == ("¥", "Source Han Sans SC Bold")


def test_each_glyph_is_not_the_fonts_notdef_box(no_system_fonts: Path) -> None:
    regular = fonts.chain("sans", "regular")
    assert regular[0].path == str(no_system_fonts / "SourceHanSansSC-Regular.otf")
    font = regular[0].font(96)
    assert not regular[0].has("\ue000")  # a private-use code point: the font draws its .notdef box for it
    notdef = glyph(font, "\ue000")
    default = ImageFont.load_default(96)  # Pillow's own Latin font: lacks every Chinese character
    chars = sorted(set("".join(ROW.values()) + "".join(OTHER.values())) - set("0123456789T"))
    drawn = {ch: glyph(font, ch) for ch in chars}
    for ch, g in drawn.items():
        assert fonts.face_for(ch, regular) == regular[0], ch
        assert g.sum() > 150, f"{ch!r} draws no ink"
        assert distinct(g, notdef), f"{ch!r} is drawn as the font's .notdef box"
        assert distinct(g, glyph(default, ch)), f"{ch!r} looks like a font without it drew it"
    assert all(distinct(drawn[a], drawn[b]) for a in "纯棉圆领" for b in "精梳长袖" if a != b)


def test_bold_is_the_real_bold_face(no_system_fonts: Path) -> None:
    bold = fonts.chain("sans", "bold")[0]
    assert bold.path == str(no_system_fonts / "SourceHanSansSC-Bold.otf") and bold.bold and not bold.faux_bold
    assert bold.faux_width(60) == 0
    images, reports = {}, {}
    for weight in ("regular", "bold"):
        images[weight], reports[weight] = render_design(
            one_text({"weight": weight, "font_size": 60, "color": "#000000"}), {"t": "纯棉圆领T恤"}
        )
    assert {f for _, f in reports["bold"].text[0].fonts} == {"Source Han Sans SC Bold"}
    assert {f for _, f in reports["regular"].text[0].fonts} == {"Source Han Sans SC"}
    dark = {w: int((np.asarray(im.convert("L")) < 128).sum()) for w, im in images.items()}
    assert dark["bold"] > 1.25 * dark["regular"] > 0, dark  # heavier strokes, not the same face


def test_visible_label_draws_chinese_with_no_system_fonts(no_system_fonts: Path) -> None:
    assert visible.cjk_font_path() == str(no_system_fonts / "SourceHanSansSC-Regular.otf")
    base = Image.new("RGB", (800, 400), (200, 220, 240))
    label = {t: np.asarray(visible.apply(base, t), np.int16) for t in ("AI生成", "AI成生", "AI-generated")}
    plate = np.argwhere(np.abs(label["AI生成"] - np.asarray(base, np.int16)).sum(-1) > 30)
    (y0, x0), (y1, x1) = plate.min(axis=0), plate.max(axis=0)
    text = label["AI生成"][y0 : y1 + 1, x0 : x1 + 1]
    assert (text.min(-1) > 200).sum() > 100, "white text drawn on the dark plate"
    # The two Chinese characters swapped: only real glyphs tell them apart (boxes or the English text would not).
    assert (np.abs(label["AI生成"] - label["AI成生"]).sum(-1) > 60).sum() > 100
    assert (np.abs(label["AI生成"] - label["AI-generated"]).sum(-1) > 60).sum() > 100
    assert visible.text_height((800, 400)) >= 0.05 * 400


def test_fallback_chain_still_reaches_system_fonts(bundled: Path) -> None:
    fonts.refresh()
    faces = fonts.chain("sans", "regular")
    assert faces[0].family == fonts.BUNDLED_FAMILY, "Zhike's own font comes first"
    if "DejaVu Sans" not in fonts.installed():
        pytest.skip("no DejaVu Sans: `make` installs fonts-dejavu-core (optional) where it can")
    text = "Zażółć gęślą ☕"  # Polish letters and a symbol that Source Han Sans SC lacks
    img, report = render_design(one_text({"font_size": 40}), {"t": text})
    assert report.warnings == []
    used = dict(report.text[0].fonts)
    for ch, face in used.items():
        first = next(f for f in faces if f.has(ch))
        assert face == first.name, (ch, face)
    assert not faces[0].has("ą") and used["ą"] != fonts.BUNDLED_FAMILY
    assert used["☕"] == "DejaVu Sans" and used["a"] == fonts.BUNDLED_FAMILY


def test_no_font_at_all_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ZHIKE_EMBEDDED_DIR", str(tmp_path))
    monkeypatch.setattr(fonts, "FONT_DIRS", ())
    get_settings.cache_clear()
    fonts.refresh()
    try:
        with pytest.raises(RuntimeError, match="zhike models fetch-embedded"):
            fonts.chain("sans", "regular")
        assert visible.cjk_font_path() is None
        out = visible.apply(Image.new("RGB", (400, 200), (200, 220, 240)))  # English text, Pillow's own font
        assert np.asarray(out).std() > 0
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        fonts.refresh()
