"""A1111 prompt-attention syntax: `(word)` x1.1, `((word))` x1.21, `(word:1.3)`, `[word]` /1.1, `\\(` literal,
`BREAK` starts a new 75-token chunk. Same parse as A1111's `parse_prompt_attention`, so prompts copied from
A1111/Civitai mean the same here.
"""

from __future__ import annotations

import re

BREAK = "BREAK"
_ATTENTION = re.compile(
    r"""
\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:
""",
    re.X,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
ROUND = 1.1
SQUARE = 1 / 1.1


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """[(fragment, weight)]; a BREAK is the fragment "BREAK" with weight -1. Runs of equal weight are merged."""
    res: list[list] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for item in res[start:]:
            item[1] *= factor

    for m in _ATTENTION.finditer(text):
        tok, weight = m.group(0), m.group(1)
        if tok.startswith("\\"):
            res.append([tok[1:], 1.0])
        elif tok == "(":
            round_open.append(len(res))
        elif tok == "[":
            square_open.append(len(res))
        elif weight is not None and round_open:
            multiply(round_open.pop(), float(weight))
        elif tok == ")" and round_open:
            multiply(round_open.pop(), ROUND)
        elif tok == "]" and square_open:
            multiply(square_open.pop(), SQUARE)
        else:
            for i, part in enumerate(_BREAK.split(tok)):
                if i > 0:
                    res.append([BREAK, -1.0])
                res.append([part, 1.0])
    for pos in round_open:  # unclosed brackets still count, as in A1111
        multiply(pos, ROUND)
    for pos in square_open:
        multiply(pos, SQUARE)
    if not res:
        res = [["", 1.0]]
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1] and res[i][1] != -1.0:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return [(t, w) for t, w in res]


def plain_text(text: str) -> str:
    """The prompt without weighting syntax (for logs, search, and models that take plain text)."""
    joined = "".join(" " if w == -1.0 else t for t, w in parse_prompt_attention(text))
    return " ".join(joined.split())
