"""What a scene photo says about where a product can stand and where its light comes from: classical, CPU, offline.

- `find_surface`: the supporting surface's back edge (a table edge, the line where floor meets wall, a horizon)
  as the highest strong near-horizontal line spanning at least half the width (Canny edges + probabilistic Hough)
  in the lower three quarters of the photo, and the next long line below it as the surface's front edge (else
  the photo's bottom).
  Limits: it finds straight edges, not surfaces. A busy scene (shelves, stripes, text) may offer a wrong line; a
  curved or strongly tilted support (> 15°) and a top-down shot have none; then the caller falls back.
- `light_direction`: where the light comes from, in image coordinates, from a plane fitted to the blurred
  luminance plus the brightest region's centroid. It sees brightness, not geometry: a light-coloured ground reads
  as light from below, so callers weigh it by `strength` and keep shadows on the ground.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 320  # the detection's working width: straight edges survive, cost stays ~ms at any photo size
MIN_LENGTH = 0.5  # a support line spans at least half the photo's width (summed over its segments)
MAX_TILT = np.tan(np.radians(15))


@dataclass(frozen=True)
class Surface:
    """A support in image fractions: its back edge runs from (0, y_left) to (1, y_right); `front` is its front edge
    (1.0 = the photo's bottom). `score`: the line's length as a share of the width."""

    y_left: float
    y_right: float
    front: float
    score: float

    def y_at(self, x: float) -> float:
        return self.y_left + (self.y_right - self.y_left) * x


def _lines(gray: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Near-horizontal segments as (y at x=0, y at x=1, mid y, length), all in fractions."""
    h, w = gray.shape
    edges = cv2.Canny(cv2.GaussianBlur(gray, (0, 0), 1.2), 20, 60)
    found = cv2.HoughLinesP(edges, 1, np.pi / 360, threshold=max(20, w // 8), minLineLength=w * 0.12, maxLineGap=8)
    out = []
    for x0, y0, x1, y1 in found[:, 0] if found is not None else []:
        if x1 == x0 or abs((y1 - y0) / (x1 - x0)) > MAX_TILT:
            continue
        slope = (y1 - y0) / (x1 - x0)
        at0 = y0 - slope * x0
        out.append((at0 / h, (at0 + slope * w) / h, (y0 + y1) / 2 / h, abs(x1 - x0) / w))
    return out


def _merged(lines: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """Segments of one edge (Hough splits long edges, and both sides of a blurred edge) summed: (y0, y1, mid,
    total length), longest first. Lengths may exceed 1 for an edge found twice: that is its strength."""
    groups: list[list[tuple[float, float, float, float]]] = []
    for ln in sorted(lines, key=lambda t: t[2]):
        if groups and ln[2] - groups[-1][-1][2] < 0.02:
            groups[-1].append(ln)
        else:
            groups.append([ln])
    merged = []
    for g in groups:
        wts = np.array([t[3] for t in g])
        y0, y1, mid = (float(np.average([t[i] for t in g], weights=wts)) for i in range(3))
        merged.append((y0, y1, mid, float(wts.sum())))
    return sorted(merged, key=lambda t: -t[3])


def find_surface(rgb: np.ndarray) -> Surface | None:
    """The support's back and front edge in an RGB uint8 photo, or None when no long horizontal line stands out."""
    h, w = rgb.shape[:2]
    k = WORK_SIDE / w
    small = cv2.resize(rgb, (WORK_SIDE, max(16, round(h * k))), interpolation=cv2.INTER_AREA)
    lines = [ln for ln in _merged(_lines(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))) if 0.25 <= ln[2] <= 0.92]
    lines = [ln for ln in lines if ln[3] >= MIN_LENGTH]
    if not lines:
        return None
    best = max(lines, key=lambda t: t[3])
    # The back edge is the highest strong line: a table's front edge is often the stronger (light top, dark
    # front), but the product stands behind it.
    strong = [ln for ln in lines if ln[3] >= 0.6 * best[3]]
    back = min(strong, key=lambda t: t[2])
    below = [ln for ln in lines if ln[2] > back[2] + 0.06 and ln[3] >= 0.5 * best[3]]
    front = min((ln[2] for ln in below), default=1.0)
    return Surface(back[0], back[1], front, round(back[3], 3))


def light_direction(rgb: np.ndarray) -> tuple[float, float, float]:
    """(dx, dy, strength): the unit direction towards the light in image coordinates (x right, y down) and how
    directional the lighting is (0 = flat, 1 = strongly one-sided)."""
    small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA)
    lum = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32), (0, 0), 4) / 2.55
    yy, xx = np.mgrid[-1:1:64j, -1:1:64j]
    design = np.stack([np.ones(64 * 64), xx.ravel(), yy.ravel()], axis=1)
    (_, gx, gy), *_ = np.linalg.lstsq(design, lum.ravel(), rcond=None)
    top = lum >= np.percentile(lum, 97)
    cx, cy = float(xx[top].mean()), float(yy[top].mean())
    peak = float(lum[top].mean() - lum.mean())  # L* units the brightest region stands out by
    vx, vy = gx / 20 + cx * peak / 40, gy / 20 + cy * peak / 40
    norm = float(np.hypot(vx, vy))
    if norm < 1e-6:
        return 0.0, -1.0, 0.0
    return float(vx / norm), float(vy / norm), float(min(1.0, norm))


def project_shadow(alpha: np.ndarray, foot: float, shear: float, squash: float) -> np.ndarray:
    """The silhouette laid on the ground plane: a point `d` px above the foot row lands `shear * d` px to the
    side and `squash * d` px above the foot (negative squash: in front). float32 0..1, the window's size."""
    h, w = alpha.shape
    m = np.float32([[1, -shear, shear * foot], [0, squash, (1 - squash) * foot]])
    return cv2.warpAffine(alpha.astype(np.float32) / 255, m, (w, h), flags=cv2.INTER_LINEAR)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), max(0.3, sigma)) if sigma > 0 else img


def quiet_x(rgb: np.ndarray, box_size: tuple[float, float], foot_y: float, ground: tuple[float, float]) -> float:
    """The horizontal spot (image fraction, the product's centre) where the base of a box of `box_size`
    (fractions) standing at row `foot_y` covers the least that is not plain support: little detail (gradient
    energy) and the colour of the support (the median of its rows `ground`), so free table or floor rather than a
    person or another object. A slight pull to the centre breaks ties on plain scenes."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (160, max(8, round(h * 160 / w))), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    sh = small.shape[0]
    gray = lab[..., 0]
    mag = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    g0, g1 = round(ground[0] * sh), max(round(ground[0] * sh) + 1, round(ground[1] * sh))
    support = np.median(lab[g0:g1].reshape(-1, 3), axis=0)
    y1 = min(sh, max(1, round(foot_y * sh)))
    y0 = max(0, min(y1 - 1, round((foot_y - 0.4 * box_size[1]) * sh)))  # its base: what it covers of the support
    cols = mag[y0:y1].mean(axis=0) + 0.5 * np.linalg.norm(lab[y0:y1] - support, axis=2).mean(axis=0)
    half = max(0.02, box_size[0] / 2)
    best, best_cost = 0.5, float("inf")
    for x in np.linspace(max(0.15, half), min(0.85, 1 - half), 25):
        a = round((x - half) * 160)
        cost = float(cols[a : max(a + 1, round((x + half) * 160))].mean()) * (1 + 1.5 * abs(x - 0.5))
        if cost < best_cost:
            best, best_cost = float(x), cost
    return best
