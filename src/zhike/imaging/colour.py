"""An image as it is meant to be seen: upright (EXIF orientation), 8 bits per channel, in sRGB.

Photos carry how they should be shown beside their pixels: phones store them sideways plus an orientation tag,
iPhones and cameras embed Display P3 or Adobe RGB profiles, print suppliers send CMYK, scanners 16-bit. Operations,
thumbnails and stored conversions all want plain sRGB pixels, so every user image goes through `upright_srgb`.

Pixels already plain (no rotation, no profile or an sRGB one, 8-bit) come back untouched, the same object: images
that looked right before look exactly the same.
"""

from __future__ import annotations

import io
import logging
from functools import cache

import numpy as np
from PIL import Image, ImageCms, ImageOps

log = logging.getLogger("zhike.imaging")

ORIENTATION = 0x0112  # EXIF tag
PLAIN_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA"}  # 8-bit (or 1-bit) modes operations already handle
SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}  # Pillow's 16-bit grey; "I" holds them in older Pillows


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@cache
def _probe() -> Image.Image:
    """Colours spread over the RGB cube: a profile that maps them all to themselves is sRGB for our purpose."""
    steps = np.arange(0, 256, 17, dtype=np.uint8)
    cube = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(1, -1, 3)
    return Image.fromarray(cube, "RGB")


def upright_srgb(img: Image.Image) -> Image.Image:
    """`img` upright, 8-bit and in sRGB, with its embedded profile applied.

    Modes stay what they were where that is already 8-bit and sRGB (L, P, RGBA...); CMYK, LAB and 16-bit become RGB
    or L. 32-bit float images are not handled (the decoder refuses them).
    """
    img = _upright(img)  # first: the orientation lives in the EXIF, which converted copies no longer carry
    img = _eight_bit(img)
    return _to_srgb(img)


def _eight_bit(img: Image.Image) -> Image.Image:
    if img.mode in SIXTEEN_BIT:
        # Pillow's own I;16 -> L conversion clips (256 and 65535 both become 255): scale instead.
        grey = np.clip(np.asarray(img).astype(np.float32), 0, 65535) * (255 / 65535)
        out = Image.fromarray(np.rint(grey).astype(np.uint8), "L")
        out.info = dict(img.info)
        return out
    return img


def _to_srgb(img: Image.Image) -> Image.Image:
    icc = img.info.get("icc_profile")
    profile = _profile(icc) if icc else None
    if img.mode == "CMYK":
        # Through the supplier's profile when there is one (press CMYK is not a formula); else Pillow's formula.
        transform = _transform_from(profile, "CMYK") if profile is not None else None
        return _without_profile(ImageCms.applyTransform(img, transform) if transform else img.convert("RGB"))
    if img.mode not in PLAIN_MODES:  # LAB (D50, as TIFF stores it), YCbCr, RGBX, HSV: Pillow knows these formulas
        img = _without_profile(img.convert("RGBA" if img.has_transparency_data else "RGB"))
    if profile is None or img.mode in ("1", "L", "LA"):
        return img  # grey pixels keep their look (grey profiles are not applied, as before)
    transform = _transform_from(profile, "RGB", skip_identity=True)
    if transform is None:
        return img  # no usable profile, or an sRGB one (or as good as): keep the exact pixels
    rgba = img.convert("RGBA") if img.has_transparency_data else None
    rgb = rgba.convert("RGB") if rgba else img if img.mode == "RGB" else img.convert("RGB")
    out = ImageCms.applyTransform(rgb, transform)
    if rgba is not None:
        out.putalpha(rgba.getchannel("A"))
    return _without_profile(out)


def _profile(icc: bytes) -> ImageCms.ImageCmsProfile | None:
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as e:
        log.info("ignoring an unreadable ICC profile (%s): pixels shown as sRGB, as browsers do", e)
        return None


def _transform_from(
    profile: ImageCms.ImageCmsProfile, mode: str, *, skip_identity: bool = False
) -> ImageCms.ImageCmsTransform | None:
    """The transform from `profile` (for pixels in `mode`) to sRGB; None where the profile does not describe such
    pixels or cannot be used, and with `skip_identity` where it maps colours to themselves (an sRGB profile)."""
    if profile.profile.xcolor_space.strip() != mode:
        return None  # e.g. an RGB profile on CMYK pixels: a broken file, shown by the formula
    try:
        transform = ImageCms.buildTransform(profile, _srgb(), mode, "RGB")
        if skip_identity:
            probe = _probe()
            moved = np.abs(np.asarray(ImageCms.applyTransform(probe, transform), np.int16) - np.asarray(probe))
            if int(moved.max()) <= 1:
                return None
        return transform
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as e:
        log.info("ignoring an ICC profile that cannot convert %s to sRGB (%s)", mode, e)
        return None


def _without_profile(img: Image.Image) -> Image.Image:
    img.info.pop("icc_profile", None)  # the pixels are sRGB now; keeping the old profile would convert them twice
    return img


def orientation(img: Image.Image) -> int:
    """The EXIF orientation (1: as stored; 5-8: stored sideways); 1 for a damaged EXIF block (pixels as stored)."""
    try:
        value = img.getexif().get(ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError) as e:
        log.info("ignoring unreadable EXIF (%s)", e)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright(img: Image.Image) -> Image.Image:
    # exif_transpose copies even when there is nothing to do: only call it when the photo is stored turned.
    return ImageOps.exif_transpose(img) if orientation(img) != 1 else img
