"""PDF text, page by page (pypdf), within limits: pages, bytes each stream may inflate to (pypdf's own limits, set
from ours), time (looked at between pages) and characters. A password-protected PDF is refused; one encrypted with an
empty user password (print/copy restrictions only) opens as it does in any reader."""

from __future__ import annotations

import io
import logging
import re

from zhike.core.pdf import pdf_limits
from zhike.kb.document import Section
from zhike.kb.limits import Budget
from zhike.kb.text import text_sections

WRAPPED_SHARE = 0.8  # a line this long (of the page's longest) that ends mid-sentence was wrapped
_SENTENCE_END = ("。", "！", "？", "：", "；", ".", "!", "?", ":", ";")
MAX_STREAM_BYTES = 75_000_000  # pypdf's default per stream: a page's content beyond it is no catalogue page
_SPACES = re.compile(r"[ \t\u3000]+")
# pypdf puts a space between glyph runs; between two Chinese characters it is an artefact of the layout.
_CJK_GAP = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef]) (?=[\u3000-\u9fff\uff00-\uffef])")


def pdf_sections(data: bytes, budget: Budget) -> tuple[int, str | None, list[Section]]:
    """(pages, the document's own title or None, one section per page with text: where "第N页")."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError, PyPdfError

    limits = budget.limits
    per_stream = min(limits.max_inflated, MAX_STREAM_BYTES)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every odd object of a damaged file
    out: list[Section] = []
    try:
        with pdf_limits(per_stream):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted and not _opens_without_password(reader):
                raise budget.refuse("document_encrypted", "the PDF is password-protected")
            pages = len(reader.pages)
            if pages > limits.max_pages:
                raise budget.too_large("pages", limits.max_pages, f"the PDF has {pages} pages")
            title = _title(reader)
            inflated = 0
            for n, page in enumerate(reader.pages, start=1):
                budget.tick()
                # Decode the page's content first: extract_text() swallows pypdf's limit errors (a bomb would read
                # as an empty page); this raises them, and counts what all pages inflate to.
                contents = page.get_contents()
                inflated += len(contents.get_data()) if contents is not None else 0
                if inflated > limits.max_inflated:
                    raise budget.bomb("inflated_bytes", f"the pages inflate to over {limits.max_inflated:,} bytes")
                out.extend(text_sections(_clean(page.extract_text() or ""), budget, place=f"第{n}页"))
            budget.tick()
    except LimitReachedError as e:
        raise budget.bomb("inflated_bytes", f"the PDF is built to exhaust its reader ({e})") from None
    except (FileNotDecryptedError, DependencyError):
        raise budget.refuse("document_encrypted", "the PDF is encrypted") from None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise budget.refuse("document_damaged", f"not a readable PDF ({type(e).__name__}: {e})") from None
    except RecursionError:
        raise budget.bomb("nesting", "the PDF's objects nest without end") from None
    return pages, title, out


def _opens_without_password(reader) -> bool:  # noqa: ANN001 - pypdf.PdfReader
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - any failure to decrypt means we cannot read it
        return False


def _title(reader) -> str | None:  # noqa: ANN001
    try:
        title = (reader.metadata or {}).get("/Title")
    except Exception:  # noqa: BLE001 - a damaged info dictionary is no reason to refuse the text
        return None
    title = str(title).strip() if title else ""
    return title or None


def _clean(text: str) -> str:
    """A page's text with layout artefacts removed: NULs (some CID fonts' maps), runs of spaces, spaces between
    Chinese characters, and line breaks inside a paragraph (a line that fills the width and ends mid-sentence
    continues on the next), so the chunker cuts at sentence ends, not where the page wrapped."""
    lines = [_CJK_GAP.sub("", _SPACES.sub(" ", line.replace("\x00", ""))).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    full = WRAPPED_SHARE * max(len(line) for line in lines)
    out = [lines[0]]
    for line in lines[1:]:
        prev = out[-1]
        if len(prev) >= full and not prev.endswith(_SENTENCE_END):
            ascii_join = prev[-1].isascii() and line[0].isascii() and prev[-1].isalnum() and line[0].isalnum()
            out[-1] = prev + (" " if ascii_join else "") + line
        else:
            out.append(line)
    return "\n".join(out)
