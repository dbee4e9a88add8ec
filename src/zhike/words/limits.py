"""Length limits enforced one way for every op that writes copy (product titles, 小红书 titles, hooks, slogans).

The model is asked once for a shorter version (it knows which words matter); when that is still too long, or
there is no model to ask, the text is cut at a word boundary and a coded note `title_trimmed` says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from zhike.core.types import Note, note
from zhike.words.measures import LengthRule, fit_title, text_length

_MARKER = re.compile(
    r"^\s*(?:【[^】]{1,12}】|\[[^\]]{1,20}\]|(?:新|短|缩短后的?)?标题[:：]|(?:shorter |new )?title:)\s*", re.I
)


@dataclass
class Fitted:
    text: str
    length: int  # by the rule it was counted with
    asked_again: bool = False
    trimmed: bool = False
    notes: list[Note] = field(default_factory=list)


def one_line(text: str) -> str:
    """The first non-empty line of a model's answer without its marker, quotes or Markdown emphasis."""
    for line in text.splitlines():
        line = line.strip().strip("*#").strip()
        line = _MARKER.sub("", line, count=1)
        line = line.strip().strip("“”\"'「」『』《》*").strip()
        if line:
            return " ".join(line.split())
    return ""


def enforce_limit(
    text: str,
    limit: int,
    rule: LengthRule,
    *,
    shorten: Callable[[str], str] | None = None,
) -> Fitted:
    """`text` (one line) within `limit` counted by `rule`: as it is, else the model's shorter version (asked once
    through `shorten(text) -> answer`), else cut at a word boundary with a `title_trimmed` note."""
    text = " ".join(text.split())
    n = text_length(text, rule)
    if n <= limit:
        return Fitted(text, n)
    asked = False
    if shorten is not None:
        asked = True
        shorter = one_line(shorten(text))
        m = text_length(shorter, rule)
        if shorter and m <= limit:
            return Fitted(shorter, m, asked_again=True)
        if shorter and m < n:  # closer: cutting it loses less
            text, n = shorter, m
    cut = fit_title(text, limit, rule)
    done = Fitted(cut, text_length(cut, rule), asked_again=asked, trimmed=True)
    done.notes.append(
        note(
            "title_trimmed",
            f"a title or line was {n} long, over its limit of {limit} ({rule}); it was cut at a word boundary",
            limit=limit,
            length=n,
        )
    )
    return done
