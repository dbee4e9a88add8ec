"""A script as the pieces a voice says one at a time: sentences, with the pause after each.

Long scripts are synthesised sentence by sentence (progress, resume, and voices that accept only so many phonemes
at once); a sentence longer than `max_chars` is cut at its last comma, enumeration mark or space that fits.
Pause marks a writer puts in the script — `[停顿1.5秒]`, `[pause 2s]`, SSML's `<break time="500ms"/>`, or a bare
`（停顿）` stage direction as live scripts write it — end the sentence before them and set the pause after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CHARS = 60  # Kokoro takes at most ~510 phonemes; 60 Chinese characters stay well under, English too
STAGE_PAUSE = 0.8  # seconds for a bare （停顿） / [pause]
_PAUSE = re.compile(
    r"\[\s*(?:停顿|pause)\s*(?:(\d+(?:\.\d+)?)\s*(秒|s|ms)?)?\s*\]"
    r"|<break\s+time\s*=\s*[\"']?(\d+(?:\.\d+)?)\s*(ms|s)[\"']?\s*/?>"
    r"|[（(]\s*停顿\s*[)）]",
    re.IGNORECASE,
)
# A sentence ends after these (with any closing quotes or brackets that follow); English . only before a space.
_END = re.compile(r"[。！？!?；;…]+[”’」』)）\"']*|\.(?=\s)|\n+")
_SOFT = "，,、：: "


@dataclass(frozen=True)
class Piece:
    text: str
    pause: float  # seconds of silence after it


def _pause_seconds(m: re.Match[str]) -> float:
    if m.group(3):
        value, unit = float(m.group(3)), m.group(4).lower()
    elif m.group(1):
        value, unit = float(m.group(1)), (m.group(2) or "s").lower()
    else:
        return STAGE_PAUSE
    return value / 1000 if unit == "ms" else value


def _cut(sentence: str, max_chars: int) -> list[str]:
    """A long sentence in parts of at most `max_chars`, cut after the last soft break that fits."""
    out = []
    while len(sentence) > max_chars:
        head = sentence[:max_chars]
        at = max(head.rfind(c) for c in _SOFT)
        at = at + 1 if at > max_chars // 3 else max_chars
        out.append(sentence[:at].strip())
        sentence = sentence[at:].strip()
    if sentence:
        out.append(sentence)
    return out


def _sentences(block: str, max_chars: int) -> list[str]:
    out, start = [], 0
    for m in _END.finditer(block):
        out.append(block[start : m.end()])
        start = m.end()
    out.append(block[start:])
    return [part for s in out if _speakable(s) for part in _cut(s.strip(), max_chars)]


def _speakable(s: str) -> bool:
    return any(c.isalnum() for c in s)


def split_script(text: str, *, pause: float = 0.3, max_chars: int = MAX_CHARS) -> list[Piece]:
    """The pieces of `text` in order; `pause` after each sentence unless a pause mark sets another."""
    pieces: list[Piece] = []
    start = 0
    marks = list(_PAUSE.finditer(text)) + [None]
    for m in marks:
        block = text[start : m.start() if m else len(text)]
        pieces.extend(Piece(s, pause) for s in _sentences(block, max_chars))
        if m is not None:
            extra = _pause_seconds(m)
            if pieces:
                last = pieces[-1]
                pieces[-1] = Piece(last.text, max(last.pause, extra) if block.strip() == "" else extra)
            start = m.end()
    return pieces


def strip_pauses(text: str) -> str:
    """`text` without its pause marks: what is shown (subtitles) of what is said."""
    return _PAUSE.sub("", text)
