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
