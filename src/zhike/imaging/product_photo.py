"""Marketplace main images from a cut-out product: backgrounds (colour, gradient, cover image), a contact shadow
from the product's own base, and framing by the alpha's bounding box with a margin. Pure numpy/Pillow, no model:
the product_photos op (批量主图) composes them, and anything else that needs a product on a clean backdrop may.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
SOLID = 128  # alpha at which a pixel counts as the product (its visible edge) for boxes and footprints


def solid_box(alpha: np.ndarray, level: int = SOLID) -> Box | None:
    """The box of the pixels at least `level` opaque (None when there are none)."""
    rows, cols = np.nonzero((alpha >= level).any(axis=1))[0], np.nonzero((alpha >= level).any(axis=0))[0]
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def gradient(size: tuple[int, int], colours: list[tuple[int, int, int]], angle: float) -> Image.Image:
    """A linear gradient through `colours` (evenly spaced) at `angle` degrees (0: left to right, 90: top to
    bottom), spanning the whole canvas along that direction."""
    w, h = size
    rad = math.radians(angle)
    dx, dy = math.cos(rad), math.sin(rad)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    proj = (xs - (w - 1) / 2) * dx + (ys - (h - 1) / 2) * dy
    half = max(1e-6, (abs(dx) * (w - 1) + abs(dy) * (h - 1)) / 2)
    t = np.clip((proj / half + 1) / 2, 0.0, 1.0)
    stops = np.linspace(0.0, 1.0, len(colours))
    cols = np.asarray(colours, np.float32)
    out = np.stack([np.interp(t, stops, cols[:, c]) for c in range(3)], axis=-1)
    return Image.fromarray(np.round(out).astype(np.uint8), "RGB")


def cover_fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` scaled to cover `size`, centre-cropped (a scene behind the product)."""
    return ImageOps.fit(image.convert("RGB"), size, Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class Placement:
    scale: float
    origin: tuple[int, int]  # where the cut-out's top-left goes on the canvas
    box: Box  # the product's solid box on the canvas


def frame_product(solid: Box, canvas: tuple[int, int], margin: float) -> Placement:
    """Scale and position a cut-out so its solid box fits inside the canvas less `margin` (a share of the short
    side, on every edge) as large as it can, centred."""
    (cw, ch), m = canvas, margin * min(canvas)
    bw, bh = solid[2] - solid[0], solid[3] - solid[1]
    scale = min((cw - 2 * m) / bw, (ch - 2 * m) / bh)
    # The box's centre lands on the canvas's centre; rounding once, on the origin, keeps it within a pixel.
    ox = round(cw / 2 - (solid[0] + bw / 2) * scale)
    oy = round(ch / 2 - (solid[1] + bh / 2) * scale)
    scaled = (
        ox + math.floor(solid[0] * scale),
        oy + math.floor(solid[1] * scale),
        ox + math.ceil(solid[2] * scale),
        oy + math.ceil(solid[3] * scale),
    )
    return Placement(scale, (ox, oy), scaled)


def place(cut: Image.Image, solid: Box, canvas: tuple[int, int], margin: float) -> tuple[Image.Image, Placement]:
    """The RGBA cut-out framed on a transparent canvas (Pillow resizes RGBA premultiplied: no dark fringes)."""
    f = frame_product(solid, canvas, margin)
    size = (max(1, round(cut.width * f.scale)), max(1, round(cut.height * f.scale)))
    layer = Image.new("RGBA", canvas, (0, 0, 0, 0))
    layer.paste(cut.resize(size, Image.Resampling.LANCZOS), f.origin)
    return layer, f


def contact_shadow(alpha: np.ndarray, strength: float) -> np.ndarray:
    """A soft contact shadow (0..1 darkening) where the product meets the ground: an ellipse under the base of the
    alpha (the columns whose lowest solid pixel is near the bottom), blurred; nothing above the product's middle.
    `strength` 0 gives none, 1 a dark core."""
    h, w = alpha.shape
    box = solid_box(alpha)
    if box is None or strength <= 0:
        return np.zeros((h, w), np.float32)
    x0, y0, x1, y1 = box
    solid = alpha[y0:y1, x0:x1] >= SOLID
    bottoms = (y1 - y0) - 1 - np.argmax(solid[::-1], axis=0)  # each column's lowest solid row (box-relative)
    has = solid.any(axis=0)
    near = has & (bottoms >= (y1 - y0) * 0.92 - 1)  # the base: what stands on the ground
    cols = np.nonzero(near)[0]
    fx0, fx1 = x0 + int(cols[0]), x0 + int(cols[-1]) + 1
    base = y1
    half = (fx1 - fx0) / 2 * 1.04
    ry = max(2.0, 0.05 * (fx1 - fx0), 0.012 * (y1 - y0))
    cx = (fx0 + fx1) / 2
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).ellipse((cx - half, base - ry * 0.6, cx + half, base + ry), fill=255)
    soft = mask.filter(ImageFilter.GaussianBlur(max(1.5, ry * 0.7)))
    core = Image.new("L", (w, h), 0)  # a darker, tighter line right at the base
    ImageDraw.Draw(core).ellipse((cx - half * 0.85, base - ry * 0.3, cx + half * 0.85, base + ry * 0.35), fill=255)
    core = core.filter(ImageFilter.GaussianBlur(max(1.0, ry * 0.25)))
    sh = np.maximum(np.asarray(soft, np.float32) / 255 * 0.55, np.asarray(core, np.float32) / 255 * 0.8)
    sh[: (y0 + y1) // 2] = 0  # a contact shadow lies on the ground, never up the product's sides
    return np.clip(sh * min(1.0, strength), 0.0, 1.0)


def compose(background: Image.Image | None, layer: Image.Image, shadow: np.ndarray | None) -> Image.Image:
    """The framed product over the background with the shadow darkening it; RGB, or RGBA on no background
    (the shadow as translucent black)."""
    if background is None:
        base = np.zeros((layer.height, layer.width, 4), np.uint8)
        if shadow is not None:
            base[..., 3] = np.round(shadow * 255).astype(np.uint8)
        return Image.alpha_composite(Image.fromarray(base, "RGBA"), layer)
    bg = background.convert("RGB")
    if shadow is not None and shadow.any():
        arr = np.asarray(bg, np.float32) * (1 - shadow[..., None] * 0.85)  # darkens, never pure black paint
        bg = Image.fromarray(np.round(arr).astype(np.uint8), "RGB")
    return Image.alpha_composite(bg.convert("RGBA"), layer).convert("RGB")
