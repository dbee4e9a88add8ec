"""The colours of a product photo in words (红色, 藏青色, ...), so copy can say what the shopper will see.

The photo's background is left out: the colour most common along its border (the white or grey sweep of a studio
shot), and transparent pixels of a cut-out. What is left is reduced to a few colours and each is named by the
nearest of the named colours below in CIE Lab (distances there follow what eyes see, RGB distances do not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# (zh, en, sRGB): the colour words Chinese listings use for clothes, goods and packaging
NAMED: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("黑色", "black", (25, 25, 25)),
    ("白色", "white", (245, 245, 245)),
    ("灰色", "grey", (128, 128, 128)),
    ("浅灰色", "light grey", (195, 195, 195)),
    ("红色", "red", (200, 30, 35)),
    ("酒红色", "wine red", (110, 20, 40)),
    ("粉色", "pink", (240, 160, 185)),
    ("橙色", "orange", (240, 130, 30)),
    ("黄色", "yellow", (240, 210, 40)),
    ("米色", "beige", (230, 215, 180)),
    ("卡其色", "khaki", (190, 165, 115)),
    ("棕色", "brown", (120, 75, 40)),
    ("绿色", "green", (45, 150, 65)),
    ("墨绿色", "dark green", (30, 70, 45)),
    ("青色", "teal", (30, 160, 160)),
    ("蓝色", "blue", (40, 90, 200)),
    ("天蓝色", "sky blue", (125, 185, 235)),
    ("藏青色", "navy", (25, 35, 80)),
    ("紫色", "purple", (120, 60, 160)),
    ("金色", "gold", (205, 165, 60)),
)


@dataclass(frozen=True)
class NamedColour:
    zh: str
    en: str
    hex: str  # the photo's own colour, not the named one
    share: float  # of the product's pixels


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) in 0-255 to CIE Lab (D65)."""
    c = np.asarray(rgb, dtype=np.float64) / 255
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


_NAMED_LAB = _lab(np.array([rgb for _, _, rgb in NAMED]))


def name_colour(rgb: tuple[int, int, int]) -> tuple[str, str]:
    """The (zh, en) name of the named colour nearest to `rgb`."""
    zh, en, _ = NAMED[int(((_NAMED_LAB - _lab(np.array(rgb))) ** 2).sum(axis=1).argmin())]
    return zh, en


def main_colours(image: Image.Image, n: int = 3, *, min_share: float = 0.08) -> list[NamedColour]:
    """Up to `n` named colours of the product in `image`, most of it first, each at least `min_share` of it."""
    img = image.convert("RGBA")
    img.thumbnail((96, 96))
    a = np.asarray(img)
    opaque = a[a[..., 3] >= 128][:, :3]
    if not len(opaque):
        return []
    edge = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    solid = edge[edge[:, 3] >= 128][:, :3]
    kept = opaque
    if len(solid) > len(edge) // 2:
        # a border mostly of one colour is the backdrop; pixels close to it (Lab distance < 12) are not the product
        values, counts = np.unique(solid, axis=0, return_counts=True)
        far = ((_lab(opaque) - _lab(values[counts.argmax()])) ** 2).sum(axis=1) > 144
        if far.sum() >= len(opaque) * 0.05:  # a photo that is all backdrop: its colour is the product's
            kept = opaque[far]
    kept_list = [tuple(int(c) for c in p) for p in kept]
    q = Image.new("RGB", (len(kept_list), 1))
    q.putdata(kept_list)
    pal = q.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    palette = pal.getpalette() or []
    counts = sorted(pal.getcolors() or [], reverse=True)
    out: dict[str, NamedColour] = {}
    total = len(kept_list)
    for count, index in counts:
        rgb = (palette[3 * index], palette[3 * index + 1], palette[3 * index + 2])
        zh, en = name_colour(rgb)
        share = count / total
        if zh in out:
            prev = out[zh]
            out[zh] = NamedColour(zh, en, prev.hex, round(prev.share + share, 3))
        elif share >= min_share:
            out[zh] = NamedColour(zh, en, "#{:02x}{:02x}{:02x}".format(*rgb), round(share, 3))
    return sorted(out.values(), key=lambda c: -c.share)[:n]
