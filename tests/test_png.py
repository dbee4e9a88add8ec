"""The fast PNG writer (core/png.py): lossless in every mode, readable by other decoders, metadata kept."""

from __future__ import annotations

import io
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from zhike.core import png


def photo() -> Image.Image:
    return Image.fromarray(skdata.astronaut()).resize((333, 251), Image.LANCZOS)  # odd sizes: no lucky alignment


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "I;16", "1"])
def test_every_mode_round_trips_exactly(mode: str) -> None:
    img = photo().convert("L").convert("I;16") if mode == "I;16" else photo().convert(mode)
    data = png.encode(img)
    back = Image.open(io.BytesIO(data))
    back.load()
    assert back.mode == img.mode and back.size == img.size
    assert np.array_equal(np.asarray(back), np.asarray(img))
    flag = cv2.IMREAD_UNCHANGED
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flag)  # another decoder (libpng) reads it too
    assert decoded is not None and decoded.shape[:2] == (251, 333)


def test_tiny_and_noisy_images_round_trip() -> None:
    rng = np.random.default_rng(1)
    for shape in [(1, 1, 3), (1, 7, 4), (9, 1), (5, 3, 3), (64, 64, 3)]:
        arr = rng.integers(0, 256, shape, dtype=np.uint8)
        back = np.asarray(Image.open(io.BytesIO(png.encode(Image.fromarray(arr)))))
        assert np.array_equal(back, arr), shape


def test_text_dpi_icc_and_exif_are_written() -> None:
    icc = Image.open(io.BytesIO(png.encode(photo()))).info.get("icc_profile")
    assert icc is None
    srgb = b"fake icc profile bytes" * 10
    exif = Image.Exif()
    exif[0x0131] = "Zhike"  # Software
    data = png.encode(
        photo(),
        text={"parameters": "a cat", "zhike": '{"p": "一只猫"}'},
        dpi=(300, 300),
        icc_profile=srgb,
        exif=exif.tobytes(),
    )
    img = Image.open(io.BytesIO(data))
    assert img.info["parameters"] == "a cat" and img.info["zhike"] == '{"p": "一只猫"}'
    assert round(img.info["dpi"][0]) == 300 and img.info["icc_profile"] == srgb
    assert img.getexif()[0x0131] == "Zhike"


def test_with_pixels_keeps_every_other_chunk() -> None:
    original = png.encode(photo(), text={"parameters": "a cat", "zhike": "{}"}, dpi=(72, 72))
    changed = photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = png.with_pixels(original, changed)
    kinds = [k for k, _ in png.chunks(out)]
    assert [k for k, _ in png.chunks(original) if k not in (b"IDAT",)] == [k for k in kinds if k != b"IDAT"]
    img = Image.open(io.BytesIO(out))
    assert img.info["parameters"] == "a cat" and round(img.info["dpi"][0]) == 72
    assert np.array_equal(np.asarray(img), np.asarray(changed))


def test_damaged_input_is_a_png_error() -> None:
    with pytest.raises(png.PngError):
        png.chunks(b"GIF89a")
    with pytest.raises(png.PngError):
        png.chunks(png.encode(photo())[:100])


def test_a_big_image_is_encoded_in_bands_that_join_into_one_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over PARALLEL_BYTES the rows are filtered and deflated in bands on several threads: still one valid zlib
    stream (its Adler-32 checked by zlib), the same pixels for Pillow and OpenCV, whatever the number of bands."""
    rng = np.random.default_rng(2)
    arr = np.clip(rng.normal(128, 40, (701, 613, 3)), 0, 255).astype(np.uint8)  # 1.3 MB raw, odd sizes
    for threads in (2, 3, 4):
        monkeypatch.setattr(png, "_threads", lambda n=threads: n)
        png._pool.cache_clear()
        data = png.encode(Image.fromarray(arr))
        idat = b"".join(body for kind, body in png.chunks(data) if kind == b"IDAT")
        assert len(zlib.decompress(idat)) == 701 * (613 * 3 + 1)  # raises on a bad checksum
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), arr)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(decoded[..., ::-1], arr)
    png._pool.cache_clear()
