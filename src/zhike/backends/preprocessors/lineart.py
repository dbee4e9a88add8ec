"""Scribble and line-art maps: white lines on black from a drawing (either polarity) or, for scribble, a photo."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image


def to_light_lines(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Lines bright on dark. Paper fills most of a drawing, so the median (and the border) is the paper colour:
    light paper means dark lines, which are inverted. Returns (image, inverted)."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    paper = 0.5 * (float(np.median(gray)) + float(np.median(border)))
    inverted = paper > 127
    return (255 - gray if inverted else gray), inverted


def binarize(lines: np.ndarray) -> np.ndarray:
    """Line pixels (bool) of a bright-lines image.

    Adaptive threshold: a pixel clearly brighter than its neighbourhood (survives uneven lighting of a phone photo
    of paper; flat areas give nothing). Otsu adds thick strokes whose centres the local mean misses, but only when
    the two classes really differ (a blank page would otherwise split its noise).
    """
    block = max(15, (min(lines.shape) // 16) | 1)
    local = cv2.adaptiveThreshold(lines, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, -12) > 0
    t, otsu = cv2.threshold(lines, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    lo, hi = lines[lines <= t], lines[lines > t]
    strong = otsu > 0 if lo.size and hi.size and float(hi.mean()) - float(lo.mean()) > 60 else np.zeros_like(local)
    return local | strong


def drop_specks(mask: np.ndarray, min_area: int) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def thicken(mask: np.ndarray, px: int) -> np.ndarray:
    if px <= 0:
        return mask
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k) > 0


def _rgb(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(mask.astype(np.uint8) * 255, mode="L").convert("RGB")


def lineart_map(image: Image.Image, *, thickness: int = 0) -> tuple[Image.Image, dict]:
    """Keeps thin lines as drawn (for colouring line art); only noise specks are dropped."""
    gray = np.asarray(image.convert("L"))
    lines, inverted = to_light_lines(gray)
    mask = thicken(drop_specks(binarize(lines), min_area=3), thickness)
    return _rgb(mask), {"inverted": inverted}


def scribble_map(image: Image.Image, *, thickness: int | None = None) -> tuple[Image.Image, dict]:
    """Thick, simplified strokes from a user drawing: small gaps closed, short bits dropped, lines widened
    (scribble models were trained on rough ~6 px strokes at 512 px)."""
    gray = np.asarray(image.convert("L"))
    lines, inverted = to_light_lines(gray)
    side = max(gray.shape)
    px = max(1, round(2 * side / 512)) if thickness is None else thickness  # ~6 px strokes at 512
    mask = binarize(lines)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, k) > 0
    mask = thicken(drop_specks(mask, min_area=max(8, (side // 100) ** 2)), px)
    return _rgb(mask), {"inverted": inverted}


def nms(x: np.ndarray, threshold: int, sigma: float) -> np.ndarray:
    """Thin a soft edge map to its ridges (ControlNet's scribble-from-HED recipe): keep a pixel that is the max of
    its 3-pixel line along one of 4 directions, above `threshold` after a blur."""
    x = cv2.GaussianBlur(x.astype(np.float32), (0, 0), sigma)
    y = np.zeros_like(x)
    for f in (
        np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]], np.uint8),
        np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], np.uint8),
        np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.uint8),
        np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], np.uint8),
    ):
        np.putmask(y, cv2.dilate(x, kernel=f) == x, x)
    return y > threshold


def scribble_from_edges(soft: np.ndarray) -> Image.Image:
    """Scribble from a photo's HED map (0..255): ridges of strong edges, blurred and re-thresholded to wide strokes.
    The blur scales with size so strokes look alike at any resolution."""
    scale = max(soft.shape) / 512
    ridges = nms(soft, 127, 3.0 * scale).astype(np.float32) * 255
    wide = cv2.GaussianBlur(ridges, (0, 0), 3.0 * scale) > 4
    return _rgb(wide)
