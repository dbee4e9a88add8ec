"""Small image helpers shared by the tests: upload to the asset store, and side-by-side sheets to look at."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from zhike.services.container import Zhike


def upload(z: Zhike, img: Image.Image, owner: str = "local") -> str:
    """Store a PNG as an asset; returns its id (operations take inputs as asset ids)."""
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return z.assets.upload(buf.getvalue(), owner_id=owner).id


def as_image(img: Image.Image | np.ndarray) -> Image.Image:
    return img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, np.uint8))


def save_artifact(img: Image.Image | np.ndarray, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    as_image(img).save(folder / name)


def save_sheet(
    images: list[Image.Image | np.ndarray], folder: Path, name: str, *, height: int = 240, background: str = "black"
) -> None:
    """Images side by side at one height, saved under test-artifacts/ for a person to look at."""
    ims = [as_image(i).convert("RGB") for i in images]
    ims = [i.resize((round(i.width * height / i.height), height), Image.LANCZOS) for i in ims]
    out = Image.new("RGB", (sum(i.width + 8 for i in ims) - 8, height), background)
    x = 0
    for i in ims:
        out.paste(i, (x, 0))
        x += i.width + 8
    save_artifact(out, folder, name)
