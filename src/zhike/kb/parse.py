"""`parse_document(filename, data, limits)`: a knowledge-base upload -> ParsedDocument (title, kind, pages, sections).

The kind comes from the file name's suffix (TXT, Markdown, PDF, DOCX, XLSX, CSV); what the bytes are is checked too:
binary data named .txt is `document_not_text`, a PDF or ZIP named otherwise is read as what it is. Every refusal is a
4xx with field "file", a stable code (document_empty, document_too_large, document_encrypted, document_not_text,
document_unsupported, document_bomb, document_damaged; spreadsheets add design/data.py's data_* codes) and
`ctx.name`, the file's name, so the studio can say which upload failed."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

from zhike.kb.document import DocKind, ParsedDocument
from zhike.kb.docx import docx_sections
from zhike.kb.limits import Budget, DocumentLimits
from zhike.kb.pdf import pdf_sections
from zhike.kb.sheet import sheet_sections
from zhike.kb.text import decode, markdown_sections, text_sections

SUFFIXES: dict[str, DocKind] = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "markdown",
    ".markdown": "markdown",
    ".pdf": "pdf",
    ".docx": "docx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".csv": "csv",
    ".tsv": "csv",
}
ACCEPTED = tuple(sorted(SUFFIXES))
MAX_TITLE = 40  # for the upload form's `accept` and messages


def parse_document(filename: str, data: bytes, limits: DocumentLimits | None = None) -> ParsedDocument:
    limits = limits or DocumentLimits()
    name = PureWindowsPath(PurePosixPath(filename or "document").name).name or "document"
    budget = Budget(name, limits)
    if len(data) > limits.max_bytes:
        raise budget.too_large("bytes", limits.max_bytes, f"the file is {len(data):,} bytes")
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf"):
        raise budget.refuse("document_empty", "the file is empty")
    kind = _kind(name, data, budget)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    title: str | None = None
    pages, encoding = 1, None
    if kind == "pdf":
        pages, title, sections = pdf_sections(data, budget)
    elif kind == "docx":
        title, sections = docx_sections(data, budget)
    elif kind in ("xlsx", "csv"):
        if kind == "csv":
            decode(data, budget)  # binary data named .csv: document_not_text, not a CSV error
        sections = sheet_sections(data, kind, budget)
    else:
        text, encoding = decode(data, budget)
        if len(text) > limits.max_chars:
            raise budget.too_large("chars", limits.max_chars, f"the text is {len(text):,} characters")
        if kind == "markdown":
            title, sections = markdown_sections(text, budget)
        else:
            sections = text_sections(text, budget)
            title = _first_line_title(text)
    if not any(s.text.strip() for s in sections):
        why = "no text in its pages (a scan? run OCR first)" if kind == "pdf" else "no text in it"
        raise budget.refuse("document_empty", why)
    return ParsedDocument(title=title or stem, kind=kind, pages=pages, sections=sections, encoding=encoding)


def _first_line_title(text: str) -> str | None:
    """A plain text's first line when it reads as a title (short, more text after it)."""
    head, _, rest = text.strip().partition("\n")
    head = head.strip()
    return head if head and len(head) <= MAX_TITLE and rest.strip() else None


def _kind(name: str, data: bytes, budget: Budget) -> DocKind:
    """The suffix's kind; but a PDF is a PDF whatever it is called, and binary data is never text."""
    suffix = "." + name.rsplit(".", 1)[1].lower() if "." in name else ""
    kind = SUFFIXES.get(suffix)
    if data.lstrip()[:5] == b"%PDF-" and kind in ("txt", "markdown", "csv", None):
        raise budget.refuse("document_not_text", f"a PDF named {suffix or 'without a suffix'}: rename it .pdf")
    if kind is None:
        shown = suffix or "(none)"
        raise budget.refuse(
            "document_unsupported",
            f"{shown} files are not read (accepted: {', '.join(ACCEPTED)})",
            ctx={"suffix": shown},
        )
    return kind
