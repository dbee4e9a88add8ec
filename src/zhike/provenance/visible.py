"""The explicit label: "AI生成" (or the deployment's text) drawn on a semi-opaque plate in a corner.

GB 45438-2025 asks for label text at least 5% of the image's shorter side; the text height (not the plate) is
sized to that fraction, so the rule holds whatever the font's line spacing. The text is drawn with the design
renderer's font chain (zhike/fonts.py: Zhike's bundled Source Han Sans SC first, then system fonts), each
character with a font that has it, so the label reads 中文 on a server without system fonts.
"""

from __future__ import annotations

from typing import Literal

from PIL import Image, ImageDraw, ImageFont

from zhike import fonts

Position = Literal["bottom-right", "bottom-left", "top-right", "top-left"]
MIN_FRACTION = 0.05
FALLBACK_TEXT = "AI-generated"  # when no font has every character of the text: never draw tofu boxes

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Runs = list[tuple[str, Font]]


def _faces() -> tuple[fonts.FontFace, ...]:
    try:
        return fonts.chain("sans", "regular")
    except RuntimeError:  # no font at all (no embedded fonts fetched, no system fonts)
        return ()


def cjk_font_path() -> str | None:
    """The font file that draws Chinese in the label (the bundled Source Han Sans SC first), or None."""
    faces = _faces()
    face = fonts.face_for("中", faces) if faces else None
    return face.path if face else None


def _runs(text: str, size: int) -> Runs:
    """The text in runs, each with a font that has its characters; when no font has them all, the English text
    (a label nobody can read is no label); with no font at all, Pillow's built-in one draws it."""
    faces = _faces()
    for candidate in (text, FALLBACK_TEXT):
        found = fonts.runs(candidate, faces) if faces else None
        if found:
            return [(part, face.font(size)) for part, face in found]
    return [(FALLBACK_TEXT, ImageFont.load_default(size))]


def _bbox(runs: Runs) -> tuple[float, float, float, float]:
    """Box of the drawn runs, relative to the start of their common baseline."""
    x, box = 0.0, [0.0, 0.0, 0.0, 0.0]
    for i, (part, font) in enumerate(runs):
        left, top, right, bottom = font.getbbox(part, anchor="ls")
        b = (x + left, top, x + right, bottom)
        box = list(b) if i == 0 else [min(box[0], b[0]), min(box[1], b[1]), max(box[2], b[2]), max(box[3], b[3])]
        x += font.getlength(part)
    return box[0], box[1], box[2], box[3]


def apply(
    image: Image.Image,
    text: str = "AI生成",
    *,
    position: Position = "bottom-right",
    fraction: float = MIN_FRACTION,
) -> Image.Image:
    """A copy of the image with the label; text height >= `fraction` (>= 5%) of the shorter side."""
    short = min(image.size)
    runs = _fit(text, _target(image.size, fraction))
    left, top, right, bottom = (round(v) for v in _bbox(runs))
    tw, th = right - left, bottom - top
    pad = max(2, th // 3)
    margin = max(2, round(short * 0.02))
    pw, ph = tw + 2 * pad, th + 2 * pad
    x = margin if position.endswith("left") else image.width - pw - margin
    y = margin if position.startswith("top") else image.height - ph - margin
    base = image.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rounded_rectangle((x, y, x + pw, y + ph), radius=pad, fill=(0, 0, 0, 150))
    pen, baseline = float(x + pad - left), y + pad - top
    for part, font in runs:  # one baseline for every run, whichever font draws it
        draw.text((pen, baseline), part, font=font, anchor="ls", fill=(255, 255, 255, 235))
        pen += font.getlength(part)
    out = Image.alpha_composite(base, overlay)
    return out if image.mode == "RGBA" else out.convert("RGB")


def _target(image_size: tuple[int, int], fraction: float) -> int:
    return max(8, round(min(image_size) * max(fraction, MIN_FRACTION)))


def _fit(text: str, target: int) -> Runs:
    """Glyph boxes are smaller than the em size: grow the font until the drawn text is `target` px tall."""
    size = target
    runs = _runs(text, size)
    for _ in range(8):
        box = _bbox(runs)
        if box[3] - box[1] >= target:
            break
        size = int(size * target / max(1, box[3] - box[1])) + 1
        runs = _runs(text, size)
    return runs


def text_height(image_size: tuple[int, int], text: str = "AI生成", fraction: float = MIN_FRACTION) -> int:
    """The drawn text height `apply` uses (for tests and reports)."""
    box = _bbox(_fit(text, _target(image_size, fraction)))
    return round(box[3] - box[1])
