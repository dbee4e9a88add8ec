"""Per-frame mattes without a model: a chroma key for green/blue screens, temporal smoothing of any matte, and
compositing a frame over a new background (with the visible AI mark drawn in the same pass). numpy only.

The key works on chroma (YCbCr's Cb/Cr), not RGB, so shadows and uneven light on the screen (darker or brighter,
same hue) key like the lit screen. A pixel's chroma is split into the part along the key's direction (`along`) and
the part across it (`across`); `(along - |across|) / |key chroma|` is 1 on the screen itself, ~0 on greys and
negative on skin, red or blue. Between the two thresholds the alpha ramps (soft edges, motion blur, hair).
"""

from __future__ import annotations

import numpy as np

# BT.601 full range, as JPEG: what the key and spill maths work in
_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_TO_RGB = np.linalg.inv(_TO_YCC).astype(np.float32)
MIN_KEY_CHROMA = 20.0  # a "key colour" greyer than this (0..~180) is no screen: keying it would eat the subject


def chroma(rgb: np.ndarray | tuple[int, int, int]) -> np.ndarray:
    """(..., 2) float32 Cb/Cr around 0 (-128..128) of RGB uint8 pixels."""
    x = np.asarray(rgb, np.float32)
    return x @ _TO_YCC[1:].T


def border_key(rgb: np.ndarray) -> tuple[int, int, int]:
    """The screen colour guessed from a frame: the median of its outer 4 % border (a subject rarely fills all four
    sides)."""
    h, w = rgb.shape[:2]
    b = max(1, round(0.04 * min(h, w)))
    edge = np.concatenate([rgb[:b].reshape(-1, 3), rgb[-b:].reshape(-1, 3), rgb[:, :b].reshape(-1, 3)])
    edge = np.concatenate([edge, rgb[:, -b:].reshape(-1, 3)])
    r, g, bl = np.median(edge, axis=0)
    return int(r), int(g), int(bl)


def key_strength(key: tuple[int, int, int]) -> float:
    """How saturated the key colour is (|chroma|): under MIN_KEY_CHROMA it is no usable screen colour."""
    return float(np.hypot(*chroma(key)))


def chroma_key(
    rgb: np.ndarray, key: tuple[int, int, int], *, tolerance: float, softness: float, spill: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(the frame, HxW float32 alpha with 1 = subject). Alpha is 0 where the pixel's chroma is at least
    (1 - tolerance) of the key's along its direction, 1 where it is under (1 - tolerance - softness), a ramp between.

    `spill` removes the screen's colour cast from the subject (green light bounced on hair, skin, edges): the part
    of each pixel's chroma along the key that exceeds its part across it is taken out; brightness (Y) is kept.
    The YCbCr conversion is shared by both (it is most of the cost at 1080p)."""
    k = chroma(key)
    norm = float(np.hypot(*k))
    kd = (k / norm).astype(np.float32)
    ycc = rgb.astype(np.float32) @ _TO_YCC.T
    c = ycc[..., 1:]
    along = c @ kd
    across = np.abs(c[..., 0] * kd[1] - c[..., 1] * kd[0])
    excess = along - across
    hi = 1.0 - tolerance
    lo = hi - max(softness, 1e-3)
    alpha = np.clip((hi - excess / norm) / (hi - lo), 0.0, 1.0).astype(np.float32)
    if not spill:
        return rgb, alpha
    c -= np.maximum(excess, 0.0)[..., None] * kd
    return np.clip(ycc @ _TO_RGB.T + 0.5, 0, 255).astype(np.uint8), alpha


class MatteSmoother:
    """Temporal smoothing of a matte sequence: an exponential moving average whose weight on the past falls as the
    change grows. Small frame-to-frame wobble (noise, compression, a net's indecision at the edge) is averaged
    away; a real move (change > 0.5) passes at once, so a moving subject leaves no ghost trail."""

    def __init__(self, strength: float) -> None:
        self.strength = float(strength)
        self.state: np.ndarray | None = None

    def __call__(self, alpha: np.ndarray) -> np.ndarray:
        if self.state is None or self.strength <= 0 or self.state.shape != alpha.shape:
            self.state = alpha.astype(np.float32)
            return self.state
        delta = np.abs(alpha - self.state)
        keep = self.strength * np.clip(1.0 - 2.0 * delta, 0.0, 1.0)
        self.state = (keep * self.state + (1.0 - keep) * alpha).astype(np.float32)
        return self.state


def composite(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """The frame over `background` (HxWx3 uint8, or a (3,) colour) as RGB, or RGBA when background is None."""
    a = alpha[..., None]
    if background is None:
        return np.dstack([rgb, np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)])
    bg = np.asarray(background, np.float32)
    return np.clip(rgb.astype(np.float32) * a + bg * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)


class Mark:
    """The visible AI mark (an RGBA frame-sized image, transparent but for the corner label) drawn over frames: only
    its bounding box is touched per frame. Over a transparent video the mark stays visible (its alpha is added)."""

    def __init__(self, rgba: np.ndarray) -> None:
        a = rgba[..., 3]
        ys, xs = np.nonzero(a)
        self.box = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1) if len(ys) else None
        if self.box is not None:
            y0, y1, x0, x1 = self.box
            self.rgb = rgba[y0:y1, x0:x1, :3].astype(np.float32)
            self.alpha = rgba[y0:y1, x0:x1, 3:4].astype(np.float32) / 255.0

    def draw(self, frame: np.ndarray) -> np.ndarray:
        if self.box is None:
            return frame
        y0, y1, x0, x1 = self.box
        out = frame.copy()
        part = out[y0:y1, x0:x1].astype(np.float32)
        part[..., :3] = self.rgb * self.alpha + part[..., :3] * (1.0 - self.alpha)
        if frame.shape[2] == 4:
            part[..., 3:] = 255.0 * self.alpha + part[..., 3:] * (1.0 - self.alpha)
        out[y0:y1, x0:x1] = np.clip(part + 0.5, 0, 255).astype(np.uint8)
        return out
