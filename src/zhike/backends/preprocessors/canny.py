"""Canny edges (OpenCV): hard white edges on black, the control map of the ControlNet "canny" models."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image


def canny_edges(image: Image.Image, *, low: int = 100, high: int = 200) -> Image.Image:
    """White (255) edge pixels on black, RGB, the image's size. Gradients above `high` start an edge, those
    above `low` continue one (hysteresis)."""
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high (got {low}, {high})")
    gray = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(gray, low, high)
    return Image.fromarray(edges, mode="L").convert("RGB")
