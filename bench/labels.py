"""Time each provenance label adds to an exported 1024x1024 image, against a plain PNG save in the same run.

Run: .venv/bin/python bench/labels.py [--repeat 3]
Prints one row per label (each turned on alone) and all defaults together, as seconds and as a ratio to the PNG
save of the same image; the stored PNG is what exports start from, so the label time is added on top of it.
The pixel labels (watermark, visible) include one PNG re-encode of the result (~1x the plain save); XMP and
C2PA work on the container bytes and re-encode nothing.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from skimage import data as skdata

from zhike.core.rows import AssetRow
from zhike.provenance import LabelConfig, LabelService
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()

    img = Image.fromarray(skdata.astronaut()).resize((args.size, args.size), Image.LANCZOS)
    stored = encode_png(img, {"parameters": "bench", "zhike": "{}"})
    blank = {f: None for f in AssetRow.__dataclass_fields__}
    asset = AssetRow.from_row(
        blank
        | {"id": "benchAsset000001", "origin": "generated", "mime": "image/png", "op": "txt2img", "model": "sd15"}
        | {"params": {}, "tags": []}
    )

    def png_save() -> bytes:
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=4)  # what the asset store does (services/images.encode_png)
        return buf.getvalue()

    base = timed(png_save, args.repeat)
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "implicit (TC260 XMP)": {**OFF, "implicit": True},
            "c2pa (sign)": {**OFF, "c2pa": True},
            "watermark (dwtDctSvd)": {**OFF, "watermark": True},
            "visible (AI生成)": {**OFF, "visible": True},
            "defaults (xmp+c2pa+wm)": {},
            "all four": {"visible": True},
            "all off": OFF,
        }
        for name, cfg in cases.items():
            svc = LabelService(LabelConfig(**cfg), labels_dir=Path(tmp) / "labels", secret=b"s" * 32)
            out: list[bytes] = []
            t = timed(lambda svc=svc, out=out: out.append(svc.label_image(stored, "image/png", asset)), args.repeat)
            growth = f"{(len(out[-1]) - len(stored)) / 1024:+.1f} KiB"
            rows.append((name, t, growth))

    print(
        f"\nLabels on a {args.size}x{args.size} export (median of {args.repeat}); plain PNG save: {base * 1000:.1f} ms"
    )
    print(f"{'label':<26}{'added ms':>10}{'x PNG save':>12}{'file size':>14}")
    for name, t, growth in rows:
        print(f"{name:<26}{t * 1000:>10.1f}{t / base:>12.2f}{growth:>14}")


if __name__ == "__main__":
    main()
