"""imaging/ is numpy only, yet gives OpenCV's exact results where it stands in for it (rotations, inverse
matrices, the print sheet's cut lines)."""

from __future__ import annotations

import cv2
import numpy as np

from zhike.imaging.id_photo import CUT_LINE, invert_affine, make_sheet, rotation_about, sheet_layout


def test_rotation_and_inverse_are_opencvs() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        centre, degrees = (float(rng.uniform(0, 3000)), float(rng.uniform(0, 3000))), float(rng.uniform(-45, 45))
        assert np.array_equal(rotation_about(centre, degrees), cv2.getRotationMatrix2D(centre, degrees, 1.0))
        m = rng.normal(size=(2, 3)) * 100
        assert np.array_equal(invert_affine(m), cv2.invertAffineTransform(m))


def test_sheet_cut_lines_are_opencvs_rectangles() -> None:
    photo = np.random.default_rng(1).integers(0, 256, (413, 295, 3), dtype=np.uint8)
    for dpi in (72, 300, 600):
        ph, pw = photo.shape[:2]
        (sw, sh), spots = sheet_layout((pw, ph), dpi)
        want = np.full((sh, sw, 3), 255, np.uint8)
        for x, y in spots:
            want[y : y + ph, x : x + pw] = photo
            cv2.rectangle(want, (x - 1, y - 1), (x + pw, y + ph), CUT_LINE, 1)
        sheet, copies = make_sheet(photo, dpi)
        assert copies == len(spots) and np.array_equal(sheet, want)


# -- colour.upright_srgb: how user images are shown ---------------------------------------------------------------
def test_plain_images_come_back_untouched() -> None:
    """No turn, no profile (or an sRGB one), 8-bit: the same object, so images that looked right stay bit-exact."""
    from PIL import Image, ImageCms

    from zhike.imaging.colour import upright_srgb

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = Image.new("RGB", (8, 8), (10, 200, 30))
    tagged.info["icc_profile"] = srgb
    for img in (Image.new(m, (8, 8)) for m in ("1", "L", "LA", "P", "RGB", "RGBA")):
        assert upright_srgb(img) is img
    assert upright_srgb(tagged) is tagged


def test_a_damaged_profile_is_ignored_not_fatal() -> None:
    from PIL import Image

    from zhike.imaging.colour import upright_srgb

    img = Image.new("RGB", (8, 8), (10, 200, 30))
    img.info["icc_profile"] = b"\x00\x00\x02\x00not a profile" * 10
    assert upright_srgb(img).getpixel((0, 0)) == (10, 200, 30)


def test_transparent_wide_gamut_image_keeps_its_alpha() -> None:
    from PIL import Image

    from tests.test_photo_formats import ADOBE_RGB, BASE, adobe_to_srgb
    from zhike.imaging.colour import upright_srgb

    alpha = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))
    img = Image.new("RGBA", (16, 4), (*BASE, 0))
    img.putalpha(Image.fromarray(alpha))
    img.info["icc_profile"] = ADOBE_RGB
    out = upright_srgb(img)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], alpha)
    assert np.abs(np.asarray(out)[0, 0, :3] - adobe_to_srgb(BASE)).max() <= 1


def test_lab_pixels_become_srgb() -> None:
    from PIL import Image

    from zhike.imaging.colour import upright_srgb

    # sRGB red is L* 54.29, a* 80.80, b* 69.89 (D50, as ICC profiles and TIFF store CIELAB); Pillow's LAB holds L*
    # scaled to 0-255 and a*, b* offset by 128.
    lab = Image.new("LAB", (4, 4), (round(54.29 * 255 / 100), 128 + 81, 128 + 70))
    r, g, b = upright_srgb(lab).getpixel((0, 0))
    assert r >= 248 and g <= 8 and b <= 8, (r, g, b)  # not the (136, 209, 198) a mode-blind reader shows
