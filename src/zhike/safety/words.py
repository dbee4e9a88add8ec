"""English word forms and listed words put together differently.

A light stemmer (plurals, -ed, -ing, -er, a final e) runs on the prompt's words and the term's alike, so "fake
passports" meets "fake passport" and "mass shooter" meets "mass shooting". A term of several words matches them in
any order with at most a few filler words between ("porn of a child", "passport that is fake"), or written as one
word ("childporn"). Fillers are function words only, so "mass market photo shooting" is not "mass shooting".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words a term can do without ("how to make a bomb" is make + bomb) and the words allowed between its words.
STOP = frozenset(re.findall(r"\w+", "a an the of to for with and or by in on at from as how is are be"))
FILLERS = STOP | frozenset(re.findall(r"\w+", "some any very real realistic that this these those who which was were"))
MAX_FILLERS = 3
_IRREGULAR = {"children": "child", "women": "woman", "men": "man", "people": "person", "made": "make"}
_WORD = re.compile(r"[a-z0-9]+")
# A clause ends at these; a term's words split by fillers must stay in one clause ("no fakes, passport photos").
_BREAK = re.compile(r"[,;:!?()\[\]{}\n\r\t\u3001\u3002\uff0c\uff1b\uff1a\uff01\uff1f\uff08\uff09]|\.\s")
_SUFFIXES = ("ings", "ing", "ers", "er", "ed", "es", "s")


def stem(word: str) -> str:
    """The word without its inflection: attacks, attacked, attacking, attacker -> attack; scenes -> scen."""
    word = _IRREGULAR.get(word, word)
    if len(word) == 3 and word.endswith("s") and word[1] not in "aeiousu":
        return word[:2]  # ids -> id
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in _SUFFIXES:
        base = word[: -len(suffix)]
        if not word.endswith(suffix) or len(base) < 3:
            continue
        if suffix == "s" and base[-1] in "su":  # mass, bus
            continue
        if suffix == "es" and not base.endswith(("s", "x", "z", "ch", "sh")):
            continue  # scenes: -s only
        if suffix not in ("s", "es") and len(base) >= 4 and base[-1] == base[-2] and base[-1] not in "lsz":
            base = base[:-1]  # shotting -> shot, but killer -> kill
        word = base
        break
    return word[:-1] if word.endswith("e") and len(word) >= 4 else word


def forms(word: str) -> str:
    """A regex for the word's inflected forms, written joined to others ("bombmaking", "pornvideos")."""
    s = stem(word)
    if word.endswith("y") and s.endswith("y"):
        return re.escape(s[:-1]) + "(?:y|ies|ied|ier|iers|ying)"
    return re.escape(s) + f"(?:{re.escape(s[-1])})?(?:e|es|s|ed|d|er|ers|ing|ings)?"


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """A phrase's words in their forms, any separators between, whole words."""
    body = r"[\W_]*".join(forms(w) for w in _WORD.findall(phrase))
    return re.compile(rf"(?<![a-z0-9]){body}(?![a-z0-9])")


@dataclass(frozen=True)
class Token:
    word: str
    stem: str
    clause: int


def tokens(view: str) -> list[Token]:
    out, clause, last = [], 0, 0
    for m in _WORD.finditer(view):
        if _BREAK.search(view, last, m.start()):
            clause += 1
        out.append(Token(m.group(), stem(m.group()), clause))
        last = m.end()
    return out


class WordTerm:
    """A term of English words, compiled once."""

    def __init__(self, words: list[str]) -> None:
        content = [w for w in words if w not in STOP] or words
        self.stems = tuple(stem(w) for w in content)
        self.joined = re.compile("".join(forms(w) for w in content))

    def matches(self, toks: list[Token]) -> bool:
        return any(self._from(toks, k) for k, t in enumerate(toks) if t.stem in self.stems) or any(
            self.joined.fullmatch(t.word) for t in toks
        )

    def _from(self, toks: list[Token], k: int) -> bool:
        """The term's words from toks[k] on, in any order, with only fillers between (in one clause)."""
        need = list(self.stems)
        need.remove(toks[k].stem)
        gap, spread = 0, False
        for t in toks[k + 1 :]:
            if not need:
                break
            elsewhere = t.clause != toks[k].clause  # only the very next word may follow a comma
            if t.stem in need and not (elsewhere and spread):
                need.remove(t.stem)
                gap = 0
            elif t.word in FILLERS and gap < MAX_FILLERS and not elsewhere:
                gap, spread = gap + 1, True
            else:
                return False
        return not need
