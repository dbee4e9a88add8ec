"""ID photo standards (证件照 sizes, passport and visa rules) and the geometry that places a head by them.

Model-free: numpy only. The op (ops/id_photo.py) finds the face and the matte, then lays the photo out with these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from zhike.core.types import Note, note

MM_PER_INCH = 25.4


@dataclass(frozen=True)
class IdStandard:
    """A photo standard. Fractions are of the photo's height; `head` is crown (top of hair) to chin."""

    title: str
    width_mm: float
    height_mm: float
    head: tuple[float, float]  # allowed head height (min, max)
    head_target: float
    top: tuple[float, float]  # allowed gap crown -> top edge (min, max)
    top_target: float
    eyes: tuple[float, float] | None = None  # allowed eye line, measured from the bottom edge
    source: str = ""

    def size_px(self, dpi: int) -> tuple[int, int]:
        return round(self.width_mm * dpi / MM_PER_INCH), round(self.height_mm * dpi / MM_PER_INCH)


# The Chinese 寸 sizes have no official head rule; "头部约占照片 2/3" is the folk rule (the ID card standard
# GA 461-2004 and the driving-licence rule say so), studios and tools (e.g. HivisionIDPhotos' 10-12 % top gap)
# frame a little looser. We use 0.55-0.65 (target 0.60) with a 10 % top gap for them.
_COMMON = "common studio framing (head ~0.55-0.65 of the height, ~10 % above the hair); no official rule"
STANDARDS: dict[str, IdStandard] = {
    "1inch": IdStandard("1寸 25×35 mm", 25, 35, (0.55, 0.65), 0.60, (0.07, 0.13), 0.10, source=_COMMON),
    "2inch": IdStandard("2寸 35×49 mm", 35, 49, (0.55, 0.65), 0.60, (0.07, 0.13), 0.10, source=_COMMON),
    "small1inch": IdStandard(
        "小一寸 22×32 mm",
        22,
        32,
        (0.58, 0.70),
        0.64,
        (0.06, 0.12),
        0.09,
        source="driving-licence photo (22×32 mm): head about 2/3 of the height (公安部 驾驶证 相片要求)",
    ),
    "big1inch": IdStandard("大一寸 33×48 mm", 33, 48, (0.55, 0.65), 0.60, (0.07, 0.13), 0.10, source=_COMMON),
    "passport_cn": IdStandard(
        "中国护照 33×48 mm",
        33,
        48,
        (28 / 48, 33 / 48),  # head 28-33 mm
        30.5 / 48,
        (3 / 48, 5 / 48),  # crown 3-5 mm below the top edge
        4 / 48,
        source="《出入境证件相片照相指引》 (exit-entry photo guide): 33×48 mm, head 28-33 mm (chin to crown), "
        "head width 15-22 mm, crown 3-5 mm from the top, chin at least 7 mm above the bottom",
    ),
    "visa_us": IdStandard(
        "US visa 2×2 in",
        50.8,
        50.8,
        (0.50, 0.69),  # head 1 - 1 3/8 in
        0.60,
        (0.05, 0.12),
        0.08,
        eyes=(0.56, 0.69),  # eyes 1 1/8 - 1 3/8 in from the bottom
        source="travel.state.gov photo requirements: 2×2 in, head 1-1 3/8 in (50-69 %) chin to top of hair, "
        "eyes 1 1/8-1 3/8 in (56-69 %) from the bottom",
    ),
    "custom": IdStandard("custom", 0, 0, (0.55, 0.65), 0.60, (0.07, 0.13), 0.10, source=_COMMON),
}
BACKGROUNDS = {
    "white": "#FFFFFF",
    "blue": "#438EDB",  # the 证件照 blue of most studio tools, RGB 67,142,219
    "red": "#FF0000",  # the red usually quoted for 红底 (RGB 255,0,0)
}
SHEET_INCHES = (6, 4)  # 6-inch print (6×4 in, 152×102 mm)
SHEET_MARGIN_MM, SHEET_GAP_MM = 2.0, 1.0  # printers' safe border, room to cut between copies
CUT_LINE = (170, 170, 170)
UPSCALE_WARN = 1.5  # more than this many output pixels per input pixel looks soft in print


def hex_rgb(color: str) -> tuple[int, int, int]:
    h = BACKGROUNDS.get(color, color).lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


@dataclass(frozen=True)
class Placement:
    """Upright-frame geometry -> photo: x' = scale * x + tx, y' = scale * y + ty."""

    scale: float
    tx: float
    ty: float


def place_head(
    std: IdStandard, size: tuple[int, int], crown_y: float, chin_y: float, eye: tuple[float, float]
) -> Placement:
    """Scale the head to the target share of the height, put the crown at the target top margin and the eye
    midpoint at the centre; where the standard bounds the eye line, shift into it (keeping the top margin
    allowed if it can be)."""
    w, h = size
    s = std.head_target * h / max(chin_y - crown_y, 1.0)
    ty = std.top_target * h - s * crown_y
    if std.eyes is not None:
        eye_up = 1 - (s * eye[1] + ty) / h  # eye line from the bottom
        lo, hi = std.eyes
        want = min(max(eye_up, lo), hi)
        if want != eye_up:
            ty -= (want - eye_up) * h
    return Placement(scale=s, tx=w / 2 - s * eye[0], ty=ty)


def affine(rotation: np.ndarray, pl: Placement) -> np.ndarray:
    """2x3 matrix: input -> (rotation) upright frame -> (placement) photo."""
    r = np.vstack([rotation, [0, 0, 1]])
    p = np.array([[pl.scale, 0, pl.tx], [0, pl.scale, pl.ty], [0, 0, 1]])
    return (p @ r)[:2]


def rotation_about(centre: tuple[float, float], degrees: float) -> np.ndarray:
    """2x3 matrix turning the image by `degrees` (counter-clockwise on screen) about `centre`: OpenCV's
    getRotationMatrix2D at scale 1, computed the same way."""
    a = math.radians(degrees)
    alpha, beta = math.cos(a), math.sin(a)
    cx, cy = (float(np.float32(v)) for v in centre)  # OpenCV takes the centre as a float32 point
    return np.array([[alpha, beta, (1 - alpha) * cx - beta * cy], [-beta, alpha, beta * cx + (1 - alpha) * cy]])


def invert_affine(m: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix (OpenCV's invertAffineTransform, computed the same way)."""
    m = np.asarray(m, np.float64)
    d = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    d = 1.0 / d if d != 0 else 0.0
    a11, a22, a12, a21 = m[1, 1] * d, m[0, 0] * d, -m[0, 1] * d, -m[1, 0] * d
    return np.array([[a11, a12, -a11 * m[0, 2] - a12 * m[1, 2]], [a21, a22, -a21 * m[0, 2] - a22 * m[1, 2]]])


def sheet_layout(photo: tuple[int, int], dpi: int) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """A 6-inch print holding as many copies as fit (either orientation; landscape on a tie): the sheet size and
    the top-left corner of every copy, the grid centred."""
    pw, ph = photo
    margin, gap = round(SHEET_MARGIN_MM * dpi / MM_PER_INCH), max(2, round(SHEET_GAP_MM * dpi / MM_PER_INCH))
    best: tuple[int, tuple[int, int], int, int] | None = None
    for sw, sh in ((SHEET_INCHES[0] * dpi, SHEET_INCHES[1] * dpi), (SHEET_INCHES[1] * dpi, SHEET_INCHES[0] * dpi)):
        cols = max(0, (sw - 2 * margin + gap) // (pw + gap))
        rows = max(0, (sh - 2 * margin + gap) // (ph + gap))
        if best is None or cols * rows > best[0]:
            best = (cols * rows, (sw, sh), cols, rows)
    assert best is not None
    _, (sw, sh), cols, rows = best
    x0 = (sw - (cols * (pw + gap) - gap)) // 2
    y0 = (sh - (rows * (ph + gap) - gap)) // 2
    spots = [(x0 + c * (pw + gap), y0 + r * (ph + gap)) for r in range(rows) for c in range(cols)]
    return (sw, sh), spots


def make_sheet(photo: np.ndarray, dpi: int) -> tuple[np.ndarray, int]:
    """The print: copies on white with 1-px grey cut lines just outside each copy."""
    ph, pw = photo.shape[:2]
    (sw, sh), spots = sheet_layout((pw, ph), dpi)
    sheet = np.full((sh, sw, 3), 255, np.uint8)
    for x, y in spots:
        sheet[y : y + ph, x : x + pw] = photo
        # the frame from (x - 1, y - 1) to (x + pw, y + ph), corners included; the layout's margin keeps it inside
        sheet[[y - 1, y + ph], x - 1 : x + pw + 1] = CUT_LINE
        sheet[y - 1 : y + ph + 1, [x - 1, x + pw]] = CUT_LINE
    return sheet, len(spots)


def layout_warnings(
    std: IdStandard, head: float, top: float, eyes: float, scale: float, above: np.ndarray, beyond: np.ndarray,
    alpha: np.ndarray, crown_row: int, clipped: bool, crown_from: str,
) -> list[Note]:  # fmt: skip
    """What the user should check on the photo: coded (the studio says them in its language), English text."""
    out: list[Note] = []

    def add(code: str, message: str, **ctx: str) -> None:
        out.append(note(code, message, **ctx))

    if scale > UPSCALE_WARN:
        add(
            "id_photo_small",
            f"the photo is small for this size: the face is enlarged {scale:.1f}x and may print soft; "
            "use a larger photo",
            scale=f"{scale:.1f}",
        )
    if clipped:
        add("id_photo_head_cut", "the top of the head is cut off in the photo; use one with room above the hair")
    elif above[: max(crown_row, 0)].any():
        add("id_photo_head_room", "the photo ends close above the head; the background was extended above it")
    if beyond[alpha > 0.5].any():
        add(
            "id_photo_tight",
            "the photo is cut too tight at the sides or bottom; the clothes were extended to the edge",
        )
    if crown_from != "matte" and not clipped:
        add("id_photo_crown_estimated", "the top of the head could not be found in the matte; it was estimated")
    checks = [
        ("id_photo_head_size", "head height {value} of the photo is outside the standard's {lo}-{hi}", head, std.head),
        ("id_photo_top_gap", "the gap above the head ({value}) is outside the standard's {lo}-{hi}", top, std.top),
        ("id_photo_eye_line", "the eye line ({value} from the bottom) is outside {lo}-{hi}", eyes, std.eyes),
    ]
    for code, text, value, bounds in checks:
        if bounds and not bounds[0] - 1e-3 <= value <= bounds[1] + 1e-3:
            ctx = {"value": f"{value:.2f}", "lo": f"{bounds[0]:.2f}", "hi": f"{bounds[1]:.2f}"}
            add(code, text.format(**ctx), **ctx)
    return out
