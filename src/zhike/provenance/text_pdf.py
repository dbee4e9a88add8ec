"""A text export as PDF (fpdf2): the Markdown blocks drawn with the project's font chain (zhike/fonts.py: the bundled
Source Han Sans SC first, so Chinese renders on a server without system fonts), the notice where the user placed
it, and the implicit label in the info dictionary (/AIGC, plus title, author, subject, keywords) and in the same XMP
packet images carry (`TC260:AIGC`).

Each font is cut to the characters the text uses and, when its outlines are CFF (Source Han Sans is an .otf), turned
into TrueType outlines first: fpdf2 embeds CFF fonts with a custom encoding CMap that text extractors (pypdf, and so
the knowledge base reading such a PDF back) decode byte by byte; TrueType fonts are embedded as Identity-H, which
every reader handles.
"""

from __future__ import annotations

import io
import logging
import tempfile
from datetime import UTC
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable
from fpdf import FPDF
from fpdf.enums import WrapMode
from fpdf.output import OutputProducer, PDFInfo
from fpdf.syntax import PDFString

from zhike import fonts
from zhike.provenance.text import Block, TextLabel, blocks, runs
from zhike.provenance.xmp import build_packet

# "BDF NOT subset; don't know how to subset; dropped": tables a PDF font does not need, said for every export.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
HEADING_PT = {1: 18.0, 2: 15.0, 3: 13.0}
BODY_PT = 11.0
GREY = (110, 110, 110)


def truetype_subset(path: str, index: int, chars: set[str]) -> bytes:
    """The font cut to `chars`, with TrueType outlines (CFF outlines converted, within 1 unit)."""
    font = TTFont(path, fontNumber=index, lazy=True)
    opts = subset.Options()
    opts.name_IDs = ["*"]
    opts.layout_features = []
    opts.notdef_outline = True
    opts.hinting = False
    # Tables a PDF does not use (fpdf2 places glyphs one by one, no shaping): not even parsed, which is most of the
    # time a CJK font's subsetting takes.
    opts.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "JSTF", "VORG", "vhea", "vmtx", "DSIG", "meta"]
    cutter = subset.Subsetter(opts)
    cutter.populate(text="".join(chars))
    cutter.subset(font)
    if "CFF " in font:
        _cff_to_glyf(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def _cff_to_glyf(font: TTFont) -> None:
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    glyf = font["glyf"] = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = glyphs
    del font["CFF "]
    if "VORG" in font:
        del font["VORG"]
    maxp = font["maxp"] = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for key in (
        "maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs", "maxStackElements",
        "maxSizeOfInstructions", "maxComponentElements",
    ):  # fmt: skip
        setattr(maxp, key, 0)
    maxp.maxZones = 1
    font["head"].indexToLocFormat = 0
    font["head"].glyphDataFormat = 0
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    font.sfntVersion = "\x00\x01\x00\x00"


class _Info(PDFInfo):
    """The info dictionary with the TC260 JSON under /AIGC (fpdf2 would spell a field `Aigc`)."""

    _aigc: str | None = None

    def _build_obj_dict(self, security_handler: object = None) -> dict[str, object]:
        d = super()._build_obj_dict(security_handler)
        if self._aigc:
            d["/AIGC"] = PDFString(self._aigc, encrypt=True).serialize(
                _security_handler=security_handler, _obj_id=self.id
            )
        return d


def _producer(aigc: str | None) -> type[OutputProducer]:
    class Producer(OutputProducer):
        def _add_info(self) -> PDFInfo:
            info = super()._add_info()
            info.__class__ = _Info
            info._aigc = aigc  # type: ignore[attr-defined]
            return info

    return Producer


class _Fonts:
    """The fonts of one PDF: the chain's faces that draw some character of the text, cut to those characters."""

    def __init__(self, pdf: FPDF, text: str, folder: Path, *, bold: bool) -> None:
        chars = {c for c in text if not c.isspace() and ord(c) not in fonts.INVISIBLE}
        regular = fonts.chain("sans", "regular")
        heavy = fonts.chain("sans", "bold") if bold else ()
        used: dict[int, set[str]] = {}
        self.missing: set[str] = set()
        for ch in chars:
            face = fonts.face_for(ch, regular)
            if face is None:
                self.missing.add(ch)  # e.g. emoji: no installed font draws them; left out, never tofu
            else:
                used.setdefault(regular.index(face), set()).add(ch)
        used.setdefault(0, set()).add(" ")  # spaces are drawn by the first face (its glyph, not a .notdef box)
        self.families: list[str] = []
        for i in sorted(used):
            family = f"f{i}"
            for style, face in (("", regular[i]), *((("B", heavy[i]),) if heavy else ())):
                file = folder / f"{family}{style}.ttf"
                file.write_bytes(truetype_subset(face.path, face.index, used[i]))
                pdf.add_font(family, style, str(file))
            self.families.append(family)
        if len(self.families) > 1:
            pdf.set_fallback_fonts(self.families[1:])

    def clean(self, text: str) -> str:
        return "".join(c for c in text if c not in self.missing) if self.missing else text


def _table(pdf: FPDF, f: _Fonts, block: Block, wrap: WrapMode) -> None:
    rows = block.rows
    if not rows:
        return
    pdf.set_font(f.families[0], "", BODY_PT)
    with pdf.table(text_align="LEFT", wrapmode=wrap, line_height=BODY_PT * 0.6, padding=1.5) as table:
        for row in rows:
            cells = table.row()
            for text in row:
                cells.cell(f.clean(text))
    pdf.ln(BODY_PT * 0.6)


def _write(pdf: FPDF, f: _Fonts, block: Block, wrap: WrapMode) -> None:
    if block.kind == "table":
        _table(pdf, f, block, wrap)
        return
    size = HEADING_PT.get(block.level, 12.0) if block.kind == "heading" else BODY_PT
    if block.kind == "code":
        size = 9.0
    height = size * 0.6
    indent = 6.0 if block.kind in ("bullet", "number", "quote") else 0.0
    margin = pdf.l_margin
    pdf.set_left_margin(margin + indent)
    pdf.set_x(margin + indent)
    if block.kind == "quote":
        pdf.set_text_color(*GREY)
    prefix = {"bullet": "• ", "number": f"{block.level}. "}.get(block.kind, "")
    parts = [(block.text, False)] if block.kind == "code" else runs(block.text)
    if prefix:
        parts = [(prefix, False), *parts]
    for text, bold in parts:
        pdf.set_font(f.families[0], "B" if bold or block.kind == "heading" else "", size)
        pdf.write(height, f.clean(text), wrapmode=wrap)
    pdf.ln(height * {"heading": 1.8, "bullet": 1.35, "number": 1.35}.get(block.kind, 1.6))
    pdf.set_text_color(0, 0, 0)
    pdf.set_left_margin(margin)


def _notice(pdf: FPDF, f: _Fonts, label: TextLabel) -> None:
    pdf.set_font(f.families[0], "", BODY_PT)  # as large as the words it labels: a notice is meant to be read
    pdf.set_text_color(*GREY)
    pdf.write(BODY_PT * 0.6, label.notice_text)
    pdf.ln(BODY_PT * 0.6 * 1.8)
    pdf.set_text_color(0, 0, 0)


def pdf(body: str, label: TextLabel) -> bytes:
    parts = blocks(body)
    doc = FPDF(format="A4")
    doc.set_auto_page_break(True, margin=15)
    doc.set_title(label.title)
    doc.set_author(label.producer)
    doc.set_subject(label.notice_text)
    doc.set_creator(label.generator)
    doc.set_producer(label.generator)
    doc.set_lang("zh-CN" if label.lang == "zh" else "en")
    created = label.created if label.created.tzinfo else label.created.replace(tzinfo=UTC)
    doc.set_creation_date(created)
    if label.fields:
        doc.set_keywords("AIGC")
        packet = build_packet(label.fields).decode("utf-8")
        inner = packet[packet.index("<x:xmpmeta") : packet.index("</x:xmpmeta>") + len("</x:xmpmeta>")]
        doc.set_xmp_metadata(inner)  # fpdf2 adds the <?xpacket?> wrapper itself
    wrap = WrapMode.CHAR if label.lang == "zh" else WrapMode.WORD
    bold = any(b.kind in ("heading", "table") or "**" in b.text or "__" in b.text for b in parts)
    everything = "".join(b.text for b in parts) + label.notice_text + "• 0123456789."
    with tempfile.TemporaryDirectory(prefix="zhike-pdf-") as folder:
        f = _Fonts(doc, everything, Path(folder), bold=bold)
        doc.add_page()
        if label.notice == "start":
            _notice(doc, f, label)
        for block in parts:
            if block.kind != "rule":
                _write(doc, f, block, wrap)
        if label.notice == "end":
            _notice(doc, f, label)
        return bytes(doc.output(output_producer_class=_producer(label.aigc if label.fields else None)))
