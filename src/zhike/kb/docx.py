"""DOCX text: paragraphs under their headings, and tables row by row.

A DOCX is a ZIP of XML. The ZIP's directory is checked before anything is inflated (members, declared sizes, ratio:
the limits of design/xlsx.py), a part never yields more than its declared size (zipfile stops there and checks the
CRC), and the XML is parsed by defusedxml with DTDs forbidden, so no entity is declared and none can expand."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

from zhike.design.xlsx import MAX_MEMBERS, MAX_RATIO, RATIO_FROM
from zhike.kb.document import Section
from zhike.kb.limits import Budget

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
DOCUMENT = "word/document.xml"
STYLES = "word/styles.xml"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # an encrypted Office file is an OLE container, not a ZIP
_HEADING_NAME = re.compile(r"^(?:heading|标题)\s*(\d)$", re.I)


def open_office_zip(data: bytes, budget: Budget) -> zipfile.ZipFile:
    """The ZIP of an Office file, its directory checked before any member is inflated."""
    if data.startswith(OLE_MAGIC):
        raise budget.refuse("document_encrypted", "the file is password-protected (or an old .doc: save as .docx)")
    if data.count(b"PK\x01\x02") > MAX_MEMBERS:  # each directory entry costs a ZipInfo: count before reading them
        raise budget.bomb("zip_members", f"the file has more than {MAX_MEMBERS} parts")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as e:
        raise budget.refuse("document_damaged", f"not a readable DOCX ({e})") from None
    infos = zf.infolist()
    for info in infos:
        if info.file_size > RATIO_FROM and info.file_size > MAX_RATIO * max(1, info.compress_size):
            zf.close()
            raise budget.bomb("zip_ratio", f"{info.filename} inflates {info.file_size // max(1, info.compress_size)}x")
    total = sum(info.file_size for info in infos)
    if total > budget.limits.max_inflated:
        zf.close()
        raise budget.bomb("inflated_bytes", f"the parts inflate to {total:,} bytes")
    return zf


def docx_sections(data: bytes, budget: Budget) -> tuple[str | None, list[Section]]:
    """(the Title / first level-1 heading or None, sections under each heading; a table is a section of its own)."""
    with open_office_zip(data, budget) as zf:
        if DOCUMENT not in zf.namelist():
            raise budget.refuse("document_damaged", f"the file has no {DOCUMENT}: not a Word document")
        levels = _style_levels(_xml(zf, STYLES, budget)) if STYLES in zf.namelist() else {}
        body = _xml(zf, DOCUMENT, budget).find(f"{W}body")
    if body is None:
        raise budget.refuse("document_damaged", "the document has no body")
    title: str | None = None
    path: list[tuple[int, str]] = []
    out: list[Section] = []
    lines: list[str] = []

    def where() -> str:
        return " › ".join(h for _, h in path) or "正文"

    def flush() -> None:
        text = "\n".join(lines).strip()
        if text:
            out.append(Section(budget.add_text(text), where()))
        lines.clear()

    for el in body:
        budget.tick()
        if el.tag == f"{W}p":
            text = _paragraph_text(el)
            level = _level(el, levels)
            if level is None:
                if text.strip():
                    lines.append(text)
                continue
            flush()
            if not text.strip():
                continue
            if level <= 1 and title is None and not out:
                title = text.strip()
                if level == 0:  # the Title style: the document's name, not a section
                    continue
            path = [(lv, h) for lv, h in path if lv < level] + [(level, text.strip())]
        elif el.tag == f"{W}tbl":
            flush()
            lines.extend(_table_rows(el))
            flush()
    flush()
    return title, out


def _xml(zf: zipfile.ZipFile, name: str, budget: Budget) -> Any:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        raw = zf.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        raise budget.refuse("document_damaged", f"{name} cannot be read ({e})") from None
    try:
        return fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise budget.bomb("xml_entities", f"{name} declares a DTD or entities (Word never writes them)") from None
    except Exception as e:  # noqa: BLE001 - xml.etree's ParseError and expat's errors
        raise budget.refuse("document_damaged", f"{name} is not well-formed XML ({e})") from None


def _style_levels(styles: Any) -> dict[str, int]:
    """Style id -> heading level (0 for Title), from each paragraph style's name or outline level: Word's style
    ids are localised ("1" for 标题 1 in Chinese Word), its names are not."""
    out: dict[str, int] = {}
    for style in styles.iter(f"{W}style"):
        sid = style.get(f"{W}styleId", "")
        name_el = style.find(f"{W}name")
        name = (name_el.get(f"{W}val", "") if name_el is not None else "").strip()
        m = _HEADING_NAME.match(name)
        if name.lower() in ("title", "标题"):
            out[sid] = 0
        elif m:
            out[sid] = int(m.group(1))
        else:
            lvl = style.find(f"{W}pPr/{W}outlineLvl")
            if lvl is not None and lvl.get(f"{W}val", "").isdigit() and int(lvl.get(f"{W}val")) < 9:
                out[sid] = int(lvl.get(f"{W}val")) + 1
    return out


def _level(p: Any, levels: dict[str, int]) -> int | None:
    ppr = p.find(f"{W}pPr")
    if ppr is None:
        return None
    lvl = ppr.find(f"{W}outlineLvl")
    if lvl is not None and lvl.get(f"{W}val", "").isdigit() and int(lvl.get(f"{W}val")) < 9:
        return int(lvl.get(f"{W}val")) + 1
    style = ppr.find(f"{W}pStyle")
    return levels.get(style.get(f"{W}val", "")) if style is not None else None


def _paragraph_text(p: Any) -> str:
    parts: list[str] = []
    for el in p.iter():
        if el.tag == f"{W}t" and el.text:
            parts.append(el.text)
        elif el.tag == f"{W}tab":
            parts.append("\t")
        elif el.tag in (f"{W}br", f"{W}cr"):
            parts.append("\n")
    return "".join(parts)


def _table_rows(tbl: Any) -> Iterator[str]:
    """Each row as "header: value; ..." when the first row names the columns, else its cells joined by " | "."""
    rows = [
        [" ".join(_paragraph_text(p).strip() for p in tc.iter(f"{W}p")).strip() for tc in tr.findall(f"{W}tc")]
        for tr in tbl.findall(f"{W}tr")
    ]
    rows = [r for r in rows if any(r)]
    if not rows:
        return
    if all(len(r) == 2 for r in rows):  # a key-value table (参数 | 规格): one "key：value" line each
        yield from ("：".join(c for c in r if c) for r in rows)
        return
    header = rows[0]
    named = len(rows) > 1 and all(header) and len(header) > 1
    if not named:
        yield from (" | ".join(c for c in r if c) for r in rows)
        return
    yield " | ".join(header)
    for r in rows[1:]:
        yield "；".join(f"{h}：{c}" if h else c for h, c in zip(header, r, strict=False) if c)
