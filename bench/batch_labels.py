"""A labelled batch design against an unlabelled one: the same 60 rows x 1 size, job + ZIP download, in one run.

The issue's measure: a 60-row batch design took 8.3x longer with the default labels (TC260 XMP + C2PA + watermark)
than without them. Labels are now made on the output pool while the next designs render (from the pixels in hand)
and the ZIP finds them ready; the goal is <= 1.5x. Each run is a fresh job in its own home (labels on / off),
alternated; medians.

Usage: python bench/batch_labels.py [--rows 60] [--runs 3] [--template price_card]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the zhike command sets it (src/zhike/cli/__init__.py)

import argparse  # noqa: E402
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402

from zhike.services.container import Zhike  # noqa: E402
from zhike.services.jobs.worker import Worker  # noqa: E402
from zhike.services.templates import write_archive  # noqa: E402
from zhike.settings import Settings  # noqa: E402

OFF = {"label_implicit": False, "label_c2pa": False, "label_watermark": False}


def rows(z: Zhike, n: int) -> list[dict[str, str]]:
    photos = [getattr(skdata, name)() for name in ("coffee", "chelsea", "astronaut", "rocket")]
    ids = []
    for p in photos:
        buf = io.BytesIO()
        Image.fromarray(p).save(buf, "PNG")
        ids.append(z.assets.upload(buf.getvalue(), owner_id="local").id)
    return [
        {"name": f"青花瓷茶杯 第{i + 1}款", "price": f"{19 + i % 80}.9", "title": "双十一", "image": ids[i % len(ids)]}
        for i in range(n)
    ]


def one(home: Path, labels: dict[str, bool], n: int, template: str) -> float:
    z = Zhike(Settings(home=home, device="cpu", **labels))
    data = rows(z, n)
    t0 = time.perf_counter()
    job, _ = z.submit("batch_design", {"template": template, "rows": data, "sizes": ["template"]}, "local")
    assert Worker(z).run_one(job.id)
    row = z.jobs.get(job.id)
    assert row.state == "succeeded", row.error
    assert write_archive(row, z.assets, z.exports, io.BytesIO()) == n
    seconds = time.perf_counter() - t0
    z.engine.dispose()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=60)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--template", default="price_card")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zhike-bench-batch-"))
    on: list[float] = []
    off: list[float] = []
    one(work / "warm", {}, 4, args.template)  # imports, fonts, the signing certificate
    for i in range(args.runs):
        off.append(one(work / f"off-{i}", OFF, args.rows, args.template))
        on.append(one(work / f"on-{i}", {}, args.rows, args.template))
    a, b = statistics.median(off), statistics.median(on)
    print(f"{args.rows} rows of {args.template}, job + ZIP, median of {args.runs}")
    print(f"  unlabelled: {a:6.2f} s  ({a / args.rows * 1000:.0f} ms per design)")
    print(f"  labelled:   {b:6.2f} s  ({b / args.rows * 1000:.0f} ms per design)")
    print(f"  labelled / unlabelled = {b / a:.2f}   (goal <= 1.5)")


if __name__ == "__main__":
    main()
