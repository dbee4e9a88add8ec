"""A stored text as an export format with its labels (provenance/text.py says what each format carries)."""

from __future__ import annotations

from zhike.provenance.text import TextLabel, body_of, markdown, txt


def export(text: str, mime: str, fmt: str, label: TextLabel) -> bytes:
    """A stored text (`mime`: text/markdown or application/json) as `fmt` (md, txt, docx, pdf) with its labels."""
    body = body_of(text, mime)
    if fmt == "md":
        return markdown(body, label)
    if fmt == "txt":
        return txt(body, label)
    if fmt == "docx":  # python-docx and fpdf2 load only when someone asks for these
        from zhike.provenance.text_docx import docx

        return docx(body, label)
    if fmt == "pdf":
        from zhike.provenance.text_pdf import pdf

        return pdf(body, label)
    raise ValueError(f"unknown text format {fmt!r}")
