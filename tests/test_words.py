"""zhike.words without a model: the platform styles as data, how titles are counted and cut, how Chinese a text is,
how the model's answer in the fixed layout is read back, and a product photo's colours in words."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from PIL import Image

from zhike.core.errors import InvalidInput
from zhike.words import chinese_ratio, enforce_limit, fit_title, text_length
from zhike.words.colours import main_colours, name_colour
from zhike.words.layout import format_instruction, parse, read_shot, read_tags
from zhike.words.measures import words_of
from zhike.words.styles import (
    Part,
    all_styles,
    get_platform,
    get_style,
    lengths,
    marketing_styles,
    product_platforms,
    tones,
)

# Real listing titles of the kind merchants write (over the 淘宝 limit on purpose)
LONG_TITLES = [
    "夏季新款纯棉短袖T恤女宽松圆领百搭上衣ins潮学生韩版百搭打底衫显瘦2024",
    "304不锈钢保温杯男女大容量500ml便携学生水杯办公室泡茶杯子车载保温壶礼盒装",
    "Apple/苹果 iPhone 15 Pro Max 256GB 原色钛金属 5G全网通手机 官方正品国行",
]


# -- the styles -------------------------------------------------------------------------------------------------
def test_every_data_file_loads_with_both_languages_and_a_source() -> None:
    folder = resources.files("zhike.words").joinpath("data")
    files = sorted(e.name for e in folder.iterdir() if e.name.endswith(".json") and e.name != "tones.json")
    assert [s.id + ".json" for s in sorted(all_styles(), key=lambda s: s.id)] == files
    for s in all_styles():
        assert s.name["zh"] and s.name["en"] and s.guidance["zh"] and s.guidance["en"], s.id
        assert s.source.get("text") and "verified" in s.source, s.id  # where the limit comes from, and how sure
    assert {s.id for s in product_platforms()} == {"taobao", "jd", "pdd"}
    assert {s.id for s in marketing_styles()} == {"xiaohongshu", "douyin", "moments", "taobao_detail", "banner"}
    assert {t.id for t in tones()} >= {"lively", "professional", "warm", "premium", "promo"}
    assert [x.max_tokens for x in lengths()] == sorted(x.max_tokens for x in lengths())


def test_platform_limits_are_the_ones_researched() -> None:
    taobao = get_platform("taobao")
    assert (taobao.title_limit, taobao.title_rule) == (60, "double_width")  # 30 个汉字 = 60 字符
    assert get_platform("pdd").title_rule == "double_width"
    assert get_platform("jd").title_limit == 45 and get_platform("jd").source["verified"] is False
    xhs = {p.key: p for p in get_style("xiaohongshu").parts}
    assert (xhs["title"].limit, xhs["title"].rule, xhs["title"].ask_again) == (20, "chars", True)
    assert xhs["tags"].kind == "tags" and xhs["tags"].max_items == 8
    douyin = {p.key: p for p in get_style("douyin").parts}
    assert douyin["hook"].limit == 15 and douyin["shots"].kind == "shots"  # 3 s at ~5 characters a second


def test_unknown_style_names_the_field() -> None:
    with pytest.raises(InvalidInput) as e:
        get_style("weibo")
    assert e.value.code == "style_unknown" and e.value.field == "params.style"
    assert "xiaohongshu" in e.value.ctx["known"]


# -- measures ---------------------------------------------------------------------------------------------------
def test_taobao_counts_a_chinese_character_as_two_and_ascii_as_one() -> None:
    assert text_length("保温杯", "double_width") == 6
    assert text_length("iPhone 15", "double_width") == 9
    assert text_length("【包邮】", "double_width") == 8  # full-width brackets are two, like a 汉字
    assert text_length("汉" * 30, "double_width") == 60  # exactly the 淘宝 limit
    assert text_length("汉" * 20 + "a" * 20, "double_width") == 60


def test_chars_counts_what_a_reader_sees() -> None:
    assert text_length("好物分享", "chars") == 4
    assert text_length("✨好物❤️👍🏻", "chars") == 5  # the variation selector and the skin tone are not characters
    with pytest.raises(ValueError):
        text_length("x", "bytes")  # type: ignore[arg-type]


def test_chinese_ratio_ignores_digits_punctuation_emoji_and_spaces() -> None:
    assert chinese_ratio("39.9元包邮！🔥") == 1.0
    assert chinese_ratio("iPhone 手机壳") == pytest.approx(3 / 9)
    assert chinese_ratio("Ｏｋ好") == pytest.approx(1 / 3)  # full-width Latin letters are Latin letters
    assert chinese_ratio("2024 !!! 👍") == 0.0 and chinese_ratio("") == 0.0
    assert chinese_ratio("Pure cotton T-shirt") == 0.0


@pytest.mark.parametrize("title", LONG_TITLES)
def test_fit_title_cuts_real_titles_at_a_word_boundary(title: str) -> None:
    assert text_length(title, "double_width") > 60
    cut = fit_title(title, 60, "double_width")
    assert text_length(cut, "double_width") <= 60
    assert title.startswith(cut) and len(cut) >= len(title) // 2
    # the cut falls between two of jieba's words of the whole title, never inside one
    bounds, at = set(), 0
    for w in words_of(title):
        at += len(w)
        bounds.add(at)
    assert len(cut) in bounds
    assert cut[-1] not in " ，,、/" and fit_title(cut, 60, "double_width") == cut  # a title that fits is kept


def test_fit_title_keeps_english_words_whole_and_cuts_a_single_long_word() -> None:
    assert (
        fit_title("Stainless steel vacuum flask 500ml keeps drinks hot", 30, "chars") == "Stainless steel vacuum flask"
    )
    assert fit_title("Supercalifragilistic 水杯", 10, "double_width") == "Supercalif"  # one word over the limit
    assert fit_title("  保温杯   500ml  ", 60, "double_width") == "保温杯 500ml"


def test_enforce_limit_asks_once_then_cuts_with_a_note() -> None:
    asked: list[str] = []

    def shorter(text: str) -> str:
        asked.append(text)
        return "【标题】304不锈钢保温杯 500ml"

    ok = enforce_limit(LONG_TITLES[1], 60, "double_width", shorten=shorter)
    assert ok.text == "304不锈钢保温杯 500ml" and ok.asked_again and not ok.trimmed and not ok.notes
    assert asked == [LONG_TITLES[1]]

    still_long = enforce_limit(LONG_TITLES[0], 60, "double_width", shorten=lambda t: t + t)
    assert still_long.trimmed and still_long.asked_again and text_length(still_long.text, "double_width") <= 60
    assert [n.code for n in still_long.notes] == ["title_trimmed"] and still_long.notes[0].ctx["limit"] == 60

    fits = enforce_limit("保温杯", 60, "double_width", shorten=lambda t: pytest.fail("asked for a title that fits"))
    assert fits.text == "保温杯" and not fits.notes


# -- the layout ---------------------------------------------------------------------------------------------------
def test_layout_is_read_with_the_drift_small_models_show() -> None:
    parts = get_style("xiaohongshu").parts
    text = (
        "好的，下面是笔记：\n**标题**：通勤党必备！这杯保温一整天\n\n### 正文\n早上装的热水✨\n下午还是烫的🔥\n"
        "【标签】#保温杯 #通勤好物 好物分享"
    )
    got = parse(text, parts)
    assert got.found_any and got.missing == []
    assert got.values["title"] == "通勤党必备！这杯保温一整天"
    assert got.values["body"] == "早上装的热水✨\n下午还是烫的🔥"
    assert got.values["tags"] == ["#保温杯", "#通勤好物"]


def test_missing_parts_and_prose_never_raise() -> None:
    parts = get_style("douyin").parts
    got = parse("这是一段没有格式的文字。", parts)
    assert not got.found_any and got.missing == ["hook", "shots", "cta"] and got.values == {}
    assert parse("", parts).missing == ["hook", "shots", "cta"]
    got = parse(
        "[Hook] Still drinking cold water?\n[Shots]\n1. Visual: a desk | Line: it stays hot | Seconds: 3", parts
    )
    assert got.values["hook"] == "Still drinking cold water?" and got.missing == ["cta"]
    assert got.values["shots"] == [{"visual": "a desk", "line": "it stays hot", "seconds": 3.0}]


def test_an_answer_written_on_one_line_is_still_read_part_by_part() -> None:
    """What the int8 embedded model wrote for a T-shirt: markers, bullets and headings all on one line."""
    parts = (
        Part("title", {"zh": "标题", "en": "Title"}),
        Part("points", {"zh": "卖点", "en": "Selling points"}, kind="list", max_items=5),
        Part("sections", {"zh": "详情页", "en": "Detail page"}, kind="pairs", max_items=3),
    )
    got = parse(
        "【标题】纯棉宽松短袖T恤【卖点】- 纯棉面料，透气不闷汗。- 轻松休闲，适合各种场合。【详情页】购买理由："
        "到手价59元，品质保证。使用场景：日常穿着，休闲聚会。材质工艺：新疆棉，3-5次水洗不变形，注意：冷水洗。",
        parts,
    )
    assert got.missing == [] and got.values["title"] == "纯棉宽松短袖T恤"
    assert got.values["points"] == ["纯棉面料，透气不闷汗。", "轻松休闲，适合各种场合。"]
    assert [s["heading"] for s in got.values["sections"]] == ["购买理由", "使用场景", "材质工艺"]
    assert got.values["sections"][2]["text"] == "新疆棉，3-5次水洗不变形，注意：冷水洗。"  # no split inside a sentence


def test_list_bullets_are_removed_but_prices_stay() -> None:
    banner = {p.key: p for p in get_style("banner").parts}
    got = parse(
        "【主标语】\n1. 39.9元带回家\n2、一杯暖一天\n- 第一眼就心动\n【副标题】限时包邮", get_style("banner").parts
    )
    assert got.values["slogans"] == ["39.9元带回家", "一杯暖一天", "第一眼就心动"]
    assert banner["slogans"].limit == 12


def test_shots_and_tags_readers() -> None:
    assert read_shot("画面：倒水冒热气｜台词：下午还是烫的｜时长：4秒") == {
        "visual": "倒水冒热气",
        "line": "下午还是烫的",
        "seconds": 4.0,
    }
    assert read_shot("只有一句台词") == {"visual": "", "line": "只有一句台词", "seconds": None}
    assert read_tags("保温杯，通勤 好物", 2) == ["#保温杯", "#通勤"]


def test_format_instruction_names_every_part_and_its_limit() -> None:
    zh = format_instruction(get_style("xiaohongshu").parts, "zh")
    assert "【标题】" in zh and "不超过 20 个字" in zh and "【标签】3–8" in zh
    en = format_instruction(get_style("douyin").parts, "en", {"hook": " one line"})
    assert "[Hook] one line" in en and "[Shots]" in en and "Seconds" in en


# -- colours ------------------------------------------------------------------------------------------------------
def test_colours_of_a_product_on_a_white_backdrop() -> None:
    img = Image.new("RGB", (120, 120), (250, 250, 250))
    img.paste((20, 40, 110), (20, 20, 100, 70))  # navy body
    img.paste((205, 30, 40), (20, 70, 100, 100))  # red base
    names = [c.zh for c in main_colours(img)]
    assert names[:2] == ["藏青色", "红色"] and "白色" not in names


def test_colours_of_a_cutout_ignore_transparency() -> None:
    img = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    img.paste((240, 160, 185, 255), (10, 10, 70, 70))
    assert [c.en for c in main_colours(img)] == ["pink"]
    assert name_colour((250, 250, 250)) == ("白色", "white")


def test_style_files_are_plain_json_a_merchant_can_edit() -> None:
    raw = json.loads(resources.files("zhike.words").joinpath("data", "taobao.json").read_text(encoding="utf-8"))
    assert raw["title"]["limit"] == 60 and raw["title"]["rule"] == "double_width"
