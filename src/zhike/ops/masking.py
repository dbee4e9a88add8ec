"""Masks and canvases for the editing operations: every edit keeps the pixels outside its mask exactly."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from zhike.core.errors import InvalidInput


def binary_mask(mask: Image.Image, size: tuple[int, int], *, field: str) -> Image.Image:
    """White (>= 128) = the area to change. An RGBA mask uses its alpha if it has any transparency."""
    if mask.mode in ("RGBA", "LA") and np.asarray(mask.getchannel("A")).min() < 255:
        m = mask.getchannel("A")
    else:
        m = mask.convert("L")
    if m.size != size:
        m = m.resize(size, Image.NEAREST)
    out = m.point(lambda v: 255 if v >= 128 else 0)
    if out.getbbox() is None:
        raise InvalidInput("the mask is empty: paint the area to change in white", code="mask_empty", field=field)
    return out


def soft_inside(mask: Image.Image, feather: int) -> Image.Image:
    """A blend mask that is 0 outside `mask` (exactly) and ramps up to 1 within `feather` px inside it."""
    if feather <= 0:
        return mask
    blurred = mask.filter(ImageFilter.GaussianBlur(feather))
    return Image.fromarray(np.minimum(np.asarray(blurred), np.asarray(mask)))


def grow(mask: Image.Image, px: int) -> Image.Image:
    return mask.filter(ImageFilter.MaxFilter(2 * px + 1)) if px > 0 else mask


def composite_keep(original: Image.Image, generated: Image.Image, mask: Image.Image, feather: int) -> Image.Image:
    """Generated pixels inside the mask, original pixels outside, a soft seam just inside the mask's edge."""
    gen = generated.convert("RGB").resize(original.size, Image.LANCZOS)
    return Image.composite(gen, original.convert("RGB"), soft_inside(mask, feather))


def fit_to(w: int, h: int, long_side: int) -> tuple[int, int]:
    """Scale (w, h) so the long side is `long_side`, both multiples of 8."""
    s = long_side / max(w, h)
    return max(64, int(w * s) // 8 * 8), max(64, int(h * s) // 8 * 8)


def mask_box(mask: Image.Image, padding: int) -> tuple[int, int, int, int]:
    """The mask's bounding box grown by `padding` px, within the image."""
    x0, y0, x1, y1 = mask.getbbox() or (0, 0, *mask.size)
    w, h = mask.size
    return max(0, x0 - padding), max(0, y0 - padding), min(w, x1 + padding), min(h, y1 + padding)


def extend_canvas(image: Image.Image, left: int, top: int, right: int, bottom: int) -> tuple[Image.Image, Image.Image]:
    """(canvas with the image placed, mask white where the canvas is new)."""
    w, h = image.size
    canvas = Image.new("RGB", (w + left + right, h + top + bottom))
    canvas.paste(image.convert("RGB"), (left, top))
    mask = Image.new("L", canvas.size, 255)
    mask.paste(0, (left, top, left + w, top + h))
    return canvas, mask
