"""Read back the labels of a text export (provenance/text.py writes them): the TC260 implicit fields in each format's
metadata, checked like an image's XMP (verify.check_label: all seven fields, Label value, this deployment's HMAC
codes), and the explicit notice, found at the start, the end or in the middle of the words.

- Markdown: the `AIGC: {...}` line of the YAML front matter; TXT: the last line `AIGC: {...}`;
- DOCX: the custom property `AIGC` (docProps/custom.xml); the core `identifier` must name the same ProduceID;
- PDF: the info dictionary's /AIGC and the XMP packet's `TC260:AIGC`; when both are there they must agree.

Files come from anyone, so each reader is bounded: a DOCX's ZIP directory is checked before a part is inflated and its
XML parsed with DTDs forbidden (defusedxml); a PDF is read with pypdf's decompression limits set from ours, and only
its metadata and the text of its first and last page are read. `sniff` tells these formats from images.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zhike.core.pdf import pdf_limits
from zhike.provenance import xmp
from zhike.provenance.text import DOCX, DOCX_CUSTOM_NS, NOTICE, TEXT_FORMATS, TXT_PREFIX, read_markdown_front
from zhike.provenance.verify import AssetLookup, check_label, identify, summary

if TYPE_CHECKING:
    from zhike.provenance.labels import LabelKeys

PDF = TEXT_FORMATS["pdf"]
MARKDOWN, PLAIN = TEXT_FORMATS["md"], TEXT_FORMATS["txt"]
MIMES = frozenset(TEXT_FORMATS.values())
MAX_PART_BYTES = 20_000_000  # a DOCX part or a PDF stream inflated (a 30,000-character script's: a few MB)
MAX_META_BYTES = 1 << 20  # properties and XMP: a few KB in real files (xmp.MAX_XMP_BYTES for images)
MAX_ZIP_MEMBERS = 10_000  # a Word file has tens of parts
_SPACE = re.compile(r"\s+")
_MARKUP = re.compile(r"\s*<(\?xml|svg|!doctype|html)", re.IGNORECASE)
_CORE_NS = {
    "cp": "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


class TextUnreadable(ValueError):
    """The file says it is a DOCX or a PDF but cannot be read (damaged, or past the reading limits)."""


@dataclass
class Read:
    """What a format's reader found: the label (xmp.read_label's shape, None: absent), problems that make it
    invalid (two places disagreeing), the words' paragraphs (for the notice), and why the words could not be read."""

    found: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    unreadable: str | None = None


def sniff(data: bytes) -> str | None:
    """The text export format of `data` (a mime of TEXT_FORMATS), or None: not one (an image, another binary)."""
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"PK\x03\x04"):
        return DOCX if b"word/document.xml" in data else None  # the name is in the ZIP's directory, uncompressed
    if b"\x00" in data[:8192]:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if _MARKUP.match(text):
        return None  # SVG, HTML, XML: drawings and pages, not words (the image checks say what they are)
    return MARKDOWN if text.startswith("---\n") else PLAIN


# -- the formats ------------------------------------------------------------------------------------------------
def _paragraphs(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _markdown(data: bytes) -> Read:
    data = data.removeprefix(codecs.BOM_UTF8)
    text = data.decode("utf-8")
    front = read_markdown_front(data)
    if front is None:
        return Read(paragraphs=_paragraphs(text))
    body = text[4 + len(front) + 5 :]  # after "---\n", the front matter and "\n---\n"
    line = next((x for x in front.splitlines() if x.startswith("AIGC:")), None)
    found = xmp.parse_fields(line[len("AIGC:") :].strip()) if line is not None else None
    return Read(found=found, paragraphs=_paragraphs(body))


def _plain(data: bytes) -> Read:
    lines = _paragraphs(data.decode("utf-8-sig"))
    prefix = TXT_PREFIX.strip()
    label = lines[-1][len(prefix) :].strip() if lines and lines[-1].startswith(prefix) else ""
    if label.startswith("{"):  # "AIGC: {...}"; a sentence that merely starts with "AIGC:" is words
        return Read(found=xmp.parse_fields(label), paragraphs=lines[:-1])
    return Read(paragraphs=lines)


def _xml(zf: zipfile.ZipFile, name: str, limit: int) -> Any:
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    info = zf.getinfo(name)
    if info.file_size > limit:
        raise TextUnreadable(f"{name} inflates to {info.file_size:,} bytes; a label check reads at most {limit:,}")
    try:
        return ElementTree.fromstring(zf.read(name))  # zipfile stops at the declared size and checks the CRC
    except (DefusedXmlException, ElementTree.ParseError) as e:
        raise TextUnreadable(f"{name} is not readable XML ({e})") from None


def _docx(data: bytes) -> Read:
    if data.count(b"PK\x01\x02") > MAX_ZIP_MEMBERS:  # count directory entries before zipfile builds them
        raise TextUnreadable(f"the DOCX has more than {MAX_ZIP_MEMBERS} parts")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "word/document.xml" not in names:
                raise TextUnreadable("the ZIP has no word/document.xml: not a Word document")
            body = _xml(zf, "word/document.xml", MAX_PART_BYTES)
            custom = _xml(zf, "docProps/custom.xml", MAX_META_BYTES) if "docProps/custom.xml" in names else None
            core = _xml(zf, "docProps/core.xml", MAX_META_BYTES) if "docProps/core.xml" in names else None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, OSError, EOFError, ValueError) as e:
        if isinstance(e, TextUnreadable):
            raise
        raise TextUnreadable(f"not a readable DOCX ({e})") from None
    paragraphs = [_SPACE.sub(" ", "".join(t.text or "" for t in p.iter(f"{_W}t"))).strip() for p in body.iter(f"{_W}p")]
    out = Read(paragraphs=[p for p in paragraphs if p])
    props = _custom_props(custom)
    if "AIGC" in props:
        out.found = xmp.parse_fields(props["AIGC"])
    ident = core.findtext("dc:identifier", None, _CORE_NS) if core is not None else None
    keywords = core.findtext("cp:keywords", "", _CORE_NS) if core is not None else ""
    fields = (out.found or {}).get("fields") or {}
    if out.found is None and "AIGC" in (keywords or ""):
        out.problems.append("the core properties say AIGC but the custom property AIGC is missing")
    elif ident and fields and ident != str(fields.get("ProduceID", "")):
        out.problems.append(f"the core identifier {ident!r} is not the label's ProduceID")
    return out


def _custom_props(root: Any) -> dict[str, str]:
    """A DOCX's custom properties (docProps/custom.xml parsed; None: the file has none) as name -> text."""
    if root is None:
        return {}
    return {p.get("name", ""): "".join(p.itertext()) for p in root.iter(f"{{{DOCX_CUSTOM_NS}}}property")}


def read_custom_properties(data: bytes) -> dict[str, str]:
    """The custom properties of a DOCX file, read within the limits above (TextUnreadable otherwise)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        found = "docProps/custom.xml" in zf.namelist()
        return _custom_props(_xml(zf, "docProps/custom.xml", MAX_META_BYTES) if found else None)


def _pdf(data: bytes) -> Read:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every odd object of a damaged file
    out = Read()
    try:
        with pdf_limits(MAX_PART_BYTES):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted and not _decrypts(reader):
                out.unreadable = "the PDF is password-protected: its words and metadata cannot be read"
                return out
            info = reader.metadata or {}
            in_info = info.get("/AIGC")
            in_xmp = _pdf_xmp(reader)
            found = [xmp.parse_fields(str(in_info))] if in_info is not None else []
            found += [in_xmp] if in_xmp is not None else []
            if found:
                out.found = next((f for f in found if f["error"]), found[0])
            if len(found) == 2 and found[0]["fields"] != found[1]["fields"]:
                out.problems.append("the info dictionary's /AIGC and the XMP packet's TC260:AIGC differ")
            pages = reader.pages
            first = pages[0].extract_text() if len(pages) else ""
            last = pages[len(pages) - 1].extract_text() if len(pages) > 1 else ""
            out.paragraphs = _paragraphs(f"{first}\n{last}")
    except RecursionError:
        raise TextUnreadable("the PDF's objects nest without end") from None
    except (PyPdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, OSError) as e:
        raise TextUnreadable(f"not a readable PDF ({type(e).__name__}: {e})") from None
    return out


def _decrypts(reader: Any) -> bool:
    """An empty user password (copy/print restrictions only) opens as in any reader; a real password does not."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - any failure to decrypt means it cannot be read
        return False


def _pdf_xmp(reader: Any) -> dict[str, Any] | None:
    ref = reader.trailer["/Root"].get("/Metadata")
    if ref is None:
        return None
    raw = ref.get_object().get_data()
    if len(raw) > MAX_META_BYTES:
        raise TextUnreadable(f"the PDF's XMP metadata is larger than {MAX_META_BYTES:,} bytes")
    return xmp.label_in_packet(raw.decode("utf-8", "replace"))


READERS = {MARKDOWN: _markdown, PLAIN: _plain, DOCX: _docx, PDF: _pdf}


# -- the report ---------------------------------------------------------------------------------------------------
def _squeeze(text: str) -> str:
    return _SPACE.sub("", text)


def notice(paragraphs: list[str]) -> dict[str, Any]:
    """Where the explicit notice stands: `start` (the first paragraph), `end` (the last), `middle` (anywhere else:
    the Measures allow "a suitable place"); absent when the words do not say it."""
    squeezed = [_squeeze(p) for p in paragraphs]
    for lang, words in NOTICE.items():
        want = _squeeze(words)
        if squeezed and squeezed[0].startswith(want):
            where = "start"
        elif squeezed and squeezed[-1].endswith(want):
            where = "end"
        elif any(want in p for p in squeezed):
            where = "middle"
        else:
            continue
        return {"status": "valid", "where": where, "text": words, "lang": lang}
    return {"status": "absent"}


def verify_text(data: bytes, mime: str, keys: LabelKeys, lookup: AssetLookup | None) -> dict[str, Any]:
    """The report of a text export (`mime` from `sniff`), in the images' shape (verify.verify_image): implicit,
    c2pa and watermark (text has neither: not_checkable), the notice, the asset the label names, the summary.
    TextUnreadable where a DOCX or PDF cannot be read."""
    read = READERS[mime](data)
    implicit = check_label(read.found, keys)
    if read.problems and implicit["status"] != "absent":
        implicit["status"] = "invalid"
        implicit["problems"] = [*implicit.get("problems", []), *read.problems]
    elif read.problems:
        implicit = {"status": "invalid", "problems": read.problems}
    if read.unreadable:
        implicit = {"status": "not_checkable", "reason": read.unreadable}
    no_media = "text exports carry no C2PA manifest or invisible watermark (provenance/text.py)"
    said = {"status": "not_checkable", "reason": read.unreadable} if read.unreadable else notice(read.paragraphs)
    report: dict[str, Any] = {
        "mime": mime,
        "implicit": implicit,
        "c2pa": {"status": "not_checkable", "reason": no_media},
        "watermark": {"status": "not_checkable", "reason": no_media},
        "visible": {},
        "notice": said,
    }
    report["asset"] = identify(report, lookup)
    report["summary"] = summary(report)
    return report
