"""The TC260 implicit label: XMP `TC260:AIGC` holding the seven fields of GB 45438-2025 as JSON.

Written at the container level (PNG iTXt chunk, JPEG APP1 segment, WebP `XMP ` chunk) so that adding the label
never re-encodes pixels. Reading accepts the attribute form we write and the element form other tools write.
"""

from __future__ import annotations

import html
import json
import re
import struct
import zlib
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import quoteattr

from zhike.core import png

TC260_NS = "http://www.tc260.org.cn/ns/AIGC/1.0/"
FIELDS = (
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
)
# TC260-PG-20258A: "1" is AI-generated, "2" possibly, "3" suspected (the last two are for platforms that detect).
LABEL_VALUES = {
    "1": "AI-generated / AI生成",
    "2": "possibly AI-generated / 可能为AI生成",
    "3": "suspected / 疑似AI生成",
}

_XMP_KEY = b"XML:com.adobe.xmp"
_JPEG_XMP_HEAD = b"http://ns.adobe.com/xap/1.0/\x00"


class XmpError(ValueError):
    """The container could not be parsed to insert the label (damaged file or unsupported format)."""


def aigc_json(fields: dict[str, str]) -> str:
    """The seven fields as the JSON the label carries (also the AIGC tag of audio and video: provenance/media.py)."""
    return json.dumps({k: str(fields.get(k, "")) for k in FIELDS}, ensure_ascii=False, separators=(",", ":"))


def build_packet(fields: dict[str, str]) -> bytes:
    """An XMP packet with `TC260:AIGC` = the JSON of the seven fields (as an attribute; exiftool reads it)."""
    payload = aigc_json(fields)
    xml = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'  <rdf:Description rdf:about="" xmlns:TC260="{TC260_NS}"\n'
        f"   TC260:AIGC={quoteattr(payload)}/>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return xml.encode("utf-8")


# -- writing ---------------------------------------------------------------------------------------------
def insert_png(data: bytes, packet: bytes) -> bytes:
    """Replace any XMP iTXt chunk with ours (uncompressed, as the XMP spec asks), placed before the image data.
    The other chunks are copied as they are (no CRC recomputed over megabytes of image data)."""
    try:
        spans = png.spans(data)
    except png.PngError as e:
        raise XmpError(str(e)) from e
    itxt = png.chunk(b"iTXt", _XMP_KEY + b"\x00\x00\x00\x00\x00" + packet)
    out, placed = [png.SIGNATURE], False
    for kind, start, end in spans:
        if kind == b"iTXt" and data[start + 8 : start + 8 + len(_XMP_KEY) + 1] == _XMP_KEY + b"\x00":
            continue
        if kind == b"IDAT" and not placed:
            out.append(itxt)
            placed = True
        out.append(data[start:end])
    if not placed:
        raise XmpError("PNG has no image data")
    out.append(b"" if spans and spans[-1][0] == b"IEND" else png.chunk(b"IEND", b""))
    return b"".join(out)


def insert_jpeg(data: bytes, packet: bytes) -> bytes:
    """Replace any XMP APP1 segment with ours, right after SOI/APP0/other APP1 (before the frame)."""
    if not data.startswith(b"\xff\xd8"):
        raise XmpError("not a JPEG file")
    if len(packet) + len(_JPEG_XMP_HEAD) + 2 > 0xFFFF:
        raise XmpError("XMP packet too large for one JPEG segment")
    pos, head = 2, [b"\xff\xd8"]
    while pos + 4 <= len(data) and data[pos] == 0xFF and 0xE0 <= data[pos + 1] <= 0xEF:
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        seg = data[pos : pos + 2 + length]
        if len(seg) < 2 + length:
            raise XmpError("truncated JPEG segment")
        if not (data[pos + 1] == 0xE1 and seg[4:].startswith(_JPEG_XMP_HEAD)):
            head.append(seg)
        pos += 2 + length
    body = _JPEG_XMP_HEAD + packet
    ours = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    return b"".join(head) + ours + data[pos:]


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        raise XmpError("not a WebP file")
    out, pos = [], 12
    while pos + 8 <= len(data):
        if len(out) == MAX_PARTS:
            raise XmpTooLarge(f"the WebP file has more than {MAX_PARTS} chunks", MAX_PARTS)
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if pos + 8 + size > len(data):
            raise XmpError("truncated WebP chunk")
        out.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def _riff_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def insert_webp(data: bytes, packet: bytes, *, width: int, height: int, has_alpha: bool) -> bytes:
    """Add an `XMP ` chunk; a simple (VP8/VP8L) file gets the VP8X header the extended format needs."""
    chunks = [(k, b) for k, b in _riff_chunks(data) if k != b"XMP "]
    if chunks and chunks[0][0] == b"VP8X":
        vp8x = bytearray(chunks[0][1])
        vp8x[0] |= 0x04  # XMP flag
        chunks[0] = (b"VP8X", bytes(vp8x))
    else:
        flags = 0x04 | (0x10 if has_alpha else 0)
        body = bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        chunks.insert(0, (b"VP8X", body))
    chunks.append((b"XMP ", packet))
    payload = b"WEBP" + b"".join(_riff_chunk(k, b) for k, b in chunks)
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


# -- reading ---------------------------------------------------------------------------------------------
# Reading takes files from anyone (`zhike verify`, POST /api/v1/verify), so every step is bounded: the container walk
# stops after MAX_PARTS chunks or segments, the XMP packets of a file inflate to MAX_XMP_BYTES together at most
# (real packets are a few KB, Photoshop's with a long history a few hundred; Pillow caps a text chunk at the same
# 1 MB), and the property is found by a forward-only scan (a lazy regex over hostile text is quadratic: 52 s for a
# 674-byte PNG).
MAX_XMP_BYTES = 1 << 20
MAX_PARTS = 50_000  # PNG chunks, JPEG segments or WebP chunks walked (real files have tens; IDAT in 8 KB: thousands)
_PROP = "TC260:AIGC"
_ASSIGN = re.compile(r"""\s*+=\s*+(["'])""")  # possessive: no backtracking into the whitespace


class XmpTooLarge(XmpError):
    """The file's metadata is larger than a label reader should read (a decompression bomb, a chunk flood)."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


def _png_texts(data: bytes) -> Iterator[bytes]:
    """The bodies of a PNG's iTXt chunks up to IEND, walked lazily (no list of every chunk) and at most MAX_PARTS."""
    pos = len(png.SIGNATURE)
    for _ in range(MAX_PARTS):
        if pos + 8 > len(data):
            return
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise XmpError("truncated PNG chunk")
        if kind == b"iTXt":
            yield data[pos + 8 : end - 4]
        if kind == b"IEND":
            return
        pos = end
    raise XmpTooLarge(f"the PNG has more than {MAX_PARTS} chunks", MAX_PARTS)


def _jpeg_xmp(data: bytes) -> Iterator[bytes]:
    pos = 2
    for _ in range(MAX_PARTS):
        if not (pos + 4 <= len(data) and data[pos] == 0xFF):
            return
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no metadata after this
            return
        (length,) = struct.unpack_from(">H", data, pos + 2)
        seg = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and seg.startswith(_JPEG_XMP_HEAD):
            yield seg[len(_JPEG_XMP_HEAD) :]
        pos += 2 + length
    raise XmpTooLarge(f"the JPEG has more than {MAX_PARTS} segments before its image data", MAX_PARTS)


def _itxt_xmp(body: bytes, room: int) -> bytes | None:
    """The XMP text of an iTXt body (None: another keyword, or a compression method other than zlib), inflated to
    `room` bytes at most: past that XmpTooLarge, without inflating the rest."""
    if not body.startswith(_XMP_KEY + b"\x00"):
        return None
    rest = body[len(_XMP_KEY) + 1 :]
    compressed, method, rest = rest[0], rest[1], rest[2:]
    text = rest.split(b"\x00", 2)[-1]  # skip language tag and translated keyword
    if not compressed:
        return text
    if method != 0:
        return None
    inflate = zlib.decompressobj()
    out = inflate.decompress(text, room + 1)
    if len(out) > room:
        raise XmpTooLarge(f"the XMP metadata inflates to more than {MAX_XMP_BYTES} bytes", MAX_XMP_BYTES)
    return out


def extract_packets(data: bytes) -> list[bytes]:
    """Every XMP packet in a PNG, JPEG or WebP file (container walk; no decoding of pixels). A damaged container
    has no readable packet; XmpTooLarge where the walk or the packets pass the limits above."""
    packets: list[bytes] = []
    room = MAX_XMP_BYTES

    def keep(packet: bytes) -> None:
        nonlocal room
        if len(packet) > room:
            raise XmpTooLarge(f"the XMP metadata is larger than {MAX_XMP_BYTES} bytes", MAX_XMP_BYTES)
        room -= len(packet)
        packets.append(packet)

    try:
        if data.startswith(png.SIGNATURE):
            for body in _png_texts(data):
                text = _itxt_xmp(body, room)
                if text is not None:
                    keep(text)
        elif data.startswith(b"\xff\xd8"):
            for packet in _jpeg_xmp(data):
                keep(packet)
        elif data[:4] == b"RIFF":
            for kind, body in _riff_chunks(data):
                if kind == b"XMP ":
                    keep(body)
    except XmpTooLarge:
        raise
    except (XmpError, zlib.error, struct.error, IndexError):
        pass  # a damaged container simply has no readable label
    return packets


def _attribute(text: str) -> str | None:
    """The value of the first `TC260:AIGC="..."` (or '...') attribute. Linear: the search only moves forward, and
    a quote with no closing partner is remembered, so no later attribute searches the rest of the text again."""
    pos, unclosed = 0, set()
    while (at := text.find(_PROP, pos)) != -1:
        pos = at + len(_PROP)
        m = _ASSIGN.match(text, pos)
        if m is None:
            continue
        pos, quote = m.end(), m[1]
        if quote in unclosed:
            continue
        end = text.find(quote, pos)
        if end == -1:
            unclosed.add(quote)
            continue
        return text[pos:end]
    return None


def _element(text: str) -> str | None:
    """The content of the first `<TC260:AIGC>...</TC260:AIGC>`: when the first opening tag has no closing tag
    after it, no later one has."""
    start = text.find(f"<{_PROP}>")
    if start == -1:
        return None
    end = text.find(f"</{_PROP}>", start)
    return text[start + len(_PROP) + 2 : end] if end != -1 else None


def _unescape(text: str) -> str:
    return html.unescape(text)  # XML entities (&quot; &amp; &#...;) are a subset of HTML's


def read_label(data: bytes) -> dict[str, Any] | None:
    """The TC260 label found in the file: {"raw": str, "fields": dict | None, "error": str | None}; None if absent.
    XmpTooLarge where the file's metadata passes the reading limits.

    Matched by the `TC260` prefix bound to the TC260 namespace (the prefix is what the guide fixes).
    """
    return label_from_packets(extract_packets(data))


def label_from_packets(packets: list[bytes]) -> dict[str, Any] | None:
    """`read_label` over XMP packets already taken out of their container (audio/video: provenance/media_xmp.py)."""
    for packet in packets:
        found = label_in_packet(packet.decode("utf-8", "replace"))
        if found is not None:
            return found
    return None


def label_in_packet(text: str) -> dict[str, Any] | None:
    """The TC260 label of one XMP packet's text (an image's, a PDF's metadata stream), as `read_label` says it."""
    if TC260_NS not in text:
        return None
    value = _attribute(text)
    raw = _unescape(value) if value is not None else None
    if raw is None:
        value = _element(text)
        raw = _unescape(value.strip()) if value is not None else None
    if raw is None:
        return {"raw": "", "fields": None, "error": "TC260 namespace present but no AIGC property"}
    return parse_fields(raw)


def parse_fields(raw: str) -> dict[str, Any]:
    """The TC260 JSON as `read_label` reports it, however it was carried (XMP, an ID3 or MP4 tag, a text export)."""
    try:
        fields = json.loads(raw)
    except (ValueError, RecursionError) as e:  # RecursionError: brackets nested a thousand deep
        return {"raw": raw, "fields": None, "error": f"AIGC is not JSON: {e}"}
    if not isinstance(fields, dict):
        return {"raw": raw, "fields": None, "error": "AIGC is not a JSON object"}
    return {"raw": raw, "fields": fields, "error": None}
