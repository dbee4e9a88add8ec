"""Seconds per megapixel (of output) of resize_design, crop and fit modes, over the six marketplace presets, on a
2000x1500 photo (scikit-image's coffee, scaled up). Not a test.

Each size's time covers framing, resampling, the fill and storing the PNG asset; the subject detection (ISNet at
1024x1024 plus OpenCV clean-up, once per job) is reported on its own. Jobs run through the real queue and worker.
The first job also loads ISNet and is left out of the medians. Timings on a shared 2-core machine are noisy.

Usage: python bench/resize_design.py [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("ZHIKE_EMBEDDED_DIR", str(REPO / ".cache" / "embedded"))

from PIL import Image  # noqa: E402

import zhike.ops.resize_design  # noqa: E402, F401  (registers the op until it is listed in BUILTIN_OP_MODULES)
from zhike.ops.resize_design import SIZE_PRESETS  # noqa: E402
from zhike.services.container import Zhike  # noqa: E402
from zhike.services.jobs.worker import Worker  # noqa: E402
from zhike.settings import Settings  # noqa: E402


def run_job(z: Zhike, params: dict) -> tuple[dict, float]:
    t = time.perf_counter()
    job, _ = z.submit("resize_design", params, "local")
    Worker(z).run_one(job.id)
    row = z.jobs.get(job.id)
    if row.state != "succeeded":
        raise SystemExit(f"job failed: {row.error}")
    return row.result, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from skimage import data

    photo = Image.fromarray(data.coffee()).resize((2000, 1500), Image.Resampling.LANCZOS)
    sizes = list(SIZE_PRESETS)
    with tempfile.TemporaryDirectory() as home:
        z = Zhike(Settings(home=Path(home), device="cpu"))
        buf = io.BytesIO()
        photo.save(buf, "PNG")
        image = z.assets.upload(buf.getvalue(), owner_id="local").id
        _, first = run_job(z, {"image": image, "sizes": sizes[:1]})  # loads ISNet
        print(f"input 2000x1500 (3.0 MP); first job (ISNet load + 1 size): {first:.2f} s; median of {args.runs} runs")
        for mode in ("crop", "fit"):
            per_size: dict[str, list[float]] = {s: [] for s in sizes}
            subject, totals, methods = [], [], {}
            for _ in range(args.runs):
                res, total = run_job(z, {"image": image, "sizes": sizes, "mode": mode})
                subject.append(res["timings"]["subject"])
                totals.append(total)
                for o in res["outputs"]:
                    per_size[o["size"]].append(o["seconds"])
                    methods[o["size"]] = o["method"]
            print(f"\nmode={mode}")
            print(f"{'preset':<14}{'size':>11}{'MP':>7}{'s':>8}{'s/MP':>8}  method")
            mp_all = s_all = 0.0
            for s in sizes:
                p = SIZE_PRESETS[s]
                mp = p.width * p.height / 1e6
                sec = statistics.median(per_size[s])
                mp_all, s_all = mp_all + mp, s_all + sec
                print(f"{s:<14}{p.width:>6}x{p.height:<4}{mp:>7.2f}{sec:>8.3f}{sec / mp:>8.3f}  {methods[s]}")
            print(f"{'all sizes':<14}{'':>11}{mp_all:>7.2f}{s_all:>8.3f}{s_all / mp_all:>8.3f}")
            sub, tot = statistics.median(subject), statistics.median(totals)
            print(f"subject detection {sub:.3f} s/job; whole job {tot:.3f} s = {tot / mp_all:.3f} s per output MP")
        z.engine.dispose()


if __name__ == "__main__":
    main()
