"""Numbers read aloud in Mandarin: values (1234 → 一千二百三十四, 0.5 → 零点五) and digit strings (2024 → 二零二四)."""

from __future__ import annotations

DIGITS = "零一二三四五六七八九"
_SMALL = ("", "十", "百", "千")
_BIG = ("", "万", "亿", "万亿")


def digits(s: str, *, yao: bool = False) -> str:
    """Each digit on its own: years, codes. `yao`: 1 as 幺, as Chinese speakers read phone numbers."""
    out = "".join(DIGITS[int(c)] if c.isdigit() else c for c in s)
    return out.replace("一", "幺") if yao else out


def _four(n: int) -> str:
    """0 < n < 10000, with 零 for inner gaps (1005 → 一千零五)."""
    out, zero = "", False
    for power in (3, 2, 1, 0):
        d = n // 10**power % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += DIGITS[d] + _SMALL[power]
    return out


def integer(n: int) -> str:
    """A whole number: 10 → 十, 15 → 十五, 110 → 一百一十, 10000 → 一万, 100000001 → 一亿零一."""
    if n < 0:
        return "负" + integer(-n)
    if n == 0:
        return "零"
    if n >= 10**16:  # beyond 万亿: no one says such a number; read the digits
        return digits(str(n))
    groups = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out, gap = "", False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            gap = bool(out)
            continue
        if out and (gap or g < 1000):
            out += "零"
        out += _four(g) + _BIG[i]
        gap = False
    # 10-19 at the start are said 十, 十五 (not 一十五); inside a number 一十 stays (一百一十). A leading 2 before
    # 千/万/亿 is said 两 (两千, 两万).
    if out.startswith("一十"):
        return out[1:]
    return "两" + out[1:] if out[:2] in ("二千", "二万", "二亿") else out


def number(s: str) -> str:
    """A decimal written with digits ("99.9", "-3", "0.05", "1,299"): 九十九点九, 负三, 零点零五, 一千二百九十九."""
    s = s.replace(",", "").replace("，", "")
    sign = ""
    if s.startswith(("-", "−")):
        sign, s = "负", s[1:]
    whole, _, frac = s.partition(".")
    out = integer(int(whole or "0"))
    if frac:
        out += "点" + digits(frac)
    return sign + out
