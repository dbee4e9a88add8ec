"""Invisible watermark: a 64-bit payload derived from the asset id, carried by the image's low-frequency luma.

The method (version 2, "grid QIM"): the picture is divided into a grid of cells *relative to its size* (GRID cells
along the shorter side, as many of the same shape along the longer one), so a resized copy has the same cells. In
each cell a smooth raised-cosine window weighs the luma, and the cell's weighted mean is quantised (QIM, step STEP,
a fixed per-cell dither) to an even or odd half-step: that is one bit, and every bit is carried by several cells
spread over the picture. Embedding paints each cell's change as a smooth bump that blends into its neighbours, on
R, G and B alike (a soft cloud of 1-2 grey levels, PSNR 47-50 dB on photos; ordered-dither rounding over flat
areas, so no contour lines), solving a small linear system so every cell's mean lands on its lattice point.
Decoding is the same projection and a soft majority vote per bit: two small matrix products, no block transforms.

Why this and not the DWT-DCT-SVD method of invisible-watermark (version 1, still decoded for older exports):
version 1 lives on an 8 px block grid, so any resize scrambled it (0.75x: ~33 of 64 bits wrong), and it cost a 4x4
SVD per block. Measured on skimage photos (bench/labels.py prints the table): version 2 decodes with <= 6 bit errors
after JPEG q70, after 0.75x or 0.5x resizing followed by JPEG q70, and after metadata stripping, and embeds a 1 MP
image in ~25 ms instead of ~110 ms. Cropping is not survived (the grid moves); nor is a strong contrast change.

The payload cannot hold the id itself robustly, so it is a 48-bit key (a hash of the id) plus a 16-bit check that
tells a real watermark from noise. Attacks still flip a bit or three on small or busy images, so verify matches the
64 decoded bits against each known id's payload with up to MAX_BIT_ERRORS differences (chance that noise comes
within 6 bits of a given id: ~5e-12).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops

PAYLOAD_BITS = 64
# Under 256x256 px of area 64 bits get too few pixels per cell; thin strips lose them too.
MIN_AREA = 256 * 256
MIN_SIDE = 128
MAX_BIT_ERRORS = 6

GRID = 12  # cells along the shorter side
STEP = 3.0  # QIM step of a cell's weighted mean luma, in grey levels
FLAT_STD = 4.0  # a cell whose luma varies less than this (grey levels, weighted std) counts as flat


def watermark_key(asset_id: str) -> str:
    """The 48-bit key (12 hex chars) the watermark carries for this asset."""
    return hashlib.sha256(b"zhike-wm\x00" + asset_id.encode()).hexdigest()[:12]


def _check(key: bytes) -> bytes:
    return hashlib.sha256(b"zhike-wm-check\x00" + key).digest()[:2]


def payload_bits(asset_id: str) -> list[int]:
    key = bytes.fromhex(watermark_key(asset_id))
    data = key + _check(key)
    return [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


def too_small(width: int, height: int) -> str | None:
    """Why this size cannot hold the watermark, or None."""
    if width * height < MIN_AREA or min(width, height) < MIN_SIDE:
        return (
            f"image {width}x{height} is too small for the invisible watermark "
            f"(needs at least {MIN_AREA} pixels and {MIN_SIDE} px per side) / 图像太小，无法嵌入隐式水印"
        )
    return None


def too_small_to_read(width: int, height: int) -> str | None:
    """Why a mark cannot be read at this size, or None: a copy may be half the size the mark was made at."""
    if width * height < MIN_AREA // 4 or min(width, height) < MIN_SIDE // 2:
        return f"image {width}x{height} is too small to read an invisible watermark / 图像太小，无法读取隐式水印"
    return None


# -- the grid ----------------------------------------------------------------------------------------------------
def _grids(height: int, width: int) -> list[tuple[int, int]]:
    """(cells down, cells across): GRID on the shorter side, the longer side in proportion. A resize can move the
    proportion across a rounding boundary, so when it is near one the decoder tries both neighbours."""
    short, long = min(height, width), max(height, width)
    exact = GRID * long / short
    counts = [round(exact)]
    if abs(exact % 1 - 0.5) < 0.1:
        counts.append(int(exact) + 1 if counts[0] == int(exact) else int(exact))
    return [(GRID, n) if height <= width else (n, GRID) for n in counts]


@lru_cache(maxsize=32)
def _window(n: int, cells: int) -> np.ndarray:
    """(n, cells): the raised-cosine weight of pixel i in cell j, in coordinates relative to the side."""
    u = (np.arange(n, dtype=np.float64) + 0.5) * (cells / n)
    cell = np.minimum(u.astype(np.int64), cells - 1)
    out = np.zeros((n, cells), dtype=np.float32)
    out[np.arange(n), cell] = np.sin(np.pi * (u - cell)) ** 2
    out.setflags(write=False)
    return out


@lru_cache(maxsize=32)
def _spread(n: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """How a cell's change is painted: (n, cells) smooth bumps, cos^2 over two cells centred on each, which sum to 1
    everywhere (no gaps, no edges: a soft cloud, not a lattice of dots), and the inverse of the (cells, cells)
    coupling matrix: how much bump k moves the weighted mean of cell j."""
    u = (np.arange(n, dtype=np.float64) + 0.5) * (cells / n)
    d = u[:, None] - (np.arange(cells) + 0.5)[None, :]
    bumps = np.where(np.abs(d) <= 1, np.cos(np.pi * d / 2) ** 2, 0.0)
    bumps[u < 0.5, 0] = 1.0  # the outer half of the first and last cells has no neighbour to share with
    bumps[u > cells - 0.5, cells - 1] = 1.0
    window = _window(n, cells).astype(np.float64)
    coupling = (window.T @ bumps) / window.sum(0)[:, None]
    out = bumps.astype(np.float32), np.linalg.inv(coupling)
    for a in out:
        a.setflags(write=False)
    return out


@lru_cache(maxsize=32)
def _layout(gy: int, gx: int) -> tuple[np.ndarray, np.ndarray]:
    """(bit index per cell, dither per cell in [0, STEP)): neighbouring cells carry different bits."""
    k = np.arange(gy * gx)
    bit = ((k * 37) % PAYLOAD_BITS).reshape(gy, gx)
    noise = np.frombuffer(hashlib.shake_256(b"zhike-wm-dither").digest(gy * gx), dtype=np.uint8)
    dither = (noise.astype(np.float64) / 256.0 * STEP).reshape(gy, gx)
    return bit, dither


@lru_cache(maxsize=8)
def _dither(h: int, w: int) -> np.ndarray:
    """Ordered (8x8 Bayer) thresholds in [0, 1) over (h, w): rounding the smooth field with them leaves no contour
    lines, and a repeating pattern costs the PNG far fewer bytes than random noise would."""
    bayer = np.zeros((1, 1), dtype=np.int64)
    for _ in range(3):
        bayer = np.block([[4 * bayer, 4 * bayer + 2], [4 * bayer + 3, 4 * bayer + 1]])
    tile = (bayer.astype(np.float32) + 0.5) / 64.0
    out = np.tile(tile, (h // 8 + 1, w // 8 + 1))[:h, :w]
    out.setflags(write=False)
    return out


def _round(field: np.ndarray, luma: np.ndarray, gy: int, gx: int) -> np.ndarray:
    """Floor `field` + 0.5 (plain rounding) where the picture has texture, which hides the field's 1-level steps, and
    field + ordered-dither thresholds in flat cells (a studio backdrop, a sky), where plain rounding would draw contour
    lines. Dithering everywhere would cost ~5% more PNG bytes on photos."""
    sample = np.ascontiguousarray(luma[::4, ::4])  # flatness per cell needs no more than every 16th pixel
    wy, wx = _window(sample.shape[0], gy), _window(sample.shape[1], gx)
    spread = np.sqrt(np.maximum(_cell_means(sample * sample, wy, wx) - _cell_means(sample, wy, wx) ** 2, 0.0))
    field += np.float32(0.5)
    ys, xs = _edges(field.shape[0], gy), _edges(field.shape[1], gx)
    dither = _dither(*field.shape)
    for r, c in np.argwhere(spread < FLAT_STD):
        y, x = slice(ys[r], ys[r + 1]), slice(xs[c], xs[c + 1])
        field[y, x] += dither[y, x] - np.float32(0.5)
    return np.floor(field, out=field)


@lru_cache(maxsize=32)
def _edges(n: int, cells: int) -> tuple[int, ...]:
    """The first pixel of each cell (and n), as `_window` assigns pixels to cells."""
    cell = np.minimum(((np.arange(n) + 0.5) * (cells / n)).astype(np.int64), cells - 1)
    return (*(int(i) for i in np.searchsorted(cell, np.arange(cells))), n)


def _cell_means(luma: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> np.ndarray:
    return (wy.T @ luma @ wx).astype(np.float64) / np.outer(wy.sum(0), wx.sum(0))


def _luma(image: Image.Image) -> np.ndarray:
    """BT.601 luma as float32 (Pillow's L conversion, in C: the embedder and the decoder read it alike)."""
    return np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.float32)


# -- embed and decode ---------------------------------------------------------------------------------------------
def _delta(luma: np.ndarray, bits: list[int]) -> np.ndarray:
    """The integer luma change (h, w) that puts every cell's weighted mean on its bit's lattice point."""
    h, w = luma.shape
    gy, gx = _grids(h, w)[0]
    wy, wx = _window(h, gy), _window(w, gx)
    (by, inv_y), (bx, inv_x) = _spread(h, gy), _spread(w, gx)
    bit_of, dither = _layout(gy, gx)
    offset = dither + np.asarray(bits, dtype=np.float64)[bit_of] * (STEP / 2)
    mean = _cell_means(luma, wy, wx)
    target = np.round((mean - offset) / STEP) * STEP + offset
    # A cell at black or white cannot move further that way: take the lattice point on the other side (this also
    # keeps clipping rare enough that one pass suffices).
    target = np.where(target < 2, target + STEP, np.where(target > 253, target - STEP, target))
    amplitude = inv_y @ (target - mean) @ inv_x.T  # the bumps' heights that move every cell's mean as asked
    return _round(by @ amplitude.astype(np.float32) @ bx.T, luma, gy, gx)


def _embed_image(image: Image.Image, bits: list[int]) -> Image.Image:
    """L, LA, RGB or RGBA: R, G and B (or L) move alike, so luma moves by the delta and the hue stays; alpha is
    untouched. The change is applied by Pillow in C (saturating add), not in numpy."""
    shifted = _delta(_luma(image), bits)
    shifted += 128
    np.clip(shifted, 0, 255, out=shifted)  # in place: a 1 MP float copy less per label
    delta = Image.fromarray(shifted.astype(np.uint8), "L")
    bands = [delta if band != "A" else Image.new("L", image.size, 128) for band in image.getbands()]
    return ImageChops.add(image, Image.merge(image.mode, bands), scale=1.0, offset=-128)


def _decode_image(image: Image.Image) -> tuple[list[int], float]:
    """(bits, confidence) for the likeliest grid: confidence is the mean agreement of a cell with its bit's vote."""
    luma = _luma(image)
    h, w = luma.shape
    best: tuple[list[int], float] | None = None
    for gy, gx in _grids(h, w):
        bit_of, dither = _layout(gy, gx)
        mean = _cell_means(luma, _window(h, gy), _window(w, gx))
        soft = np.cos(2 * np.pi * (((mean - dither) / STEP) % 1.0))  # +1: on the even lattice (0), -1: odd (1)
        votes = np.bincount(bit_of.ravel(), weights=soft.ravel(), minlength=PAYLOAD_BITS)
        counts = np.bincount(bit_of.ravel(), minlength=PAYLOAD_BITS)
        confidence = float(np.mean(np.abs(votes) / np.maximum(counts, 1)))
        if best is None or confidence > best[1]:
            best = ([int(v < 0) for v in votes], confidence)
    assert best is not None
    return best


# -- version 1 (DWT-DCT-SVD, exports made before grid QIM): read only --------------------------------------------
_V1_SCALE = 36.0
_K = np.arange(4)
_DCT4 = np.sqrt(2.0 / 4) * np.cos(np.pi * (2 * _K[None, :] + 1) * _K[:, None] / 8)
_DCT4[0] /= np.sqrt(2.0)
_V1_U = np.array([-0.299 * 0.492, -0.587 * 0.492, (1 - 0.114) * 0.492], dtype=np.float32)


def _decode_rgb_v1(rgb: np.ndarray) -> list[int]:
    """invisible-watermark's dwtDctSvd decoder: U of YUV, Haar LL, largest singular value of each 4x4 block's DCT."""
    h, w = rgb.shape[0] // 4 * 4, rgb.shape[1] // 4 * 4
    u = rgb[:h, :w, :3].astype(np.float32) @ _V1_U + np.float32(128.0)
    ll = ((u[0::2, 0::2] + u[0::2, 1::2] + u[1::2, 0::2] + u[1::2, 1::2]) / 2.0).astype(np.float64)
    bh, bw = ll.shape[0] // 4, ll.shape[1] // 4
    blocks = ll[: bh * 4, : bw * 4].reshape(bh, 4, bw, 4).transpose(0, 2, 1, 3).reshape(-1, 4, 4)
    s_max = np.linalg.svd(_DCT4 @ blocks @ _DCT4.T, compute_uv=False)[:, 0]
    votes = ((s_max % _V1_SCALE) > _V1_SCALE * 0.5).astype(np.float64)
    index = np.arange(len(votes)) % PAYLOAD_BITS
    share = np.bincount(index, weights=votes, minlength=PAYLOAD_BITS) / np.bincount(index, minlength=PAYLOAD_BITS)
    return [int(v) for v in share * 255 > 127]


def _rgb(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB")))


def _hex(bits: list[int]) -> str:
    return f"{int(''.join(map(str, bits)), 2):016x}"


_KEPT_MODES = ("L", "LA", "RGB", "RGBA")


def embed(image: Image.Image, asset_id: str) -> Image.Image:
    """The image with the watermark, in its own mode (L, LA, RGB, RGBA; others become RGB or RGBA). Call `too_small`
    first."""
    if image.mode not in _KEPT_MODES:
        alpha = "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info)
        image = image.convert("RGBA" if alpha else "RGB")
    return _embed_image(image, payload_bits(asset_id))


def decode(image: Image.Image) -> str | None:
    """The 64 decoded bits as 16 hex chars (whatever the pixels hold), or None when the image is too small."""
    if too_small_to_read(*image.size):
        return None
    return _hex(_decode_image(image)[0])


def decode_v1(image: Image.Image) -> str | None:
    """The payload as version 1 (DWT-DCT-SVD) would carry it: for files exported before version 2."""
    if too_small(*image.size):
        return None
    return _hex(_decode_rgb_v1(_rgb(image)))


def exact_key(payload: str) -> str | None:
    """The 48-bit key when the payload's check matches (a Zhike watermark decoded without errors), else None."""
    data = bytes.fromhex(payload)
    return data[:6].hex() if _check(data[:6]) == data[6:] else None


def bit_errors(payload: str, asset_id: str) -> int:
    want = int("".join(map(str, payload_bits(asset_id))), 2)
    return (int(payload, 16) ^ want).bit_count()


def best_match(payload: str, asset_ids: Iterable[str]) -> tuple[str, int] | None:
    """The id whose payload is nearest the decoded one, if within MAX_BIT_ERRORS; (id, bit errors)."""
    key = exact_key(payload)
    best: tuple[str, int] | None = None
    for aid in asset_ids:
        if key is not None and watermark_key(aid) == key:
            return aid, 0
        d = bit_errors(payload, aid)
        if d <= MAX_BIT_ERRORS and (best is None or d < best[1]):
            best = (aid, d)
    return best
