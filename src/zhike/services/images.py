"""Safe decoding of user images and PNG encoding with generation parameters.

Uploads are hostile until proven otherwise: we check the byte size, the format (only the decoders of the accepted
formats ever see the bytes), the pixel count from the header (before decoding: decompression bombs), then decode to
catch truncated files, within a process-wide budget of decoded pixels (`DECODING`) so that many large images at once
wait or are refused instead of exhausting memory.

Accepted: PNG, JPEG, WebP, HEIC/HEIF (pillow-heif, registered on the first HEIF file), AVIF, TIFF, BMP and GIF; the
first frame or page of animations and multi-page files. Stored (`checked_upload`): PNG, JPEG and WebP as sent (what
browsers show and the labels handle); any other format is converted once, to upright sRGB pixels without EXIF, as PNG
when the source is lossless or has transparency (no new loss on a supplier's TIFF or a logo) and as JPEG quality 95
when it was lossy already (HEIC, AVIF: a fifth of the PNG's size, no visible change).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from PIL import Image, UnidentifiedImageError

from zhike.core import png
from zhike.core.errors import InvalidInput, TooLarge, TooManyRequests, UnsupportedMedia, ZhikeError
from zhike.imaging.colour import orientation, upright_srgb

# Pillow's format name -> the media type. MPO is how Pillow names a multi-picture JPEG (what many phone cameras
# write): a JPEG to every other reader.
ALLOWED_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "WEBP": "image/webp",
    "HEIF": "image/heif",
    "AVIF": "image/avif",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "GIF": "image/gif",
}
ACCEPTED_NAMES = "PNG, JPEG, WebP, HEIC, AVIF, TIFF, BMP or GIF"
STORED_AS_SENT = frozenset({"image/png", "image/jpeg", "image/webp"})
LOSSY_SOURCES = frozenset({"image/heif", "image/avif"})  # stored as JPEG unless transparent
# File signatures of the accepted formats: such a file that Pillow cannot identify is damaged, not foreign.
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM")
_AVIF_BRANDS = (b"avif", b"avis")  # Pillow's own AVIF plugin; other ISO-BMFF brands go to pillow-heif
_JPEG_DRAFT = 8  # checking a baseline JPEG decodes it at 1/8 scale: every byte is read, 1/64 of the pixels kept


class Busy(ZhikeError):
    """Too many large images are being decoded at once: try again shortly (Retry-After)."""

    status = 503
    code = "server_busy"


class PixelBudget:
    """A weighted semaphore of decoded pixels: all holders together at most `total`, one owner at most `per_owner`.

    A hold that does not fit waits up to `wait_s`, then is refused (Busy 503, or 429 `uploads_busy` where the owner's
    own images are what it waits for). One image never asks for more than the limits (it would wait forever): alone,
    the largest accepted image always runs. Process-wide (`DECODING`): the limit is the memory of this process.
    """

    def __init__(self, total: int, per_owner: int, wait_s: float) -> None:
        self._cond = threading.Condition()
        self._used = 0
        self._by_owner: Counter[str] = Counter()
        self.configure(total, per_owner, wait_s)

    def configure(self, total: int, per_owner: int, wait_s: float) -> None:
        with self._cond:
            self.total, self.per_owner, self.wait_s = total, min(per_owner, total), wait_s
            self._cond.notify_all()

    @property
    def used(self) -> int:
        return self._used

    @contextlib.contextmanager
    def hold(self, pixels: int, *, owner: str | None, field: str | None = None) -> Iterator[None]:
        pixels = max(1, min(pixels, self.per_owner if owner is not None else self.total))
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while True:
                mine_full = owner is not None and self._by_owner[owner] + pixels > self.per_owner
                if not mine_full and self._used + pixels <= self.total:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._refusal(mine_full, field)
                self._cond.wait(left)
            self._used += pixels
            if owner is not None:
                self._by_owner[owner] += pixels
        try:
            yield
        finally:
            with self._cond:
                self._used -= pixels
                if owner is not None:
                    self._by_owner[owner] -= pixels
                    if self._by_owner[owner] <= 0:
                        del self._by_owner[owner]
                self._cond.notify_all()

    def _refusal(self, mine: bool, field: str | None) -> ZhikeError:
        seconds = max(1, math.ceil(self.wait_s))
        err: ZhikeError
        if mine:
            err = TooManyRequests(
                f"your other large images are still being read: send this one again in {seconds} s "
                "(or send fewer at once)",
                code="uploads_busy",
                field=field,
                ctx={"seconds": seconds},
            )
        else:
            err = Busy(
                f"the server is busy reading other large images: try again in {seconds} s",
                field=field,
                ctx={"seconds": seconds},
            )
        err.headers = {"Retry-After": str(seconds)}  # type: ignore[attr-defined]
        return err


# Settings' defaults; Zhike.assets sets this process's values (settings.decode_pixels_*).
DECODING = PixelBudget(150_000_000, 50_000_000, 10.0)


@dataclass(frozen=True)
class Upload:
    """What to store for an upload: its bytes and media type, and the size it is shown at (upright)."""

    data: bytes
    mime: str
    width: int
    height: int


def decode_image(data: bytes, *, field: str, max_bytes: int, max_pixels: int) -> tuple[Image.Image, str]:
    """Decode uploaded bytes into a loaded PIL image (the first frame, in its own mode: `upright_srgb` shows it) and
    the file's media type; raise a user error naming `field` otherwise."""
    with _reading(data, field=field, max_pixels=max_pixels):
        img, mime = _open(data, field=field, max_bytes=max_bytes, max_pixels=max_pixels)
        with DECODING.hold(_cost(img, full=True), owner=None, field=field):
            img.load()
    return img, mime


def checked_upload(data: bytes, *, field: str, max_bytes: int, max_pixels: int, owner: str | None) -> Upload:
    """The upload checked whole (a truncated file is refused) and what to store: PNG, JPEG and WebP as sent (checked
    with as few decoded pixels as the format allows), other formats converted once (see the module's docstring)."""
    with _reading(data, field=field, max_pixels=max_pixels):
        img, mime = _open(data, field=field, max_bytes=max_bytes, max_pixels=max_pixels)
        w, h = img.size
        if mime in STORED_AS_SENT:
            with DECODING.hold(_cost(img, full=False), owner=owner, field=field):
                if img.format in ("JPEG", "MPO"):
                    img.draft(None, (max(1, w // _JPEG_DRAFT), max(1, h // _JPEG_DRAFT)))
                img.load()
                turned = orientation(img) in (5, 6, 7, 8)  # stored sideways: shown h x w
            return Upload(data, mime, h if turned else w, w if turned else h)
        # Decoded, then a converted copy (sRGB, upright) beside it while it is encoded.
        with DECODING.hold(2 * _cost(img, full=True), owner=owner, field=field):
            img.load()
            shown = upright_srgb(img)
            lossy = mime in LOSSY_SOURCES or img.info.get("compression") in ("jpeg", "tiff_jpeg")
            stored, stored_mime = _encode_for_storage(shown, lossy=lossy)
        return Upload(stored, stored_mime, shown.width, shown.height)


def _encode_for_storage(img: Image.Image, *, lossy: bool) -> tuple[bytes, str]:
    if lossy and not img.has_transparency_data and img.mode in ("RGB", "L"):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=95)
        return buf.getvalue(), "image/jpeg"
    return png.encode(img), "image/png"


MAX_PNG_CHUNKS = 50_000  # a 30 MB PNG with its image data in 8 KB chunks has ~4,000


# -- reading -----------------------------------------------------------------------------------------------------
def check_size(data: bytes, *, field: str, max_bytes: int) -> None:
    """An uploaded file is not empty and within the deployment's upload limit (any file: images, text to verify)."""
    if not data:
        raise InvalidInput("the file is empty (0 bytes)", code="file_empty", field=field)
    if len(data) > max_bytes:
        raise TooLarge(
            f"the file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB",
            code="file_too_large",
            field=field,
            ctx={"mb": round(max_bytes / 1e6)},
            limit=max_bytes,
        )


def _open(data: bytes, *, field: str, max_bytes: int, max_pixels: int) -> tuple[Image.Image, str]:
    """The opened (header read, pixels not decoded) first frame and its media type, after the checks that need no
    decoding: size in bytes, format, pixel count."""
    check_size(data, field=field, max_bytes=max_bytes)
    drawing = None if _looks_accepted(data) else _not_a_raster(data)
    if drawing:
        raise UnsupportedMedia(
            f"{drawing} files are drawings or documents, not photos: export it as PNG or JPEG and upload that",
            code="image_not_raster",
            field=field,
            ctx={"format": drawing},
        )
    if data.startswith(png.SIGNATURE) and png.chunk_count(data, MAX_PNG_CHUNKS) > MAX_PNG_CHUNKS:
        raise TooLarge(
            f"the PNG has more than {MAX_PNG_CHUNKS} chunks (real files have a few dozen to a few thousand)",
            code="metadata_too_large",
            field=field,
            limit=MAX_PNG_CHUNKS,
        )
    img = Image.open(io.BytesIO(data), formats=_formats(data))
    fmt = img.format or ""
    if fmt not in ALLOWED_FORMATS:  # a plugin we did not ask for (cannot happen with `formats`; kept as the rule)
        raise UnsupportedMedia(
            f"image format {fmt or 'unknown'} is not accepted; use {ACCEPTED_NAMES}",
            code="image_format_unsupported",
            field=field,
            ctx={"format": fmt or "?", "accepted": ACCEPTED_NAMES},
        )
    w, h = img.size
    tiles = _tile_pixels(img)
    if w <= 0 or h <= 0 or max(w * h, tiles) > max_pixels:
        raise TooLarge(
            f"the image is {w}x{h} = {w * h / 1e6:.1f} megapixels"
            + (f" in tiles of {tiles / 1e6:.0f}" if tiles > w * h else "")
            + f"; the limit is {max_pixels / 1e6:.0f}",
            code="image_too_large",
            field=field,
            ctx={"mp": round(max_pixels / 1e6)},
            limit=max_pixels,
        )
    if img.mode == "F":
        raise UnsupportedMedia(
            "32-bit floating-point images (HDR or scientific TIFF) are not accepted: export as 8- or 16-bit",
            code="image_float_unsupported",
            field=field,
        )
    return img, ALLOWED_FORMATS[fmt]


def _cost(img: Image.Image, *, full: bool) -> int:
    """Pixels a decode of `img` holds in memory (about 3 bytes each): the budget's weight."""
    w, h = img.size
    if img.format == "TIFF":
        return max(w * h, _tile_pixels(img))
    if img.format in ("JPEG", "MPO") and img.info.get("progressive"):
        return 2 * w * h if full else w * h  # a progressive JPEG keeps every coefficient until its last scan
    if img.format in ("JPEG", "MPO") and not full:
        return math.ceil(w / _JPEG_DRAFT) * math.ceil(h / _JPEG_DRAFT)
    return w * h


def _tile_pixels(img: Image.Image) -> int:
    """A TIFF's tile size: libtiff allocates whole tiles, whatever the image's own size (a 16x16 image can declare
    8192x8192 tiles: 200 MB)."""
    if img.format != "TIFF":
        return 0
    tags = img.tag_v2  # type: ignore[attr-defined]
    sides = [tags.get(322), tags.get(323)]  # TileWidth, TileLength; a hostile file may give several values
    sides = [v[0] if isinstance(v, tuple) and v else v for v in sides]
    return math.prod(int(v) for v in sides) if all(isinstance(v, int) for v in sides) else 0


@contextlib.contextmanager
def _reading(data: bytes, *, field: str, max_pixels: int) -> Iterator[None]:
    """Pillow's errors while reading `data` as user errors naming `field`."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise TooLarge(
            f"the image is too large to decode safely ({e})",
            code="image_too_large",
            field=field,
            limit=max_pixels,
            ctx={"mp": round(max_pixels / 1e6)},
        ) from e
    except UnidentifiedImageError as e:
        if _looks_accepted(data):
            raise InvalidInput(
                "the image is damaged or truncated (its header cannot be read)", code="image_damaged", field=field
            ) from e
        raise UnsupportedMedia(
            f"the file is not an image Zhike can read ({ACCEPTED_NAMES})",
            code="not_an_image",
            field=field,
            ctx={"accepted": ACCEPTED_NAMES},
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InvalidInput(f"the image is damaged or truncated: {e}", code="image_damaged", field=field) from e


def _is_iso_media(data: bytes) -> bool:
    return data[4:8] == b"ftyp"  # HEIC, HEIF and AVIF are ISO base media files


def _looks_accepted(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP") or _is_iso_media(data)


def _formats(data: bytes) -> list[str]:
    """The Pillow plugins allowed to read `data`: only the accepted formats' decoders ever parse user bytes."""
    names = [f for f in ALLOWED_FORMATS if f not in ("HEIF", "MPO")]  # the JPEG plugin opens MPO files
    if _is_iso_media(data) and data[8:12] not in _AVIF_BRANDS:
        _register_heif()
        names.append("HEIF")
    return names


@cache
def _register_heif() -> None:
    """pillow-heif on the first HEIF file (its libheif is large; most processes never read one). Its thumbnails,
    depth maps and auxiliary images are never decoded: only the primary image is used."""
    from pillow_heif import register_heif_opener

    register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def _not_a_raster(data: bytes) -> str | None:
    """The name of a vector or document format users export photos from (refused with a hint), or None."""
    head = data[:4096]
    if b"%PDF-" in head[:1024]:
        return "PDF"
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):  # PostScript / EPS (also binary EPS)
        return "EPS"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and b"<svg" in text:
        return "SVG"
    return None


# -- writing -----------------------------------------------------------------------------------------------------
def encode_png(image: Image.Image, text_chunks: dict[str, str], *, dpi: int | None = None) -> bytes:
    """PNG bytes with text chunks (iTXt for non-Latin-1 text, e.g. Chinese prompts), by the fast writer (core/png.py).

    The mode is kept (RGBA cut-outs keep their alpha); `dpi` writes the pHYs chunk (print sizes, ID photos).
    """
    return png.encode(image, text=text_chunks, dpi=(dpi, dpi) if dpi else None)


def read_png_text(image: Image.Image) -> dict[str, Any]:
    """The `parameters` text and Zhike JSON embedded in a PNG, if any."""
    out: dict[str, Any] = {}
    info = getattr(image, "text", None) or image.info
    if "parameters" in info:
        out["parameters"] = info["parameters"]
    if "zhike" in info:
        with contextlib.suppress(ValueError):
            out["zhike"] = json.loads(info["zhike"])
    return out


def to_jpeg(image: Image.Image, quality: int = 80) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
