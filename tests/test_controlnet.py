"""ControlNet: detection, loading from folders and A1111 single files, and what it does to the pixels.

Tiny random ControlNets made from the tiny SD models' UNets (every tensor non-zero, so they visibly steer);
64x64, 2-3 steps, CPU generators. Exactness checks use the same base pipeline, seed and scheduler.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file

from tests.helpers.tiny_controlnet import build_tiny_controlnet, controlnet_config_dir, write_controlnet_single_file
from zhike.backends.checkpoint_inspect import inspect_checkpoint
from zhike.backends.controlnet import (
    ControlNetError,
    LoadedControlNet,
    bundled_config_dir,
    control_call_kwargs,
    control_pipeline,
    load_controlnet,
)
from zhike.backends.diffusion import LoadedPipeline, load_pipeline
from zhike.backends.pipeline_classes import PIPELINES
from zhike.backends.schedulers import make_scheduler
from zhike.core.errors import InvalidInput, ModelError
from zhike.core.specs import ModelSpec

SIZE = 64
SCHEDULER = "Euler a"  # ancestral: draws noise every step, so the generators must line up too


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cn_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("controlnets")


def _files(cn_dir: Path, root: Path, name: str) -> dict[str, Path]:
    """The same ControlNet in every layout users bring."""
    diffusers_named = root / f"{name}-diffusers-named.safetensors"  # e.g. Civitai's diffusers_xl_*.safetensors
    shutil.copy(cn_dir / "diffusion_pytorch_model.safetensors", diffusers_named)
    return {
        "folder": cn_dir,
        "a1111": write_controlnet_single_file(cn_dir, root / f"{name}.safetensors"),
        "no_prefix": write_controlnet_single_file(cn_dir, root / f"{name}-noprefix.safetensors", prefix=""),
        "diffusers_named": diffusers_named,
    }


@pytest.fixture(scope="module")
def cn15(tiny_sd15: Path, cn_root: Path) -> dict[str, Path]:
    files = _files(build_tiny_controlnet(tiny_sd15, cn_root / "cn15"), cn_root, "cn15")
    return files | {"config": controlnet_config_dir(files["folder"], cn_root / "cn15-config")}


@pytest.fixture(scope="module")
def cn15_other(tiny_sd15: Path, cn_root: Path) -> Path:
    return build_tiny_controlnet(tiny_sd15, cn_root / "cn15-other", seed=1)


@pytest.fixture(scope="module")
def cnxl(tiny_sdxl: Path, cn_root: Path) -> dict[str, Path]:
    files = _files(build_tiny_controlnet(tiny_sdxl, cn_root / "cnxl"), cn_root, "cnxl")
    return files | {"config": controlnet_config_dir(files["folder"], cn_root / "cnxl-config")}


def spec_for(path: Path, family: str, config_dir: Path | None = None) -> ModelSpec:
    fmt = "diffusers" if path.is_dir() else "single_file"
    return ModelSpec(name=path.stem, path=path, format=fmt, kind="controlnet", family=family, config_dir=config_dir)


def load(path: Path, family: str, config_dir: Path | None = None) -> LoadedControlNet:
    return load_controlnet(spec_for(path, family, config_dir), device="cpu", dtype=torch.float32)


def load_base(path: Path, family: str, cn_root: Path) -> LoadedPipeline:
    spec = ModelSpec(name=family, path=path, format="diffusers", kind="checkpoint", family=family)
    return load_pipeline(spec, device="cpu", offload=False, configs_root=cn_root / "configs")


@pytest.fixture(scope="module")
def base15(tiny_sd15: Path, cn_root: Path) -> LoadedPipeline:
    return load_base(tiny_sd15, "sd15", cn_root)


@pytest.fixture(scope="module")
def basexl(tiny_sdxl: Path, cn_root: Path) -> LoadedPipeline:
    return load_base(tiny_sdxl, "sdxl", cn_root)


@pytest.fixture(scope="module")
def net15(cn15: dict[str, Path]) -> LoadedControlNet:
    return load(cn15["folder"], "sd15")


# --------------------------------------------------------------------------- helpers


def edges(kind: str) -> Image.Image:
    """A canny-like control map: white strokes on black."""
    img = Image.new("RGB", (SIZE, SIZE), "black")
    draw = ImageDraw.Draw(img)
    if kind == "box":
        draw.rectangle((12, 12, 52, 52), outline="white", width=3)
    else:
        draw.line((0, 0, SIZE, SIZE), fill="white", width=3)
        draw.ellipse((20, 8, 44, 32), outline="white", width=2)
    return img


def init_image() -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))


def run(pipe: Any, family: str, mode: str, steps: int = 2, seed: int = 1, **kwargs: Any) -> np.ndarray:
    call: dict[str, Any] = {
        "prompt": "a house by the sea",
        "negative_prompt": "blurry",
        "num_inference_steps": steps,
        "guidance_scale": 5.0,
        "generator": [torch.Generator("cpu").manual_seed(seed)],
        "output_type": "np",
    }
    if mode == "txt2img":
        call |= {"width": SIZE, "height": SIZE}
    else:
        call |= {"image": init_image(), "strength": 0.75}
        if family == "sdxl":
            call |= {"target_size": (SIZE, SIZE), "original_size": (SIZE, SIZE)}
    if mode == "inpaint":
        mask = Image.new("L", (SIZE, SIZE), 0)
        ImageDraw.Draw(mask).rectangle((16, 16, 48, 48), fill=255)
        call |= {"mask_image": mask, "height": SIZE, "width": SIZE}
    with torch.inference_mode():
        return pipe(**call, **kwargs).images


def plain(base: LoadedPipeline, mode: str = "txt2img", **kw: Any) -> np.ndarray:
    """What Zhike's plain generation does: the mode's pipeline over the cached base, fresh scheduler."""
    pipe = PIPELINES[(base.spec.family, mode)].from_pipe(
        base.pipe, scheduler=make_scheduler(SCHEDULER, base.pipe.scheduler.config)
    )
    pipe.set_progress_bar_config(disable=True)
    return run(pipe, base.spec.family, mode, **kw)


def controlled(
    base: LoadedPipeline,
    nets: list[LoadedControlNet],
    images: list[Image.Image],
    scales: list[float],
    mode: str = "txt2img",
    starts: list[float] | None = None,
    ends: list[float] | None = None,
    **kw: Any,
) -> np.ndarray:
    family = base.spec.family
    scheduler = make_scheduler(SCHEDULER, base.pipe.scheduler.config)
    pipe = control_pipeline(base.pipe, family, mode, nets, scheduler=scheduler)
    n = len(nets)
    control = control_call_kwargs(images, scales, starts or [0.0] * n, ends or [1.0] * n, SIZE, SIZE, mode=mode)
    return run(pipe, family, mode, **control, **kw)


def assert_differs(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert np.abs(a - b).mean() > 1e-3, "the ControlNet setting made no visible difference"


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("layout", ["folder", "a1111", "diffusers_named"])
def test_inspect_tiny_controlnets(cn15: dict[str, Path], cnxl: dict[str, Path], layout: str) -> None:
    info15, infoxl = inspect_checkpoint(cn15[layout]), inspect_checkpoint(cnxl[layout])
    assert (info15.kind, infoxl.kind) == ("controlnet", "controlnet")
    # The tiny SD1.5 ControlNet's cross-attention width (32) says nothing about its family; real ones
    # (768) do, see test_inspect_real_widths. The loader treats "unknown" as "not SDXL".
    assert info15.family in ("sd15", "unknown")
    assert infoxl.family == "sdxl"


def test_inspect_prefixless_a1111_file(cn15: dict[str, Path], cnxl: dict[str, Path]) -> None:
    assert inspect_checkpoint(cn15["no_prefix"]).kind == "controlnet"
    assert inspect_checkpoint(cnxl["no_prefix"]).family == "sdxl"


def test_inspect_real_widths(tmp_path: Path) -> None:
    """Families of full-size ControlNets from their headers/configs alone (no real weights needed)."""
    for family in ("sd15", "sdxl"):
        folder = tmp_path / f"{family}-folder"
        folder.mkdir()
        shutil.copy(bundled_config_dir(family) / "config.json", folder / "config.json")
        info = inspect_checkpoint(folder)
        assert (info.kind, info.family) == ("controlnet", family)
    to_k = "control_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
    sd15 = tmp_path / "control_v11p_sd15_canny.safetensors"
    save_file({to_k: torch.zeros(640, 768, dtype=torch.float16)}, str(sd15))
    sdxl = tmp_path / "controlnet_sdxl.safetensors"
    save_file(
        {to_k: torch.zeros(640, 2048, dtype=torch.float16), "control_model.label_emb.0.0.weight": torch.zeros(4, 4)},
        str(sdxl),
    )
    assert (inspect_checkpoint(sd15).kind, inspect_checkpoint(sd15).family) == ("controlnet", "sd15")
    assert (inspect_checkpoint(sdxl).kind, inspect_checkpoint(sdxl).family) == ("controlnet", "sdxl")


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize(
    ("family", "layout"),
    [
        ("sd15", "a1111"),
        ("sd15", "no_prefix"),
        ("sd15", "diffusers_named"),
        ("sdxl", "a1111"),
        ("sdxl", "no_prefix"),
        ("sdxl", "diffusers_named"),
    ],
)
def test_single_file_loads_the_folder_weights(
    cn15: dict[str, Path], cnxl: dict[str, Path], family: str, layout: str
) -> None:
    files = cn15 if family == "sd15" else cnxl
    folder = load(files["folder"], family).model.state_dict()
    single = load(files[layout], family, files["config"]).model.state_dict()
    assert sorted(single) == sorted(folder)
    mismatched = [k for k in folder if not torch.equal(folder[k], single[k])]
    assert not mismatched, mismatched[:5]
    assert all(t.any() for t in folder.values()), "the tiny ControlNet must have no all-zero tensor"


def test_single_file_same_pixels(base15: LoadedPipeline, net15: LoadedControlNet, cn15: dict[str, Path]) -> None:
    single = load(cn15["a1111"], "sd15", cn15["config"])
    assert single.nbytes == net15.nbytes > 0
    want, got = net15.model.state_dict(), single.model.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want), "the same weights"
    a = controlled(base15, [net15], [edges("box")], [1.0])
    b = controlled(base15, [single], [edges("box")], [1.0])
    # Equal weights, equal pictures up to float rounding (another memory placement can pick another CPU kernel).
    assert np.abs(a.astype(np.float64) - b.astype(np.float64)).max() <= 1e-3 * max(1.0, float(np.abs(a).max()))


# --------------------------------------------------------------------------- what it does


def test_scale_zero_is_plain_txt2img_and_scale_one_steers(base15: LoadedPipeline, net15: LoadedControlNet) -> None:
    reference = plain(base15)
    assert np.array_equal(controlled(base15, [net15], [edges("box")], [0.0]), reference)
    box = controlled(base15, [net15], [edges("box")], [1.0])
    assert_differs(box, reference)
    assert_differs(controlled(base15, [net15], [edges("lines")], [1.0]), box)


def test_control_window(base15: LoadedPipeline, net15: LoadedControlNet) -> None:
    full = controlled(base15, [net15], [edges("box")], [1.0], steps=3)
    late = controlled(base15, [net15], [edges("box")], [1.0], starts=[0.5], ends=[1.0], steps=3)
    assert_differs(late, full)
    # Only the last of 3 steps is steered (small noise level, small change), but it is steered.
    assert not np.array_equal(late, plain(base15, steps=3))


def test_two_controlnets_each_weight_matters(base15: LoadedPipeline, net15: LoadedControlNet, cn15_other: Path) -> None:
    other = load(cn15_other, "sd15")
    images = [edges("box"), edges("lines")]
    both = controlled(base15, [net15, other], images, [1.0, 1.0])
    first_only = controlled(base15, [net15, other], images, [1.0, 0.0])
    second_only = controlled(base15, [net15, other], images, [0.0, 1.0])
    assert_differs(both, first_only)
    assert_differs(both, second_only)
    # A weight of 0 removes exactly that ControlNet: each weight reaches its own net, in order.
    assert np.array_equal(first_only, controlled(base15, [net15], images[:1], [1.0]))
    assert np.array_equal(second_only, controlled(base15, [other], images[1:], [1.0]))


@pytest.mark.parametrize("mode", ["img2img", "inpaint"])
def test_img2img_and_inpaint(base15: LoadedPipeline, net15: LoadedControlNet, mode: str) -> None:
    off = controlled(base15, [net15], [edges("box")], [0.0], mode=mode, steps=3)
    on = controlled(base15, [net15], [edges("box")], [1.0], mode=mode, steps=3)
    assert on.shape == (1, SIZE, SIZE, 3) and np.isfinite(on).all()
    assert_differs(on, off)
    assert np.array_equal(off, plain(base15, mode, steps=3))  # weight 0 is exactly the plain mode


@pytest.mark.parametrize("mode", ["txt2img", "img2img"])
def test_sdxl_controlnet(basexl: LoadedPipeline, cnxl: dict[str, Path], mode: str) -> None:
    net = load(cnxl["a1111"], "sdxl", cnxl["config"])
    off = controlled(basexl, [net], [edges("box")], [0.0], mode=mode)
    on = controlled(basexl, [net], [edges("box")], [1.0], mode=mode)
    assert np.array_equal(off, plain(basexl, mode))
    assert_differs(on, off)


def test_no_reload_of_the_base(base15: LoadedPipeline, net15: LoadedControlNet) -> None:
    unet, vae, weight = base15.pipe.unet, base15.pipe.vae, base15.pipe.unet.conv_in.weight
    pipes: list[Any] = [control_pipeline(base15.pipe, "sd15", m, [net15]) for m in ("txt2img", "img2img", "inpaint")]
    controlled(base15, [net15], [edges("box")], [1.0])
    for pipe in pipes:
        assert pipe.unet is unet and pipe.vae is vae and pipe.controlnet is net15.model
    assert base15.pipe.unet is unet and base15.pipe.unet.conv_in.weight is weight
    assert weight.dtype == torch.float32


# --------------------------------------------------------------------------- errors and inputs


def _error(fn: Callable[[], object]) -> str:
    with pytest.raises(ControlNetError) as exc:
        fn()
    assert isinstance(exc.value, ModelError)
    return str(exc.value)


def test_wrong_family_is_named(cn15: dict[str, Path], cnxl: dict[str, Path]) -> None:
    msg = _error(lambda: load(cn15["folder"], "sdxl"))
    assert "cn15" in msg and "not sdxl" in msg
    msg = _error(lambda: load(cnxl["a1111"], "sd15", cnxl["config"]))
    assert "cnxl.safetensors" in msg and "sdxl" in msg and "not sd15" in msg
    assert "not supported" in _error(lambda: load(cn15["folder"], "flux"))


def test_not_a_controlnet(tiny_sd15: Path, tiny_sd15_single: tuple[Path, Path]) -> None:
    single, _config = tiny_sd15_single
    assert f"{single.name} is a checkpoint, not a ControlNet" in _error(lambda: load(single, "sd15"))
    assert "is a checkpoint, not a ControlNet" in _error(lambda: load(tiny_sd15, "sd15"))


def test_unreadable_file(tmp_path: Path) -> None:
    broken = tmp_path / "control_broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert "control_broken.safetensors" in _error(lambda: load(broken, "sd15"))


def test_non_standard_file_without_config_asks_for_one(cn15: dict[str, Path]) -> None:
    # The tiny file does not fit the bundled (full-size control_v11p_sd15) config.
    msg = _error(lambda: load(cn15["a1111"], "sd15"))
    assert "cn15.safetensors" in msg and "in the config" in msg and "config folder" in msg


def test_incomplete_file(cn15: dict[str, Path], tmp_path: Path) -> None:
    state = load_file(str(cn15["a1111"]))
    del state["control_model.zero_convs.3.0.weight"]
    cut = tmp_path / "control_cut.safetensors"
    save_file(state, str(cut))
    msg = _error(lambda: load(cut, "sd15", cn15["config"]))
    assert "control_cut.safetensors" in msg and "lacks weights" in msg


def test_call_kwargs_per_pipeline_type() -> None:
    small = Image.new("L", (32, 48))
    one = control_call_kwargs([small], [1], [0], [1], SIZE, SIZE, mode="txt2img")
    assert set(one) == {"image", "controlnet_conditioning_scale", "control_guidance_start", "control_guidance_end"}
    assert one["image"].size == (SIZE, SIZE) and one["image"].mode == "RGB"
    assert isinstance(one["controlnet_conditioning_scale"], float)  # diffusers rejects an int for one net
    two = control_call_kwargs([small, small], [0.5, 1.0], [0.0, 0.2], [1.0, 0.8], 96, 64, mode="inpaint")
    assert "image" not in two and [i.size for i in two["control_image"]] == [(96, 64)] * 2
    assert two["controlnet_conditioning_scale"] == [0.5, 1.0] and two["control_guidance_end"] == [1.0, 0.8]
    with pytest.raises(InvalidInput):
        control_call_kwargs([small], [1.0, 1.0], [0.0], [1.0], SIZE, SIZE, mode="txt2img")
    with pytest.raises(InvalidInput):
        control_call_kwargs([small], [1.0], [0.6], [0.4], SIZE, SIZE, mode="txt2img")
