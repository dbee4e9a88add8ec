"""Draw the bundled stock (素材) from its manifest spec: badges, price tags, ribbons, frames, shapes, backgrounds.

Everything is drawn by this code (no outside artwork): shapes as polygons 4x supersampled, text in the bundled CJK
font fitted to its box (here, not by the design renderer, which itself draws stock images), textures from seeded
noise, so the same spec always gives the same pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageColor, ImageDraw, ImageFilter, ImageFont

from zhike import fonts

SS = 4  # supersampling of shape outlines
Point = tuple[float, float]


def _rgb(c: str) -> tuple[int, int, int, int]:
    v = ImageColor.getrgb(c)
    return (v[0], v[1], v[2], v[3] if len(v) == 4 else 255)


def _regular(cx: float, cy: float, r: float, n: int, inner: float | None = None, turn: float = -90) -> list[Point]:
    """A regular polygon (or a star/burst with every other point at `inner` x r)."""
    pts = []
    count = n * 2 if inner else n
    for i in range(count):
        a = math.radians(turn + 360 * i / count)
        rr = r * (inner if inner and i % 2 else 1)
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return pts


def _outline(kind: str, w: int, h: int, m: float) -> list[Point] | None:
    """The polygon of a shape kind inside a w x h box with margin m; None for kinds drawn otherwise."""
    cx, cy, r = w / 2, h / 2, min(w, h) / 2 - m
    if kind == "burst":
        return _regular(cx, cy, r, 16, inner=0.86)
    if kind == "star":
        return _regular(cx, cy + r * 0.08, r, 5, inner=0.45)
    if kind == "hexagon":
        return _regular(cx, cy, r, 6, turn=0)
    if kind == "tag":  # a hang tag pointing left
        p = h / 2 - m
        return [(m, h / 2), (m + p, m), (w - m, m), (w - m, h - m), (m + p, h - m)]
    if kind == "ribbon":  # a banner with notched tails
        t = h * 0.35
        return [(m, m), (w - m, m), (w - m - t, h / 2), (w - m, h - m), (m, h - m), (m + t, h / 2)]
    if kind == "arrow":
        sh = h * 0.28
        head = w * 0.38
        return [(m, cy - sh), (w - m - head, cy - sh), (w - m - head, m), (w - m, cy), (w - m - head, h - m)] + [
            (w - m - head, cy + sh),
            (m, cy + sh),
        ]
    if kind == "heart":
        pts = []
        for i in range(120):
            t = 2 * math.pi * i / 120
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((cx + x * r / 17, cy - y * r / 17 - r * 0.05))
        return pts
    return None


def _mask(kind: str, w: int, h: int, inset: float, radius: float = 0) -> Image.Image:
    """An anti-aliased L mask of a shape kind, inset by `inset` px."""
    big = Image.new("L", (w * SS, h * SS), 0)
    d = ImageDraw.Draw(big)
    m = inset * SS
    W, H = w * SS, h * SS
    pts = _outline(kind, W, H, m)
    if pts is not None:
        d.polygon(pts, fill=255)
    elif kind == "circle":
        d.ellipse((m, m, W - m - 1, H - m - 1), fill=255)
    elif kind in ("pill", "rect", "bubble"):
        body_h = H * 0.8 if kind == "bubble" else H
        rad = (min(W, body_h) / 2 - m) if kind == "pill" else radius * SS
        d.rounded_rectangle((m, m, W - m - 1, body_h - m - 1), radius=max(0, rad), fill=255)
        if kind == "bubble":
            x = W * 0.28
            d.polygon([(x, body_h - m - 2), (x + W * 0.14, body_h - m - 2), (x - W * 0.04, H - m)], fill=255)
    else:
        raise ValueError(f"unknown stock shape {kind!r}")
    return big.resize((w, h), Image.Resampling.BOX)


def _layer(size: tuple[int, int], colour: str, mask: Image.Image) -> Image.Image:
    out = Image.new("RGBA", size, _rgb(colour)[:3] + (0,))
    a = _rgb(colour)[3]
    out.putalpha(mask if a == 255 else mask.point(lambda v: v * a // 255))
    return out


def _runs(text: str, size: int) -> list[tuple[str, ImageFont.FreeTypeFont]]:
    faces = fonts.chain(fonts.BUNDLED_FAMILY, "bold")  # the bundled CJK font first, then the fallback chain
    found = fonts.runs(text, faces)
    if found is None:
        raise ValueError(f"no installed font draws {text!r}")
    return [(part, face.font(size)) for part, face in found]


def _ink(runs: list[tuple[str, ImageFont.FreeTypeFont]]) -> tuple[float, float, float, float]:
    """The drawn text's ink box, relative to the start of its baseline."""
    x, box = 0.0, [math.inf, math.inf, -math.inf, -math.inf]
    for part, font in runs:
        left, top, right, bottom = font.getbbox(part, anchor="ls")
        box = [min(box[0], x + left), min(box[1], top), max(box[2], x + right), max(box[3], bottom)]
        x += font.getlength(part)
    return box[0], box[1], box[2], box[3]


def _text(img: Image.Image, text: str, colour: str, box: tuple[int, int, int, int], stroke: str | None) -> None:
    """One line of bold text, as large as fits `box` by its ink, centred there (a badge word shrinks rather
    than breaks: 买一送一, never 买一送 / 一)."""
    x, y, w, h = box
    size = h
    for _ in range(12):
        runs = _runs(text, size)
        left, top, right, bottom = _ink(runs)
        scale = min(w / max(1.0, right - left), h / max(1.0, bottom - top))
        if 0.97 <= scale <= 1.0:
            break
        size = max(6, int(size * min(scale, 2.0)))
    left, top, right, bottom = _ink(runs)
    pen = x + (w - (right - left)) / 2 - left
    base = y + (h - (bottom - top)) / 2 - top
    draw = ImageDraw.Draw(img)
    sw = max(1, size // 24) if stroke else 0
    for part, font in runs:
        draw.text((pen, base), part, font=font, anchor="ls", fill=_rgb(colour), stroke_width=sw, stroke_fill=stroke)
        pen += font.getlength(part)


def draw_shape(spec: Mapping[str, Any]) -> Image.Image:
    """Badges, tags, ribbons and plain shapes: a filled outline, an optional inner ring, optional centred text."""
    w, h = spec.get("size", (256, 256))
    kind = spec["shape"]
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    outer = _mask(kind, w, h, 2, spec.get("radius", 0))
    if spec.get("shadow"):
        sh = outer.filter(ImageFilter.GaussianBlur(max(2, min(w, h) // 40)))
        img.alpha_composite(_layer((w, h), "#00000055", ImageChops.offset(sh, 0, max(2, h // 50))))
    img.alpha_composite(_layer((w, h), spec["fill"], outer))
    if spec.get("ring"):
        gap = max(3, min(w, h) // 22)
        line = max(2, min(w, h) // 60)
        ring = ImageChops.subtract(_mask(kind, w, h, 2 + gap, spec.get("radius", 0)), _mask(kind, w, h, 2 + gap + line))
        img.alpha_composite(_layer((w, h), spec["ring"], ring))
    if kind == "tag":  # the tag's string hole
        r = h * 0.09
        hole = Image.new("L", (w, h), 0)
        ImageDraw.Draw(hole).ellipse((h * 0.32 - r, h / 2 - r, h * 0.32 + r, h / 2 + r), fill=255)
        img.putalpha(ImageChops.subtract(img.getchannel("A"), hole))
    if spec.get("text"):
        tb = spec.get("text_box") or _text_box(kind, w, h)
        _text(img, spec["text"], spec.get("color", "#ffffff"), tb, spec.get("stroke"))
    return img


def _text_box(kind: str, w: int, h: int) -> tuple[int, int, int, int]:
    """Where a shape's text goes: inside its inner area, clear of points, tails and holes."""
    if kind in ("circle", "burst", "hexagon"):
        s = round(min(w, h) * 0.56)
        return ((w - s) // 2, (h - round(s * 0.72)) // 2, s, round(s * 0.72))
    if kind == "tag":
        return (round(h * 0.5), round(h * 0.18), round(w - h * 0.5 - h * 0.14), round(h * 0.64))
    if kind == "ribbon":
        return (round(h * 0.5), round(h * 0.16), round(w - h), round(h * 0.68))
    if kind == "bubble":
        return (round(w * 0.1), round(h * 0.1), round(w * 0.8), round(h * 0.58))
    return (round(h * 0.3), round(h * 0.14), round(w - h * 0.6), round(h * 0.72))


def draw_corner(spec: Mapping[str, Any]) -> Image.Image:
    """A corner ribbon: a band across the top-right corner of a transparent square, with text along it."""
    s = spec.get("size", (256, 256))[0]
    band = round(s * 0.2)
    strip = Image.new("RGBA", (round(s * 1.5), band), _rgb(spec["fill"]))
    _text(
        strip,
        spec["text"],
        spec.get("color", "#ffffff"),
        (band, round(band * 0.12), strip.width - 2 * band, round(band * 0.76)),
        None,
    )
    turned = strip.rotate(-45, resample=Image.Resampling.BICUBIC, expand=True)
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = round(s * 0.3)  # the band's centre sits on the diagonal, this far from the top-right corner
    img.paste(turned, (s - d - turned.width // 2, d - turned.height // 2), turned)  # may start off the square
    return img


def draw_frame(spec: Mapping[str, Any]) -> Image.Image:
    """A transparent frame: one or two rounded rings, optional corner dots."""
    w, h = spec.get("size", (800, 800))
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    radius = spec.get("radius", 0)
    inset = spec.get("inset", 12)
    width = spec.get("width", 10)
    for k in range(spec.get("lines", 1)):
        at = inset + k * width * 2.2
        ring = ImageChops.subtract(
            _mask("rect", w, h, at, radius), _mask("rect", w, h, at + width, max(0, radius - width))
        )
        img.alpha_composite(_layer((w, h), spec["color"], ring))
    if spec.get("dots"):
        d = Image.new("L", (w * SS, h * SS), 0)
        dd = ImageDraw.Draw(d)
        r = width * 1.6 * SS
        for cx, cy in ((inset, inset), (w - inset, inset), (inset, h - inset), (w - inset, h - inset)):
            dd.ellipse((cx * SS - r, cy * SS - r, cx * SS + r, cy * SS + r), fill=255)
        img.alpha_composite(_layer((w, h), spec["dots"], d.resize((w, h), Image.Resampling.BOX)))
    return img


def _noise(rng: np.random.Generator, w: int, h: int, cell: int) -> np.ndarray:
    """Smooth value noise in [-1, 1]: random values on a coarse grid, scaled up bicubically."""
    gw, gh = max(2, w // cell + 2), max(2, h // cell + 2)
    grid = Image.fromarray((rng.random((gh, gw)) * 255).astype(np.uint8), "L")
    big = grid.resize((gw * cell, gh * cell), Image.Resampling.BICUBIC).crop((0, 0, w, h))
    return np.asarray(big, dtype=np.float32) / 127.5 - 1


def draw_background(spec: Mapping[str, Any]) -> Image.Image:
    w, h = spec.get("size", (1080, 1080))
    style = spec["style"]
    colours = [np.array(_rgb(c)[:3], dtype=np.float32) for c in spec.get("colors", ["#ffffff", "#eeeeee"])]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if style not in ("linear", "radial"):  # one ground colour: no interpolation needed
        rgb = np.broadcast_to(colours[0], (h, w, 3)).copy()
    elif style == "linear":
        a = math.radians(spec.get("angle", 90))
        t = (xs - w / 2) * math.cos(a) + (ys - h / 2) * math.sin(a)
        half = (abs(math.cos(a)) * w + abs(math.sin(a)) * h) / 2
        t = np.clip((t + half) / (2 * half), 0, 1)
    elif style == "radial":
        t = np.clip(np.hypot(xs - w / 2, ys - h * 0.42) / (0.75 * math.hypot(w, h) / 2), 0, 1)
    if style in ("linear", "radial"):
        stops = np.linspace(0, 1, len(colours))
        rgb = np.stack([np.interp(t, stops, [c[i] for c in colours]) for i in range(3)], axis=-1)
    rng = np.random.default_rng(spec.get("seed", 7))
    if style in ("paper", "kraft"):
        grain = rng.normal(0, 1, (h, w)).astype(np.float32)
        rgb += (_noise(rng, w, h, 96) * 2.5 + _noise(rng, w, h, 9) * 2 + grain * spec.get("grain", 4))[..., None]
        fibres = Image.new("L", (w, h), 0)
        fd = ImageDraw.Draw(fibres)
        for _ in range(spec.get("fibres", 60)):
            x, y = rng.random() * w, rng.random() * h
            a = rng.random() * math.pi
            length = 8 + rng.random() * 30
            fd.line((x, y, x + length * math.cos(a), y + length * math.sin(a)), fill=40, width=1)
        rgb -= np.asarray(fibres, dtype=np.float32)[..., None] * 0.25
    elif style == "dots":
        step = spec.get("step", 36)
        r = spec.get("dot", 4)
        d = np.hypot((xs % step) - step / 2, (ys % step) - step / 2)
        on = np.clip(r + 0.5 - d, 0, 1)[..., None]
        rgb = rgb * (1 - on) + np.array(_rgb(spec["ink"])[:3], dtype=np.float32) * on
    elif style == "stripes":
        step = spec.get("step", 48)
        on = (((xs + ys) % step) < step / 2).astype(np.float32)[..., None]
        rgb = rgb * (1 - on) + np.array(_rgb(spec["ink"])[:3], dtype=np.float32) * on
    elif style == "grid":
        step = spec.get("step", 40)
        on = ((xs % step < 1.5) | (ys % step < 1.5)).astype(np.float32)[..., None]
        rgb = rgb * (1 - on) + np.array(_rgb(spec["ink"])[:3], dtype=np.float32) * on
    return Image.fromarray(np.clip(rgb, 0, 255).round().astype(np.uint8), "RGB")


DRAWERS = {"shape": draw_shape, "corner": draw_corner, "frame": draw_frame, "background": draw_background}


def draw(spec: Mapping[str, Any]) -> Image.Image:
    return DRAWERS[spec["kind"]](spec)
