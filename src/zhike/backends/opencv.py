"""The OpenCV operations the merchant ops use, behind plain numpy signatures, so ops never import cv2.

OpenCV is a heavy native library (it comes with mediapipe), counted with the model libraries: only backends import
it. What is here is image arithmetic without a model (warps, area resizes, connected parts, saliency, LAB colour,
distances); the ops keep their own logic and call these for the pixels.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

Interp = Literal["nearest", "linear", "cubic"]
_INTERP = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def warp_affine(
    image: np.ndarray, matrix: np.ndarray, size: tuple[int, int], *, interp: Interp = "linear", replicate: bool = False
) -> np.ndarray:
    """`image` resampled once through the 2x3 `matrix` (input -> output) onto a `size` (w, h) canvas. Outside the
    input is 0, or the nearest edge pixel with `replicate`."""
    border = cv2.BORDER_REPLICATE if replicate else cv2.BORDER_CONSTANT
    return cv2.warpAffine(image, matrix, size, flags=_INTERP[interp], borderMode=border)


def shrink_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resized to `size` (w, h) by area averaging: the alias-free way down."""
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def connected_parts(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, areas) of the 8-connected parts of a boolean mask: labels 1..n per pixel (0 = outside), areas[i] is
    the pixel count of part i + 1."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return labels, stats[1:, cv2.CC_STAT_AREA]


def dilate_square(mask: np.ndarray, radius: int, iterations: int = 1) -> np.ndarray:
    """A boolean mask grown by a (2 * radius + 1) square, `iterations` times."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel, iterations=iterations) > 0


def distance_inside(mask: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance of every mask pixel to the nearest pixel outside it (1 = an edge pixel), float32."""
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """float32 RGB 0..1 -> CIE L*a*b* (L 0..100)."""
    return cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2LAB)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB)


def salient_mask(rgb: np.ndarray) -> np.ndarray | None:
    """The salient region of a small RGB uint8 image as a 0/255 mask (spectral residual saliency, smoothed, Otsu
    threshold), or None when nothing stands out."""
    ok, sal = cv2.saliency.StaticSaliencySpectralResidual_create().computeSaliency(rgb[..., ::-1])
    if not ok or float(sal.max()) <= 0:
        return None
    sal = cv2.GaussianBlur((sal / sal.max() * 255).astype(np.uint8), (0, 0), 3)
    _, hard = cv2.threshold(sal, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return hard
