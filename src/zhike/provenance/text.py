"""Labels for AI-generated text (人工智能生成合成内容标识办法 Art. 4-5, GB 45438-2025): an explicit notice the user
places, and the implicit label in each export format's metadata.

- Explicit: "本内容由人工智能生成" / "AI-generated content" (the text's language) at the start or the end of the
  text, or none (the Measures allow start, end or a suitable place in the middle; the user decides per export,
  the deployment's `label_text_notice` is the default).
- Implicit: the seven TC260 fields, the same fields and ids as the images' XMP `TC260:AIGC` (one content id: the
  asset id), as the same JSON string:
  Markdown: YAML front matter (`AIGC: {...}`, a JSON flow mapping is YAML); DOCX: core properties plus the
  custom property `AIGC`; PDF: the info dictionary (/AIGC) and the XMP packet images carry; TXT: plain text has
  no metadata, so the label is the last line of the text itself (`AIGC: {...}`). A sidecar file would be parted
  from the text at the first copy or upload, and the Measures ask for the label *in the file*; a last line travels
  with it. It is written whenever the implicit label is on, even with no notice.

Markdown is the stored form; DOCX and PDF render its common blocks (headings, lists, quotes, code, bold).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from zhike.provenance.xmp import FIELDS

Placement = Literal["start", "end", "none"]
PLACEMENTS: tuple[Placement, ...] = ("start", "end", "none")
NOTICE = {"zh": "本内容由人工智能生成", "en": "AI-generated content"}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# Export formats of a text asset (GET /api/v1/assets/{id}/file?format=...).
TEXT_FORMATS = {"md": "text/markdown", "txt": "text/plain", "docx": DOCX, "pdf": "application/pdf"}
TXT_PREFIX = "AIGC: "  # the last line of a TXT export
# DOCX: the namespace of docProps/custom.xml, where the `AIGC` property is (text_docx.py writes, text_verify.py reads)
DOCX_CUSTOM_NS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"


@dataclass(frozen=True)
class TextLabel:
    """What one text export carries: `fields` the seven TC260 fields (empty: the implicit label is off)."""

    fields: dict[str, str]
    notice: Placement
    lang: Literal["zh", "en"]
    title: str
    producer: str
    generator: str  # "Zhike 0.1.0"
    model: str | None
    created: datetime

    @property
    def notice_text(self) -> str:
        return NOTICE[self.lang]

    @property
    def aigc(self) -> str:
        """The fields as the images' XMP holds them: compact JSON, field order of TC260."""
        return aigc_json(self.fields)


def aigc_json(fields: dict[str, str]) -> str:
    return json.dumps({k: str(fields.get(k, "")) for k in FIELDS}, ensure_ascii=False, separators=(",", ":"))


_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def notice_lang(text: str) -> Literal["zh", "en"]:
    """The notice in the text's language: Chinese when Han characters are at least a fifth of its letters (a
    Chinese copy with an English brand name is still Chinese)."""
    han = len(_HAN.findall(text))
    latin = len(_LATIN.findall(text)) / 5  # about five letters make an English word, one Han character a word
    return "zh" if han and han >= 0.2 * (han + latin) else "en"


def body_of(text: str, mime: str) -> str:
    """The Markdown shown for a stored text: JSON outputs as a fenced block of indented JSON."""
    if mime != "application/json":
        return text
    try:
        pretty = json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    except ValueError:
        pretty = text
    return f"```json\n{pretty}\n```"


def with_notice(body: str, label: TextLabel) -> str:
    if label.notice == "start":
        return f"{label.notice_text}\n\n{body}"
    if label.notice == "end":
        return f"{body.rstrip()}\n\n{label.notice_text}\n"
    return body


# -- Markdown and TXT --------------------------------------------------------------------------------------
def _yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def markdown(body: str, label: TextLabel) -> bytes:
    meta = []
    if label.fields:
        meta = [
            "---",
            f"AIGC: {label.aigc}",
            f"ai_generated: {_yaml_str(label.notice_text)}",
            f"generator: {_yaml_str(label.generator)}",
            *([f"model: {_yaml_str(label.model)}"] if label.model else []),
            f"created: {label.created.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            "---",
            "",
        ]
    return ("\n".join(meta) + with_notice(body, label)).encode("utf-8")


def plain(md: str) -> str:
    """Markdown as plain text: marks dropped, bullets as •, code fences and rules removed."""
    out = []
    for block in blocks(md):
        text = block.text if block.kind == "code" else strip_marks(block.text)
        if block.kind == "table":
            text = "\n".join("\t".join(row) for row in block.rows)  # tab-separated: pastes into a spreadsheet
        elif block.kind == "bullet":
            text = f"• {text}"
        elif block.kind == "number":
            text = f"{block.level}. {text}"
        elif block.kind == "rule":
            continue
        out.append(text)
    return "\n\n".join(out)


def txt(body: str, label: TextLabel) -> bytes:
    text = with_notice(plain(body), label).rstrip()
    if label.fields:
        text += f"\n\n{TXT_PREFIX}{label.aigc}"
    return (text + "\n").encode("utf-8")


# -- Markdown blocks (shared by the TXT, DOCX and PDF writers) --------------------------------------------------
@dataclass(frozen=True)
class Block:
    kind: Literal["heading", "bullet", "number", "quote", "para", "code", "rule", "table"]
    text: str
    level: int = 0  # a heading's level, a numbered item's number

    @property
    def rows(self) -> list[list[str]]:
        """A table's cells (its `| a | b |` lines without the `|---|` separator), marks dropped."""
        out = []
        for line in self.text.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c) and any(cells):
                continue
            out.append([strip_marks(c) for c in cells])
        width = max((len(r) for r in out), default=0)
        return [r + [""] * (width - len(r)) for r in out]


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*[-*+•]\s+(.*)$")
_NUMBER = re.compile(r"^\s*(\d{1,4})[.)、]\s*(.*)$")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")


def blocks(md: str) -> list[Block]:
    """The common Markdown blocks; lines of one paragraph are kept on their own lines (copy is line-oriented)."""
    out: list[Block] = []
    para: list[str] = []
    code: list[str] | None = None

    def flush() -> None:
        if para:
            out.append(Block("para", "\n".join(para)))
            para.clear()

    prev_table = False
    for line in md.splitlines():
        was_table, prev_table = prev_table, code is None and line.lstrip().startswith("|")
        if code is not None:
            if line.strip().startswith("```"):
                out.append(Block("code", "\n".join(code)))
                code = None
            else:
                code.append(line)
            continue
        if line.strip().startswith("```"):
            flush()
            code = []
        elif not line.strip():
            flush()
        elif m := _HEADING.match(line):
            flush()
            out.append(Block("heading", m.group(2), len(m.group(1))))
        elif line.lstrip().startswith("|"):
            if para or not out or out[-1].kind != "table" or not was_table:
                flush()
                out.append(Block("table", line.strip()))
            else:
                out[-1] = Block("table", f"{out[-1].text}\n{line.strip()}")
        elif _RULE.match(line):
            flush()
            out.append(Block("rule", ""))
        elif m := _BULLET.match(line):
            flush()
            out.append(Block("bullet", m.group(1)))
        elif m := _NUMBER.match(line):
            flush()
            out.append(Block("number", m.group(2), int(m.group(1))))
        elif line.lstrip().startswith(">"):
            flush()
            out.append(Block("quote", line.lstrip()[1:].strip()))
        else:
            para.append(line.strip())
    flush()
    if code is not None:  # an unclosed fence: what was in it is still text
        out.append(Block("code", "\n".join(code)))
    return out


_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_MARKS = re.compile(r"(?<!\w)[*_]{1,2}(?=\S)|(?<=\S)[*_]{1,2}(?!\w)|`")


def runs(text: str) -> list[tuple[str, bool]]:
    """Inline text as (text, bold) runs; other marks (*italic*, `code`) dropped."""
    out: list[tuple[str, bool]] = []
    pos = 0
    for m in _BOLD.finditer(text):
        if m.start() > pos:
            out.append((_MARKS.sub("", text[pos : m.start()]), False))
        out.append((_MARKS.sub("", m.group(1) or m.group(2)), True))
        pos = m.end()
    if pos < len(text):
        out.append((_MARKS.sub("", text[pos:]), False))
    return [(t, b) for t, b in out if t]


def strip_marks(text: str) -> str:
    return "".join(t for t, _ in runs(text))


# -- reading back (verify: text_verify.py) ----------------------------------------------------------------------
def read_markdown_front(data: bytes) -> str | None:
    """The front matter of a Markdown export (YAML text), or None."""
    text = data.decode("utf-8")
    if not text.startswith("---\n"):
        return None
    end = text.find("\n---\n", 4)
    return text[4:end] if end > 0 else None
