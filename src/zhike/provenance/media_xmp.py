"""The TC260 XMP packet in audio and video containers, where exiftool reads it: a WAV's `_PMX` chunk and an MP4/M4A
top-level `uuid` box (the XMP UUID), beside the AIGC tag ffmpeg writes (provenance/media.py).

Both are inserted without touching the media data: the WAV chunk is appended (RIFF size updated), the MP4 box goes
at the end of the file (no chunk offset moves). Reading walks the top level only and is bounded like xmp.py's.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from zhike.provenance.xmp import MAX_PARTS, MAX_XMP_BYTES, XmpError, XmpTooLarge

XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")  # Adobe XMP spec part 3, ISO base media files
WAV_XMP = b"_PMX"
WAV_INFO = b"LIST"


def _wav_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(kind, start, end) of each chunk after the WAVE header, end including the pad byte."""
    if not (data[:4] == b"RIFF" and data[8:12] == b"WAVE"):
        raise XmpError("not a WAV file")
    pos = 12
    for _ in range(MAX_PARTS):
        if pos + 8 > len(data):
            return
        kind, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        end = pos + 8 + size + (size & 1)
        if pos + 8 + size > len(data):
            raise XmpError("truncated WAV chunk")
        yield kind, pos, min(end, len(data))
        pos = end
    raise XmpTooLarge(f"the WAV file has more than {MAX_PARTS} chunks", MAX_PARTS)


def _riff(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def _info_list(comment: str) -> bytes:
    """A LIST/INFO chunk with ICMT = `comment` (ffprobe reads it as the `comment` tag, exiftool as RIFF:Comment)."""
    text = comment.encode("utf-8") + b"\x00"
    return _riff(WAV_INFO, b"INFO" + _riff(b"ICMT", text))


def insert_wav(data: bytes, packet: bytes, *, comment: str) -> bytes:
    """Replace any `_PMX` chunk and INFO list with ours (XMP packet; ICMT `comment`), appended after the audio."""
    kept = [
        data[start:end]
        for kind, start, end in _wav_chunks(data)
        if kind != WAV_XMP and not (kind == WAV_INFO and data[start + 8 : start + 12] == b"INFO")
    ]
    body = b"WAVE" + b"".join(kept) + _info_list(comment) + _riff(WAV_XMP, packet)
    if len(body) > 0xFFFFFFFF:
        raise XmpError("WAV file too large for RIFF")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _boxes(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of the top-level ISO BMFF boxes (MP4, M4A, MOV)."""
    pos = 0
    for _ in range(MAX_PARTS):
        if pos + 8 > len(data):
            return
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:  # 64-bit size follows
            if pos + 16 > len(data):
                raise XmpError("truncated MP4 box")
            size, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:  # to the end of the file
            size = len(data) - pos
        if size < head or pos + size > len(data):
            raise XmpError("truncated MP4 box")
        yield kind, pos, pos + size
        pos += size
    raise XmpTooLarge(f"the MP4 file has more than {MAX_PARTS} top-level boxes", MAX_PARTS)


def insert_isobmff(data: bytes, packet: bytes) -> bytes:
    """Drop any XMP uuid box and append ours at the end (no offsets in moov change: nothing before it moves)."""
    kept = [
        data[start:end]
        for kind, start, end in _boxes(data)
        if not (kind == b"uuid" and data[start + 8 : start + 24] == XMP_UUID)
    ]
    if not kept or data[4:8] != b"ftyp":
        raise XmpError("not an MP4 file")
    box = struct.pack(">I", 24 + len(packet)) + b"uuid" + XMP_UUID + packet
    return b"".join(kept) + box


def extract_packets(data: bytes) -> list[bytes]:
    """The XMP packets of a WAV or MP4/M4A file (empty for other or damaged files)."""
    found: list[bytes] = []
    try:
        if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            found = [data[s + 8 : e].rstrip(b"\x00") for k, s, e in _wav_chunks(data) if k == WAV_XMP]
        elif data[4:8] == b"ftyp":
            found = [data[s + 24 : e] for k, s, e in _boxes(data) if k == b"uuid" and data[s + 8 : s + 24] == XMP_UUID]
    except XmpTooLarge:
        raise
    except (XmpError, struct.error):
        return []
    if sum(map(len, found)) > MAX_XMP_BYTES:
        raise XmpTooLarge(f"the XMP metadata is larger than {MAX_XMP_BYTES} bytes", MAX_XMP_BYTES)
    return found
