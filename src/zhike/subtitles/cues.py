"""Timed words to subtitle cues: tokens, line breaking by Chinese punctuation rules, cue timing limits.

A token is what a line is never broken inside: one CJK character, or one Latin word or number ("iPhone", "99.9"),
with the punctuation that belongs to it (closing marks to the token before, opening marks to the one after). So no
line starts with ，。！？ or ends with “（《 by construction, and `line_ok` checks it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, replace

# No line may start with these (closing and pausing marks) ...
NO_LINE_START = set("，。！？、；：”’）》」』】〉…—·,.!?;:)]}%℃")
# ... nor end with these (opening marks).
NO_LINE_END = set("“‘（《「『【〈([{")
SENTENCE_END = set("。！？!?….")
CLAUSE_END = set("，、；：,;:")
_WORD = re.compile(r"[A-Za-z0-9]+(?:[.'’\-:/][A-Za-z0-9]+)*")  # one Latin word or number


@dataclass(frozen=True)
class Word:
    """A recognised word with its times in seconds (from the ASR)."""

    text: str
    start: float
    end: float
    probability: float = 1.0


@dataclass(frozen=True)
class Token:
    """An unbreakable piece of the text shown, with its times. `text` carries its punctuation and any space before
    it (Latin words); `core` is what is spoken (no punctuation)."""

    text: str
    core: str
    start: float = 0.0
    end: float = 0.0


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Layout:
    """Line and cue limits for one frame shape. Width is counted in CJK characters (Latin counts half)."""

    max_units: float  # per line
    max_lines: int = 2
    min_duration: float = 0.8  # seconds a cue stays at least (extended into the gap after it when there is one)
    max_duration: float = 6.0
    pause: float = 0.8  # a silence this long ends a cue


# 9:16 at 1080 px wide fits ~14 Chinese characters at a readable size; 16:9 at 1920 px ~22. 1:1 like 9:16.
LAYOUTS = {"9:16": Layout(max_units=14), "1:1": Layout(max_units=14), "16:9": Layout(max_units=22)}


def is_cjk(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def width(text: str) -> float:
    """Display width in CJK characters: full-width counts 1, anything else 1/2."""
    return sum(1.0 if is_cjk(c) else 0.5 for c in text)


def _forward(ch: str) -> bool:
    """Marks that belong to the token after them: opening quotes and brackets, currency signs, # and @."""
    return ch in NO_LINE_END or ch in "#@" or unicodedata.category(ch) == "Sc"


def tokenize(text: str) -> list[Token]:
    """`text` as untimed tokens. A space between words on one line is kept as a leading space of the next token
    (not between two CJK characters); line breaks of a script are dropped."""
    tokens: list[Token] = []
    ahead = ""  # marks waiting for the next token
    gap = ""  # whitespace seen since the last token
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            gap += ch
            i += 1
            continue
        if _forward(ch):
            ahead += ch
            i += 1
            continue
        if (m := _WORD.match(text, i)) is not None:
            core, i = m.group(), m.end()
        else:
            core, i = ch, i + 1
            if not ch.isalnum() and tokens and not ahead:  # a closing or pausing mark, an emoji: stays with the last
                prev = tokens[-1]
                tokens[-1] = replace(prev, text=prev.text + _space(gap, prev.text[-1], ch) + ch)
                gap = ""
                continue
        lead = _space(gap, tokens[-1].text[-1], (ahead or core)[0]) if tokens else ""
        tokens.append(Token(lead + ahead + core, core if any(c.isalnum() for c in core) else ""))
        ahead = gap = ""
    if ahead:  # opening marks with nothing after them
        tokens.append(Token(_space(gap, tokens[-1].text[-1], ahead[0]) + ahead if tokens else ahead, ""))
    return tokens


def _space(gap: str, before: str, after: str) -> str:
    return " " if gap and "\n" not in gap and not (is_cjk(before) and is_cjk(after)) else ""


def line_ok(line: str, *, first: bool = False) -> bool:
    """Chinese line-breaking rules: a line does not start with a closing mark nor end with an opening one."""
    line = line.strip()
    return bool(line) and (first or line[0] not in NO_LINE_START) and line[-1] not in NO_LINE_END


def _join(tokens: list[Token]) -> str:
    return "".join(t.text for t in tokens).strip()


def _ends_clause(token: Token) -> bool:
    return token.text[-1] in CLAUSE_END or token.text[-1] in SENTENCE_END


def break_lines(tokens: list[Token], layout: Layout) -> tuple[str, ...] | None:
    """The cue's text in at most `layout.max_lines` lines of at most `max_units` each, broken between tokens:
    after a punctuation mark where one fits, else where the lines are most even. None: it does not fit."""
    one = _join(tokens)
    if width(one) <= layout.max_units:
        return (one,)
    if layout.max_lines < 2:
        return None
    best: tuple[float, int] | None = None
    for k in range(1, len(tokens)):
        a, b = _join(tokens[:k]), _join(tokens[k:])
        wa, wb = width(a), width(b)
        if wa > layout.max_units or wb > layout.max_units:
            continue
        score = abs(wa - wb) - (layout.max_units if _ends_clause(tokens[k - 1]) else 0)
        if best is None or score < best[0]:
            best = (score, k)
    if best is None:
        return None
    return _join(tokens[: best[1]]), _join(tokens[best[1] :])


def _split_point(cur: list[Token], nxt: Token) -> int:
    """Where a full cue is cut (tokens before it stay): after a clause mark, else at the longest pause, keeping
    at least 40% of it; cutting right before `nxt` when nothing better is found."""
    seq = [*cur, nxt]

    def score(k: int) -> float:
        return (10.0 if _ends_clause(seq[k - 1]) else 0.0) + max(seq[k].start - seq[k - 1].end, 0.0)

    return max(range(max(1, math.ceil(0.4 * len(cur))), len(cur) + 1), key=lambda k: (score(k), k))


def build_cues(tokens: list[Token], layout: Layout) -> list[Cue]:
    """Timed tokens as cues: a cue ends at a sentence mark, a pause, when it would not fit in its lines or would
    last longer than `max_duration`; then each lasts at least `min_duration` where the next one leaves room."""
    groups: list[list[Token]] = []
    cur: list[Token] = []
    for tok in tokens:
        if cur and tok.core and tok.start - cur[-1].end >= layout.pause:
            groups.append(cur)
            cur = []
        while cur and (
            break_lines([*cur, tok], layout) is None or (tok.end - cur[0].start > layout.max_duration and tok.core)
        ):
            k = _split_point(cur, tok)
            groups.append(cur[:k])
            cur = cur[k:]
        cur.append(tok)
        if tok.text[-1] in SENTENCE_END:
            groups.append(cur)
            cur = []
    if cur:
        groups.append(cur)
    cues: list[Cue] = []
    for group in groups:
        lines = break_lines(group, layout) or (_join(group),)  # one token wider than a line: shown as it is
        cues.append(Cue(group[0].start, max(group[-1].end, group[0].start + 0.01), lines))
    return _min_durations(cues, layout.min_duration)


def _min_durations(cues: list[Cue], shortest: float) -> list[Cue]:
    out = []
    for i, cue in enumerate(cues):
        limit = cues[i + 1].start if i + 1 < len(cues) else cue.start + shortest
        end = max(cue.end, min(cue.start + shortest, limit))
        out.append(replace(cue, end=min(end, limit) if i + 1 < len(cues) else end))
    return out
