"""Upscale speed and quality: Real-ESRGAN x4plus and animevideov3-x4 (ncnn, CPU), tiled.

Speed: seconds per megapixel of *output* for each model and tile size (overlap 32, clamped to tile/4), on
scikit-image's astronaut downscaled (Lanczos) to the input size; the fastest of --repeats.
Quality: the astronaut (512 px) downscaled 4x with Lanczos, upscaled 4x by each model and by bicubic, compared
with the original: PSNR (dB) and "detail" (mean |Laplacian| of the result / the original's; bicubic is blurry,
about 0.2). The same for a flat illustration (drawn at 4x and downsampled), where a GAN upscaler wins on PSNR.

Usage: python bench/upscale.py [--repeats 1] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EMBEDDED = Path(os.environ.get("ZHIKE_EMBEDDED_DIR", ROOT / ".cache" / "embedded"))

from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402

from tests.test_upscale import detail, illustration, psnr  # noqa: E402
from zhike.backends.upscale import clamp_overlap, count_tiles, cpu_threads, load_ncnn_upscaler, upscale_tiled  # noqa: E402
from zhike.models.embedded import embedded_specs  # noqa: E402

LANCZOS = Image.Resampling.LANCZOS
OVERLAP = 32
# (model, input side, tile sizes): x4plus is ~100x slower than animevideov3, so it gets smaller inputs.
SPEED_CASES = {
    "realesrgan-x4plus": [(128, (64, 128)), (256, (256,))],
    "realesrgan-animevideov3-x4": [(256, (64, 128, 256)), (512, (128, 256, 512))],
}
QUICK_CASES = {"realesrgan-x4plus": [(128, (64, 128))], "realesrgan-animevideov3-x4": [(256, (64, 256))]}


def load(name: str):  # noqa: ANN201 - an NcnnUpscaler
    (spec,) = [s for s in embedded_specs(EMBEDDED) if s.name == name]
    return load_ncnn_upscaler(spec)


def timed(fn, repeats: int) -> tuple[float, object]:  # noqa: ANN001
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="fewer cases (about 20 s)")
    args = ap.parse_args()
    astronaut = Image.fromarray(skdata.astronaut())
    load("realesrgan-animevideov3-x4")  # the first load sets OMP_WAIT_POLICY (see load_ncnn_upscaler)
    print(f"ncnn CPU, {cpu_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print(f"load average before: {os.getloadavg()[0]:.1f} (other processes on the cores slow every number)\n")

    print(f"{'model':28} {'input':>7} {'output':>9} {'tile':>5} {'ovl':>4} {'tiles':>5} {'seconds':>8} {'s/MP out':>9}")
    for name, cases in (QUICK_CASES if args.quick else SPEED_CASES).items():
        model = load(name)
        upscale_tiled(model, astronaut.resize((32, 32), LANCZOS))  # warm up (first call allocates)
        for side, tiles in cases:
            img = astronaut.resize((side, side), LANCZOS)
            for tile in tiles:
                secs, out = timed(
                    lambda m=model, img=img, tile=tile: upscale_tiled(m, img, tile=tile, overlap=OVERLAP), args.repeats
                )
                mp = out.width * out.height / 1e6
                n = count_tiles(model, img.size, model.scale, tile, OVERLAP)
                print(
                    f"{name:28} {side:>4}^2 {out.width:>5}^2  {tile:>5} {clamp_overlap(tile, OVERLAP):>4} {n:>5} "
                    f"{secs:>8.2f} {secs / mp:>9.2f}",
                    flush=True,
                )

    print(f"\n{'image (x4 from 1/4 size)':26} {'method':28} {'PSNR dB':>8} {'vs bicubic':>10} {'detail':>7}")
    for label, hr in (("astronaut 512", astronaut), ("illustration 256", illustration())):
        lr = hr.resize((hr.width // 4, hr.height // 4), LANCZOS)
        bic = lr.resize(hr.size, Image.Resampling.BICUBIC)
        base = psnr(bic, hr)
        print(f"{label:26} {'bicubic':28} {base:>8.2f} {0:>+10.2f} {detail(bic) / detail(hr):>7.2f}")
        for name in ("realesrgan-x4plus", "realesrgan-x4plus-anime", "realesrgan-animevideov3-x4"):
            out = upscale_tiled(load(name), lr, tile=256)
            p = psnr(out, hr)
            print(f"{label:26} {name:28} {p:>8.2f} {p - base:>+10.2f} {detail(out) / detail(hr):>7.2f}", flush=True)


if __name__ == "__main__":
    main()
