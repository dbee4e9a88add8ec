"""Safe decoding of user images and PNG encoding with generation parameters.

Uploads are hostile until proven otherwise: we check the byte size, the format, the pixel count from the
header (before decoding: decompression bombs), then decode fully to catch truncated files.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from typing import Any

from PIL import Image, UnidentifiedImageError

from zhike.core import png
from zhike.core.errors import InvalidInput, TooLarge, UnsupportedMedia

# MPO is how Pillow names a multi-picture JPEG (what many phone cameras write): a JPEG to every other reader.
ALLOWED_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}
# File signatures of the accepted formats: such a file that Pillow cannot identify is damaged, not foreign.
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


def _looks_accepted(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def decode_image(data: bytes, *, field: str, max_bytes: int, max_pixels: int) -> tuple[Image.Image, str]:
    """Decode uploaded bytes into a loaded PIL image; raise a user error naming `field` otherwise."""
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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format or ""
            if fmt not in ALLOWED_FORMATS:
                raise UnsupportedMedia(
                    f"image format {fmt or 'unknown'} is not accepted; use PNG, JPEG, WebP or BMP",
                    field=field,
                )
            w, h = img.size
            if w * h > max_pixels or w <= 0 or h <= 0:
                raise TooLarge(
                    f"the image is {w}x{h} = {w * h / 1e6:.1f} megapixels; the limit is {max_pixels / 1e6:.0f}",
                    code="image_too_large",
                    field=field,
                    ctx={"mp": round(max_pixels / 1e6)},
                    limit=max_pixels,
                )
            img.load()
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
        raise UnsupportedMedia("the file is not an image Zhike can read (PNG, JPEG, WebP, BMP)", field=field) from e
    except (OSError, SyntaxError, ValueError) as e:
        raise InvalidInput(f"the image is damaged or truncated: {e}", code="image_damaged", field=field) from e
    return img, ALLOWED_FORMATS[fmt]


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
