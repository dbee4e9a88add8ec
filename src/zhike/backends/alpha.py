"""Cut-out compositing with OpenCV, no model: flatten or cut out with backdrop-free edge colours (blur-fusion
foreground estimation), feather an edge inward, add a drop and contact shadow.

Shared by the cutout, ID photo and product ops and by backends.matting. It is here, not in imaging/, because it is
built on OpenCV's box and Gaussian blurs, erosion, warps and ellipse raster: numpy stand-ins were either several
times slower or not pixel-identical.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageOps


def _disk(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours without the backdrop mixed in (blur-fusion, Forte & Pitie 2021), float 0..1.

    Two passes of box-filter estimates of F and B (radii 90 then 6) - linear time, no solver."""
    partial = (alpha > 0) & (alpha < 1)
    if not partial.any():
        return rgb.astype(np.float32) / 255.0
    # Work on the edge pixels' box plus the largest blur radius: the rest of the photo cannot matter.
    ys, xs = np.nonzero(partial)
    m = 96
    y0, y1 = max(0, ys.min() - m), min(alpha.shape[0], ys.max() + m + 1)
    x0, x1 = max(0, xs.min() - m), min(alpha.shape[1], xs.max() + m + 1)
    out = rgb.astype(np.float32) / 255.0
    out[y0:y1, x0:x1] = _blur_fusion(out[y0:y1, x0:x1], np.ascontiguousarray(alpha[y0:y1, x0:x1]))
    return out


def _blur_fusion(img: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    f, b = img, img
    for r in (90, 6):
        k = (2 * r + 1, 2 * r + 1)
        ba = cv2.blur(alpha, k)[..., None]
        bf = cv2.blur(f * a, k) / (ba + 1e-5)
        bb = cv2.blur(b * (1 - a), k) / ((1 - ba) + 1e-5)
        f = np.clip(bf + a * (img - a * bf - (1 - a) * bb), 0.0, 1.0)
        b = bb
    return f


def feather_alpha(alpha: Image.Image, px: int) -> Image.Image:
    """The L alpha with its edge softened inward over `px` pixels (what `composite(feather=px)` uses)."""
    if px <= 0:
        return alpha
    a = _feather(np.asarray(alpha.convert("L"), np.float32) / 255.0, px)
    return Image.fromarray(np.round(a * 255).astype(np.uint8), "L")


def _feather(alpha: np.ndarray, px: int) -> np.ndarray:
    """Soften the edge inward over `px` pixels: never adds alpha outside the subject, keeps the inside opaque."""
    if px <= 0:
        return alpha
    hard = (alpha > 0.5).astype(np.uint8)
    inner = cv2.erode(hard, _disk(max(1, px // 2))).astype(np.float32)
    soft = cv2.GaussianBlur(inner, (0, 0), max(px / 3, 0.5))
    return np.minimum(alpha, soft)


def _shadow(alpha: np.ndarray) -> np.ndarray:
    """A soft drop shadow plus a contact shadow under the subject's base, as an alpha (0..1)."""
    h, w = alpha.shape
    hard = (alpha > 0.5).astype(np.uint8)
    x, y, bw, bh = cv2.boundingRect(hard)
    if bw == 0:
        return np.zeros_like(alpha)
    n = max(bw, bh)
    shift = np.float32([[1, 0, 0.02 * n], [0, 1, 0.03 * n]])
    drop = cv2.warpAffine(alpha, shift, (w, h))
    drop = cv2.GaussianBlur(drop, (0, 0), max(1.0, 0.025 * n)) * 0.35
    contact = np.zeros_like(alpha)
    cx, cy = x + bw / 2, y + bh - 0.01 * n
    cv2.ellipse(contact, (round(cx), round(cy)), (max(1, round(0.45 * bw)), max(1, round(0.035 * n))), 0, 0, 360, 1, -1)
    contact = cv2.GaussianBlur(contact, (0, 0), max(1.0, 0.02 * n)) * 0.5
    return np.clip(np.maximum(drop, contact), 0.0, 1.0)


def composite(
    image: Image.Image,
    alpha: Image.Image,
    *,
    background: tuple[int, int, int] | Image.Image | None,
    feather: int = 0,
    shadow: bool = False,
) -> Image.Image:
    """The subject cut out (RGBA, background None) or flattened onto a colour / an image (RGB; the image is
    scaled to cover and centre-cropped). Opaque subject pixels keep their exact colours; semi-transparent edge
    pixels get backdrop-free colours. `feather` softens the edge inward by that many pixels; `shadow` adds a
    soft drop + contact shadow under the subject."""
    rgb = np.asarray(image.convert("RGB"))
    h, w = rgb.shape[:2]
    if alpha.size != image.size:
        alpha = alpha.resize(image.size, Image.Resampling.BILINEAR)
    a = _feather(np.asarray(alpha.convert("L"), np.float32) / 255.0, feather)
    partial = (a > 0) & (a < 1)
    fg = rgb.astype(np.float32) / 255.0
    if partial.any():
        fg = np.where(partial[..., None], estimate_foreground(rgb, a), fg)
    fg[a >= 1] = rgb[a >= 1] / 255.0  # exact subject pixels
    sh = _shadow(a) if shadow else None
    if background is None:
        if sh is None:
            out_a, out_f = a, fg
        else:  # subject over a black shadow layer, un-premultiplied
            out_a = a + sh * (1 - a)
            out_f = fg * (a / np.maximum(out_a, 1e-6))[..., None]
        f8 = np.round(out_f * 255).astype(np.uint8)
        a8 = np.round(out_a * 255).astype(np.uint8)
        f8[a8 == 0] = 0  # nothing of the old backdrop is left in the file (and it compresses better)
        if sh is None:
            f8[a >= 1] = rgb[a >= 1]
        return Image.fromarray(np.dstack([f8, a8]), "RGBA")
    if isinstance(background, Image.Image):
        bg = np.asarray(ImageOps.fit(background.convert("RGB"), (w, h), Image.Resampling.LANCZOS), np.float32) / 255
    else:
        bg = np.broadcast_to(np.asarray(background, np.float32) / 255.0, (h, w, 3))
    if sh is not None:
        bg = bg * (1 - sh[..., None] * 0.85)  # a shadow darkens the backdrop, it is not pure black paint
    out = fg * a[..., None] + bg * (1 - a[..., None])
    out8 = np.round(out * 255).astype(np.uint8)
    out8[a >= 1] = rgb[a >= 1]
    return Image.fromarray(out8, "RGB")
