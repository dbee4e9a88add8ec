"""Measures of copy: how Chinese a text is, how long a title is by a platform's rule, and a title cut to fit.

Counting rules (`LengthRule`), named in each platform's data file (zhike/words/data/*.json):

- "double_width": an ASCII character counts 1, every other character 2. This is how 淘宝/天猫 and 拼多多 count
  "30 个汉字（60 个字符）": their forms grew up on GBK, where ASCII takes one byte and a 汉字 or full-width mark two,
  so a title of 30 汉字, or 20 汉字 + 20 Latin letters/digits, both fit in 60. UTF-8 bytes would be wrong (a 汉字
  is 3 bytes there: only 20 would fit) and so would code points (60 汉字 would pass).
- "chars": every character a reader sees counts 1 (emoji included; the invisible joiners and variation selectors
  that build one emoji out of several code points do not). Used where a platform says "字" for any character.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from typing import Literal

LengthRule = Literal["double_width", "chars"]
RULES: tuple[LengthRule, ...] = ("double_width", "chars")

# Invisible parts of one visible emoji: variation selectors, zero-width joiner, skin-tone modifiers
_INVISIBLE = re.compile("[\ufe0e\ufe0f\u200d\U0001f3fb-\U0001f3ff]")
# What a title must not end on after a cut: separators, opening brackets, dangling punctuation
_TAIL = " \t\u3000,，、;；:：-—_/|·.。!！?？(（【[《<“‘\"'"


def is_cjk(ch: str) -> bool:
    """A Chinese/Japanese/Korean ideograph (the CJK Unified Ideographs blocks and their extensions)."""
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x3134F
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def is_latin_letter(ch: str) -> bool:
    """A letter of a Latin-script word (a-z, A-Z, accented Latin letters, full-width ones normalised)."""
    ch = unicodedata.normalize("NFKC", ch)
    return len(ch) == 1 and ch.isalpha() and "LATIN" in unicodedata.name(ch, "")


def chinese_ratio(text: str) -> float:
    """CJK ideographs / (CJK ideographs + Latin letters), ignoring digits, punctuation, emoji and whitespace.

    "39.9元包邮" is 1.0 (the price digits are neither language), "iPhone 手机壳" is 3/9. A text with neither
    (only digits or emoji) is 0.0: there is nothing Chinese in it to measure.
    """
    cjk = latin = 0
    for ch in text:
        if is_cjk(ch):
            cjk += 1
        elif ch.isalpha() and is_latin_letter(ch):
            latin += 1
    return cjk / (cjk + latin) if cjk + latin else 0.0


def text_length(text: str, rule: LengthRule = "chars") -> int:
    """The length of `text` the way a platform counts it (see the module's docstring)."""
    if rule == "double_width":
        return sum(1 if ord(ch) < 0x80 else 2 for ch in text)
    if rule == "chars":
        return len(_INVISIBLE.sub("", text))
    raise ValueError(f"unknown length rule {rule!r}; known: {', '.join(RULES)}")


_jieba_lock = threading.Lock()
_jieba_ready = False


def words_of(text: str) -> list[str]:
    """`text` split into words (jieba's dictionary; Latin words and numbers stay whole, spaces are their own)."""
    global _jieba_ready
    import jieba  # imported on first use: building its dictionary takes about a second

    with _jieba_lock:
        if not _jieba_ready:
            jieba.setLogLevel(logging.WARNING)  # it logs the dictionary build at INFO on stderr
            jieba.initialize()
            _jieba_ready = True
    return jieba.lcut(text, HMM=False)  # HMM=False: no invented words, so cuts fall between known ones


def fit_title(title: str, limit: int, rule: LengthRule = "chars") -> str:
    """`title` cut to at most `limit` (counted by `rule`) at a word boundary, without dangling punctuation.

    A title that fits is returned as it is (trimmed of spaces). Whole words are kept from the start while they fit;
    a first word longer than the limit is cut by characters (nothing better exists).
    """
    title = " ".join(title.split())
    if text_length(title, rule) <= limit:
        return title
    kept = ""
    for word in words_of(title):
        if text_length(kept + word, rule) > limit:
            break
        kept += word
    kept = kept.rstrip(_TAIL)
    if not kept:  # one word longer than the whole limit
        for ch in title:
            if text_length(kept + ch, rule) > limit:
                break
            kept += ch
        kept = kept.rstrip(_TAIL)
    return kept
