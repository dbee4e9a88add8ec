"""Super-resolution: real Real-ESRGAN weights (ncnn) on real photos, tiling, the op, and user upscalers (spandrel).

Real-ESRGAN is a GAN: on a cleanly downscaled photo it restores sharp detail but invents texture, so its PSNR
against the original is a little *below* bicubic's (measured: astronaut face 23.8 vs 26.3 dB, coffee cup 25.9 vs
26.6 dB). The photo test therefore checks what it does do (detail back, low frequencies faithful, PSNR close);
the PSNR win is checked on a flat illustration, where it is large. Outputs go to test-artifacts/upscale/.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file
from skimage import data as skdata  # noqa: E402

from tests.conftest import ARTIFACTS, make_settings
from tests.helpers.images import upload
from zhike.backends.upscale import (
    NcnnUpscaler,
    UpscalerError,
    UpscalerInfo,
    count_tiles,
    inspect_upscaler,
    load_ncnn_upscaler,
    load_spandrel_upscaler,
    state_dict_shapes,
    tile_spans,
    upscale_tiled,
)
from zhike.core.errors import InvalidInput, NotFound
from zhike.core.rows import JobRow
from zhike.models.embedded import embedded_specs
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker

ART = ARTIFACTS / "upscale"
LANCZOS, BICUBIC = Image.Resampling.LANCZOS, Image.Resampling.BICUBIC


def save(img: Image.Image, name: str) -> None:
    ART.mkdir(parents=True, exist_ok=True)
    img.save(ART / name)


def psnr(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def detail(img: Image.Image) -> float:
    """Mean |Laplacian| of the grey image: how much fine detail (edges, texture) there is."""
    g = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(np.abs(cv2.Laplacian(g, cv2.CV_64F)).mean())


def ncnn_model(embedded_dir: Path, name: str) -> NcnnUpscaler:
    (spec,) = [s for s in embedded_specs(embedded_dir) if s.name == name]  # the catalogue's own spec
    return load_ncnn_upscaler(spec)


@pytest.fixture(scope="module")
def x4plus(embedded_dir: Path) -> NcnnUpscaler:
    return ncnn_model(embedded_dir, "realesrgan-x4plus")


@pytest.fixture(scope="module")
def fast4(embedded_dir: Path) -> NcnnUpscaler:
    return ncnn_model(embedded_dir, "realesrgan-animevideov3-x4")


@pytest.fixture(scope="module")
def fast2(embedded_dir: Path) -> NcnnUpscaler:
    return ncnn_model(embedded_dir, "realesrgan-animevideov3-x2")


def photo(which: str) -> Image.Image:
    """256x256 crops with real detail: the astronaut's face and flag, the coffee cup and spoon."""
    if which == "astronaut":
        return Image.fromarray(skdata.astronaut()).crop((128, 0, 384, 256))
    return Image.fromarray(skdata.coffee()).crop((150, 50, 406, 306))


def illustration() -> Image.Image:
    """A flat-colour drawing with dark outlines (drawn at 4x and downsampled: antialiased, like real line art)."""
    big = Image.new("RGB", (1024, 1024), (250, 240, 220))
    d = ImageDraw.Draw(big)
    ink = (20, 20, 20)
    d.ellipse((150, 100, 700, 650), fill=(255, 200, 160), outline=ink, width=16)
    d.rectangle((500, 550, 950, 950), fill=(80, 140, 220), outline=ink, width=16)
    d.polygon([(100, 900), (400, 600), (450, 980)], fill=(230, 60, 80), outline=ink, width=16)
    d.ellipse((300, 300, 380, 380), fill=ink)
    d.ellipse((470, 300, 550, 380), fill=ink)
    d.line((100, 80, 900, 200), fill=ink, width=10)
    return big.resize((256, 256), LANCZOS)


# -- quality on real images ------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["astronaut", "coffee"])
def test_x4plus_restores_the_detail_bicubic_blurs_away(x4plus: NcnnUpscaler, which: str) -> None:
    hr = photo(which)
    lr = hr.resize((64, 64), LANCZOS)  # antialiased 4x downscale
    out, bic = upscale_tiled(x4plus, lr), lr.resize(hr.size, BICUBIC)
    save(
        Image.fromarray(np.hstack([np.asarray(hr), np.asarray(out), np.asarray(bic)])),
        f"{which}_orig_x4plus_bicubic.png",
    )
    assert out.size == hr.size == (256, 256)
    # Fine detail: bicubic keeps under a third of the original's, Real-ESRGAN brings most of it back
    # (measured: astronaut 0.19 vs 0.86, coffee 0.22 vs 0.57).
    assert detail(bic) < 0.3 * detail(hr) and detail(out) > 0.45 * detail(hr)
    # ... without inventing a different picture: at half size it is close to the original, and its full-size
    # PSNR is within 3 dB of bicubic's (a GAN trades a little PSNR for detail: -2.5 and -0.7 dB here).
    half = (128, 128)
    assert psnr(out.resize(half, LANCZOS), hr.resize(half, LANCZOS)) > 24.5
    assert psnr(out, hr) > psnr(bic, hr) - 3.0
    # and the colours are kept (a channel mix-up or a 0..255 input range would shift them)
    assert np.abs(np.asarray(out, np.float64).mean((0, 1)) - np.asarray(hr, np.float64).mean((0, 1))).max() < 4


@pytest.mark.parametrize("name", ["realesrgan-x4plus-anime", "realesrgan-x4plus"])
def test_esrgan_beats_bicubic_psnr_on_a_flat_illustration(embedded_dir: Path, name: str) -> None:
    hr = illustration()
    lr = hr.resize((64, 64), LANCZOS)
    out, bic = upscale_tiled(ncnn_model(embedded_dir, name), lr), lr.resize(hr.size, BICUBIC)
    save(Image.fromarray(np.hstack([np.asarray(hr), np.asarray(out), np.asarray(bic)])), f"drawing_{name}.png")
    assert psnr(out, hr) > psnr(bic, hr) + 4.0  # measured: 26.7 (anime), 27.2 (x4plus) vs 20.4 dB


# -- tiling ------------------------------------------------------------------------------------------------
def column_jumps(tiled: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """|change of (tiled - whole) from one output column to the next|: a seam is a jump in this difference."""
    d = tiled.astype(np.float64) - whole.astype(np.float64)
    return np.abs(np.diff(d, axis=1)).mean(axis=(0, 2))


def test_tiles_blend_without_seams(fast4: NcnnUpscaler) -> None:
    img = Image.fromarray(skdata.astronaut()).crop((100, 20, 420, 340)).resize((128, 128), LANCZOS)
    whole = np.asarray(upscale_tiled(fast4, img, tile=1024))
    tiled = np.asarray(upscale_tiled(fast4, img, tile=64, overlap=16))  # 3x3 tiles sharing 32 px
    hard = np.asarray(upscale_tiled(fast4, img, tile=64, overlap=0))  # 2x2 tiles butted together: a seam
    assert tile_spans(128, 64, 16) == [(0, 64), (32, 96), (64, 128)] and tile_spans(128, 64, 0) == [(0, 64), (64, 128)]
    assert np.abs(tiled.astype(float) - whole).mean() < 0.1  # measured 0.008 levels
    assert np.abs(tiled.astype(float) - whole).max() <= 4
    for a, b in ((tiled, whole), (tiled.transpose(1, 0, 2), whole.transpose(1, 0, 2))):  # columns, then rows
        assert column_jumps(a, b).max() < 0.5  # measured 0.07
    # the same measure does see a butted seam (at output column 256), so the check above has teeth
    jumps = column_jumps(hard, whole)
    assert jumps[255] > 5 and jumps[255] > 20 * np.median(jumps)


def test_x4plus_tiled_is_close_to_one_tile(x4plus: NcnnUpscaler) -> None:
    # RRDB sees far (23 blocks x 15 convs): tiles cannot match one pass exactly, but stay within about a level.
    img = Image.fromarray(skdata.coffee()).crop((150, 50, 406, 306)).resize((64, 64), LANCZOS)
    whole = np.asarray(upscale_tiled(x4plus, img, tile=1024), np.float64)
    tiled = np.asarray(upscale_tiled(x4plus, img, tile=40), np.float64)  # 2x2 tiles sharing 16 px
    assert np.abs(tiled - whole).mean() < 1.5  # levels of 255; measured 1.1
    assert (
        column_jumps(tiled, whole).max() < 5 and column_jumps(*(a.transpose(1, 0, 2) for a in (tiled, whole))).max() < 5
    )


@pytest.mark.parametrize(
    ("model", "scale", "passes"),
    [
        ("fast4", 4, 1),
        ("fast4", 2, 1),
        ("fast4", 3, 1),
        ("fast2", 2, 1),
        ("fast2", 3, 2),
        ("fast2", 4, 2),
        ("fast4", 1.5, 1),
        ("fast4", 1, 1),
    ],
)
def test_output_size_is_exact(request: pytest.FixtureRequest, model: str, scale: float, passes: int) -> None:
    m = request.getfixturevalue(model)
    img = Image.fromarray(skdata.chelsea()).resize((37, 23), LANCZOS)
    calls: list[tuple[int, int]] = []
    out = upscale_tiled(m, img, scale=scale, tile=16, on_tile=lambda d, t: calls.append((d, t)))
    assert out.size == (round(37 * scale), round(23 * scale)) and out.mode == "RGB"
    per_pass = [len(tile_spans(37 * m.scale**k, 16, 4)) * len(tile_spans(23 * m.scale**k, 16, 4)) for k in range(3)]
    assert len(calls) == sum(per_pass[:passes]) == count_tiles(m, img.size, scale, 16)


def test_progress_reports_every_tile(fast4: NcnnUpscaler) -> None:
    calls: list[tuple[int, int]] = []
    upscale_tiled(
        fast4, Image.new("RGB", (100, 70), (90, 120, 200)), tile=32, on_tile=lambda d, t: calls.append((d, t))
    )
    n = len(tile_spans(100, 32, 8)) * len(tile_spans(70, 32, 8))
    assert n == 12 and calls == [(i, n) for i in range(1, n + 1)]


def test_alpha_and_grey_are_kept(fast4: NcnnUpscaler) -> None:
    rgb = Image.fromarray(skdata.coffee()).resize((48, 32), LANCZOS)
    alpha = Image.new("L", rgb.size, 0)
    ImageDraw.Draw(alpha).ellipse((8, 4, 40, 28), fill=255)
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    out = upscale_tiled(fast4, rgba, tile=32)
    assert out.mode == "RGBA" and out.size == (192, 128)
    a = np.asarray(out.getchannel("A"), np.float64)
    assert np.abs(a - np.asarray(alpha.resize((192, 128), LANCZOS), np.float64)).max() <= 1
    assert a[64, 96] == 255 and a[2, 2] == 0
    # RGB under the alpha is the same as upscaling the RGB alone
    assert np.array_equal(np.asarray(out.convert("RGB")), np.asarray(upscale_tiled(fast4, rgb, tile=32)))
    assert upscale_tiled(fast4, rgb.convert("L"), scale=2).mode == "L"
    la = upscale_tiled(fast4, rgba.convert("LA"), scale=2)
    assert la.mode == "LA" and la.size == (96, 64)


# -- the operation, through the job queue ------------------------------------------------------------------------
@pytest.fixture
def app(tmp_path: Path, embedded_dir: Path) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path / "home", embedded_dir=embedded_dir))  # no checkpoint needed
    yield z
    z.engine.dispose()


def run_job(z: Zhike, params: dict, progress: list | None = None) -> JobRow:
    job, _ = z.submit("upscale", params, "local")
    worker = Worker(z)
    if progress is not None:
        worker.on_progress = lambda _jid, step, total: progress.append((step, total))
    assert worker.run_one(job.id)
    row = z.jobs.get(job.id)
    assert row.state == "succeeded", row.error
    return row


def test_upscale_op_saves_a_child_asset_with_alpha(app: Zhike) -> None:
    img = Image.fromarray(skdata.chelsea()).resize((45, 30), LANCZOS).convert("RGBA")
    img.putalpha(Image.linear_gradient("L").resize((45, 30)))
    src = upload(app, img)
    progress: list[tuple[int, int]] = []
    row = run_job(app, {"image": src, "scale": 3, "model": "realesrgan-animevideov3-x2", "tile": 128}, progress)
    out = row.result["images"][0]
    assert (out["width"], out["height"]) == (135, 90)
    assert row.result["model"] == "realesrgan-animevideov3-x2" and row.result["tiles"] == 2  # x2 twice
    assert progress[-1] == (2, 2) and row.step == row.total_steps == 2
    asset = app.assets.get(out["asset_id"], owner_id="local")
    assert asset.parent_id == src and asset.op == "upscale" and asset.tags == ["upscale"]
    assert asset.model == "realesrgan-animevideov3-x2" and asset.params["scale"] == 3
    got = Image.open(io.BytesIO(app.assets.read_bytes(asset)))
    assert got.mode == "RGBA" and got.size == (135, 90)
    assert (
        np.abs(
            np.asarray(got.getchannel("A"), float) - np.asarray(img.getchannel("A").resize((135, 90), LANCZOS))
        ).max()
        <= 1
    )


def test_upscale_op_default_model_is_fixed_at_submission(app: Zhike) -> None:
    src = upload(app, Image.fromarray(skdata.astronaut()).resize((24, 24), LANCZOS))
    row = run_job(app, {"image": src, "scale": 2})
    assert row.params["model"] == "realesrgan-x4plus" and row.result["model"] == "realesrgan-x4plus"
    assert (row.result["images"][0]["width"], row.result["images"][0]["height"]) == (48, 48)


def test_upscale_op_rejects_bad_requests_at_submission(app: Zhike) -> None:
    from zhike.core.registry import get_op

    schema = get_op("upscale").schema()
    assert schema["title"] == {"en": "Upscale", "zh": "图片超分"} and schema["params_schema"]["required"] == ["image"]
    src = upload(app, Image.new("RGB", (64, 64)))
    with pytest.raises(NotFound) as nf:
        app.submit("upscale", {"image": "nosuchasset1"}, "local")
    assert nf.value.field == "params.image"
    cases = [
        ({"scale": 5}, "params.scale"),
        ({"scale": 0.5}, "params.scale"),
        ({"tile": 32}, "params.tile"),
        ({"tile": 2048}, "params.tile"),
        ({"model": "nosuchmodel"}, "params.model"),
        ({"model": "isnet-small"}, "params.model"),  # a matting model, not an upscaler
        ({"denoise": 0.5}, "params.denoise"),
    ]
    for extra, field in cases:
        with pytest.raises(InvalidInput) as e:
            app.submit("upscale", {"image": src, **extra}, "local")
        assert e.value.field == field, (extra, e.value.message)
    assert "not an upscaler" in _message(app, {"image": src, "model": "isnet-small"})
    # the output size guard: 2100x2100 x4 would be 70.6 MP; x3 (39.7 MP) is fine
    big = upload(app, Image.new("RGB", (2100, 2100), (200, 100, 50)))
    with pytest.raises(InvalidInput) as e:
        app.submit("upscale", {"image": big, "scale": 4}, "local")
    assert e.value.field == "params.scale" and e.value.limit == 64_000_000 and "8400x8400" in e.value.message
    job, _ = app.submit("upscale", {"image": big, "scale": 3}, "local")
    assert job.state == "queued"


def _message(app: Zhike, params: dict) -> str:
    with pytest.raises(InvalidInput) as e:
        app.submit("upscale", params, "local")
    return e.value.message


# -- user upscalers through spandrel ---------------------------------------------------------------------------
def tiny_rrdb(scale: int, nf: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random Real-ESRGAN (basicsr RRDBNet) state dict, 1 block of 8 features: the real key layout, 0.9 MB."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name: str, cout: int, cin: int) -> None:
        sd[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
        sd[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.01

    gc = 32  # growth channels: fixed in RRDBNet
    conv("conv_first", nf, 3)
    for r in (1, 2, 3):
        for i in range(1, 6):
            conv(f"body.0.rdb{r}.conv{i}", nf if i == 5 else gc, nf + (i - 1) * gc)
    conv("conv_body", nf, nf)
    for u in range(int(math.log2(scale))):
        conv(f"conv_up{u + 1}", nf, nf)
    conv("conv_hr", nf, nf)
    conv("conv_last", 3, nf)
    return sd


@pytest.fixture(scope="module")
def user_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("upscalers")
    save_file(tiny_rrdb(4), d / "tiny-x4.safetensors")
    torch.save(tiny_rrdb(4), d / "tiny-x4.pth")  # a plain pickled state dict, as training scripts write them
    torch.save({"params_ema": tiny_rrdb(2)}, d / "tiny-x2.pth")  # basicsr's wrapped layout
    return d


def test_spandrel_loads_both_formats_and_runs_tiled(user_models: Path) -> None:
    img = Image.fromarray(skdata.chelsea()).resize((37, 29), LANCZOS)
    a = load_spandrel_upscaler(user_models / "tiny-x4.safetensors")
    b = load_spandrel_upscaler(user_models / "tiny-x4.pth")
    assert a.scale == b.scale == 4 and a.nbytes == b.nbytes > 0 and a.model.architecture.name == "ESRGAN"
    out_a, out_b = upscale_tiled(a, img, tile=16), upscale_tiled(b, img, tile=16)
    # The same weights from two file formats: at most one grey level apart (float rounding), almost everywhere none.
    pa, pb = np.asarray(out_a, np.int16), np.asarray(out_b, np.int16)
    assert out_a.size == (148, 116) and np.abs(pa - pb).max() <= 1 and (pa != pb).mean() < 0.01
    assert np.abs(np.asarray(out_a, float) - np.asarray(upscale_tiled(a, img, tile=64))).mean() < 0.5
    x2 = load_spandrel_upscaler(user_models / "tiny-x2.pth")
    assert x2.scale == 2 and upscale_tiled(x2, img, scale=3, tile=32).size == (111, 87)
    # spandrel was imported without torchvision and left no stand-in behind for other libraries to trip on
    import sys

    assert not any(k == "torchvision" or k.startswith("torchvision.") for k in sys.modules)


def test_upscaler_files_are_recognised_without_loading_weights(user_models: Path, tmp_path: Path) -> None:
    # what `zhike models add` can use to register .safetensors/.pth upscalers as kind "upscaler"
    for name, scale in (("tiny-x4.safetensors", 4), ("tiny-x4.pth", 4), ("tiny-x2.pth", 2)):
        shapes = state_dict_shapes(user_models / name)
        assert shapes["conv_first.weight"] == (8, 3, 3, 3)
        assert inspect_upscaler(shapes) == UpscalerInfo("ESRGAN", scale, ("8nf", "1nb"))
    assert inspect_upscaler({"foo.weight": (2, 2)}) is None
    assert inspect_upscaler({k: tuple(v.shape) for k, v in tiny_rrdb(1).items()}) is None  # x1: a restorer


class _Evil:
    def __reduce__(self) -> tuple:
        return (print, ("this must never run",))


def test_spandrel_refuses_code_in_pickles_and_unknown_layouts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as f:
        pickle.dump({"conv_first.weight": _Evil()}, f, protocol=2)
    for read in (load_spandrel_upscaler, state_dict_shapes):
        with pytest.raises(UpscalerError, match="not a plain state dict"):
            read(evil)
    assert "must never run" not in capsys.readouterr().out  # torch.load(weights_only=True) never called print
    save_file({"foo.weight": torch.zeros(2, 2)}, tmp_path / "other.safetensors")
    with pytest.raises(UpscalerError, match="not an architecture"):
        load_spandrel_upscaler(tmp_path / "other.safetensors")
    with pytest.raises(UpscalerError, match="expected a .safetensors or .pth"):
        load_spandrel_upscaler(tmp_path / "model.onnx")


def test_upscale_op_runs_a_registered_user_upscaler(app: Zhike, user_models: Path) -> None:
    # `zhike models add` classifies upscaler files from their layout, .pth (weights_only) and .safetensors alike.
    spec = app.catalog.add(str(user_models / "tiny-x4.safetensors"), name="tiny-x4")
    assert (spec.kind, spec.family, spec.variant) == ("upscaler", "esrgan", "x4")
    pth = app.catalog.add(str(user_models / "tiny-x2.pth"), name="tiny-x2")
    assert (pth.kind, pth.variant) == ("upscaler", "x2")
    src = upload(app, Image.fromarray(skdata.coffee()).resize((40, 30), LANCZOS))
    res = run_job(app, {"image": src, "scale": 2, "model": "tiny-x4", "tile": 64}).result
    assert res["model"] == "tiny-x4" and (res["images"][0]["width"], res["images"][0]["height"]) == (80, 60)
