"""Design templates as data: validation errors name the JSON path; placeholders; columns; the starter set."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from PIL import Image

from zhike.design.render import render_design
from zhike.design.template import Template, TemplateError, bundled_templates, fill, parse_template

BASE: dict[str, Any] = {
    "schema_version": 1,
    "id": "t",
    "name": {"zh": "测试", "en": "Test"},
    "width": 400,
    "height": 300,
    "layers": [
        {"type": "shape", "box": [0, 0, 50, 50]},
        {"type": "image", "src": "{{image}}", "box": {"x": 0, "y": 0, "w": 10, "h": 10}, "optional": True},
        {"type": "text", "text": "{{ name }} ¥{{price}}", "box": {"x": 0, "y": 0, "w": 100, "h": 40}},
    ],
}


def with_change(path: list[Any], value: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    node = d
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return d


@pytest.mark.parametrize(
    ("path", "value", "field", "says"),
    [
        (["layers", 2, "font_size"], "big", "layers.2.font_size", "integer"),
        (["layers", 2, "type"], "sticker", "layers.2.type", "unknown layer type 'sticker'"),
        (["width"], -5, "width", "greater than or equal"),
        (["layers", 2, "box", "h"], -1, "layers.2.box.h", "greater than or equal"),
        (["layers", 2, "text"], "{name}", "layers.2.text", "placeholder"),
        (["layers", 2, "text"], "{{name}", "layers.2.text", "placeholder"),
        (["layers", 1, "src"], "${image}", "layers.1.src", "placeholder"),
        (["layers", 2, "color"], "#zzz", "layers.2.color", "not a colour"),
        (["background"], {"type": "linear", "colors": ["#fff"]}, "background.colors", "at least 2"),
        (["layers", 2, "min_size"], 200, "layers.2", "min_size"),
        (["layers", 0, "bogus"], 1, "layers.0.bogus", "Extra inputs"),
        (["schema_version"], 9, "template", "newer"),
    ],
)
def test_bad_template_names_the_path(path: list[Any], value: Any, field: str, says: str) -> None:
    with pytest.raises(TemplateError) as e:
        parse_template(with_change(path, value))
    assert (e.value.field or "template") == field, e.value.message
    assert says in e.value.message
    assert e.value.message.startswith(field if field != "template" else "template")


def test_layer_without_type_and_bad_json() -> None:
    d = copy.deepcopy(BASE)
    del d["layers"][0]["type"]
    with pytest.raises(TemplateError, match="needs a type") as e:
        parse_template(d)
    assert e.value.field == "layers.0.type"
    with pytest.raises(TemplateError, match="not valid JSON"):
        parse_template("{")


def test_parse_from_json_text_and_columns() -> None:
    t = parse_template(json.dumps(BASE))
    assert isinstance(t, Template)
    assert t.columns() == ({"name", "price"}, {"image"})
    # A column used by a required layer is required even if an optional layer uses it too.
    d = with_change(["layers", 1, "src"], "{{name}}")
    assert parse_template(d).columns() == ({"name", "price"}, set())


def test_fill_placeholders() -> None:
    assert fill("{{name}} / {{ price }} / {{missing}}", {"name": "茶", "price": 12.0}) == "茶 / 12 / "
    assert fill("{{商品 名称}}", {"商品 名称": "绿茶"}) == "绿茶"
    assert fill("{{a}}", {"a": None}) == ""
    assert fill("{{a}}", {"a": float("nan")}) == ""


STARTER_ROWS = {
    "price_card": {"name": "Classic Tee 纯棉T恤", "price": "59"},
    "product_poster": {"name": "Aurora 耳机", "price": "499", "image": Image.new("RGB", (64, 64), "teal")},
    "coupon": {"amount": "20", "title": "新人券"},
    "xiaohongshu_cover": {"title": "周末探店", "image": Image.new("RGB", (64, 48), "orange")},
    "story_9x16": {"title": "秋日上新", "image": Image.new("RGB", (48, 64), "gray")},
}


def test_starter_templates_ship_and_render_with_required_columns_only() -> None:
    tpls = bundled_templates()
    assert set(STARTER_ROWS) <= set(tpls)  # the whole library: tests/test_starter_templates.py
    assert (tpls["xiaohongshu_cover"].width, tpls["xiaohongshu_cover"].height) == (1242, 1660)
    assert (tpls["story_9x16"].width, tpls["story_9x16"].height) == (1080, 1920)
    assert tpls["price_card"].columns() == ({"name", "price"}, {"title", "subtitle", "image"})
    for tid in STARTER_ROWS:
        t = tpls[tid]
        assert t.name.zh and t.name.en
        required, _ = t.columns()
        assert required <= set(STARTER_ROWS[tid]), tid
        img, report = render_design(t, STARTER_ROWS[tid])
        assert img.size == (t.width, t.height)
        assert not [w for w in report.warnings if "font" in w], report.warnings
