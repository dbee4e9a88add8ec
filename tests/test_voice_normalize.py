"""Chinese text as a voice reads it (zhike.voice.normalize) and scripts cut into sentences with pauses (split)."""

from __future__ import annotations

import pytest

from zhike.voice import Piece, normalize_zh, split_script
from zhike.voice.numbers import integer, number

CASES = [
    # prices
    ("¥99.9", "九十九点九元"),
    ("￥1,299元", "一千二百九十九元"),
    ("到手价99.9元", "到手价九十九点九元"),
    ("$5", "五美元"),
    ("２０元", "二十元"),  # full-width digits
    ("2000元", "两千元"),
    # years and dates
    ("2024年", "二零二四年"),
    ("2024年1月5日", "二零二四年一月五日"),
    ("2024-01-05发货", "二零二四年一月五日发货"),
    ("2024/12/31", "二零二四年十二月三十一日"),
    ("12月12日", "十二月十二日"),
    ("2月", "二月"),
    # times
    ("早上8:30开播", "早上八点三十分开播"),
    ("20:00准时", "二十点准时"),
    ("2:05", "两点零五分"),
    # units
    ("3.5kg", "三点五千克"),
    ("500ml", "五百毫升"),
    ("0.5L", "零点五升"),
    ("30×40cm", "三十乘四十厘米"),
    ("2.5m", "二点五米"),
    ("1200mAh", "一千二百毫安时"),
    ("100W快充", "一百瓦快充"),
    ("-5℃", "负五摄氏度"),
    ("3-5kg", "三到五千克"),
    ("5mins", "五mins"),  # not a unit: the Latin word runs on
    # fractions and percentages
    ("1/2", "二分之一"),
    ("3/4杯", "四分之三杯"),
    ("50%", "百分之五十"),
    ("12.5%", "百分之十二点五"),
    ("10-20%", "百分之十到百分之二十"),
    # phone numbers digit by digit, 1 as 幺
    ("客服电话13800138000", "客服电话幺三八零零幺三八零零零"),
    ("138 0013 8000", "幺三八零零幺三八零零零"),
    ("400-820-8820", "四零零八二零八八二零"),
    ("010-12345678", "零幺零幺二三四五六七八"),
    # brand names and model numbers kept for the voice
    ("iPhone 15 Pro", "iPhone 十五 Pro"),
    ("5G手机", "五G手机"),
    ("RTX4090显卡", "RTX四零九零显卡"),
    ("Nike运动鞋", "Nike运动鞋"),
    # counts, ranges, codes
    ("2个", "两个"),
    ("2年质保", "两年质保"),
    ("买2送1", "买二送一"),
    ("3-5天", "三到五天"),
    ("第1名", "第一名"),
    ("订单号20240105123", "订单号二零二四零一零五一二三"),
    ("007", "零零七"),
    ("10000人", "一万人"),
    ("1+1", "一加一"),
    ("买一送一", "买一送一"),  # already words: unchanged
]


@pytest.mark.parametrize(("text", "said"), CASES)
def test_normalize_zh_writes_what_the_voice_says(text: str, said: str) -> None:
    assert normalize_zh(text) == said


def test_a_whole_sentence_keeps_its_words_and_punctuation() -> None:
    text = "这款保温杯原价¥129，今天只要99.9元，容量500ml，2024年12月12日20:00开抢，咨询13800138000。"
    assert normalize_zh(text) == (
        "这款保温杯原价一百二十九元，今天只要九十九点九元，容量五百毫升，二零二四年十二月十二日二十点开抢，"
        "咨询幺三八零零幺三八零零零。"
    )


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (0, "零"),
        (10, "十"),
        (15, "十五"),
        (101, "一百零一"),
        (110, "一百一十"),
        (1005, "一千零五"),
        (10010, "一万零一十"),
        (30500, "三万零五百"),
        (120000, "十二万"),
        (20000, "两万"),
        (100000001, "一亿零一"),
        (123456789, "一亿二千三百四十五万六千七百八十九"),
    ],
)
def test_integers(n: int, said: str) -> None:
    assert integer(n) == said


def test_decimals() -> None:
    assert [number(s) for s in ("0.05", "-3", "1,299", "3.14")] == ["零点零五", "负三", "一千二百九十九", "三点一四"]


def test_split_script_cuts_sentences_and_reads_pause_marks() -> None:
    text = (
        '大家好！欢迎来到直播间。[停顿2秒]今天讲保温杯（停顿）Hello there. This is a test.<break time="500ms"/>最后一句'
    )
    assert split_script(text, pause=0.3) == [
        Piece("大家好！", 0.3),
        Piece("欢迎来到直播间。", 2.0),
        Piece("今天讲保温杯", 0.8),
        Piece("Hello there.", 0.3),
        Piece("This is a test.", 0.5),
        Piece("最后一句", 0.3),
    ]


def test_split_script_cuts_long_sentences_at_commas_and_drops_empty_ones() -> None:
    long = "，".join(["这是一段很长的介绍文字"] * 12) + "。"
    pieces = split_script(long + "\n\n。。！\n", max_chars=40)
    assert len(pieces) > 2 and all(len(p.text) <= 40 for p in pieces)
    assert "".join(p.text for p in pieces) == long  # nothing lost, nothing added
    assert all(p.text.endswith(("，", "。")) for p in pieces)
    assert split_script("  \n[pause 1s]  ") == []
