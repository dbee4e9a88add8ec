"""Designs per second of the template renderer against a bare Pillow loop drawing the same layers, in one run.

Poster: 1080x1080, solid background, one image layer (cover) and 4 text layers (name, subtitle, price, tag).
(a) bare Pillow: the same fonts, sizes, positions and text; no fallback, no wrap, no auto-shrink, no report.
(b) render_design on one core (this process).
(c) render_design over a multiprocessing Pool of 2 (fork; fonts warmed in the parent first).
Rendering only (no PNG encoding, no storage). Inputs are small PIL images made in memory; no model.
Prints designs/s for each, b/a (aim >= 0.8) and the 2-core speed-up. Timings on a shared 2-core machine are noisy:
each figure is the best of --runs.

Usage: python bench/batch.py [--rows 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from PIL import Image, ImageDraw  # noqa: E402

from zhike import fonts  # noqa: E402
from zhike.design.render import render_design  # noqa: E402
from zhike.design.template import Template, parse_template  # noqa: E402

TEXTS = [
    ("name", "{{name}}", (80, 700, 920, 110), 72, "bold", "#1f1f1f"),
    ("subtitle", "{{subtitle}}", (80, 820, 920, 60), 36, "regular", "#777777"),
    ("price", "¥{{price}}", (80, 900, 500, 110), 84, "bold", "#e4393c"),
    ("tag", "{{tag}}", (700, 930, 300, 60), 36, "regular", "#ffffff"),
]
IMAGE_BOX = (80, 80, 920, 580)


def poster() -> Template:
    layers: list[dict] = [{"type": "image", "src": "{{image}}", "box": list(IMAGE_BOX), "fit": "cover"}]
    for name, text, box, size, weight, colour in TEXTS:
        layers.append(
            {"type": "text", "id": name, "text": text, "box": list(box), "font_size": size, "weight": weight,
             "color": colour, "max_lines": 1}
        )  # fmt: skip
    return parse_template(
        {"id": "bench", "name": {"zh": "基准", "en": "bench"}, "width": 1080, "height": 1080, "background": "#fff4ec",
         "layers": layers}
    )  # fmt: skip


def make_rows(n: int) -> list[dict]:
    images = [Image.new("RGB", (320, 240), (40 * i, 120, 255 - 40 * i)) for i in range(5)]
    return [
        {
            "name": f"纯棉圆领T恤 {i} 号 Classic Tee",
            "subtitle": f"新疆长绒棉 · 第{i % 7 + 1}代 · 三色可选",
            "price": f"{49 + i % 50}.9",
            "tag": ["包邮", "新品", "热卖", "限时"][i % 4],
            "image": images[i % 5],
        }
        for i in range(n)
    ]


def bare_loop(rows: list[dict]) -> float:
    """The same layers drawn with plain Pillow calls: one font per weight, fixed sizes, no layout logic."""
    regular, bold = fonts.chain("sans", "regular")[0], fonts.chain("sans", "bold")[0]
    t0 = time.perf_counter()
    for row in rows:
        canvas = Image.new("RGB", (1080, 1080), "#fff4ec")
        x, y, w, h = IMAGE_BOX
        canvas.paste(row["image"].resize((w, h), Image.Resampling.LANCZOS), (x, y))
        draw = ImageDraw.Draw(canvas, "RGBA")
        for name, text, box, size, weight, colour in TEXTS:
            face = bold if weight == "bold" else regular
            value = text.replace("{{" + name + "}}", row[name])
            draw.text((box[0], box[1]), value, font=face.font(size), fill=colour, stroke_width=face.faux_width(size))
    return time.perf_counter() - t0


def renderer_loop(rows: list[dict]) -> float:
    tpl = poster()
    t0 = time.perf_counter()
    for row in rows:
        render_design(tpl, row)
    return time.perf_counter() - t0


_TPL: Template | None = None


def _one(row: dict) -> int:
    img, _ = render_design(_TPL, row)  # type: ignore[arg-type]
    return img.width


def pool_loop(rows: list[dict], procs: int) -> float:
    global _TPL
    _TPL = poster()
    ctx = mp.get_context("fork")
    with ctx.Pool(procs) as pool:
        pool.map(_one, rows[: procs * 4], chunksize=1)  # workers started and warm
        t0 = time.perf_counter()
        pool.map(_one, rows, chunksize=16)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rows = make_rows(args.rows)
    renderer_loop(rows[:20])  # load fonts and cmaps once, before timing anything (and before forking)
    bare_loop(rows[:20])
    res: dict[str, list[float]] = {"bare": [], "render": [], "pool2": []}
    for _ in range(args.runs):
        res["bare"].append(args.rows / bare_loop(rows))
        res["render"].append(args.rows / renderer_loop(rows))
        res["pool2"].append(args.rows / pool_loop(rows, 2))
    best = {k: max(v) for k, v in res.items()}
    med = {k: statistics.median(v) for k, v in res.items()}
    ms = 1000 / best["render"]
    print(f"{args.rows} rows, 1080x1080, 1 image + 4 text layers; best (median) of {args.runs} runs; render only")
    print(f"{'path':<34}{'designs/s':>11}{'median':>9}")
    print(f"{'(a) bare Pillow loop, 1 core':<34}{best['bare']:>11.1f}{med['bare']:>9.1f}")
    print(f"{'(b) render_design, 1 core':<34}{best['render']:>11.1f}{med['render']:>9.1f}   {ms:.1f} ms/design")
    print(f"{'(c) render_design, Pool(2)':<34}{best['pool2']:>11.1f}{med['pool2']:>9.1f}")
    ratio, speedup = best["render"] / best["bare"], best["pool2"] / best["render"]
    print(f"b/a = {ratio:.2f} (aim >= 0.8); c/b = {speedup:.2f}x on 2 cores")


if __name__ == "__main__":
    main()
