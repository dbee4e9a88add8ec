"""The explicit label: "AI生成" (or the deployment's text) drawn on a semi-opaque plate in a corner.

GB 45438-2025 asks for label text at least 5% of the image's shorter side; the text height (not the plate) is
sized to that fraction, so the rule holds whatever the font's line spacing.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

Position = Literal["bottom-right", "bottom-left", "top-right", "top-left"]
MIN_FRACTION = 0.05

_FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # Debian fonts-wqy-zenhei
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)


@lru_cache(maxsize=1)
def cjk_font_path() -> str | None:
    """A font with Chinese glyphs: the usual paths first, then any font fontconfig lists as covering zh-cn.

    (`fc-match :lang=zh` is not enough: it returns its best match even when that font has no CJK glyphs.)
    """
    found = next((p for p in _FONT_PATHS if Path(p).is_file()), None)
    if found:
        return found
    try:
        listed = subprocess.run(
            ["fc-list", ":lang=zh-cn", "file"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted(line.split(":")[0].strip() for line in listed if line.strip())
    return next((f for f in files if Path(f).is_file()), None)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = cjk_font_path()
    if path is None:  # no CJK font: Pillow's scalable default draws the Latin part; callers pass ASCII then
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size)


def apply(
    image: Image.Image,
    text: str = "AI生成",
    *,
    position: Position = "bottom-right",
    fraction: float = MIN_FRACTION,
) -> Image.Image:
    """A copy of the image with the label; text height >= `fraction` (>= 5%) of the shorter side."""
    if cjk_font_path() is None and not text.isascii():
        text = "AI-generated"  # never draw tofu boxes: a label nobody can read is no label
    short = min(image.size)
    font = _fit_font(text, _target(image.size, fraction))
    left, top, right, bottom = font.getbbox(text)
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
    draw.text((x + pad - left, y + pad - top), text, font=font, fill=(255, 255, 255, 235))
    out = Image.alpha_composite(base, overlay)
    return out if image.mode == "RGBA" else out.convert("RGB")


def _target(image_size: tuple[int, int], fraction: float) -> int:
    return max(8, round(min(image_size) * max(fraction, MIN_FRACTION)))


def _fit_font(text: str, target: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Glyph boxes are smaller than the em size: grow the font until the drawn text is `target` px tall."""
    size = target
    font = _font(size)
    for _ in range(8):
        box = font.getbbox(text)
        if box[3] - box[1] >= target:
            break
        size = int(size * target / max(1, box[3] - box[1])) + 1
        font = _font(size)
    return font


def text_height(image_size: tuple[int, int], text: str = "AI生成", fraction: float = MIN_FRACTION) -> int:
    """The drawn text height `apply` uses (for tests and reports)."""
    box = _fit_font(text, _target(image_size, fraction)).getbbox(text)
    return box[3] - box[1]
