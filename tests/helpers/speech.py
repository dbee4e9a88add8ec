"""Error rates for checking speech recognition (and speech synthesis through it): edit distance over words or
characters, after the normalising both sides need (case, punctuation, full-width forms)."""

from __future__ import annotations

import re
import unicodedata


def _edits(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def word_error_rate(ref: str, hyp: str, same: dict[str, str] | None = None) -> float:
    """WER over words (punctuation dropped); `same` maps spellings that count as one ("12" -> "twelve")."""
    same = same or {}
    words = [[same.get(w, w) for w in re.findall(r"[\w']+", _norm(t))] for t in (ref, hyp)]
    return _edits(*words) / max(len(words[0]), 1)


def char_error_rate(ref: str, hyp: str) -> float:
    """CER over spoken characters (CJK characters, letters, digits; punctuation and spaces dropped)."""
    chars = [[c for c in _norm(t) if c.isalnum()] for t in (ref, hyp)]
    return _edits(*chars) / max(len(chars[0]), 1)
