"""Match prompts against policy terms, robust to the usual ways of writing around a word list.

Every prompt is normalised first (normalise.py): NFKC, no default-ignorable code points (zero-width joiners, soft
hyphens, variation selectors, tag characters...), no accents, look-alike letters of other scripts as Latin, case
folded, traditional -> simplified Chinese.

Modes per term:
- `exact`: substring of the normalised text.
- `word` (English): whole words in their inflected forms (words.py: plurals, -ed, -ing, -er), in any order with
  only filler words between, or joined into one word; also with letters split by separators (p.o.r.n), punctuation
  inside words and leetspeak (p0rn, s3x, l0l1c0n) undone.
- `variant` (Chinese): the term's words (儿童 + 色情) with separators or filler characters (的, 各类) between, or in
  another order (色情儿童; only words of two or more characters move), each also written with other characters of
  the same sound and tone (瑟情 for 色情), and the term spelled in pinyin (seqing, se qing). Tones are kept for
  characters, so that different words sharing toneless pinyin (裸照 luǒzhào / 落照 luòzhào, a poetic "sunset glow")
  are not refused. A word counts only where a reader sees it (segment.py): 色情 is not in 彩色情侣装.
Phrases in policies.json `benign` (bath bomb, 爱心...) are read as themselves and never as part of a term.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources

from pypinyin import Style, lazy_pinyin

from zhike.safety import segment
from zhike.safety.normalise import CJK, latin_views, normalise
from zhike.safety.words import Token, WordTerm, phrase_pattern, tokens

__all__ = ["MATCH_MODES", "CompiledTerm", "Prepared", "Term", "find", "normalise", "prepare"]

MATCH_MODES = ("exact", "word", "variant")
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[a-z0-9]+")
_LATIN = re.compile(r"[a-z0-9]+")
# Characters that may stand between the words of a Chinese term: particles and measure words ("伪造的证件").
_CJK_FILLERS = frozenset("的之与和及或跟同个些类种各被把将是在等了着地得张部套组份此其一枚颗只件位名条")
MAX_CJK_FILLERS = 2


@lru_cache(maxsize=1)
def _benign() -> tuple[list[re.Pattern[str]], tuple[str, ...]]:
    """The bundled benign phrases: English ones as patterns over word forms, Chinese ones as they are."""
    phrases = json.loads(resources.files("zhike.safety").joinpath("policies.json").read_text(encoding="utf-8"))
    english = [phrase_pattern(normalise(b)) for b in phrases["benign"] if not CJK.search(b)]
    return english, tuple(normalise(b) for b in phrases["benign"] if CJK.search(b))


def _syllables(text: str) -> tuple[str, ...]:
    """Tone-marked pinyin of each character, read in context."""
    return tuple(lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)) if text else ()


@dataclass
class Prepared:
    """A prompt prepared once for every term: its normalised forms, English words and Chinese characters."""

    text: str
    views: list[list[Token]]  # words of each Latin view (as written, squashed, leetspeak), benign phrases out
    compact: str  # letters, digits and CJK only: separators gone
    cjk: str  # the Chinese characters only, in order
    latin: tuple[str, ...]  # latin words only, in order (pinyin written out)
    _split: dict[tuple[int, int], bool] = field(default_factory=dict)

    @cached_property
    def syllables(self) -> tuple[str, ...]:
        return _syllables(self.cjk)

    @cached_property
    def benign_cjk(self) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for b in _benign()[1] for m in re.finditer(re.escape(b), self.cjk)]

    def read_as_word(self, start: int, end: int) -> bool:
        """Whether cjk[start:end] is read as (part of) a word of its own: not inside a benign phrase, and not more
        likely two halves of other words."""
        if any(a < end and start < b for a, b in self.benign_cjk):
            return False
        key = (start, end)
        if key not in self._split:
            self._split[key] = segment.split_reading(self.cjk, start, end)
        return not self._split[key]


def prepare(raw: str) -> Prepared:
    text = normalise(raw)
    english = _benign()[0]
    views = []
    for view in latin_views(text):
        for pattern in english:
            view = pattern.sub(" (benign) ", view)  # a word no term has, in a clause of its own
        views.append(tokens(view))
    found = _TOKEN.findall(text)
    return Prepared(
        text=text,
        views=views,
        compact="".join(found),
        cjk="".join(c for c in text if CJK.match(c)),
        latin=tuple(t for t in found if not CJK.match(t)),
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
        words = _LATIN.findall(norm)
        self.words = WordTerm(words) if words else None
        cjk = "".join(c for c in norm if CJK.match(c))
        # Chinese words and sounds only for Chinese terms: one syllable matches far too much by sound.
        chinese = term.match == "variant" and cjk == self.compact and len(cjk) >= 2
        self.units = segment.units(cjk) if chinese else []
        self.sounds = [_syllables(u) if len(u) >= 2 else None for u in self.units]
        self.pinyin = tuple(s.rstrip("012345") for s in _syllables(cjk)) if chinese else ()

    def matches(self, p: Prepared) -> bool:
        mode = self.term.match
        if mode == "exact" or (mode == "word" and self.words is None):
            return self.norm in p.text
        if mode == "word":
            assert self.words is not None
            return any(self.words.matches(view) for view in p.views)
        # variant
        if self.units:
            return self._chinese(p) or self._spelled(p)
        if self.norm in p.text or (self.compact and self.compact in p.compact):
            return True
        return self.words is not None and any(self.words.matches(view) for view in p.views)

    def _spelled(self, p: Prepared) -> bool:
        joined = "".join(self.pinyin)
        return joined in p.latin or _contains_run(p.latin, self.pinyin)

    def _at(self, p: Prepared, unit: int, i: int) -> bool:
        """Whether unit `unit` is at p.cjk[i:], as written or by sound, and read as a word there."""
        u, sound = self.units[unit], self.sounds[unit]
        end = i + len(u)
        if not (p.cjk.startswith(u, i) or (sound is not None and p.syllables[i:end] == sound)):
            return False
        return p.read_as_word(i, end)

    def _chinese(self, p: Prepared) -> bool:
        n = len(self.units)
        orders = [tuple(range(n))]
        if n > 1 and all(len(u) >= 2 for u in self.units):
            orders = list(itertools.permutations(range(n)))
        return any(self._sequence(p, order, 0, i) for order in orders for i in range(len(p.cjk)))

    def _sequence(self, p: Prepared, order: tuple[int, ...], k: int, i: int) -> bool:
        """Units order[k:] from p.cjk[i] on, each after at most MAX_CJK_FILLERS filler characters."""
        unit = order[k]
        if not self._at(p, unit, i):
            return False
        nxt = i + len(self.units[unit])
        if k + 1 == len(order):
            return True
        for gap in range(MAX_CJK_FILLERS + 1):
            if gap and p.cjk[nxt + gap - 1 : nxt + gap] not in _CJK_FILLERS:
                break
            if self._sequence(p, order, k + 1, nxt + gap):
                return True
        return False


def find(terms: list[CompiledTerm], text: str) -> Term | None:
    """The first term the text matches, or None."""
    if not text or not text.strip():
        return None
    p = prepare(text)
    for t in terms:
        if t.matches(p):
            return t.term
    return None
