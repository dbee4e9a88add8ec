"""Merchant tools, seconds per megapixel, on real photos and the real embedded weights (one run).

- cutout: Zhike's path (ISNet at 1024 + guided edge refinement at full size) vs the rembg-style baseline (ISNet at
  1024 + bilinear resize of the alpha), same image, same run: prints b/a
- upscale x4, tiled (tile 256): Real-ESRGAN x4plus (photos) and animevideov3-x4 (fast)
- resize_design: crop mode to 6 marketplace sizes in one job, per output megapixel (job path, in process)
More detail: bench/cutout.py (edge quality), bench/upscale.py (tiles, PSNR), bench/resize_design.py (per size).

Usage: python bench/merchant.py [--repeats 3]   (needs `make embedded`)
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ZHIKE_EMBEDDED_DIR", str(ROOT / ".cache" / "embedded"))

from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from zhike.backends.matting import alpha_matte  # noqa: E402
from zhike.backends.upscale import load_ncnn_upscaler, upscale_tiled  # noqa: E402
from zhike.services.container import Zhike  # noqa: E402
from zhike.services.jobs.worker import Worker  # noqa: E402
from zhike.settings import Settings  # noqa: E402


def median_time(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    z = Zhike(Settings(home=Path(tempfile.mkdtemp(prefix="zhike-bench-")), device="cpu"))
    photo = Image.fromarray(data.astronaut())
    print(f"{'tool':44s} {'input':>11s} {'s/MP':>8s}")

    # cutout: both paths on the same images, after one warm-up that loads the net
    alpha_matte(z.models, photo, mode="auto")
    for side in (1024, 2048):
        img = photo.resize((side, side), Image.LANCZOS)
        mp = side * side / 1e6
        base = median_time(lambda img=img: alpha_matte(z.models, img, mode="auto", refine=False), args.repeats)
        ours = median_time(lambda img=img: alpha_matte(z.models, img, mode="auto", refine=True), args.repeats)
        print(f"{'cutout, rembg-style (net 1024 + resize)':44s} {side:>5d}x{side:<5d} {base / mp:8.3f}")
        print(
            f"{'cutout, zhike (net 1024 + edge refine)':44s} {side:>5d}x{side:<5d} {ours / mp:8.3f}"
            f"   b/a = {ours / base:.3f}"
        )

    # upscale x4, tiled; s/MP of the output
    for name, side in (("realesrgan-x4plus", 256), ("realesrgan-animevideov3-x4", 512)):
        model = load_ncnn_upscaler(z.catalog.get(name))
        img = photo.resize((side, side), Image.LANCZOS)
        secs = median_time(lambda img=img, model=model: upscale_tiled(model, img, tile=256), args.repeats)
        out_mp = (side * 4) ** 2 / 1e6
        print(f"{'upscale x4 tiled 256, ' + name:44s} {side:>5d}x{side:<5d} {secs / out_mp:8.3f}   (per output MP)")

    # resize_design: one job, 6 sizes, crop mode (subject-aware); s/MP of all outputs together
    big = Image.fromarray(data.chelsea()).resize((2000, 1330), Image.LANCZOS)
    buf = io.BytesIO()
    big.save(buf, "PNG")
    asset = z.assets.upload(buf.getvalue(), owner_id="bench").id
    sizes = ["taobao", "douyin", "xiaohongshu", "banner", "jd", "wechat_cover"]
    out_mp = sum(w * h for w, h in ((800, 800), (1080, 1920), (1242, 1660), (1200, 628), (800, 800), (900, 383))) / 1e6

    def resize_job() -> None:
        job, _ = z.submit("resize_design", {"image": asset, "sizes": sizes, "mode": "crop"}, "bench")
        Worker(z).run_one(job.id)
        assert z.jobs.get(job.id).state == "succeeded"

    resize_job()  # warm-up
    secs = median_time(resize_job, args.repeats)
    print(
        f"{'resize_design crop, 6 sizes in one job':44s} {'2000x1330':>11s} {secs / out_mp:8.3f}"
        f"   ({secs:.2f} s per job, {out_mp:.2f} MP out)"
    )


if __name__ == "__main__":
    main()
