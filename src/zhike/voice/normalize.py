"""Chinese text as a Mandarin voice must read it: digits, prices, dates, times, units, fractions, percentages and
phone numbers written out in characters (¥99.9 → 九十九点九元, 2024年 → 二零二四年, 3.5kg → 三点五千克,
1/2 → 二分之一, 50% → 百分之五十, 13800138000 → 幺三八零零幺三八零零零). Latin words (brand names: iPhone, Nike)
are kept for the voice to say; a number glued to one is part of a model name (5G, K40, RTX4090).

Model-free and deterministic: the rules run in a fixed order, each on what the earlier ones left, so a date is
never read as a subtraction and a phone number never as a value. English text is left to the English voice's own
reader (Piper's espeak reads "$5" and "50%" itself).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from zhike.voice.numbers import digits, integer, number

NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
# Full-width digits, letters and signs as their ASCII forms (not NFKC: it would also turn ，。 into ,.)
_WIDE = {**{0xFF10 + i: 0x30 + i for i in range(10)}, **{0xFF21 + i: 0x41 + i for i in range(26)}}
_WIDE.update({0xFF41 + i: 0x61 + i for i in range(26)})
_WIDE.update({ord("％"): ord("%"), ord("＄"): ord("$"), ord("／"): ord("/"), ord("："): ord(":"), ord("～"): ord("~")})

UNITS: dict[str, str] = {
    "kg": "千克",
    "KG": "千克",
    "Kg": "千克",
    "mg": "毫克",
    "g": "克",
    "ml": "毫升",
    "mL": "毫升",
    "ML": "毫升",
    "L": "升",
    "l": "升",
    "km": "公里",
    "cm": "厘米",
    "mm": "毫米",
    "m²": "平方米",
    "㎡": "平方米",
    "m2": "平方米",
    "m": "米",
    "kW": "千瓦",
    "kw": "千瓦",
    "W": "瓦",
    "w": "瓦",
    "mAh": "毫安时",
    "V": "伏",
    "Hz": "赫兹",
    "°C": "摄氏度",
    "℃": "摄氏度",
    "°": "度",
    "h": "小时",
    "min": "分钟",
    "s": "秒",
}
_UNIT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
# Counted things take 两, not 二 (两个, 两年质保); 二月 and 二号 stay.
_LIANG = "个件位只瓶盒支双条包天种次斤套台张份块年周岁层杯袋箱罐片颗粒本把项款小"
CURRENCY = {"$": "美元", "€": "欧元", "£": "英镑", "HK$": "港币"}


def _sub(pattern: str, repl: Callable[[re.Match[str]], str]) -> Callable[[str], str]:
    rx = re.compile(pattern)
    return lambda text: rx.sub(repl, text)


def _phone(m: re.Match[str]) -> str:
    return digits("".join(g for g in m.groups() if g), yao=True)


def _date(m: re.Match[str]) -> str:
    y, mo, d = m.group(1), int(m.group(2)), int(m.group(3))
    return f"{digits(y)}年{integer(mo)}月{integer(d)}日"


def _time(m: re.Match[str]) -> str:
    h, mi, s = int(m.group(1)), int(m.group(2)), m.group(3)
    out = ("两" if h == 2 else integer(h)) + "点"
    if mi or s:
        out += ("零" if mi < 10 else "") + integer(mi) + "分" if mi else "零分"
    if s:
        out += integer(int(s)) + "秒"
    return out


def _money(m: re.Match[str]) -> str:
    sign, value = m.group(1), m.group(2)
    name = "元" if sign in "¥￥" else CURRENCY.get(sign, "元")
    return number(value) + name


def _range_unit(m: re.Match[str]) -> str:
    a, b, unit = m.group(1), m.group(2), m.group(3)
    said = UNITS[unit]
    return f"{number(a)}到{number(b)}{said}" if b else number(a) + said


def _percent(m: re.Match[str]) -> str:
    a, b = m.group(1), m.group(2)
    return f"百分之{number(a)}到百分之{number(b)}" if b else f"百分之{number(a)}"


def _model_number(m: re.Match[str]) -> str:
    s = m.group(0)
    return integer(int(s)) if len(s) <= 2 else digits(s)


def _plain(m: re.Match[str]) -> str:
    s = m.group(0)
    bare = s.replace(",", "")
    if "." not in bare and (len(bare) >= 7 and "," not in s or (len(bare) > 1 and bare.startswith("0"))):
        return digits(bare)  # order numbers, codes, 007: digit by digit
    return number(s)


RULES: tuple[Callable[[str], str], ...] = (
    # phone numbers first: 11-digit mobiles, 400/800 lines, landlines with an area code
    _sub(r"(?<![\d.])(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?![\d.])", _phone),
    _sub(r"(?<![\d.])([48]00)[ -]?(\d{3})[ -]?(\d{4})(?![\d.])", _phone),
    _sub(r"(?<![\d.])(0\d{2,3})-(\d{7,8})(?![\d.])", _phone),
    # dates: 2024-01-05, 2024/1/5, 2024.1.5; then 2024年 (digit by digit), 1月, 5日 / 5号
    _sub(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?![\d.])", _date),
    _sub(r"(?<!\d)(\d{4})(?=\s*年)", lambda m: digits(m.group(1))),
    _sub(r"(?<![\d.])(\d{1,2})(?=\s*月)", lambda m: integer(int(m.group(1)))),
    # times: 10:30, 08:05, 20:00:15
    _sub(r"(?<!\d)([01]?\d|2[0-4]):([0-5]\d)(?::([0-5]\d))?(?!\d)", _time),
    # money: ¥99.9 / ￥1,299 / $5 (a 元 right after the number is not said twice)
    _sub(r"(HK\$|[¥￥$€£])\s*(" + NUM + r")(?:\s*元)?", _money),
    # percentages (with a range: 10-20%)
    _sub(r"(" + NUM + r")\s*%?\s*[-~到至]\s*(" + NUM + r")\s*%", _percent),
    _sub(r"(" + NUM + r")\s*%()", _percent),
    # sizes 30×40cm: 乘
    _sub(r"(?<=\d)\s*[×xX*]\s*(?=\d)", lambda m: "乘"),
    # fractions 1/2 → 二分之一 (dates with / are gone already)
    _sub(r"(?<![\d/.])(\d+)/(\d+)(?![\d/.])", lambda m: f"{integer(int(m.group(2)))}分之{integer(int(m.group(1)))}"),
    # units, with an optional range (3-5kg); the unit must not run on into a Latin word (5m is, 5mins is not)
    _sub(
        r"(?<![A-Za-z\d.])(-?" + NUM + r")(?:\s*[-~到至]\s*(" + NUM + r"))?\s*(" + _UNIT + r")(?![A-Za-z²])",
        _range_unit,
    ),
    # ranges of plain numbers: 3-5 天 → 三到五天
    _sub(r"(?<![\d.])(" + NUM + r")\s*[-~～]\s*(?=\d)", lambda m: number(m.group(1)) + "到"),
    # model numbers glued to Latin letters: 5G, K40, RTX4090
    _sub(r"(?<=[A-Za-z])\d+|\d+(?=[A-Za-z])", _model_number),
    # 2 of something: 两
    _sub(r"(?<![\d.])2(?=[" + _LIANG + r"])", lambda m: "两"),
    _sub(NUM, _plain),
    _sub(r"\s*[+＋]\s*", lambda m: "加"),
)


def normalize_zh(text: str) -> str:
    """`text` with every number, price, date, time, unit and symbol written as a Mandarin voice says it."""
    text = text.translate(_WIDE)
    for rule in RULES:
        text = rule(text)
    return text
