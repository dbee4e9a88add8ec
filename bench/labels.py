"""Time each provenance label adds to an exported 1 MP image, against a PNG save of the same image in the same run,
and how well the invisible watermark survives what platforms do to a picture.

Run: .venv/bin/python bench/labels.py [--repeat 5] [--size 1024]
Prints one row per label (each turned on alone) and all defaults together, in ms and as a ratio to
(a) Pillow's PNG save at compress_level 4 (what a plain PNG save costs; Zhike's store used it before) and
(b) Zhike's own PNG writer (core/png.py, what the store uses now). The export starts from the stored PNG: the pixel
labels (watermark, visible) decode it, change pixels and write it again; XMP and C2PA work on the container bytes.
Then the watermark table: bit errors (of 64; verify accepts <= 6) after JPEG q70, 0.75x and 0.5x resizes followed by
JPEG q70, on skimage photos, for the current method (grid QIM) and version 1 (DWT-DCT-SVD, invisible-watermark's).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the zhike command sets it (src/zhike/cli/__init__.py)

import argparse  # noqa: E402
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

from zhike.core.rows import AssetRow
from zhike.provenance import LabelConfig, LabelService, watermark
from zhike.services.images import encode_png

OFF = {"implicit": False, "c2pa": False, "watermark": False, "visible": False}


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: imports, font loading, certificate generation
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def label_costs(img: Image.Image, repeat: int) -> None:
    stored = encode_png(img, {"parameters": "bench", "zhike": "{}"})
    blank = {f: None for f in AssetRow.__dataclass_fields__}
    asset = AssetRow.from_row(
        blank
        | {"id": "benchAsset000001", "origin": "generated", "mime": "image/png", "op": "txt2img", "model": "sd15"}
        | {"params": {}, "tags": []}
    )

    def pillow_save() -> bytes:
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=4)
        return buf.getvalue()

    pillow = timed(pillow_save, repeat)
    ours = timed(lambda: encode_png(img, {}), repeat)
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "implicit (TC260 XMP)": {**OFF, "implicit": True},
            "c2pa (sign)": {**OFF, "c2pa": True},
            "watermark (grid QIM)": {**OFF, "watermark": True},
            "visible (AI生成)": {**OFF, "visible": True},
            "defaults (xmp+c2pa+wm)": {},
            "all four": {"visible": True},
            "all off": OFF,
        }
        for name, cfg in cases.items():
            svc = LabelService(LabelConfig(**cfg), labels_dir=Path(tmp) / "labels", secret=b"s" * 32)
            out: list[bytes] = []
            t = timed(lambda svc=svc, out=out: out.append(svc.label_image(stored, "image/png", asset)), repeat)
            rows.append((name, t, f"{(len(out[-1]) - len(stored)) / 1024:+.1f} KiB"))
        svc = LabelService(LabelConfig(), labels_dir=Path(tmp) / "labels", secret=b"s" * 32)
        held = timed(lambda: svc.label_image(stored, "image/png", asset, pixels=img), repeat)

    print(f"\nLabels on a {img.width}x{img.height} export (median of {repeat})")
    print(f"  (a) Pillow PNG save, compress_level 4: {pillow * 1000:7.1f} ms  ({len(pillow_save()) / 1024:.0f} KiB)")
    print(f"  (b) Zhike PNG writer:                  {ours * 1000:7.1f} ms  ({len(stored) / 1024:.0f} KiB)")
    print(f"{'label':<26}{'added ms':>10}{'x (a)':>8}{'x (b)':>8}{'file size':>12}")
    for name, t, growth in rows:
        print(f"{name:<26}{t * 1000:>10.1f}{t / pillow:>8.2f}{t / ours:>8.2f}{growth:>12}")
    print(f"{'defaults, pixels in hand':<26}{held * 1000:>10.1f}{held / pillow:>8.2f}{held / ours:>8.2f}")


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def attacks(img: Image.Image) -> dict[str, Image.Image]:
    w, h = img.size
    return {
        "jpeg70": jpeg(img, 70),
        "0.75x+jpeg70": jpeg(img.resize((round(w * 0.75), round(h * 0.75)), Image.BICUBIC), 70),
        "0.5x+jpeg70": jpeg(img.resize((round(w * 0.5), round(h * 0.5)), Image.LANCZOS), 70),
    }


def v1_embed(rgb: np.ndarray, bits: list[int]) -> np.ndarray:
    """Version 1 (invisible-watermark's dwtDctSvd, as Zhike embedded it before grid QIM), for the comparison."""
    from zhike.provenance.watermark import _DCT4, _V1_SCALE, _V1_U

    h, w = rgb.shape[0] // 4 * 4, rgb.shape[1] // 4 * 4
    u = rgb[:h, :w, :3].astype(np.float32) @ _V1_U + np.float32(128.0)
    ll = ((u[0::2, 0::2] + u[0::2, 1::2] + u[1::2, 0::2] + u[1::2, 1::2]) / 2.0).astype(np.float64)
    bh, bw = ll.shape[0] // 4, ll.shape[1] // 4
    blocks = ll[: bh * 4, : bw * 4].reshape(bh, 4, bw, 4).transpose(0, 2, 1, 3).reshape(-1, 4, 4)
    uu, s, vt = np.linalg.svd(_DCT4 @ blocks @ _DCT4.T)
    wanted = np.resize(np.asarray(bits, dtype=np.float64), len(blocks))
    s[:, 0] = (s[:, 0] // _V1_SCALE + 0.25 + 0.5 * wanted) * _V1_SCALE
    new = _DCT4.T @ (uu * s[:, None, :]) @ vt @ _DCT4
    d_ll = np.zeros_like(ll)
    d_ll[: bh * 4, : bw * 4] = (new - blocks).reshape(bh, bw, 4, 4).transpose(0, 2, 1, 3).reshape(bh * 4, bw * 4)
    d_u = np.repeat(np.repeat(d_ll / 2.0, 2, axis=0), 2, axis=1)
    out = rgb.copy()
    for channel, gain in ((2, 2.032), (1, -0.395)):
        out[:h, :w, channel] = np.clip(out[:h, :w, channel] + np.rint(gain * d_u), 0, 255).astype(np.uint8)
    return out


def robustness() -> None:
    bits = watermark.payload_bits("Qm3xLk9aPzR2bT7w")
    photos = {n: Image.fromarray(getattr(skdata, n)()).convert("RGB") for n in ("astronaut", "coffee", "chelsea")}
    methods: dict[str, tuple[Callable[[Image.Image], Image.Image], Callable[[Image.Image], list[int]]]] = {
        "grid QIM (now)": (
            lambda im: watermark._embed_image(im, bits),
            lambda im: watermark._decode_image(im)[0],
        ),
        "DWT-DCT-SVD (v1)": (
            lambda im: Image.fromarray(v1_embed(np.asarray(im), bits)),
            lambda im: watermark._decode_rgb_v1(np.asarray(im.convert("RGB"))),
        ),
    }
    print("\nWatermark bit errors of 64 (verify accepts <= 6); PSNR of the mark; embed time")
    print(
        f"{'method':<18}{'photo':<18}{'PSNR':>6}{'embed ms':>10}"
        + "".join(f"{a:>14}" for a in attacks(photos["coffee"]))
    )
    for method, (embed, decode) in methods.items():
        for name, photo in photos.items():
            for size in (512, 1024):
                img = photo.resize((size, round(size * photo.height / photo.width)), Image.LANCZOS)
                start = time.perf_counter()
                marked = embed(img)
                ms = (time.perf_counter() - start) * 1000
                diff = np.asarray(marked, np.float64) - np.asarray(img, np.float64)
                psnr = 10 * np.log10(255**2 / max(float((diff**2).mean()), 1e-9))
                errors = [sum(a != b for a, b in zip(decode(x), bits, strict=True)) for x in attacks(marked).values()]
                label = f"{name} {img.width}x{img.height}"
                print(f"{method:<18}{label:<18}{psnr:>6.1f}{ms:>10.1f}" + "".join(f"{e:>14}" for e in errors))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()
    img = Image.fromarray(skdata.astronaut()).resize((args.size, args.size), Image.LANCZOS)
    label_costs(img, args.repeat)
    robustness()


if __name__ == "__main__":
    main()
