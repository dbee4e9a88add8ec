"""Match prompts against policy terms, robust to the usual ways of writing around a word list.

Modes per term:
- `exact`: substring of the normalised text (NFKC, lower case, traditional -> simplified Chinese).
- `word`: whole words (English): separators between the words may be any punctuation or spaces, and common
  digit/symbol swaps (p0rn, s3x) are undone first.
- `variant` (Chinese): also matches with separators inserted between characters (色.情, 色 情), the same
  syllables written with other characters of the same sound and tone (瑟情 for 色情), and the term spelled in
  pinyin (seqing, se qing). Tones are kept for characters so that different words sharing toneless pinyin
  (裸照 luǒzhào / 落照 luòzhào, a poetic "sunset glow") are not refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import opencc
from pypinyin import Style, lazy_pinyin

MATCH_MODES = ("exact", "word", "variant")
_T2S = opencc.OpenCC("t2s")
_ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad]")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[a-z0-9]+")


def normalise(text: str) -> str:
    """NFKC (full-width -> half-width), lower case, no zero-width characters, simplified Chinese."""
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text)).lower()
    return _T2S.convert(text) if _CJK.search(text) else text


@lru_cache(maxsize=4096)
def _syllable(char: str) -> str:
    return lazy_pinyin(char, style=Style.TONE3, neutral_tone_with_five=True)[0]


def _toneless(syllable: str) -> str:
    return syllable.rstrip("012345")


@dataclass(frozen=True)
class Prepared:
    """A prompt prepared once for every term: its normalised forms and its sound tokens."""

    text: str
    leet: str
    compact: str  # letters, digits and CJK only: separators gone
    chars: tuple[str, ...]  # tone-marked syllables of CJK characters, latin words as they are
    latin: tuple[str, ...]  # latin words only, in order (pinyin written out)


def prepare(raw: str) -> Prepared:
    text = normalise(raw)
    tokens = _TOKEN.findall(text)
    chars = tuple(_syllable(t) if _CJK.match(t) else t for t in tokens)
    return Prepared(
        text=text,
        leet=text.translate(_LEET),
        compact="".join(tokens),
        chars=chars,
        latin=tuple(t for t in tokens if not _CJK.match(t)),
    )


@dataclass(frozen=True)
class Term:
    policy: str
    term: str
    match: str

    @property
    def norm(self) -> str:
        return normalise(self.term)


def _contains_run(seq: tuple[str, ...], run: tuple[str, ...]) -> bool:
    n = len(run)
    return n > 0 and any(seq[i : i + n] == run for i in range(len(seq) - n + 1))


class CompiledTerm:
    def __init__(self, term: Term) -> None:
        self.term = term
        norm = term.norm
        self.norm = norm
        self.compact = "".join(_TOKEN.findall(norm))
        words = re.findall(r"[a-z0-9]+", norm)
        self.word_re = (
            re.compile(r"(?<![a-z0-9])" + r"[\W_]*".join(map(re.escape, words)) + r"(?![a-z0-9])") if words else None
        )
        cjk = [c for c in norm if _CJK.match(c)]
        # Sound matching only for Chinese terms of two or more characters: one syllable matches far too much.
        self.syllables = tuple(_syllable(c) for c in cjk) if term.match == "variant" and len(cjk) >= 2 else ()
        self.pinyin = tuple(_toneless(s) for s in self.syllables)

    def matches(self, p: Prepared) -> bool:
        mode = self.term.match
        if mode == "exact":
            return self.norm in p.text
        if mode == "word":
            if self.word_re is None:
                return self.norm in p.text
            return bool(self.word_re.search(p.text) or self.word_re.search(p.leet))
        # variant
        if self.norm in p.text or (self.compact and self.compact in p.compact):
            return True
        if not self.syllables:
            return False
        if _contains_run(p.chars, self.syllables):
            return True
        joined = "".join(self.pinyin)
        return joined in p.latin or _contains_run(p.latin, self.pinyin)


def find(terms: list[CompiledTerm], text: str) -> Term | None:
    """The first term the text matches, or None."""
    if not text or not text.strip():
        return None
    p = prepare(text)
    for t in terms:
        if t.matches(p):
            return t.term
    return None
