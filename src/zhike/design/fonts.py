"""Installed fonts, a fallback chain and per-character font choice from each font's cmap (so nothing draws as tofu).

Fonts are found lazily (first use, not import) by file name under the usual font folders; collections (.ttc) are
matched to the family by their name table. Loaded FreeType faces and cmaps are cached for the process.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from fontTools.ttLib import TTCollection, TTFont
from PIL import ImageFont

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")

# Family -> (regular file, bold file or None). Order of DEFAULT_CHAIN decides the fallback.
KNOWN_FAMILIES: dict[str, tuple[str, str | None]] = {
    "Noto Sans CJK SC": ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc"),
    "WenQuanYi Zen Hei": ("wqy-zenhei.ttc", None),
    "WenQuanYi Micro Hei": ("wqy-microhei.ttc", None),
    "DejaVu Sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
}
DEFAULT_CHAIN = ("Noto Sans CJK SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "DejaVu Sans")
GENERIC = {"", "sans", "sans-serif", "default", "黑体"}

# Characters that never need a glyph: joiners and variation selectors of emoji sequences.
INVISIBLE = {0x200B, 0x200C, 0x200D, 0x2060, 0xFE0E, 0xFE0F}


@dataclass(frozen=True)
class FontFace:
    """One face of a font file. `faux_bold`: bold asked for, the family has none: drawn with a thin own stroke."""

    family: str
    path: str
    index: int = 0
    bold: bool = False
    faux_bold: bool = False

    @property
    def name(self) -> str:
        return f"{self.family} Bold" if self.bold or self.faux_bold else self.family

    def has(self, ch: str) -> bool:
        return ord(ch) in _cmap(self.path, self.index)

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        return _truetype(self.path, self.index, size)

    def faux_width(self, size: int) -> int:
        return max(1, round(size / 30)) if self.faux_bold else 0


_lock = threading.Lock()
_extra: dict[str, tuple[str, int, str | None]] = {}


def register_font(family: str, path: str | os.PathLike[str], *, index: int = 0, bold_path: str | None = None) -> None:
    """Make a font file usable by family name in templates (e.g. a merchant's brand font)."""
    with _lock:
        _extra[family] = (str(path), index, bold_path)
        installed.cache_clear()
        chain.cache_clear()


@cache
def _files() -> dict[str, str]:
    found: dict[str, str] = {}
    for d in FONT_DIRS:
        root = Path(d).expanduser()
        if not root.is_dir():
            continue
        for dirpath, _, names in sorted(os.walk(root)):
            for n in sorted(names):
                found.setdefault(n, os.path.join(dirpath, n))
    return found


def _face_index(path: str, family: str) -> int:
    if not path.lower().endswith((".ttc", ".otc")):
        return 0
    coll = TTCollection(path, lazy=True)
    for i, f in enumerate(coll.fonts):
        if f["name"].getDebugName(1) == family:
            return i
    return 0


@cache
def installed() -> dict[str, tuple[FontFace, FontFace | None]]:
    """Family -> (regular face, bold face or None) for the families present on this machine."""
    out: dict[str, tuple[FontFace, FontFace | None]] = {}
    files = _files()
    for family, (reg, bold) in KNOWN_FAMILIES.items():
        path = files.get(reg)
        if path is None:
            continue
        regular = FontFace(family, path, _face_index(path, family))
        bpath = files.get(bold) if bold else None
        out[family] = (regular, FontFace(family, bpath, _face_index(bpath, family), bold=True) if bpath else None)
    for family, (path, index, bold_path) in _extra.items():
        out[family] = (FontFace(family, path, index), FontFace(family, bold_path, 0, bold=True) if bold_path else None)
    return out


@lru_cache(maxsize=64)
def chain(family: str, weight: str = "regular") -> tuple[FontFace, ...]:
    """The requested family (when installed) followed by the default chain, for one weight."""
    fams = installed()
    order = [family] if family in fams else []
    order += [f for f in (*_extra, *DEFAULT_CHAIN) if f in fams and f not in order]
    faces: list[FontFace] = []
    for fam in order:
        regular, bold = fams[fam]
        if weight == "bold":
            faces.append(bold or FontFace(regular.family, regular.path, regular.index, faux_bold=True))
        else:
            faces.append(regular)
    if not faces:
        raise RuntimeError("no usable font installed: install fonts-wqy-zenhei or fonts-dejavu-core")
    return tuple(faces)


def family_known(family: str) -> bool:
    return family.strip().lower() in GENERIC or family in installed()


@cache
def _cmap(path: str, index: int) -> frozenset[int]:
    with TTFont(path, fontNumber=index, lazy=True) as f:
        return frozenset(f.getBestCmap() or {})


@lru_cache(maxsize=512)
def _truetype(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: the same glyph positions on every machine, with or without libraqm.
    return ImageFont.truetype(path, size, index=index, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=8192)
def face_for(ch: str, faces: tuple[FontFace, ...]) -> FontFace | None:
    """The first face of the chain whose cmap has `ch`; whitespace takes the first face; None: no installed glyph."""
    if ch.isspace():
        return faces[0]
    for face in faces:
        if face.has(ch):
            return face
    return None


def describe(ch: str) -> str:
    return f"U+{ord(ch):04X} {ch!r}"
