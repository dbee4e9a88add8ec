"""product_copy and marketing_copy on the real job path with a tiny random Qwen2 (real tokenizer, real transformers
backend), the generated CLI, and a short check on the real embedded LLM.

The tiny model's words are noise: the tests assert structure, limits and bookkeeping — which is exactly what must
hold when a model ignores the layout — never wording. The real-LLM test asserts what a merchant needs: the parts the
model wrote (not the spec table made from the facts) name the product and its price, the copy is Chinese, and its
title fits 淘宝's limit."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.helpers.jobs import run
from zhike.core.errors import ContentRefused, InvalidInput
from zhike.services.container import Zhike
from zhike.words import chinese_ratio, text_length
from zhike.words.styles import get_platform, marketing_styles

KNOWN_NOTES = {"title_trimmed", "copy_part_missing", "copy_layout_ignored", "copy_points_few"}
FAST = {"length": "short", "max_tokens": 24, "seed": 5}  # the tiny model's words are noise: a few suffice
FLASK = {
    "name": "304不锈钢真空保温杯",
    "category": "水杯",
    "price": 39.9,
    "selling_points": ["保温12小时", "一键开盖", "食品级硅胶密封圈"],
    "specs": [{"name": "容量", "value": "500ml"}, {"name": "材质", "value": "304不锈钢"}],
    "skus": ["曜石黑 500ml", "樱花粉 500ml"],
}


@pytest.fixture
def z(tiny_llm_app: Zhike) -> Zhike:
    return tiny_llm_app


def red_photo(z: Zhike) -> str:
    img = Image.new("RGB", (200, 150), (250, 250, 250))
    img.paste((200, 25, 35), (50, 30, 150, 130))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return z.assets.upload(buf.getvalue(), owner_id="u1", name="flask.png").id


# -- product_copy ---------------------------------------------------------------------------------------------------
def test_product_copy_runs_as_a_job_with_every_part_and_records_its_params(z: Zhike) -> None:
    photo = red_photo(z)
    row = run(z, "product_copy", {**FLASK, **FAST, "image": photo})
    res = row.result
    data = res["data"]
    assert {"platform", "title", "title_limit", "title_length", "points", "sections", "skus", "facts"} <= set(data)
    assert data["platform"] == "taobao" and data["title_limit"] == 60
    assert text_length(data["title"], "double_width") == data["title_length"] <= 60
    assert 3 <= len(data["points"]) <= 5  # the model's points, topped up with the merchant's own three
    assert [s["name"] for s in data["skus"]] == FLASK["skus"]
    # the spec table is the merchant's facts, and the photo's colour and size
    facts = {f["name"]: f["value"] for f in data["facts"]}
    assert facts["价格"] == "39.9元" and facts["容量"] == "500ml" and facts["颜色"].startswith("红色")
    assert data["image_size"] == [200, 150] and data["colours"][0]["zh"] == "红色"
    assert res["text"].startswith(f"# {data['title']}\n") and "| 价格 | 39.9元 |" in res["text"]
    assert {n["code"] for n in res["notes"]} <= KNOWN_NOTES and len(res["notes"]) == len(res["warnings"])
    # a text asset with the job's params (the default model and the seed fixed at submission), child of the photo
    asset = z.assets.get(res["asset_id"], owner_id="u1")
    assert asset.params == row.params and row.params["llm"] == "tiny-qwen" and row.params["seed"] == 5
    assert asset.parent_id == photo and res["llm"] == "tiny-qwen"
    assert z.assets.read_bytes(asset).decode("utf-8") == res["text"]


@pytest.mark.parametrize(("platform", "language"), [("jd", "zh"), ("pdd", "en")])
def test_the_title_fits_the_platform_even_when_the_model_writes_gibberish(
    z: Zhike, platform: str, language: str
) -> None:
    long_name = "加厚款304不锈钢真空保温杯男女士大容量便携学生水杯办公室泡茶杯车载保温壶礼盒装"  # 80 widths alone
    row = run(z, "product_copy", {"name": long_name, "platform": platform, "language": language, **FAST})
    style = get_platform(platform)
    title = row.result["data"]["title"]
    assert title and text_length(title, style.title_rule) <= (style.title_limit or 0)


# -- marketing_copy -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("style", [s.id for s in marketing_styles()])
def test_each_marketing_style_gives_its_parts_within_their_limits(z: Zhike, style: str) -> None:
    row = run(z, "marketing_copy", {"style": style, "brief": "保温杯上新，主打通勤", "price": 39.9, **FAST})
    data = row.result["data"]
    parts = next(s for s in marketing_styles() if s.id == style).parts
    assert data["style"] == style and {p.key for p in parts} <= set(data)
    for p in parts:
        if p.limit and p.kind == "text":
            assert text_length(data[p.key], p.rule) <= p.limit, p.key
            assert data["limits"][p.key]["length"] == text_length(data[p.key], p.rule)
        if p.limit and p.kind == "list":
            assert all(text_length(x, p.rule) <= p.limit for x in data[p.key]), p.key
        if p.kind == "tags":
            assert all(t.startswith("#") for t in data[p.key]) and len(data[p.key]) <= (p.max_items or 99)
        if p.kind == "shots":
            assert all({"visual", "line", "seconds"} == set(s) for s in data[p.key])
    assert {n["code"] for n in row.result["notes"]} <= KNOWN_NOTES


def test_marketing_copy_needs_a_product_or_a_brief(z: Zhike) -> None:
    with pytest.raises(InvalidInput) as e:
        z.submit("marketing_copy", {"style": "moments", "brief": "  "}, "u1")
    assert (e.value.code, e.value.field) == ("copy_brief_missing", "params.brief")
    with pytest.raises(InvalidInput) as e:
        z.submit("marketing_copy", {"style": "weibo", "name": "保温杯"}, "u1")
    assert e.value.field == "params.style"  # not one of the styles in zhike/words/data


def test_every_typed_text_is_screened_and_the_refusal_names_the_policy(z: Zhike) -> None:
    cases = [
        ("product_copy", {"name": "保温杯", "selling_points": ["附赠假身份证"]}, "params.selling_points.0"),
        ("product_copy", {"name": "保温杯", "skus": ["假护照套装"]}, "params.skus.0"),
        ("marketing_copy", {"style": "banner", "brief": "假币同款包装"}, "params.brief"),
    ]
    for op, params, field in cases:
        with pytest.raises(ContentRefused) as e:
            z.submit(op, params, "u1")
        assert (e.value.field, e.value.limit, e.value.ctx["policy_zh"]) == (field, "fraud", "伪造证件与诈骗")


def test_an_unknown_photo_is_refused_at_submission(z: Zhike) -> None:
    with pytest.raises(Exception) as e:
        z.submit("product_copy", {"name": "保温杯", "image": "nosuchasset1"}, "u1")
    assert getattr(e.value, "field", None) == "params.image"


# -- the generated CLI ------------------------------------------------------------------------------------------------
def test_cli_takes_repeated_points_specs_and_skus(
    tiny_llm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers.tiny_llm import register_tiny_llm
    from zhike.cli.common import LOCAL_OWNER
    from zhike.cli.main import app
    from zhike.settings import get_settings

    monkeypatch.setenv("ZHIKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZHIKE_LLM_DEFAULT", "tiny-qwen")
    get_settings.cache_clear()
    zh = Zhike(get_settings())
    register_tiny_llm(zh.catalog, tiny_llm, name="tiny-qwen")
    zh.engine.dispose()
    out = tmp_path / "copy.md"
    args = ["product-copy", "--name", "保温杯", "--price", "39.9", "--platform", "pdd"]
    args += ["--selling-point", "保温12小时", "--selling-point", "一键开盖", "--spec", "容量:500ml", "--sku", "黑色"]
    args += ["--max-tokens", "24", "--seed", "3", "-o", str(out)]
    try:
        r = CliRunner().invoke(app, args, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    assert "| 容量 | 500ml |" in text and "| 价格 | 39.9元 |" in text  # the export of the text asset
    zh = Zhike(get_settings())
    try:
        (job,) = zh.jobs.list(LOCAL_OWNER)
    finally:
        zh.engine.dispose()
    assert job.params["selling_points"] == ["保温12小时", "一键开盖"] and job.params["skus"] == ["黑色"]
    assert job.params["specs"] == [{"name": "容量", "value": "500ml"}] and job.params["price"] == 39.9
    assert [s["name"] for s in job.result["data"]["skus"]] == ["黑色"]
    bad = CliRunner().invoke(app, ["product-copy", "--name", "x", "--platform", "weibo"])
    assert bad.exit_code == 2 and "weibo" in bad.stderr


# -- the real embedded LLM ---------------------------------------------------------------------------------------------
PRODUCTS = [
    {"name": "304不锈钢保温杯", "category": "水杯", "price": 39.9, "selling_points": ["保温12小时", "一键开盖"]},
    {"name": "纯棉宽松短袖T恤", "category": "女装", "price": 59.0, "selling_points": ["100%新疆棉", "透气不闷汗"]},
    {"name": "无线蓝牙耳机", "category": "数码", "price": 129.0, "selling_points": ["续航30小时", "降噪通话"]},
]


def test_real_llm_writes_chinese_copy_naming_each_product_and_its_price(real_llm: Any, tmp_path: Path) -> None:
    """Three products on the embedded Qwen2.5 1.5B: greedy, short, capped tokens. The time is bounded by the caps
    (3 x (320 + at most 48 for a shorter title) tokens, about 2 minutes at int8's ~4 tokens/s), not asserted: a loaded
    machine is slower, not wrong."""
    embedded = Path(os.environ["ZHIKE_EMBEDDED_DIR"])
    zh = Zhike(make_settings(tmp_path / "home", llm_default=real_llm.name, embedded_dir=embedded))
    try:
        for product in PRODUCTS:
            params = {**product, "length": "short", "max_tokens": 320, "temperature": 0.0, "seed": 1}
            row = run(zh, "product_copy", params)
            text, data = row.result["text"], row.result["data"]
            assert not {n["code"] for n in row.result["notes"]} & {"copy_layout_ignored", "copy_part_missing"}, text
            own_points = [x for x in data["points"] if x not in product["selling_points"]]
            written = "\n".join(
                [data["title"], *own_points, *(f"{s['heading']} {s['text']}" for s in data["sections"])]
            )
            # The model names the product; the price is the merchant's (the spec table, from the facts), and any
            # price the model wrote itself must be that one, never one it made up.
            assert product["name"][:4] in written, written
            assert f"{product['price']:g}元" in text, text
            prices = re.findall(r"(?:¥|￥)\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*元", written)
            assert all(float(a or b) == product["price"] for a, b in prices), written
            assert chinese_ratio(text) >= 0.8, text
            assert text_length(data["title"], "double_width") <= 60, data["title"]
    finally:
        zh.engine.dispose()
