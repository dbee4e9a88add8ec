"""Plain text and Markdown: the encoding found (UTF-8, UTF-8 with BOM, UTF-16 with BOM, GB18030/GBK: shops in China
save GBK), binary data refused, then sections under their headings."""

from __future__ import annotations

import re

from zhike.core.errors import InvalidInput
from zhike.design.data import decode_text
from zhike.kb.document import Section
from zhike.kb.limits import Budget

SNIFF_BYTES = 8192
MAX_CONTROL_RATIO = 0.01  # text has tabs and newlines; binary data decoded as GB18030 is full of controls
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# Headings Chinese plain-text documents use: 一、退货政策 / 第二条 / 【物流说明】 (a short line, nothing after it).
_TXT_HEADING = re.compile(
    r"^(?:[一二三四五六七八九十百]+[、.．]|第[一二三四五六七八九十百\d]+[章节条部分]|【[^】]{1,30}】$|\d{1,2}[、.．](?!\d))"
)
MAX_HEADING = 40


def decode(data: bytes, budget: Budget) -> tuple[str, str]:
    """(text, encoding), or `document_not_text` for binary data (a picture or a program named .txt)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise budget.refuse("document_not_text", "not UTF-16 text despite its byte-order mark") from None
    if b"\x00" in data[:SNIFF_BYTES]:
        raise budget.refuse("document_not_text", "binary data (NUL bytes), not text")
    try:
        text, encoding = decode_text(data, field="file")
    except InvalidInput:
        raise budget.refuse("document_not_text", "neither UTF-8 nor GBK text: binary data?") from None
    sample = text[:SNIFF_BYTES]
    if len(_CONTROL.findall(sample)) > MAX_CONTROL_RATIO * max(1, len(sample)):
        raise budget.refuse("document_not_text", "binary data (control characters), not text")
    return text, encoding


def markdown_sections(text: str, budget: Budget) -> tuple[str | None, list[Section]]:
    """(the first `# ` heading or None, sections). Each section is the text under a heading; `where` is the heading
    path below the top heading ("## 洗护说明 › ### 机洗")."""
    title: str | None = None
    path: list[tuple[int, str]] = []
    out: list[Section] = []
    lines: list[str] = []
    line_no = start = 0
    fenced = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            where = " › ".join(f"{'#' * lvl} {h}" for lvl, h in path if lvl > 1 or title is None)
            out.append(Section(budget.add_text(body), where or f"第{start}行"))
        lines.clear()

    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        m = None if fenced else _MD_HEADING.match(line)
        if m is None:
            if not lines:
                start = line_no
            lines.append(_plain_md(line))
            continue
        flush()
        level, heading = len(m.group(1)), m.group(2).strip()
        if level == 1 and title is None and not out:
            title = heading
        path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, heading)]
    flush()
    return title, out


def text_sections(text: str, budget: Budget, place: str | None = None) -> list[Section]:
    """Plain text under Chinese-style headings (一、… / 第二条 / 【…】) where there are some. `where` is the heading,
    after `place` when one is given (a PDF's "第3页 · 五、清洁与保养"); before the first heading, `place` or the
    line the text starts on."""
    out: list[Section] = []
    lines: list[str] = []
    where, start = "", 1

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            at = " · ".join(p for p in (place, where) if p) or f"第{start}行"
            out.append(Section(budget.add_text(body), at))
        lines.clear()

    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and len(stripped) <= MAX_HEADING and _TXT_HEADING.match(stripped):
            flush()
            where = stripped
            lines.append(stripped)  # the heading is part of its passage: it names what the passage is about
            continue
        if not lines:
            start = line_no
        lines.append(line.rstrip())
    flush()
    return out


_MD_INLINE = re.compile(r"(\*\*|__|`|!\[[^\]]*\]\([^)]*\))")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _plain_md(line: str) -> str:
    """A Markdown line as the words it shows (links as their text, no emphasis marks, table rules dropped)."""
    if _MD_TABLE_RULE.match(line):
        return ""
    line = _MD_LINK.sub(r"\1", line)
    line = _MD_INLINE.sub("", line)
    if line.lstrip().startswith("|"):
        line = " | ".join(c.strip() for c in line.strip().strip("|").split("|"))
    return line
