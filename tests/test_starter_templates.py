"""The starter library (模板库): every bundled template renders well with only its required columns and with long
Chinese values: no text cut or shrunk out of its box, none outside the canvas, readable contrast (WCAG 2.x, at
least 4.5:1) between each text layer's colour and the background actually rendered behind its glyphs; each is made
at its category's size, declares its sample data, and together they cover every category.

Contrast is measured, not assumed: the template is rendered without its text layers (the background every text
sits on), each text layer is rendered alone on a transparent canvas (its glyph pixels), and the colour is compared
with the background pixel under every glyph pixel. A stroked text's background is its own stroke.
Renders are saved under test-artifacts/starter_templates/ for a look.
"""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from tests.conftest import ARTIFACTS
from zhike.design.categories import CATEGORIES
from zhike.design.data import image_columns
from zhike.design.render import VERTICAL_FORMS, render_design, rgba
from zhike.design.template import Template, TextLayer, bundled_templates, fill, parse_template
from zhike.services.templates import sample_row

ART = ARTIFACTS / "starter_templates"
MIN_CONTRAST = 4.5
# Vertical text draws ，as ︐: the same character, in its vertical form.
HORIZONTAL = str.maketrans({v: k for k, forms in VERTICAL_FORMS.items() for v in forms})
TEMPLATES = bundled_templates()

# Long values a merchant's spreadsheet really holds: a 30+ character product name, a 10-character headline, long
# subtitles; by column, as the starter templates name them.
LONG_NAME = "【官方旗舰店】北欧简约陶瓷马克杯大容量家用办公室咖啡杯带盖勺礼盒装"
LONG_TITLE = "双十一限时爆款狂欢购"
LONG_TEXT = "全场满299减50，前100名下单再送定制帆布袋一个"
LONG_BY_COLUMN = {
    "name": LONG_NAME,
    "title": LONG_TITLE,
    "price": "12999",
    "original_price": "15999",
    "amount": "1000",
    "score": "10.0",
    "discount": "满1000减200",
    "group": "100人团",
    "episode": "第 128 集",
    "condition": "满999元可用，限部分商品",
    "origin": "新疆维吾尔自治区阿克苏地区",
    "tag": "限时特惠秒杀",
    "unit": "限时特惠秒杀",
    "brand": "木子家居官方旗舰店铺",
    "host": "木子家居官方旗舰店铺",
    "date": "2026.12.31 23:59",
    "expires": "2026.12.31 23:59",
    "time": "2026.12.31 23:59",
}
LONG_LIST_ITEM = "精选优质原料低温慢烘十六小时"  # selling points, specs, usage steps (point1, spec2, usage3, ...)


def long_value(column: str) -> str:
    if column in LONG_BY_COLUMN:
        return LONG_BY_COLUMN[column]
    if column.rstrip("0123456789") in ("point", "spec", "usage"):
        return LONG_LIST_ITEM
    return LONG_TEXT  # subtitle, place, ...: a long sentence


def assert_long_name() -> None:
    assert len(LONG_NAME) >= 30 and len(LONG_TITLE) == 10 and len(LONG_TEXT) >= 24


@cache
def photo() -> Image.Image:
    return Image.fromarray(skdata.coffee())


def rows(t: Template) -> dict[str, dict[str, Any]]:
    """Only the required columns (from the template's own sample), and every column with a long value. A required
    image column gets a real photo; optional ones stay empty (a starter template looks complete without them)."""
    required, optional = t.columns()
    images = image_columns(t)
    sample = sample_row(t)
    short = {c: sample[c] for c in required if c not in images}
    long = {c: long_value(c) for c in required | optional if c not in images}
    for c in images & required:
        short[c] = long[c] = photo()
    return {"required": short, "long": long}


# ---------------------------------------------------------------------------------------------------- measuring


def luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG 2.x relative luminance of sRGB values (0-255, last axis RGB)."""
    c = rgb.astype(np.float64) / 255
    lin = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


def contrast(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    la, lb = luminance(a), luminance(b)
    return (np.maximum(la, lb) + 0.05) / (np.minimum(la, lb) + 0.05)


def with_layers(t: Template, keep: Any, background: Any = None) -> Template:
    body = t.model_dump(mode="json")
    body["layers"] = [layer for layer, model in zip(body["layers"], t.layers, strict=True) if keep(model)]
    if background is not None:
        body["background"] = background
    return parse_template(body)


def problems(t: Template, row: dict[str, Any]) -> list[str]:
    """What is wrong with this template drawn with this row: text cut, shrunk past fitting, outside the canvas,
    missing glyphs, or below 4.5:1 against what is behind it. Empty: it renders well."""
    found: list[str] = []
    img, report = render_design(t, row, resolve_image=lambda _v: None)
    if img.size != (t.width, t.height):
        found.append(f"rendered at {img.size}, not {t.width}x{t.height}")
    found += [w for w in report.warnings if "cutout" not in w]  # overflow, missing glyphs, unknown fonts
    W, H = img.size
    bare_bg = with_layers(t, lambda m: not isinstance(m, TextLayer))
    background = np.asarray(render_design(bare_bg, row, resolve_image=lambda _v: None)[0].convert("RGB"))
    layers = {layer.id or f"layers.{i}": layer for i, layer in enumerate(t.layers)}
    for tr in report.text:
        layer = layers[tr.layer]
        assert isinstance(layer, TextLayer)
        if not tr.lines:  # an optional layer left empty
            continue
        x, y, w, h = tr.box
        if x < 0 or y < 0 or x + w > W or y + h > H:
            found.append(f"{tr.layer}: box {tr.box} is not inside the {W}x{H} canvas")
        want = "".join(fill(layer.text, row).split())
        drawn = "".join("".join(tr.lines).split()).translate(HORIZONTAL)
        if tr.overflow or drawn != want:
            found.append(f"{tr.layer}: drew {drawn!r} of {want!r}")
        colour = rgba(layer.color)
        if colour[3] != 255:
            found.append(f"{tr.layer}: text colour {layer.color} is see-through")
        if layer.stroke and layer.stroke.width >= 2:  # the glyph's outline is its background
            c = float(contrast(np.array(colour[:3]), np.array(rgba(layer.stroke.color)[:3])))
            if c < MIN_CONTRAST:
                found.append(f"{tr.layer}: contrast {c:.2f} with its stroke")
            continue
        alone = with_layers(t, lambda m, name=layer: m is name, background="#00000000")
        bare = layer.model_copy(update={"shadow": None})
        alone.layers[0] = bare
        glyphs, _ = render_design(alone, row)
        ink = np.asarray(glyphs.getchannel("A")) >= 128
        if not ink.any():
            found.append(f"{tr.layer}: nothing drawn")
            continue
        ratios = contrast(np.broadcast_to(np.array(colour[:3]), background[ink].shape), background[ink])
        # The 2nd percentile: a few pixels may sit on a shape's anti-aliased edge.
        low = float(np.percentile(ratios, 2))
        if low < MIN_CONTRAST:
            found.append(f"{tr.layer}: contrast {low:.2f} ({layer.color} on what is behind it)")
    return found


# ---------------------------------------------------------------------------------------------------- tests


def test_the_library_covers_every_category_at_its_size() -> None:
    assert_long_name()
    assert len(TEMPLATES) >= 40
    by_category: dict[str, list[str]] = {}
    for tid, t in TEMPLATES.items():
        assert t.category in CATEGORIES, tid
        by_category.setdefault(t.category, []).append(tid)
        cat = CATEGORIES[t.category]
        assert cat.allows(t.width, t.height), f"{tid}: {t.width}x{t.height} is not a {cat.en} size"
        assert t.name.zh and t.name.en and t.description and t.tags, tid
        required, optional = t.columns()
        # The sample shows every required column off (images excepted: a sample has no photo).
        assert required - image_columns(t) <= set(t.sample), (tid, required - set(t.sample))
        assert set(t.sample) <= required | optional, (tid, set(t.sample) - required - optional)
    assert set(by_category) == set(CATEGORIES), set(CATEGORIES) - set(by_category)
    assert all(len(ids) >= 4 for ids in by_category.values()), {k: len(v) for k, v in by_category.items()}
    # Detail pages are long images with their sections.
    for tid in by_category["detail_page"]:
        t = TEMPLATES[tid]
        assert t.width == 750 and t.height >= 3000
        ids = {layer.id for layer in t.layers}
        assert {"hero", "points_title", "specs_title", "usage_title", "guarantee"} <= ids, tid
    festivals = " ".join(" ".join(TEMPLATES[tid].tags) for tid in by_category["festival"])
    assert all(word in festivals for word in ("双十一", "618", "春节"))


@pytest.mark.parametrize("tid", sorted(TEMPLATES))
def test_renders_well_with_required_columns_and_with_long_chinese(tid: str) -> None:
    t = TEMPLATES[tid]
    looks = []
    for kind, row in rows(t).items():
        assert not problems(t, row), (kind, problems(t, row))
        looks.append(render_design(t, row, resolve_image=lambda _v: None)[0])
    ART.mkdir(parents=True, exist_ok=True)
    h = 480
    sheet = Image.new("RGB", (sum(round(i.width * h / i.height) + 16 for i in looks), h), "#808080")
    x = 0
    for i in looks:
        small = i.convert("RGB").resize((round(i.width * h / i.height), h), Image.Resampling.LANCZOS)
        sheet.paste(small, (x, 0))
        x += small.width + 16
    sheet.save(ART / f"{tid}.png")


OLD_PRICE_CARD = Path(__file__).resolve().parent / "fixtures" / "price_card_v0.json"


def test_the_checks_catch_the_old_price_card() -> None:
    """The price card as it shipped before: white title on the white card, half of it empty without a photo.
    The same checks that pass every starter template find it."""
    old = parse_template(json.loads(OLD_PRICE_CARD.read_text(encoding="utf-8")))
    found = problems(old, {"name": LONG_NAME, "price": "89.9", "title": "双十一爆款", "subtitle": LONG_TEXT})
    assert any(p.startswith("title: contrast 1.00") for p in found), found
    # A text box past the canvas and a cut text are caught too.
    body = old.model_dump(mode="json")
    body["layers"][3]["box"] = {"x": 600, "y": 660, "w": 904, "h": 170}
    body["layers"][3]["min_size"] = 60
    found = problems(parse_template(body), {"name": LONG_NAME, "price": "9"})
    assert any("not inside the 1080x1080 canvas" in p for p in found), found
    assert any(p.startswith("name: drew") for p in found), found


def test_the_gallery_api_lists_categories_and_serves_cached_thumbnails(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.conftest import make_settings
    from zhike.api.app import create_app

    app = create_app(make_settings(tmp_path / "home"), start_worker=False)
    z = app.state.zhike
    _, key = z.keys.create("k", owner_id="owner-a")
    client = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    try:
        listed = client.get("/api/v1/templates").json()
        assert listed["categories"]["detail_page"] == {"zh": "详情页", "en": "Detail page", "size": "750×3000+"}
        by_id = {t["id"]: t for t in listed["templates"]}
        card = by_id["price_card"]
        assert card["category"] == "price_tag" and "价格" in card["tags"] and card["sample"]["title"] == "双十一爆款"
        r = client.get(card["thumb"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
        thumb = Image.open(io.BytesIO(r.content))
        assert thumb.size == (360, 360)
        # Drawn with the sample row: the red title badge is there (the old card drew it white on white).
        px = np.asarray(thumb.convert("RGB")).reshape(-1, 3).astype(int)
        assert ((px[:, 0] > 150) & (px[:, 1] < 60) & (px[:, 2] < 60)).sum() > 500
        again = client.get(card["thumb"], headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
        assert len(list((z.settings.home / "cache" / "template_thumbs").glob("price_card-*.webp"))) == 1
        tall = client.get(by_id["detail_food"]["thumb"])
        assert Image.open(io.BytesIO(tall.content)).size == (360, 1632)  # a long image stays long
        assert client.get("/api/v1/templates/nope/thumb").status_code == 404
    finally:
        z.engine.dispose()
