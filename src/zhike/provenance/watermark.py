"""Invisible watermark: a 64-bit payload derived from the asset id, embedded with invisible-watermark's DWT-DCT-SVD.

dwtDctSvd, not the SDXL default dwtDct: on real photos dwtDct failed to decode even losslessly, dwtDctSvd survived
JPEG 90/80/70 (see COMPLIANCE.md). The payload cannot hold the id itself robustly, so it is a 48-bit key (a hash
of the id) plus a 16-bit check that tells a real watermark from noise. JPEG still flips a bit or three on small or
busy images, so verify matches the 64 decoded bits against each known id's payload with up to MAX_BIT_ERRORS
differences (chance that noise comes within 6 bits of a given id: ~5e-12).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

PAYLOAD_BITS = 64
METHOD = "dwtDctSvd"
# invisible-watermark refuses images under 256x256 in area; thin strips lose the payload to edge blocks too.
MIN_AREA = 256 * 256
MIN_SIDE = 128
MAX_BIT_ERRORS = 6


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


@lru_cache(maxsize=1)
def _dwt_dct_svd() -> Any:
    """invisible-watermark's DWT-DCT-SVD class, loaded from its own file: the package's __init__ imports its RivaGAN
    model and with it torch, which the API process must not import (ARCHITECTURE.md). The file needs only
    numpy, cv2 and pywt."""
    spec = importlib.util.find_spec("imwatermark")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("invisible-watermark is not installed (make install)")
    path = Path(next(iter(spec.submodule_search_locations))) / "dwtDctSvd.py"
    mod_spec = importlib.util.spec_from_file_location("_zhike_imwatermark_dwtdctsvd", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module.EmbedDwtDctSvd


def _bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def embed(image: Image.Image, asset_id: str) -> Image.Image:
    """The image with the watermark (alpha, if any, kept). Call `too_small` first."""
    bits = payload_bits(asset_id)
    marked = _dwt_dct_svd()(bits, wmLen=len(bits)).encode(_bgr(image))
    out = Image.fromarray(np.clip(marked, 0, 255).astype(np.uint8)[:, :, ::-1], "RGB")
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        out.putalpha(image.convert("RGBA").getchannel("A"))
    return out


def decode(image: Image.Image) -> str | None:
    """The 64 decoded bits as 16 hex chars (whatever the pixels hold), or None when the image is too small."""
    if too_small(*image.size):
        return None
    bits = _dwt_dct_svd()([], wmLen=PAYLOAD_BITS).decode(_bgr(image))
    return f"{int(''.join(str(int(b)) for b in bits), 2):016x}"


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
