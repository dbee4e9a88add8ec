"""Photos sent with batch data as one ZIP: the image files in it, read with every size bounded before it is spent.

The central directory is checked first (file count, declared sizes, compression ratio: zip bombs), then each
member is inflated in chunks that stop at its declared size and at what is left of the budget, so a lying header
gains nothing. Names that climb out of the archive (`../`, absolute, drive letters) and archives inside it are
refused: nothing here is ever written to disk under its own name, but a ZIP like that is not a folder of photos.
Files that are not images by name (a readme, macOS's `__MACOSX/` forks) are skipped.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from zhike.core.errors import InvalidInput
from zhike.design.xlsx import data_limit

# Image files by name: the formats uploads accept (services/images.py ACCEPTED_NAMES); a folder scan uses it too.
IMAGE_SUFFIXES = frozenset(
    [".jpg", ".jpeg", ".jpe", ".png", ".webp", ".heic", ".heif", ".avif", ".tif", ".tiff", ".bmp", ".gif"]
)
ARCHIVE_SUFFIXES = frozenset([".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz"])
RATIO_FROM = 1_000_000  # small files may compress well (a flat PNG); the ratio counts from 1 MB inflated
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ZipLimits:
    max_bytes: int  # all photos inflated
    max_entries: int
    max_ratio: int


@dataclass(frozen=True)
class Photo:
    name: str  # the file's own name, folders dropped: "咖啡杯.jpg"
    data: bytes


NESTED = "an archive inside the archive: put the photos in one ZIP"


def _unsafe(what: str, name: str, field: str) -> InvalidInput:
    return InvalidInput(
        f"the ZIP holds {name[:120]!r}: {what}",
        code="archive_unsafe",
        field=field,
        ctx={"what": "nested" if what == NESTED else "path", "name": name[:120]},
    )


def _climbs(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":")


def read_photo_zip(data: bytes, limits: ZipLimits, *, field: str = "file") -> list[Photo]:
    """The image files of a ZIP, in archive order; 413 `data_too_large` past a limit (ctx.what: zip_members,
    zip_ratio, uncompressed_bytes), 422 `archive_unsafe` for a path out of the archive or an archive inside it,
    422 `archive_invalid` when it is not a ZIP."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as e:
        raise InvalidInput(f"not a readable ZIP file ({e})", code="archive_invalid", field=field) from None
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > limits.max_entries:
        raise data_limit(f"the ZIP holds {len(infos)} files", "zip_members", limits.max_entries, field)
    wanted = []
    for info in infos:
        name = info.filename
        if _climbs(name):
            raise _unsafe("a path outside the archive", name, field)
        suffix = PurePosixPath(name).suffix.lower()
        if suffix in ARCHIVE_SUFFIXES:
            raise _unsafe(NESTED, name, field)
        parts = name.split("/")
        if parts[0] == "__MACOSX" or parts[-1].startswith(".") or suffix not in IMAGE_SUFFIXES:
            continue
        if info.file_size > RATIO_FROM and info.file_size > limits.max_ratio * max(1, info.compress_size):
            ratio = info.file_size // max(1, info.compress_size)
            raise data_limit(f"{name} inflates {ratio} times", "zip_ratio", limits.max_ratio, field)
        wanted.append(info)
    declared = sum(i.file_size for i in wanted)
    if declared > limits.max_bytes:
        raise data_limit(f"the photos inflate to {declared} bytes", "uncompressed_bytes", limits.max_bytes, field)
    out: list[Photo] = []
    left = limits.max_bytes
    for info in wanted:
        body = _inflate(zf, info, min(info.file_size, left), limits.max_bytes, field)
        left -= len(body)
        if body[:4] == b"PK\x03\x04":  # a ZIP renamed .jpg
            raise _unsafe(NESTED, info.filename, field)
        out.append(Photo(PurePosixPath(info.filename.replace("\\", "/")).name, body))
    return out


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, limit: int, field: str) -> bytes:
    """The member's bytes, never more than `budget` (its declared size, or what the limit leaves)."""
    buf = bytearray()
    try:
        with zf.open(info) as f:
            while chunk := f.read(_CHUNK):
                buf += chunk
                if len(buf) > budget:  # more than its header said, or past the total: a crafted archive
                    raise data_limit(f"{info.filename} inflates past its size", "uncompressed_bytes", limit, field)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:  # corrupt, encrypted, odd method
        raise InvalidInput(
            f"{info.filename}: cannot be read from the ZIP ({e})", code="archive_invalid", field=field
        ) from None
    return bytes(buf)
