"""File names from what a file is: `抠图-咖啡杯-800x800.png` for a download, `咖啡杯.jpg` for an upload, a batch
design's ZIP member from its row's name column. One place decides how a name becomes safe on every OS."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from zhike.core.errors import InvalidInput
from zhike.core.registry import get_op
from zhike.core.rows import AssetRow

# Windows forbids these (and control characters); '/' and '\' would make folders.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
MAX_PART = 60  # characters of one part (a name): the whole name stays well under the 255-byte limit of most FSs
# The data column that names a row, first match wins (case-insensitive, spaces ignored).
NAME_COLUMNS = (
    "name",
    "名称",
    "商品名",
    "商品名称",
    "品名",
    "产品名",
    "产品名称",
    "title",
    "标题",
    "filename",
    "文件名",
)


def safe_part(text: Any, limit: int = MAX_PART) -> str:
    """`text` as one part of a file name: NFC, no path or reserved characters, no leading/trailing dots or spaces
    (Windows drops them), at most `limit` characters; "" when nothing is left."""
    s = unicodedata.normalize("NFC", str(text or ""))
    s = _UNSAFE.sub("_", s)
    s = re.sub(r"\s+", " ", s).strip(" ._")
    return s[:limit].rstrip(" ._")


def lang_of(query: str | None, accept_language: str | None) -> str:
    """ "zh" or "en": the `lang` query parameter when given, else the first zh/en of Accept-Language (default en)."""
    if query in ("zh", "en"):
        return query
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


def op_title(op: str | None, lang: str) -> str:
    """An operation's short name in `lang` (its studio label, else its title); the op's id when it is unknown."""
    if not op:
        return "zhike"
    try:
        spec = get_op(op)
    except InvalidInput:  # an asset of an op that is no longer registered still downloads
        return op
    label = spec.studio.label
    if label:
        return label[0] if lang == "zh" else label[1]
    return spec.title.get(lang) or spec.title.get("en") or op


def download_name(row: AssetRow, ext: str, lang: str, size: tuple[int, int]) -> str:
    """`<op title>-<name>-<WxH>.<ext>`; an upload is `<name>.<ext>` (its size only when resized); without a name
    the op title and a short id."""
    w, h = size
    name = safe_part(row.name)
    if row.origin == "upload" and name:
        resized = (w, h) != (row.width, row.height)
        return f"{name}-{w}x{h}.{ext}" if resized else f"{name}.{ext}"
    title = safe_part(op_title(row.op, lang)) or "zhike"
    return f"{title}-{name or row.id[:8]}-{w}x{h}.{ext}"


def text_download_name(row: AssetRow, ext: str, lang: str) -> str:
    """A text asset's download: `<op title>-<name>.<ext>` (文案-保温杯.docx); without a name the op and a short id."""
    title = safe_part(op_title(row.op, lang)) or "zhike"
    return f"{title}-{safe_part(row.name) or row.id[:8]}.{ext}"


def content_disposition(kind: str, filename: str) -> str:
    """RFC 6266/5987: an ASCII fallback for old clients plus the UTF-8 name every current browser uses."""
    stem, dot, ext = filename.rpartition(".")
    if not dot:
        stem, ext = filename, ""
    plain = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    plain = re.sub(r"[^A-Za-z0-9._-]+", "_", plain)
    plain = re.sub(r"([-_])[-_]+", r"\1", plain).strip("-_.") or "download"
    ascii_name = f"{plain}.{ext}" if dot else plain
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def row_name(values: Mapping[str, Any]) -> str:
    """The name of a data row from its name column (`name`, `名称`, `商品名`, ...), safe for a file; "" if none."""
    keys = {re.sub(r"\s+", "", str(k)).lower(): k for k in values}
    for col in NAME_COLUMNS:
        key = keys.get(col)
        if key is not None:
            name = safe_part(values[key])
            if name:
                return name
    return ""


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name-2`, `name-3`, ... (before the extension) when already in `taken`, compared ignoring case
    (Windows and macOS file systems do); adds the result to `taken`."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}-{n}.{ext}" if dot else f"{stem}-{n}"
    taken.add(candidate.lower())
    return candidate
