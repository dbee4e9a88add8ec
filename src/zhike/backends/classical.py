"""Classical (model-free) fills with OpenCV: the fallback when no image model is installed."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image


def telea_fill(image: Image.Image, mask: Image.Image, radius: int = 9) -> Image.Image:
    """Fill the white area of `mask` from its surroundings (Telea's fast marching method)."""
    rgb = np.asarray(image.convert("RGB"))
    m = (np.asarray(mask.convert("L")) > 127).astype(np.uint8) * 255
    out = cv2.inpaint(rgb, m, radius, cv2.INPAINT_TELEA)
    return Image.fromarray(out)


def mirror_fill(canvas: Image.Image, known: Image.Image) -> Image.Image:
    """Fill unknown (black in `known`) canvas areas by mirroring the known rectangle, blurred with distance.

    `known` is white where the original pixels are; the known area must be one rectangle (outpainting).
    """
    rgb = np.asarray(canvas.convert("RGB")).astype(np.float32)
    k = np.asarray(known.convert("L")) > 127
    ys, xs = np.nonzero(k)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    core = rgb[top:bottom, left:right]
    h, w = rgb.shape[:2]
    padded = cv2.copyMakeBorder(core, top, h - bottom, left, w - right, cv2.BORDER_REFLECT_101)
    # Far from the original a mirror is obviously a mirror: blur more with distance.
    dist = cv2.distanceTransform((~k).astype(np.uint8), cv2.DIST_L2, 5)
    blurred = cv2.GaussianBlur(padded, (0, 0), sigmaX=max(2.0, min(h, w) / 40))
    t = np.clip(dist / max(1.0, float(dist.max()) * 0.5), 0, 1)[..., None]
    out = padded * (1 - t) + blurred * t
    out[k] = rgb[k]
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
