"""Forced alignment of a known script onto ASR word timestamps: the subtitles carry the script's own characters
(never what the recogniser misheard), timed by the words it heard.

Both sides become strings of spoken characters (CJK characters, Latin letters and digits; NFKC, case folded). A
character diff (difflib's matching blocks, which anchor on the longest common runs and so stay in order) pairs them:
a script character the ASR heard the same takes that character's time; a stretch it heard differently ("¥99.9" as
九十九点九元) or not at all is spread evenly over the time of what was heard there instead.
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from difflib import SequenceMatcher

from zhike.subtitles.cues import Token, Word, tokenize

_Span = tuple[float, float]


def _spoken(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


def _heard(words: list[Word]) -> tuple[str, list[_Span]]:
    """The ASR's spoken characters, each with a share of its word's time."""
    chars, spans = [], []
    for w in words:
        cs = _spoken(w.text)
        step = max(w.end - w.start, 0.0) / max(len(cs), 1)
        for j, c in enumerate(cs):
            chars.append(c)
            spans.append((w.start + j * step, w.start + (j + 1) * step))
    return "".join(chars), spans


def _spread(n: int, start: float, end: float) -> list[_Span]:
    step = max(end - start, 0.0) / max(n, 1)
    return [(start + i * step, start + (i + 1) * step) for i in range(n)]


def heard_share(script: str, words: list[Word]) -> float:
    """The share (0..1) of the script's spoken characters that the recogniser heard, in order: low when the
    script is not what was read."""
    want, (heard, _) = _spoken(script), _heard(words)
    if not want:
        return 1.0
    matcher = SequenceMatcher(None, want, heard, autojunk=False)
    return sum(m.size for m in matcher.get_matching_blocks()) / len(want)


def char_times(script_chars: str, words: list[Word]) -> list[_Span]:
    """A (start, end) for each of `script_chars` (spoken characters, as `_spoken` gives them)."""
    heard, spans = _heard(words)
    if not heard:
        raise ValueError("no words were heard to align the script to")
    out: list[_Span] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, script_chars, heard, autojunk=False).get_opcodes():
        if op == "equal":
            out.extend(spans[j1:j2])
        elif op == "replace":  # heard differently: spread over what was heard instead
            out.extend(_spread(i2 - i1, spans[j1][0], spans[j2 - 1][1]))
        elif op == "delete":  # not heard: spread over the gap between the neighbouring heard characters
            start = spans[j1 - 1][1] if j1 > 0 else spans[0][0]
            end = spans[j1][0] if j1 < len(spans) else spans[-1][1]
            out.extend(_spread(i2 - i1, start, max(start, end)))
        # "insert": heard but not in the script (a filler word, a misheard extra): nothing to time
    return out


def align_script(script: str, words: list[Word]) -> list[Token]:
    """The script's tokens (its exact text) timed from the ASR's words. Raises ValueError when no word was heard."""
    tokens = tokenize(script)
    cores = [_spoken(t.core) for t in tokens]
    times = iter(char_times("".join(cores), words))
    timed: list[Token] = []
    for tok, core in zip(tokens, cores, strict=True):
        spans = [next(times) for _ in core]
        if spans:
            timed.append(replace(tok, start=spans[0][0], end=spans[-1][1]))
        else:  # nothing spoken in it (an emoji, a lone mark): at the time of the token before it
            at = timed[-1].end if timed else 0.0
            timed.append(replace(tok, start=at, end=at))
    # Leading unspoken tokens take the first spoken one's start (not 0.0: it would stretch the first cue).
    first = next((t.start for t in timed if t.core), 0.0)
    return [replace(t, start=first, end=first) if not t.core and t.end <= first else t for t in timed]


def align_lines(lines: list[str], words: list[Word]) -> list[list[Token]]:
    """Each line's timed tokens (lyrics: a line is a cue, a token a karaoke syllable), aligned as one text so a line
    the singer skipped or repeated does not shift the others. Raises ValueError when no word was heard."""
    timed = align_script("\n".join(lines), words)  # a line break is no text: tokens follow the lines in order
    out, at = [], 0
    for line in lines:
        n = len(tokenize(line))
        out.append(timed[at : at + n])
        at += n
    return out


def transcript_tokens(words: list[Word]) -> list[Token]:
    """Tokens of what the ASR heard, each timed by its own word (subtitles when no script is given)."""
    return align_script("".join(w.text for w in words), words)
