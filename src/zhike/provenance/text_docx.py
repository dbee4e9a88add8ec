"""A text export as DOCX (python-docx): the Markdown blocks as Word paragraphs, the notice where the user placed it,
and the implicit label in the document's properties: core properties (creator, keywords, comments) and the custom
property `AIGC` (docProps/custom.xml) holding the TC260 fields' JSON, as the images' XMP does."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from docx import Document
from docx.opc.constants import CONTENT_TYPE, RELATIONSHIP_TYPE
from docx.opc.packuri import PackURI
from docx.opc.part import Part
from docx.shared import Pt, RGBColor

from zhike.provenance.text import DOCX_CUSTOM_NS, Block, TextLabel, blocks, runs

_VT_NS = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
_FMTID = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"  # the fixed id of user-defined properties


def custom_properties(props: dict[str, str]) -> bytes:
    items = "".join(
        f'<property fmtid="{_FMTID}" pid="{pid}" name="{escape(name)}"><vt:lpwstr>{escape(value)}</vt:lpwstr>'
        "</property>"
        for pid, (name, value) in enumerate(props.items(), start=2)  # pids start at 2
    )
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    xml = f'{head}<Properties xmlns="{DOCX_CUSTOM_NS}" xmlns:vt="{_VT_NS}">{items}</Properties>'
    return xml.encode("utf-8")


def _paragraph(doc: object, block: Block) -> None:
    if block.kind == "heading":
        para = doc.add_heading(level=min(block.level, 4))  # type: ignore[attr-defined]
    elif block.kind == "bullet":
        para = doc.add_paragraph(style="List Bullet")  # type: ignore[attr-defined]
    elif block.kind == "number":
        para = doc.add_paragraph(style="List Number")  # type: ignore[attr-defined]
    elif block.kind == "quote":
        para = doc.add_paragraph(style="Quote")  # type: ignore[attr-defined]
    elif block.kind == "rule":
        doc.add_paragraph()  # type: ignore[attr-defined]
        return
    elif block.kind == "table":
        rows = block.rows
        table = doc.add_table(rows=len(rows), cols=len(rows[0]) if rows else 0)  # type: ignore[attr-defined]
        table.style = "Table Grid"
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                table.cell(r, c).paragraphs[0].add_run(text).bold = r == 0 or None  # the first row heads it
        return
    else:
        para = doc.add_paragraph()  # type: ignore[attr-defined]
    if block.kind == "code":
        run = para.add_run(block.text)
        run.font.name = "Consolas"
        run.font.size = Pt(9)
        return
    for text, bold in runs(block.text):
        para.add_run(text).bold = bold or None


def _notice(doc: object, label: TextLabel) -> None:
    run = doc.add_paragraph().add_run(label.notice_text)  # type: ignore[attr-defined]
    run.italic = True
    run.font.color.rgb = RGBColor(0x66, 0x66, 0x66)


def docx(body: str, label: TextLabel) -> bytes:
    doc = Document()
    core = doc.core_properties
    core.title = label.title
    core.author = label.producer
    core.last_modified_by = label.producer
    core.created = label.created
    core.modified = label.created
    core.comments = f"{label.notice_text} · {label.generator}" + (f" · {label.model}" if label.model else "")
    if label.notice == "start":
        _notice(doc, label)
    for block in blocks(body):
        _paragraph(doc, block)
    if label.notice == "end":
        _notice(doc, label)
    if label.fields:
        core.keywords = "AIGC"
        core.category = "AIGC"
        core.identifier = label.fields.get("ProduceID", "")
        package = doc.part.package
        part = Part(
            PackURI("/docProps/custom.xml"),
            CONTENT_TYPE.OFC_CUSTOM_PROPERTIES,
            custom_properties({"AIGC": label.aigc}),
            package,
        )
        package.relate_to(part, RELATIONSHIP_TYPE.CUSTOM_PROPERTIES)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
