"""Search terms of a Chinese/English text for BM25: jieba's words (zhike.words), lower-cased, stopwords and
punctuation dropped, plus character pairs where jieba's cut is too coarse or too fine for a shopper's wording:
the pairs inside a long word (保温杯 -> 保温, 温杯: "杯子保温吗" still meets it) and the pair of two single
characters jieba left apart (机 洗 -> 机洗, 快 充 -> 快充)."""

from __future__ import annotations

import re

from zhike.words.measures import words_of

_CJK = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff]+$")
_WORD = re.compile(r"\w", re.UNICODE)
_STOPWORDS = """
    的 了 吗 呢 吧 啊 呀 嘛 哦 么 是 我 你 您 他 她 它 我们 你们 他们 这 那 这个 那个 这款 那款 这种 该 和 与 及 或
    或者 也 都 就 还 又 在 对 把 被 给 让 从 到 向 于 以 之 其 而 并 但 但是 如果 因为 所以 请 请问 一下 一个 一些
    能 可以 可 会 要 想 用 得 有没有 是不是 能不能 可不可以 怎么 怎么样 怎样 如何 什么 哪 哪个 哪些 哪里
    为什么 多少 几 啥 呗 下 个 些
    the a an is are was were be do does did can could will would should how what which who where when why of to in
    for on with and or my your our i you it this that these those me we they there any please
"""
STOPWORDS = frozenset(_STOPWORDS.split())


def terms(text: str) -> list[str]:
    out: list[str] = []
    single: str | None = None  # the previous word when it was one Chinese character
    for word in words_of(text.lower()):
        word = word.strip()
        if not word or not _WORD.search(word):
            single = None
            continue
        cjk = bool(_CJK.match(word))
        if cjk and len(word) == 1 and single is not None and STOPWORDS.isdisjoint((single, word)):
            out.append(single + word)
        if word not in STOPWORDS:
            out.append(word)
            if cjk and len(word) > 2:
                out.extend(word[i : i + 2] for i in range(len(word) - 1))
        single = word if cjk and len(word) == 1 else None
    return out
