"""Brand kits (品牌): saved per user through /api/v1/brand with bad values refused by code and field, and picked up
by templates: `brand.primary` colours, `{{brand.logo}}` drawn where its layer is, `{{brand.name}}`; a user without a
kit gets the fallbacks. Template previews and batch design jobs both use the owner's kit."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.test_library_api import Lib, lib  # noqa: F401 (the fixture: alice and bob signed in, one app)
from tests.test_stock import error, upload
from zhike.design.brand import DEFAULT_COLOURS
from zhike.services.jobs.worker import Worker

KIT = {
    "name": "山茶小铺",
    "colors": {
        "primary": "#1A7F5A",
        "secondary": "#222222",
        "accent": "#F2C14E",
        "text": "#10213a",
        "background": "#FFF8EE",
    },
    "fonts": {"heading": "Source Han Sans SC", "body": "sans"},
}
# A 400 x 200 design: a brand-coloured band on the left, the logo's box on the right, the brand name below.
TEMPLATE = {
    "id": "brand_demo",
    "name": {"zh": "品牌演示", "en": "Brand demo"},
    "width": 400,
    "height": 200,
    "background": "brand.background",
    "layers": [
        {"type": "shape", "id": "band", "box": [0, 0, 100, 200], "fill": "brand.primary|#00aa00"},
        {"type": "shape", "id": "dot", "box": [110, 10, 40, 40], "fill": "brand.accent"},
        {"type": "image", "id": "logo", "src": "{{brand.logo}}", "box": [300, 20, 80, 80], "fit": "fill"},
        {"type": "text", "id": "name", "text": "{{brand.name}}", "box": [110, 120, 280, 70], "font": "brand.heading",
         "font_size": 40, "color": "brand.text"},
    ],
}  # fmt: skip


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def preview(c: Any, row: dict[str, Any] | None = None) -> np.ndarray:
    r = c.post("/api/v1/templates/preview", json={"template_json": TEMPLATE, "row": row or {}})
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(int)


def near(px: np.ndarray, colour: tuple[int, int, int], tol: int = 3) -> bool:
    return bool(np.abs(px - np.array(colour)).max() <= tol)


def test_a_kit_is_saved_per_user_and_bad_values_name_their_field(lib: Lib) -> None:  # noqa: F811
    a, b = lib.alice, lib.bob
    start = a.get("/api/v1/brand").json()
    assert start["kit"] is None and start["defaults"]["colors"] == DEFAULT_COLOURS
    assert "sans" in start["fonts"] and "Source Han Sans SC" in start["fonts"]

    for body, code, field in [
        ({"colors": {"primary": "red"}}, "colour_invalid", "colors.primary"),
        ({"colors": {"background": "#fff"}}, "colour_invalid", "colors.background"),
        ({"colors": {"text": "#12345g"}}, "colour_invalid", "colors.text"),
        ({"fonts": {"heading": "Comic Sans MS"}}, "font_unknown", "fonts.heading"),
        ({"name": "x" * 101}, "validation_failed", "name"),
        ({"colour": {}}, "validation_failed", "colour"),
    ]:
        e = error(a.put("/api/v1/brand", json=body), 422)
        assert (e["code"], e["field"]) == (code, field), body
    assert a.get("/api/v1/brand").json()["kit"] is None  # nothing saved by a refused request

    bobs_logo = upload(b, "bob-logo.png")
    e = error(a.put("/api/v1/brand", json={**KIT, "logo": bobs_logo}), 422)
    assert (e["code"], e["field"]) == ("asset_not_found", "logo")

    logo = upload(a, "logo.png", (20, 40, 220))
    saved = a.put("/api/v1/brand", json={**KIT, "logo": logo}).json()["kit"]
    assert saved["colors"]["primary"] == "#1a7f5a" and saved["logo"] == logo and saved["name"] == "山茶小铺"
    assert a.get("/api/v1/brand").json()["kit"] == saved
    assert b.get("/api/v1/brand").json()["kit"] is None  # alice's kit is hers
    partial = a.put("/api/v1/brand", json={"name": "新名字"}).json()["kit"]  # what is left out takes the defaults
    assert partial["colors"] == DEFAULT_COLOURS and partial["logo"] is None
    assert a.delete("/api/v1/brand").json()["kit"] is None


def test_templates_render_in_the_owners_brand_and_fall_back_without_one(lib: Lib) -> None:  # noqa: F811
    a, b = lib.alice, lib.bob
    logo = upload(a, "logo.png", (20, 40, 220))
    assert a.put("/api/v1/brand", json={**KIT, "logo": logo}).status_code == 200

    img = preview(a)
    assert near(img[100, 50], rgb("#1a7f5a"))  # brand.primary
    assert near(img[30, 130], rgb("#f2c14e"))  # brand.accent
    assert near(img[100, 200], rgb("#fff8ee"))  # brand.background
    assert near(img[20:100, 300:380].reshape(-1, 3).mean(axis=0).round(), (20, 40, 220))  # the logo, in its box
    assert near(img[110, 340], rgb("#fff8ee")) and near(img[60, 295], rgb("#fff8ee"))  # ... and only there
    name_box = img[120:190, 110:390].reshape(-1, 3)
    ink = np.abs(name_box - np.array(rgb("#10213a"))).max(axis=1) < 40
    assert ink.sum() > 300  # 山茶小铺, in brand.text

    # bob has no kit: the reference's own fallback, else Zhike's default palette; no logo, no name drawn
    img = preview(b)
    assert near(img[100, 50], (0, 170, 0))
    assert near(img[30, 130], rgb(DEFAULT_COLOURS["accent"]))
    assert near(img[60, 340], rgb(DEFAULT_COLOURS["background"]))
    assert (img[120:190, 110:390] == 255).all()


def test_a_batch_job_pins_the_kit_it_was_submitted_with(lib: Lib) -> None:  # noqa: F811
    z = lib.z
    a = lib.alice
    assert a.put("/api/v1/brand", json=KIT).status_code == 200
    r = a.post("/api/v1/jobs", json={"op": "batch_design", "params": {"template_json": TEMPLATE, "rows": [{"x": "1"}]}})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["params"]["brand"]["colors"]["primary"] == "#1a7f5a"
    a.put("/api/v1/brand", json={**KIT, "colors": {"primary": "#000000"}})  # after submission: not this job's
    assert Worker(z).run_one(job["id"])
    done = a.get(f"/api/v1/jobs/{job['id']}").json()
    assert done["state"] == "succeeded", done
    (design,) = done["result"]["designs"]
    img = np.asarray(Image.open(io.BytesIO(a.get(f"/api/v1/assets/{design['asset_id']}/file").content)).convert("RGB"))
    assert near(img[100, 50].astype(int), rgb("#1a7f5a"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"fill": "brand.pink"}, "template_json.layers.0.fill"),
        ({"fill": "brand.primary|nocolour"}, "template_json.layers.0.fill"),
    ],
)
def test_unknown_brand_references_are_template_errors(lib: Lib, change: dict[str, Any], field: str) -> None:  # noqa: F811
    tpl = {**TEMPLATE, "layers": [{**TEMPLATE["layers"][0], **change}]}
    e = error(lib.alice.post("/api/v1/templates/preview", json={"template_json": tpl}), 422)
    assert (e["code"], e["field"]) == ("invalid_template", field)
    text = {**TEMPLATE, "layers": [{**TEMPLATE["layers"][3], "text": "{{brand.slogan}}"}]}
    e = error(lib.alice.post("/api/v1/templates/preview", json={"template_json": text}), 422)
    assert e["field"] == "template_json.layers.0.text" and "brand.slogan" in e["message"]


def test_references_resolve_only_in_colour_and_font_fields() -> None:
    """A gradient's stops, a stroke's colour take the kit; text that happens to start with "brand." is text."""
    from zhike.design.brand import BrandKit
    from zhike.design.render import render_design

    tpl = {
        "id": "stops",
        "name": {"zh": "渐变", "en": "Gradient"},
        "width": 200,
        "height": 100,
        "background": {"type": "linear", "angle": 0, "colors": ["brand.primary", "brand.accent|#000000"]},
        "layers": [{"type": "text", "text": "brand.new 上市", "box": [0, 0, 200, 100], "color": "brand.text"}],
    }
    kit = BrandKit(colors={"primary": "#00ff00", "accent": "#0000ff"})
    img, report = render_design(tpl, {}, brand=kit)
    assert "".join(report.text[0].lines) == "brand.new上市"  # wrapped as text, not read as a colour
    assert near(np.asarray(img)[99, 0].astype(int), (0, 255, 0), 4) and near(
        np.asarray(img)[99, 199].astype(int), (0, 0, 255), 4
    )
    img, _ = render_design(tpl, {})  # no kit: the stop's own fallback, the default primary
    assert near(np.asarray(img)[99, 0].astype(int), rgb(DEFAULT_COLOURS["primary"]), 4)
    assert near(np.asarray(img)[99, 199].astype(int), (0, 0, 0), 4)
