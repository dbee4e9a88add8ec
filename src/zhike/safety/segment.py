"""Chinese word boundaries, so that a listed word counts where a reader sees it and not across two other words:
色情 is not in 彩色情侣装 (彩色 + 情侣装), nor 性交 in 弹性交叉绑带 (弹性 + 交叉). The most likely reading of the text
is found from word frequencies (jieba's dictionary, MIT licence), as jieba does it, without its segmenter."""

from __future__ import annotations

import math
import threading
from importlib import resources

# How much likelier (natural log) the reading that splits an occurrence must be than the best reading that keeps
# it whole before the occurrence is dismissed: 特色情人节 13.5, 弹性交叉 12.5, 幼童性格 7.9, 个性交友 7.7; a word
# that is as likely whole (裸照片 4.1, 色情人像 0) is kept.
MARGIN = 5.0
WINDOW = 8  # characters each side of an occurrence that can change how it is read
LONGEST = 8  # longest dictionary word tried

_lock = threading.Lock()
_freq: dict[str, int] | None = None
_log_total = 0.0


def _dictionary() -> tuple[dict[str, int], float]:
    """Word -> frequency, loaded once per process (~1 s, ~60 MB)."""
    global _freq, _log_total
    with _lock:
        if _freq is None:
            text = resources.files("jieba").joinpath("dict.txt").read_text(encoding="utf-8")
            freq = {}
            for line in text.splitlines():
                word, count = line.split(" ", 2)[:2]
                if len(word) <= LONGEST:
                    freq[word] = int(count)
            _log_total = math.log(sum(freq.values()))
            _freq = freq
        return _freq, _log_total


def _best(text: str, keep: tuple[int, int] | None = None, *, whole: bool = True) -> tuple[float, list[tuple[int, int]]]:
    """The most likely split of `text` into dictionary words and single characters: (log-probability, words as
    (start, end)). With `keep`, no word may cut across that span (words inside it or around all of it may);
    without `whole`, the text is not one word."""
    freq, log_total = _dictionary()
    n = len(text)
    score = [-math.inf] * (n + 1)
    back = [0] * (n + 1)
    score[0] = 0.0
    for i in range(n):
        if score[i] == -math.inf:
            continue
        for j in range(i + 1, min(n, i + LONGEST) + 1):
            if keep is not None:
                a, b = keep
                if i < b and j > a and not (i <= a and j >= b) and not (a <= i and j <= b):
                    continue
            count = freq.get(text[i:j]) if whole or j - i < n else None
            if count is None and j - i > 1:
                continue
            s = score[i] + math.log(max(count or 1, 1)) - log_total
            if s > score[j]:
                score[j], back[j] = s, i
    words, j = [], n
    while j > 0:
        words.append((back[j], j))
        j = back[j]
    return score[n], words[::-1]


def split_reading(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is more likely read as parts of other words, by more than MARGIN."""
    lo, hi = max(0, start - WINDOW), min(len(text), end + WINDOW)
    window, a, b = text[lo:hi], start - lo, end - lo
    free, words = _best(window)
    if not any(i < a < j or i < b < j for i, j in words if not (i <= a and j >= b)):
        return False
    whole, _ = _best(window, (a, b))
    return free - whole > MARGIN


def units(term: str) -> list[str]:
    """A listed Chinese term as the words it is made of (儿童色情 -> 儿童, 色情; 假身份证 -> 假, 身份证), so they can
    be found apart or in another order; single characters next to each other stay together (萝莉)."""
    if len(term) <= 2:
        return [term]
    out: list[str] = []
    single = False  # the last unit is a run of single characters
    for i, j in _best(term, whole=False)[1]:
        if j - i == 1 and single:
            out[-1] += term[i]
        else:
            out.append(term[i:j])
            single = j - i == 1
    return out
