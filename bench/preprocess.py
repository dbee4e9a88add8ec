"""Seconds per megapixel of each ControlNet preprocessor, on scikit-image's astronaut at 1 MP and 0.25 MP.

The first call of a model-backed mode (softedge, scribble from a photo, pose) also loads its model through the
ModelManager; that call is reported separately, left out of the median of the warm runs, and the loads are also
timed on their own. Timings on a shared 2-core machine are noisy: compare runs made back to back.

Usage: python bench/preprocess.py [--runs 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from zhike.backends.preprocessors import run_preprocessor  # noqa: E402
from zhike.backends.preprocessors.hed import load_hed  # noqa: E402
from zhike.backends.preprocessors.pose import load_pose  # noqa: E402
from zhike.services.container import Zhike  # noqa: E402
from zhike.settings import Settings  # noqa: E402

CASES: tuple[tuple[str, str, dict], ...] = (
    ("canny", "canny", {}),
    ("softedge", "softedge", {}),
    ("softedge safe", "softedge", {"safe": True}),
    ("scribble", "scribble", {}),
    ("scribble photo", "scribble", {"from_photo": True}),
    ("lineart", "lineart", {}),
    ("pose", "pose", {}),
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    sizes = {"1 MP": 1024, "0.25 MP": 512}  # the astronaut is square
    with tempfile.TemporaryDirectory() as home:
        z = Zhike(Settings(home=Path(home), device=args.device))
        print(f"device={z.models.device} runs={args.runs} (median of warm runs)")
        print(f"{'mode':<16}" + "".join(f"{label + ' s/MP':>14}" for label in sizes) + f"{'first call s':>14}")
        for label, mode, opts in CASES:
            row, first = f"{label:<16}", ""
            for side in sizes.values():
                img = photo.resize((side, side), Image.Resampling.BICUBIC)
                mp = side * side / 1e6
                times = []
                for _ in range(args.runs + 1):
                    t0 = time.perf_counter()
                    run_preprocessor(z.models, mode, img, opts)
                    times.append(time.perf_counter() - t0)
                if not first:  # the very first call of this mode: includes a model load if it has one
                    first = f"{times[0]:>14.3f}"
                row += f"{statistics.median(times[1:]) / mp:>14.3f}"
            print(row + first, flush=True)
        z.engine.dispose()
    # Model loads on their own (the cache above loaded each once, inside the first call of its mode).
    for name, load in (("HED (h5 -> torch)", lambda: load_hed(args.device)), ("MediaPipe pose", load_pose)):
        t0 = time.perf_counter()
        load()
        print(f"load {name}: {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
