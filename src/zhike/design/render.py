"""Render one design: a Template filled from one data row, at its own size or another (a marketplace preset).

Text is laid out per character font (fallback chain by cmap, no tofu), wrapped per CJK character / Latin word
with basic 避头尾 (no line starts with closing punctuation, none ends with opening), shrunk to fit its box down to
`min_size`, or written vertically (columns right to left). Images are fitted (cover/contain/fill) with rounded
corners; shapes are anti-aliased; generated layers come from a `generate(prompt, w, h)` callable.

Same template + row -> the same pixels: BASIC text layout (no libraqm dependence), no randomness, no clocks.
Loaded fonts, fitted layouts, shape masks and backgrounds are cached per process, so a batch pays once.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageColor, ImageDraw, ImageFilter, ImageFont

from zhike import fonts
from zhike.core.errors import InvalidInput, JobCancelled
from zhike.design import stock
from zhike.design.brand import BrandKit, apply_brand, uses_brand
from zhike.design.brand import values as brand_values
from zhike.design.template import (
    GeneratedLayer,
    Gradient,
    ImageLayer,
    ShapeLayer,
    Template,
    TextLayer,
    _cell,
    fill,
    layer_brand_refs,
    layer_columns,
    layer_condition,
    parse_template,
)
from zhike.fonts import FontFace

ImageResolver = Callable[[str], Image.Image | None]
Generator = Callable[[str, int, int], Image.Image]
Cutout = Callable[[Image.Image], Image.Image]

# 避头尾: never at a line start / never at a line end.
NO_START = set("，。！？、；：）》」』】〕〉〗”’…—·%％,.!?;:)]}〜～ー々ゝゞヽヾ")
NO_END = set("（《「『【〔〈〖“‘([{￥")
# Vertical presentation forms, with fallbacks, used when the font has them.
VERTICAL_FORMS = {
    "，": "︐",
    "、": "︑",
    "。": "︒",
    "：": "︓",
    "；": "︔",
    "！": "︕",
    "？": "︖",
    "…": "︙⋮",
    "—": "︱｜",
    "ー": "｜",
    "（": "︵",
    "）": "︶",
    "《": "︽",
    "》": "︾",
    "「": "﹁",
    "」": "﹂",
    "『": "﹃",
    "』": "﹄",
    "【": "︻",
    "】": "︼",
}
# Without a vertical form these sit in the top-right of their cell, as vertical typesetting puts them.
VERTICAL_SHIFT = set("，、。．")
ELLIPSIS = "…"
_CACHE_MAX = 4096


class RenderError(InvalidInput):
    """A row that cannot be rendered (missing required column, bad image); `field` names the column or layer."""

    code = "render_error"


@dataclass
class TextReport:
    layer: str
    box: tuple[int, int, int, int]
    font_size: int
    requested_size: int
    shrunk: bool
    overflow: bool
    lines: list[str]
    fonts: list[tuple[str, str]]  # (character, face name) for every drawn non-space character
    font_files: dict[str, tuple[str, int]]  # face name -> (file, face index), to check cmaps independently
    vertical: bool = False


@dataclass
class LayerReport:
    layer: str
    type: str
    box: tuple[int, int, int, int]
    empty: bool = False  # an optional layer left empty (its column missing)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class RenderReport:
    size: tuple[int, int]
    text: list[TextReport] = field(default_factory=list)
    layers: list[LayerReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def text_layer(self, name: str) -> TextReport:
        return next(t for t in self.text if t.layer == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------- colours


@lru_cache(maxsize=256)
def rgba(colour: str) -> tuple[int, int, int, int]:
    c = ImageColor.getrgb(colour)
    return (c[0], c[1], c[2], c[3] if len(c) == 4 else 255)


def _fill_key(f: str | Gradient) -> str:
    return f if isinstance(f, str) else f.model_dump_json()


@lru_cache(maxsize=64)
def _gradient(key: str, w: int, h: int) -> Image.Image:
    g = Gradient.model_validate_json(key)
    a = math.radians(g.angle)
    dx, dy = math.cos(a), math.sin(a)
    xs = np.arange(w, dtype=np.float32) + 0.5 - w / 2
    ys = np.arange(h, dtype=np.float32) + 0.5 - h / 2
    half = max((abs(dx) * w + abs(dy) * h) / 2, 1e-6)
    t = np.clip((xs[None, :] * dx + ys[:, None] * dy + half) / (2 * half), 0, 1)
    stops = np.linspace(0, 1, len(g.colors))
    cols = np.array([rgba(c) for c in g.colors], dtype=np.float32)
    out = np.stack([np.interp(t, stops, cols[:, i]) for i in range(4)], axis=-1)
    return Image.fromarray(np.round(out).astype(np.uint8), "RGBA")


def _paint(canvas: Image.Image, paint: str | Gradient, x: int, y: int, w: int, h: int, mask: Image.Image | None):
    """Fill the box with a colour or gradient through an optional L mask, blending by the paint's alpha."""
    if isinstance(paint, str):
        r, g, b, a = rgba(paint)
        if mask is None and a == 255:
            canvas.paste((r, g, b, a)[: len(canvas.mode)], (x, y, x + w, y + h))
            return
        alpha = (
            Image.new("L", (w, h), a) if mask is None else (mask if a == 255 else mask.point(lambda v: v * a // 255))
        )
        canvas.paste(Image.new(canvas.mode, (w, h), (r, g, b, a)[: len(canvas.mode)]), (x, y), alpha)
        return
    grad = _gradient(_fill_key(paint), w, h)
    alpha = grad.getchannel("A") if mask is None else ImageChops.multiply(grad.getchannel("A"), mask)
    canvas.paste(grad.convert(canvas.mode), (x, y), alpha)


@lru_cache(maxsize=256)
def _shape_mask(shape: str, w: int, h: int, radius: int, inset: int) -> Image.Image:
    """Anti-aliased L mask (4x supersampled once, then cached) of a rect/ellipse inset by `inset` px."""
    ss = 4 if w * h <= 1_500_000 else 2
    big = Image.new("L", (w * ss, h * ss), 0)
    d = ImageDraw.Draw(big)
    box = (inset * ss, inset * ss, (w - inset) * ss - 1, (h - inset) * ss - 1)
    if box[2] <= box[0] or box[3] <= box[1]:
        return Image.new("L", (w, h), 0)
    if shape == "ellipse":
        d.ellipse(box, fill=255)
    elif radius > 0:
        d.rounded_rectangle(box, radius=max(0, radius - inset) * ss, fill=255)
    else:
        d.rectangle(box, fill=255)
    return big.resize((w, h), Image.Resampling.BOX)


@lru_cache(maxsize=32)
def _background(key: str, w: int, h: int, mode: str) -> Image.Image:
    if key.startswith("{"):
        return _gradient(key, w, h).convert(mode)
    return Image.new(mode, (w, h), rgba(key)[: len(mode)])


# ---------------------------------------------------------------------------------------------------- text layout

Run = tuple[str, FontFace]


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x2E80 <= o <= 0x9FFF
        or 0xAC00 <= o <= 0xD7AF
        or 0xF900 <= o <= 0xFAFF
        or 0xFE10 <= o <= 0xFE4F
        or 0xFF00 <= o <= 0xFFEF
        or o >= 0x20000
    )


def _runs(chars: list[tuple[str, FontFace]]) -> list[Run]:
    out: list[Run] = []
    for ch, face in chars:
        if out and out[-1][1] is face:
            out[-1] = (out[-1][0] + ch, face)
        else:
            out.append((ch, face))
    return out


_widths: dict[tuple[str, int, int], float] = {}


def _width(chars: list[tuple[str, FontFace]], chain_id: int, size: int) -> float:
    text = "".join(c for c, _ in chars)
    key = (text, chain_id, size)
    w = _widths.get(key)
    if w is None:
        w = sum(face.font(size).getlength(run) for run, face in _runs(chars))
        if len(_widths) > 4 * _CACHE_MAX:
            _widths.clear()
        _widths[key] = w
    return w


def _clusters(par: list[tuple[str, FontFace]]) -> list[tuple[int, int, int]]:
    """Unbreakable units (start, end, end with trailing spaces): a CJK character or a Latin word, with closing
    punctuation glued to what precedes it and opening punctuation to what follows."""
    atoms: list[tuple[int, int]] = []
    i, n = 0, len(par)
    while i < n:
        ch = par[i][0]
        j = i + 1
        if ch.isspace():
            while j < n and par[j][0].isspace():
                j += 1
        elif not (is_cjk(ch) or ch in NO_START or ch in NO_END):
            while j < n and not (par[j][0].isspace() or is_cjk(par[j][0]) or par[j][0] in "“”…—（）"):
                j += 1
        atoms.append((i, j))
        i = j
    out: list[list[int]] = []
    glue_next = False
    for s, e in atoms:
        ch = par[s][0]
        if ch.isspace():
            if out:
                out[-1][2] = e
            glue_next = False
            continue
        if out and (glue_next or (ch in NO_START and out[-1][2] == out[-1][1])):
            out[-1][1] = out[-1][2] = e
        else:
            out.append([s, e, e])
        glue_next = e - s == 1 and ch in NO_END
    return [(a, b, c) for a, b, c in out]


@dataclass(frozen=True)
class _Layout:
    size: int
    lines: tuple[tuple[Run, ...], ...]  # vertical: one run per character, a line is a column
    widths: tuple[float, ...]
    block: tuple[float, float]
    line_h: int
    ascent: int
    overflow: bool
    vertical: bool


@dataclass(frozen=True)
class _TextSpec:
    chain_id: int
    size: int
    min_size: int
    box: tuple[int, int]  # inner width, height
    spacing: float
    max_lines: int | None
    vertical: bool


def _metrics(faces: set[FontFace], size: int) -> tuple[int, int]:
    asc = desc = 0
    for f in faces:
        a, d = f.font(size).getmetrics()
        asc, desc = max(asc, a), max(desc, d)
    return asc, desc


def _layout_h(paras: list[list[tuple[str, FontFace]]], spec: _TextSpec, size: int, force: bool) -> _Layout | None:
    maxw, maxh = spec.box
    cid = spec.chain_id
    lines: list[list[tuple[str, FontFace]]] = []
    for par in paras:
        cur: list[tuple[str, FontFace]] = []
        cur_w = 0.0
        for s, e, t in _clusters(par):
            word, trail = par[s:e], par[e:t]
            w = _width(word, cid, size)
            if cur and cur_w + w <= maxw:
                cur += word + trail
                cur_w += w + (_width(trail, cid, size) if trail else 0)
                continue
            if cur:
                lines.append(cur)
            if w > maxw:  # a word wider than the box: only when forced, broken per character
                if not force:
                    return None
                cur, cur_w = [], 0.0
                for c in word:
                    cw = _width([c], cid, size)
                    if cur and cur_w + cw > maxw:
                        lines.append(cur)
                        cur, cur_w = [], 0.0
                    cur.append(c)
                    cur_w += cw
                cur += trail
                cur_w += _width(trail, cid, size) if trail else 0
            else:
                cur, cur_w = word + trail, w + (_width(trail, cid, size) if trail else 0)
        lines.append(cur)
    for ln in lines:  # trailing spaces neither count nor draw
        while ln and ln[-1][0].isspace():
            ln.pop()
    used = {f for ln in lines for _, f in ln} or {next(iter(p))[1] for p in paras if p}
    asc, desc = _metrics(used, size) if used else (size, 0)
    line_h = max(1, round(size * spec.spacing))
    fit_lines = max(1, min(len(lines), (maxh - asc - desc) // line_h + 1 if maxh >= asc + desc else 1))
    if spec.max_lines:
        fit_lines = min(fit_lines, spec.max_lines)
    overflow = False
    if fit_lines < len(lines) or asc + desc > maxh:
        if not force:
            return None
        overflow = True
        lines = lines[:fit_lines]
        last = lines[-1] + [(ELLIPSIS, fonts.face_for(ELLIPSIS, _chains[cid]) or lines[-1][-1][1])] if lines[-1] else []
        while len(last) > 1 and _width(last, cid, size) > maxw:
            del last[-2]
        lines[-1] = last
    widths = [_width(ln, cid, size) for ln in lines]
    if max(widths, default=0) > maxw:
        if not force:
            return None
        overflow = True
    block_h = (len(lines) - 1) * line_h + asc + desc
    return _Layout(
        size,
        tuple(tuple(_runs(ln)) for ln in lines),
        tuple(widths),
        (max(widths, default=0), block_h),
        line_h,
        asc,
        overflow,
        False,
    )


def _layout_v(paras: list[list[tuple[str, FontFace]]], spec: _TextSpec, size: int, force: bool) -> _Layout | None:
    maxw, maxh = spec.box
    per_col = maxh // size
    col_w = max(size, round(size * spec.spacing))
    if per_col < 1:
        if not force:
            return None
        per_col = 1
    cols: list[list[tuple[str, FontFace]]] = []
    for par in paras:
        start = len(cols)
        for i in range(0, max(len(par), 1), per_col):
            cols.append(list(par[i : i + per_col]))
        for k in range(start + 1, len(cols)):  # 避头: pull the previous character along
            if cols[k] and cols[k][0][0] in NO_START and len(cols[k - 1]) > 1:
                cols[k].insert(0, cols[k - 1].pop())
                while len(cols[k]) > per_col:  # push the overflow on to the next column
                    spill = cols[k].pop()
                    if k + 1 < len(cols):
                        cols[k + 1].insert(0, spill)
                    else:
                        cols.append([spill])
    max_cols = max(1, (maxw - size) // col_w + 1 if maxw >= size else 1)
    if spec.max_lines:
        max_cols = min(max_cols, spec.max_lines)
    overflow = False
    if len(cols) > max_cols or size > maxw:
        if not force:
            return None
        overflow = True
        cols = cols[:max_cols]
    block_w = (len(cols) - 1) * col_w + size
    block_h = max((len(c) for c in cols), default=0) * size
    return _Layout(
        size,
        tuple(tuple((ch, f) for ch, f in c) for c in cols),
        tuple(float(size) for _ in cols),
        (block_w, block_h),
        col_w,
        0,
        overflow,
        True,
    )


_chains: dict[int, tuple[FontFace, ...]] = {}
_layouts: dict[tuple[str, _TextSpec], _Layout] = {}


def _chars(text: str, chain: tuple[FontFace, ...], vertical: bool, missing: list[str]) -> list[tuple[str, FontFace]]:
    out: list[tuple[str, FontFace]] = []
    for ch in text:
        if ord(ch) in fonts.INVISIBLE:
            continue
        if vertical and ch in VERTICAL_FORMS:
            ch = next((v for v in VERTICAL_FORMS[ch] if fonts.face_for(v, chain)), ch)
        face = fonts.face_for(ch, chain)
        if face is None:
            missing.append(ch)
            continue
        out.append((ch, face))
    return out


def layout_text(text: str, spec: _TextSpec, missing: list[str]) -> _Layout:
    """The largest size in [min_size, size] at which the text fits its box (binary search), cached."""
    key = (text, spec)
    hit = _layouts.get(key)
    if hit is not None:
        return hit
    chain = _chains[spec.chain_id]
    paras = [_chars(p, chain, spec.vertical, missing) for p in text.split("\n")]
    fn = _layout_v if spec.vertical else _layout_h
    best = fn(paras, spec, spec.size, False)
    if best is None:
        lo, hi = spec.min_size, spec.size - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            got = fn(paras, spec, mid, False)
            if got is None:
                hi = mid - 1
            else:
                best, lo = got, mid + 1
        if best is None:
            best = fn(paras, spec, spec.min_size, True)
    assert best is not None
    if not missing:  # a layout that dropped characters is re-made each time so the warning is repeated
        if len(_layouts) > _CACHE_MAX:
            _layouts.clear()
        _layouts[key] = best
    return best


# ---------------------------------------------------------------------------------------------------- drawing

GlyphOp = tuple[float, float, str, ImageFont.FreeTypeFont, str, int]


@lru_cache(maxsize=256)
def _vertical_shift(font: ImageFont.FreeTypeFont, ch: str) -> tuple[float, float]:
    """Offset that moves a horizontal comma/full stop's ink into the top-right of its cell."""
    mask, (ox, oy) = font.getmask2(ch, mode="L", anchor="mm")
    bb = mask.getbbox()
    if not bb:
        return 0.0, 0.0
    s = font.size
    return 0.4 * s - (ox + bb[2]), -0.4 * s - (oy + bb[1])


def _glyph_ops(lay: _Layout, x: int, y: int, w: int, h: int, align: str, valign: str) -> list[GlyphOp]:
    bw, bh = lay.block
    ox = x + {"left": 0, "center": (w - bw) / 2, "right": w - bw}[align]
    oy = y + {"top": 0, "middle": (h - bh) / 2, "bottom": h - bh}[valign]
    ops: list[GlyphOp] = []
    s = lay.size
    if lay.vertical:
        for c, col in enumerate(lay.lines):
            cx = ox + bw - s / 2 - c * lay.line_h
            for j, (ch, face) in enumerate(col):
                if ch.isspace():
                    continue
                dx, dy = _vertical_shift(face.font(s), ch) if ch in VERTICAL_SHIFT else (0, 0)
                ops.append((cx + dx, oy + j * s + s / 2 + dy, ch, face.font(s), "mm", face.faux_width(s)))
        return ops
    for i, line in enumerate(lay.lines):
        lx = ox + {"left": 0, "center": (bw - lay.widths[i]) / 2, "right": bw - lay.widths[i]}[align]
        base = oy + i * lay.line_h + lay.ascent
        for run, face in line:
            font = face.font(s)
            ops.append((lx, base, run, font, "ls", face.faux_width(s)))
            lx += font.getlength(run)
    return ops


def _draw_text(canvas: Image.Image, draw: ImageDraw.ImageDraw, ops: list[GlyphOp], layer: TextLayer, sf: float):
    stroke_w = round(layer.stroke.width * sf) if layer.stroke and layer.stroke.width else 0
    if layer.shadow:
        sh = layer.shadow
        blur = sh.blur * sf
        m = math.ceil(blur * 3) + stroke_w + 4
        xs = [op[0] for op in ops]
        ys = [op[1] for op in ops]
        big = max((op[3].size for op in ops), default=0)
        x0, y0 = int(min(xs) - big * 2 - m), int(min(ys) - big * 2 - m)
        x1, y1 = int(max(xs) + big * 4 + m), int(max(ys) + big * 2 + m)
        mask = Image.new("L", (x1 - x0, y1 - y0), 0)
        md = ImageDraw.Draw(mask)
        for x, y, t, font, anchor, faux in ops:
            md.text(
                (x - x0, y - y0), t, fill=255, font=font, anchor=anchor, stroke_width=stroke_w + faux, stroke_fill=255
            )
        if blur > 0:
            mask = mask.filter(ImageFilter.GaussianBlur(blur))
        r, g, b, a = rgba(sh.color)
        if a < 255:
            mask = mask.point(lambda v: v * a // 255)
        pos = (x0 + round(sh.dx * sf), y0 + round(sh.dy * sf))
        canvas.paste(Image.new(canvas.mode, mask.size, (r, g, b, a)[: len(canvas.mode)]), pos, mask)
    if stroke_w:
        sc = rgba(layer.stroke.color)  # type: ignore[union-attr]
        for x, y, t, font, anchor, faux in ops:
            draw.text((x, y), t, fill=sc, font=font, anchor=anchor, stroke_width=stroke_w + faux, stroke_fill=sc)
    colour = rgba(layer.color)
    for x, y, t, font, anchor, faux in ops:
        draw.text((x, y), t, fill=colour, font=font, anchor=anchor, stroke_width=faux, stroke_fill=colour)


def _fit_image(img: Image.Image, w: int, h: int, fit: str) -> tuple[Image.Image, int, int]:
    """The image resized for a w x h box and its offset inside the box."""
    iw, ih = img.size
    rs = Image.Resampling.LANCZOS
    if fit == "fill":
        return img.resize((w, h), rs, reducing_gap=3.0), 0, 0
    if fit == "contain":
        s = min(w / iw, h / ih)
        nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
        return img.resize((nw, nh), rs, reducing_gap=3.0), (w - nw) // 2, (h - nh) // 2
    s = max(w / iw, h / ih)  # cover: crop the centre in source pixels, one resample
    cw, ch = min(iw, w / s), min(ih, h / s)
    crop = (max(0.0, (iw - cw) / 2), max(0.0, (ih - ch) / 2), min(iw, (iw + cw) / 2), min(ih, (ih + ch) / 2))
    return img.resize((w, h), rs, box=crop, reducing_gap=3.0), 0, 0


def _has_alpha(img: Image.Image) -> bool:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        lo, _ = (
            img.convert("RGBA").getchannel("A").getextrema() if img.mode != "RGBA" else img.getchannel("A").getextrema()
        )
        return lo < 255
    return False


def _paste_image(canvas: Image.Image, img: Image.Image, box: tuple[int, int, int, int], fit: str, radius: int):
    x, y, w, h = box
    img = img.convert("RGBA") if _has_alpha(img) else img.convert("RGB")
    fitted, dx, dy = _fit_image(img, w, h, fit)
    if radius > 0:
        mask = _shape_mask("rect", fitted.width, fitted.height, radius, 0)
        if fitted.mode == "RGBA":
            fitted.putalpha(ImageChops.multiply(fitted.getchannel("A"), mask))
        else:
            fitted = fitted.convert("RGBA")
            fitted.putalpha(mask)
    if fitted.mode == "RGBA":
        canvas.paste(fitted.convert(canvas.mode), (x + dx, y + dy), fitted.getchannel("A"))
    else:
        canvas.paste(fitted if canvas.mode == "RGB" else fitted.convert(canvas.mode), (x + dx, y + dy))


# ---------------------------------------------------------------------------------------------------- render


def _empty(value: Any) -> bool:
    return not isinstance(value, Image.Image) and _cell(value).strip() == ""


def render_design(
    template: Template | Mapping[str, Any],
    row: Mapping[str, Any],
    *,
    size: tuple[int, int] | None = None,
    resolve_image: ImageResolver | None = None,
    generate: Generator | None = None,
    cutout: Cutout | None = None,
    brand: BrandKit | None = None,
) -> tuple[Image.Image, RenderReport]:
    """One design for one row. RenderError names what makes the row unrenderable; the batch records it and goes on.

    A row value may be a PIL image itself (for an image layer whose src is exactly that `{{column}}`).
    `brand`: the owner's brand kit, for `brand.*` references (None: their fallbacks; design/brand.py)."""
    tpl = template if isinstance(template, Template) else parse_template(template)
    tpl, row = _branded(tpl, row, brand)
    # 1. Check the row: every required column has a value.
    required, _ = tpl.columns()
    for layer in tpl.layers:
        for col in layer_columns(layer):
            if col in required and _empty(row.get(col)):
                raise RenderError(f"the row has no value for required column {col!r}", field=col)
    # 2. Canvas and scale.
    W, H = size or (tpl.width, tpl.height)
    sx, sy = W / tpl.width, H / tpl.height
    sf = min(sx, sy)
    bg_key = _fill_key(tpl.background)
    opaque = isinstance(tpl.background, str) and rgba(tpl.background)[3] == 255
    if isinstance(tpl.background, Gradient):
        opaque = all(rgba(c)[3] == 255 for c in tpl.background.colors)
    mode = "RGB" if opaque else "RGBA"
    canvas = _background(bg_key, W, H, mode).copy()
    draw = ImageDraw.Draw(canvas, "RGBA")
    report = RenderReport(size=(W, H))
    if any(layer.rotate % 360 for layer in tpl.layers):  # a rotated layer is drawn twice: fetch/make images once
        resolve_image, generate, cutout = _once(resolve_image), _once(generate), _once(cutout)
    tools = (resolve_image, generate, cutout)
    # 3. Layers, bottom to top.
    for i, layer in enumerate(tpl.layers):
        name = layer.id or f"layers.{i}"
        b = layer.box
        box = (round(b.x * sx), round(b.y * sy), max(1, round(b.w * sx)), max(1, round(b.h * sy)))
        if layer.hidden:
            report.layers.append(LayerReport(name, layer.type, box, empty=True, detail={"hidden": True}))
            continue
        unset = (layer.optional or layer.when) and any(_empty(row.get(c)) for c in layer_condition(layer))
        if unset or any(_empty(row.get(r)) for r in layer_brand_refs(layer)):  # no logo / brand name: left empty
            report.layers.append(LayerReport(name, layer.type, box, empty=True))
            if isinstance(layer, TextLayer):
                report.text.append(TextReport(name, box, 0, layer.font_size, False, False, [], [], {}, layer.vertical))
            continue

        if layer.rotate % 360 == 0:
            _draw_layer(canvas, draw, box, report, layer, name, i, row, sf, tools)
        else:
            paint = functools.partial(_draw_layer, layer=layer, name=name, index=i, row=row, sf=sf, tools=tools)
            _paint_rotated(canvas, box, layer.rotate, _ink_margin(layer, sf), paint, report)
    return canvas, report


def _branded(tpl: Template, row: Mapping[str, Any], kit: BrandKit | None) -> tuple[Template, Mapping[str, Any]]:
    """Brand colours and fonts resolved to the kit's (or their fallbacks); `{{brand.*}}` values added to the row."""
    body = tpl.model_dump(mode="json")
    if not uses_brand(body):
        return tpl, row
    return parse_template(apply_brand(body, kit)), {**row, **brand_values(kit)}


Box4 = tuple[int, int, int, int]


def _draw_layer(
    target: Image.Image,
    draw: ImageDraw.ImageDraw,
    box: Box4,
    report: RenderReport,
    layer: Any,
    name: str,
    index: int,
    row: Mapping[str, Any],
    sf: float,
    tools: tuple[ImageResolver | None, Generator | None, Cutout | None],
) -> None:
    resolve_image, generate, cutout = tools
    if isinstance(layer, TextLayer):
        report.text.append(_render_text(target, draw, layer, name, box, row, sf, report.warnings))
    elif isinstance(layer, ShapeLayer):
        _render_shape(target, layer, box, sf)
    elif isinstance(layer, ImageLayer):
        report.layers.append(_render_image(target, layer, name, index, box, row, sf, resolve_image, cutout, report))
        return
    elif isinstance(layer, GeneratedLayer):
        report.layers.append(_render_generated(target, layer, name, index, box, row, sf, generate))
        return
    report.layers.append(LayerReport(name, layer.type, box))


Painter = Callable[[Image.Image, ImageDraw.ImageDraw, Box4, RenderReport], None]


def _once(fn: Callable[..., Any] | None) -> Any:
    """`fn` with its answers kept: a rotated layer is drawn twice (see _paint_rotated), its image fetched,
    cut out or generated once."""
    if fn is None:
        return fn
    answers: dict[Any, Any] = {}

    def call(*args: Any) -> Any:
        key = tuple(id(a) if isinstance(a, Image.Image) else a for a in args)
        if key not in answers:
            answers[key] = fn(*args)  # callers never change an image in place (they convert or paste it)
        return answers[key]

    return call


def _ink_margin(layer: Any, sf: float) -> int:
    """How far a layer's ink may reach outside its box: a text's stroke and shadow; a few pixels of slack."""
    m = 8
    if isinstance(layer, TextLayer):
        if layer.stroke:
            m += math.ceil(layer.stroke.width * sf)
        if layer.shadow:
            sh = layer.shadow
            m += math.ceil((3 * sh.blur + abs(sh.dx) + abs(sh.dy)) * sf)
        m += math.ceil(layer.font_size * sf / 4)  # glyph overhang past the layout's cell
    return m


def _paint_rotated(
    canvas: Image.Image, box: Box4, degrees: float, margin: int, paint: Painter, report: RenderReport
) -> None:
    """Draw a layer turned `degrees` clockwise about its box centre.

    The layer is drawn unturned, twice, on a black and on a white square around its box; the two differ only
    where the layer lets the backdrop through, which gives its exact coverage (alpha) and premultiplied colour
    whatever the layer is (text with stroke and shadow, a rounded image, a gradient shape). That RGBA is turned
    (premultiplied bicubic) and laid on the canvas like any other layer."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    r = math.ceil(math.hypot(w, h) / 2) + margin
    rx, ry = math.floor(cx - r), math.floor(cy - r)
    side = 2 * r + 2
    inner = (x - rx, y - ry, w, h)
    planes = []
    for ground, rep in ((0, report), (255, RenderReport(size=report.size))):
        img = Image.new("RGB", (side, side), (ground,) * 3)
        paint(img, ImageDraw.Draw(img, "RGBA"), inner, rep)
        planes.append(np.asarray(img, dtype=np.int16))
    for item in (*report.text[-1:], *report.layers[-1:]):  # the reports name the canvas box, not the scratch one
        if item.box == inner:
            item.box = box
    black, white = planes
    alpha = np.clip(255 - (white - black).mean(axis=2), 0, 255)
    premul = np.minimum(black, alpha[..., None])
    rgba_ = np.dstack([premul, alpha]).round().astype(np.uint8)
    layer_img = Image.fromarray(rgba_, "RGBa").convert("RGBA")
    turned = layer_img.rotate(-degrees, resample=Image.Resampling.BICUBIC, center=(cx - rx, cy - ry))
    canvas.paste(turned.convert(canvas.mode), (rx, ry), turned.getchannel("A"))
    return canvas, report


def _render_text(
    canvas: Image.Image,
    draw: ImageDraw.ImageDraw,
    layer: TextLayer,
    name: str,
    box: tuple[int, int, int, int],
    row: Mapping[str, Any],
    sf: float,
    warnings: list[str],
) -> TextReport:
    text = fill(layer.text, row).replace("\r\n", "\n").strip()
    if not fonts.family_known(layer.font):
        warnings.append(f"{name}: font {layer.font!r} is not installed; the fallback chain is used")
    chain = fonts.chain(layer.font, layer.weight)
    _chains.setdefault(id(chain), chain)
    size = max(4, round(layer.font_size * sf))
    min_size = min(size, max(4, round((layer.min_size or layer.font_size // 2) * sf)))
    stroke_w = round(layer.stroke.width * sf) if layer.stroke else 0
    pad = stroke_w + max(f.faux_width(size) for f in chain) + 1  # ink of strokes and faux bold stays in the box
    x, y, w, h = box
    inner = (max(1, w - 2 * pad), max(1, h - 2 * pad))
    spec = _TextSpec(id(chain), size, min_size, inner, layer.line_spacing, layer.max_lines, layer.vertical)
    missing: list[str] = []
    lay = layout_text(text, spec, missing)
    for ch in dict.fromkeys(missing):
        warnings.append(f"{name}: no installed font has {fonts.describe(ch)}; left out")
    if lay.overflow:
        warnings.append(f"{name}: text does not fit its box even at {lay.size}px; cut with {ELLIPSIS}")
    ops = _glyph_ops(lay, x + pad, y + pad, inner[0], inner[1], layer.align, layer.valign)
    if ops:
        _draw_text(canvas, draw, ops, layer, sf)
    used: list[tuple[str, str]] = []
    files: dict[str, tuple[str, int]] = {}
    for line in lay.lines:
        for run, face in line:
            files[face.name] = (face.path, face.index)
            used += [(c, face.name) for c in run if not c.isspace()]
    lines = ["".join(r for r, _ in line) for line in lay.lines]
    return TextReport(name, box, lay.size, size, lay.size < size, lay.overflow, lines, used, files, layer.vertical)


def _render_shape(canvas: Image.Image, layer: ShapeLayer, box: tuple[int, int, int, int], sf: float) -> None:
    x, y, w, h = box
    radius = round(layer.radius * sf)
    sw = max(1, round(layer.stroke.width * sf)) if layer.stroke and layer.stroke.width else 0
    plain = layer.shape == "rect" and radius == 0
    if layer.fill is not None:
        _paint(canvas, layer.fill, x, y, w, h, None if plain and not sw else _shape_mask(layer.shape, w, h, radius, sw))
    if sw:
        ring = ImageChops.subtract(
            _shape_mask(layer.shape, w, h, radius, 0), _shape_mask(layer.shape, w, h, radius, sw)
        )
        _paint(canvas, layer.stroke.color, x, y, w, h, ring)  # type: ignore[union-attr]


def _render_image(
    canvas: Image.Image,
    layer: ImageLayer,
    name: str,
    index: int,
    box: tuple[int, int, int, int],
    row: Mapping[str, Any],
    sf: float,
    resolve_image: ImageResolver | None,
    cutout: Cutout | None,
    report: RenderReport,
) -> LayerReport:
    field_ = f"layers.{index}.src"
    cols = layer_columns(layer)
    direct = row.get(cols[0]) if len(cols) == 1 and layer.src.strip().startswith("{{") else None
    value = fill(layer.src, row).strip()
    img: Image.Image | None
    if isinstance(direct, Image.Image):
        img = direct
    elif (stock_id := stock.ref(value)) is not None:
        img = stock.image(stock_id)
    elif resolve_image is None:
        raise RenderError(f"{name}: no image resolver to open {value!r}", field=field_)
    else:
        try:
            img = resolve_image(value)
            if img is not None:
                img.load()
        except RenderError:
            raise
        except Exception as e:  # a corrupt or unreadable file: this row fails, the batch goes on
            raise RenderError(f"{name}: cannot read image {value!r}: {e}", field=field_) from None
    detail: dict[str, Any] = {"src": value}
    if img is None:
        if layer.optional:
            report.warnings.append(f"{name}: image {value!r} not found; layer left empty")
            return LayerReport(name, "image", box, empty=True, detail=detail)
        raise RenderError(f"{name}: image {value!r} not found", field=field_)
    if layer.cutout:
        if _has_alpha(img):
            detail["cutout"] = "alpha"
        elif cutout is not None:
            img = cutout(img)
            detail["cutout"] = "applied"
        else:
            detail["cutout"] = "unavailable"
            report.warnings.append(f"{name}: cutout asked for, but no cutout is available; the image is used whole")
    _paste_image(canvas, img, box, layer.fit, round(layer.radius * sf))
    return LayerReport(name, "image", box, detail=detail)


def _render_generated(
    canvas: Image.Image,
    layer: GeneratedLayer,
    name: str,
    index: int,
    box: tuple[int, int, int, int],
    row: Mapping[str, Any],
    sf: float,
    generate: Generator | None,
) -> LayerReport:
    prompt = fill(layer.prompt, row).strip()
    if generate is None:
        raise RenderError(f"{name}: a generated layer needs an image model (no generate function)", field=name)
    # Diffusion models want sides in multiples of 8; the result is then fitted into the box.
    gw, gh = math.ceil(box[2] / 8) * 8, math.ceil(box[3] / 8) * 8
    try:
        img = generate(prompt, gw, gh)
    except (RenderError, JobCancelled):  # a cancelled job stops; it is not this row's failure
        raise
    except Exception as e:
        raise RenderError(f"{name}: generating the image failed: {e}", field=name) from None
    _paste_image(canvas, img, box, layer.fit, round(layer.radius * sf))
    return LayerReport(name, "generated", box, detail={"prompt": prompt, "size": (gw, gh)})


def clear_caches() -> None:
    """Drop fitted layouts and measured widths (fonts stay loaded)."""
    _layouts.clear()
    _widths.clear()


def report_json(report: RenderReport) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False)
