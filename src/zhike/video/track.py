"""Following a subject for reframing (16:9 -> 9:16 and back): where the subject is in each analysed frame, a smooth
path of crop windows through the clip, each clamped inside the frame. numpy only; the measures come from a matte
(a model's, made by the op) or from motion (frame differences, no model).

The path is smoothed without lag because the whole clip is known before the crop is cut: gaps (frames where the
subject was not found) are filled by linear interpolation, the ends are padded with the line fitted to the first
and last stretch (a steady pan continues through them), and a moving average is run twice (a triangular kernel
~`window` frames wide); the centre is kept where a crop window fits before averaging, so it eases into the edges.
A subject moving at a steady speed is followed exactly; jitter shorter than the window is averaged away, so the
crop's acceleration stays small.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Point = tuple[float, float]
MIN_SHARE = 0.002  # a matte or motion mask covering less of the frame than this finds nothing


def parse_aspect(aspect: str) -> float:
    """'9:16' -> 0.5625 (width / height)."""
    w, h = aspect.split(":")
    return int(w) / int(h)


def crop_size(width: int, height: int, aspect: float) -> tuple[int, int]:
    """The largest even-sized window of `aspect` (w/h) inside a width x height frame."""
    if width / height > aspect:  # the frame is wider: full height
        ch = height - height % 2
        cw = min(width, int(ch * aspect)) // 2 * 2
    else:
        cw = width - width % 2
        ch = min(height, int(cw / aspect)) // 2 * 2
    return max(2, cw), max(2, ch)


def mask_centre(mask: np.ndarray) -> Point | None:
    """The weighted centre (x, y) of a 0..1 matte, in its own pixels; None when it covers almost nothing."""
    w = np.where(mask >= 0.5, mask, 0.0).astype(np.float64)
    total = w.sum()
    if total < MIN_SHARE * mask.size:
        return None
    ys, xs = np.indices(mask.shape)
    return float((w * xs).sum() / total), float((w * ys).sum() / total)


def motion_mask(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """0..1 map of what changed between two RGB frames: the grey difference over a threshold that follows the
    frame's own noise (3x the median difference, at least 12 grey levels), so noise and compression flicker drop out."""
    a = prev.astype(np.int16).mean(axis=2)
    b = cur.astype(np.int16).mean(axis=2)
    diff = np.abs(b - a)
    thr = max(12.0, 3.0 * float(np.median(diff)))
    return (diff > thr).astype(np.float32)


def smooth_path(
    points: Sequence[Point | None],
    *,
    window: int,
    default: Point,
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> np.ndarray:
    """(n, 2) float path through `points` (None = not found there): gaps interpolated, ends held, kept within
    `bounds` ((xmin, xmax), (ymin, ymax): where a crop's centre may go), then a lag-free triangular moving average
    about `window` frames wide. Clamping before averaging makes the crop ease into the frame's edge instead of
    stopping dead there. All None -> `default` everywhere."""
    n = len(points)
    found = [i for i, p in enumerate(points) if p is not None]
    if not found:
        return np.tile(np.asarray(default, np.float64), (n, 1))
    idx = np.asarray(found)
    known = np.asarray([points[i] for i in found], np.float64)
    t = np.arange(n)
    path = np.stack([np.interp(t, idx, known[:, k]) for k in range(2)], axis=1)
    lo = np.asarray([b[0] for b in bounds] if bounds else [-np.inf] * 2)
    hi = np.asarray([b[1] for b in bounds] if bounds else [np.inf] * 2)
    path = np.clip(path, lo, hi)
    half = max(1, window // 4)  # two box passes of 2*half+1 make a triangle ~window wide
    for _ in range(2):
        path = _box(path, half, lo, hi)
    return path


def _box(path: np.ndarray, half: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    n = len(path)
    h = min(half, n - 1)
    if h <= 0:
        return path
    # The ends are padded with the straight line fitted to the path's first (last) stretch: a steady motion
    # continues through them unbent, and one noisy end sample does not pull the average.
    padded = np.concatenate([_line(path[: 2 * h + 1], -np.arange(h, 0, -1)), path])
    tail = path[-(2 * h + 1) :]
    padded = np.concatenate([padded, _line(tail, len(tail) - 1 + np.arange(1, h + 1))])
    padded = np.clip(padded, lo, hi)  # the average of values within the bounds stays within them
    kernel = np.ones(2 * h + 1) / (2 * h + 1)
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(2)], axis=1)


def _line(part: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The least-squares line through `part` (m, 2), evaluated at positions `at` (in part's own indices)."""
    t = np.arange(len(part), dtype=np.float64)
    tm = t.mean()
    var = float(((t - tm) ** 2).sum()) or 1.0
    mean = part.mean(axis=0)
    slope = ((t - tm)[:, None] * (part - mean)).sum(axis=0) / var
    return mean + (at[:, None] - tm) * slope


def crop_origins(path: np.ndarray, frame: tuple[int, int], crop: tuple[int, int]) -> np.ndarray:
    """(n, 2) int top-left corners of crop windows centred on `path`, clamped inside the frame (w, h)."""
    (w, h), (cw, ch) = frame, crop
    x0 = np.clip(np.round(path[:, 0] - cw / 2), 0, w - cw)
    y0 = np.clip(np.round(path[:, 1] - ch / 2), 0, h - ch)
    return np.stack([x0, y0], axis=1).astype(np.int64)
