"""Installed fonts, a fallback chain and per-character font choice from each font's cmap (so nothing draws as tofu).

Fonts are found lazily (first use, not import) by file name: first in the folders of the embedded assets (Zhike's
own Source Han Sans SC, fetched from npm by `zhike models fetch-embedded`, so Chinese renders on a server with no
system fonts), then under the usual system font folders; collections (.ttc) are matched to the family by their name
table. Loaded FreeType faces and cmaps are cached for the process; `refresh()` forgets what was found.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from fontTools.ttLib import TTCollection, TTFont
from PIL import ImageFont

from zhike.settings import get_settings

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")

# Family -> (regular file, bold file or None). Order of DEFAULT_CHAIN decides the fallback: the bundled font first,
# then system CJK fonts, then DejaVu for the Latin/symbol characters the CJK fonts lack (e.g. ą, ☕).
BUNDLED_FAMILY = "Source Han Sans SC"
KNOWN_FAMILIES: dict[str, tuple[str, str | None]] = {
    BUNDLED_FAMILY: ("SourceHanSansSC-Regular.otf", "SourceHanSansSC-Bold.otf"),
    "Noto Sans CJK SC": ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc"),
    "WenQuanYi Zen Hei": ("wqy-zenhei.ttc", None),
    "WenQuanYi Micro Hei": ("wqy-microhei.ttc", None),
    "DejaVu Sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
}
DEFAULT_CHAIN = (BUNDLED_FAMILY, "Noto Sans CJK SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "DejaVu Sans")
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


def refresh() -> None:
    """Forget the fonts found (after `zhike models fetch-embedded` or a font install in a running process; tests)."""
    with _lock:
        _files.cache_clear()
        installed.cache_clear()
        chain.cache_clear()


def bundled_dirs() -> list[Path]:
    """The embedded assets' folders (a file there has passed its SHA-256 check), searched before the system's."""
    root = get_settings().embedded_path
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("_"))  # not _downloads


@cache
def _files() -> dict[str, str]:
    found: dict[str, str] = {}
    for root in (*bundled_dirs(), *(Path(d).expanduser() for d in FONT_DIRS)):
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
        raise RuntimeError(
            f"no usable font installed: run `zhike models fetch-embedded` (puts {BUNDLED_FAMILY} in "
            f"{get_settings().embedded_path}) or install fonts-noto-cjk / fonts-dejavu-core"
        )
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


def runs(text: str, faces: tuple[FontFace, ...]) -> list[tuple[str, FontFace]] | None:
    """`text` cut into runs of consecutive characters drawn by one face (the first of `faces` that has each one);
    None when some visible character is in no face. For one-line texts drawn outside templates (labels)."""
    out: list[tuple[str, FontFace]] = []
    for ch in text:
        if ord(ch) in INVISIBLE:
            continue
        face = face_for(ch, faces)
        if face is None:
            return None
        if out and out[-1][1] == face:
            out[-1] = (out[-1][0] + ch, face)
        else:
            out.append((ch, face))
    return out
