"""A text asset's thumbnail: a card with its first lines, drawn with the project's font chain (zhike/fonts.py, the
bundled Source Han Sans SC first) so Chinese renders, and grids of images and words look alike."""

from __future__ import annotations

from PIL import Image, ImageDraw

from zhike import fonts

CARD_VERSION = "1"  # bump when the card's look changes (thumbnails are cached by it)
PAPER = (250, 247, 240)
INK = (40, 40, 40)
TITLE_INK = (20, 20, 20)
RULE = (222, 120, 60)


def _faces(weight: str) -> tuple[fonts.FontFace, ...]:
    try:
        return fonts.chain("sans", weight)
    except RuntimeError:  # no font installed at all: a blank card rather than a failed grid
        return ()


def _lines(text: str, faces: tuple[fonts.FontFace, ...], px: int, width: float, limit: int) -> list[str]:
    """`text` wrapped to `width` (character by character: Chinese has no spaces), at most `limit` lines; the last
    one ends in … when there is more."""
    out: list[str] = []
    for para in (p.strip() for p in text.splitlines()):
        if not para:
            continue
        line, used = "", 0.0
        for ch in para:
            face = fonts.face_for(ch, faces)
            if face is None or ord(ch) in fonts.INVISIBLE:
                continue
            w = face.font(px).getlength(ch)
            if used + w > width and line:
                out.append(line)
                line, used = "", 0.0
                if len(out) == limit:
                    break
            line += ch
            used += w
        if len(out) < limit and line:
            out.append(line)
        if len(out) >= limit:
            break
    if len(out) >= limit and out:
        out = out[:limit]
        out[-1] = out[-1][: max(0, len(out[-1]) - 1)] + "…"
    return out


def _draw(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, faces: tuple[fonts.FontFace, ...], px: int,
          fill: tuple[int, int, int]) -> None:  # fmt: skip
    x, y = xy
    for part, face in fonts.runs(text, faces) or []:
        font = face.font(px)
        draw.text((x, y), part, font=font, anchor="ls", fill=fill)
        x += font.getlength(part)


def text_card(text: str, size: int) -> Image.Image:
    """A size x size RGB card: a coloured rule, the first line larger and bold, then as many lines as fit."""
    card = Image.new("RGB", (size, size), PAPER)
    draw = ImageDraw.Draw(card)
    pad = round(size * 0.09)
    draw.rectangle((0, 0, size, max(2, size // 40)), fill=RULE)
    regular, bold = _faces("regular"), _faces("bold")
    if not regular:
        return card
    width = size - 2 * pad
    title_px, body_px = max(9, round(size / 12)), max(8, round(size / 16))
    first, _, rest = text.strip().partition("\n")
    y = pad + title_px
    title = _lines(first, bold or regular, title_px, width, 2)
    for line in title:
        _draw(draw, (pad, y), line, bold or regular, title_px, TITLE_INK)
        y += round(title_px * 1.4)
    y += round(body_px * 0.5)
    room = max(0, int((size - pad - y) / (body_px * 1.5)) + 1)
    for line in _lines(rest, regular, body_px, width, room):
        _draw(draw, (pad, y), line, regular, body_px, INK)
        y += round(body_px * 1.5)
    return card
