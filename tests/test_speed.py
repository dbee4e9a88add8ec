"""Speed settings that only change how fast, never what: torch.compile (and its fallback), diffusers' own SDXL
watermark kept off, no wasted text-encoder pass, the VAE plan, the start-up warm-up. Tiny models on the CPU."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from tests.conftest import make_settings
from tests.test_generate import BASE, first, pixels, run
from zhike.backends import speed
from zhike.backends.diffusion import load_pipeline
from zhike.backends.prompt_embeds import encode_prompts
from zhike.core.specs import ModelSpec
from zhike.services.container import Zhike
from zhike.services.warmup import warm_up


def zhike_with(tmp_path: Path, tiny_sd15: Path, **settings: Any) -> Zhike:
    z = Zhike(make_settings(tmp_path / "home", **settings))
    z.catalog.add(str(tiny_sd15), name="tiny")
    return z


def loaded_state(z: Zhike) -> speed.CompileState:
    with z.models.use_named("tiny", kind="checkpoint") as loaded:
        return loaded.compiled


@pytest.fixture(scope="module")
def eager_pixels(tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path) -> np.ndarray:
    z = zhike_with(tmp_path_factory.mktemp("eager"), tiny_sd15)
    return pixels(z, first(run(z, "txt2img", BASE)))


def test_compile_on_the_cpu_runs_eager_and_says_why(
    tmp_path: Path, tiny_sd15: Path, eager_pixels: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    z = zhike_with(tmp_path, tiny_sd15, compile=True)
    with caplog.at_level(logging.INFO, logger="zhike.speed"):
        got = pixels(z, first(run(z, "txt2img", BASE)))
    state = loaded_state(z)
    assert not state.active and "CUDA only" in (state.reason or "")
    assert any("compile skipped" in r.message for r in caplog.records)
    assert np.array_equal(got, eager_pixels)


def test_compiled_unet_gives_the_eager_pixels(tmp_path: Path, tiny_sd15: Path, eager_pixels: np.ndarray) -> None:
    """The compile path for real (dynamo traces the UNet per bucket; the "eager" backend runs the captured graphs
    as they are, a third faster here than aot_eager's extra AOTAutograd pass; inductor is CUDA-only): same picture."""
    z = zhike_with(tmp_path, tiny_sd15, compile=True, compile_backend="eager")
    got = pixels(z, first(run(z, "txt2img", BASE)))
    again = pixels(z, first(run(z, "txt2img", {**BASE, "width": 96})))  # another bucket compiles too
    state = loaded_state(z)
    assert state.active and state.reason is None
    assert {(m, b, h, w) for m, b, h, w, _ in state.buckets} == {("txt2img", 1, 64, 64), ("txt2img", 1, 64, 96)}
    assert np.abs(got - eager_pixels).max() <= 1 and again.shape == (64, 96, 3)


def test_a_compile_that_fails_falls_back_to_eager(
    tmp_path: Path, tiny_sd15: Path, eager_pixels: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    from torch._dynamo import register_backend

    @register_backend(name="zhike_test_broken")
    def broken(gm: Any, example_inputs: Any) -> Any:
        raise RuntimeError("no compiler here")

    z = zhike_with(tmp_path, tiny_sd15, compile=True, compile_backend="zhike_test_broken")
    with caplog.at_level(logging.WARNING, logger="zhike.speed"):
        row = run(z, "txt2img", BASE)
    state = loaded_state(z)
    assert not state.active and "compile failed, running eager" in (state.reason or "")
    assert "no compiler here" in state.reason and any("running eager" in r.message for r in caplog.records)
    assert np.array_equal(pixels(z, first(row)), eager_pixels)
    assert np.array_equal(pixels(z, first(run(z, "txt2img", BASE))), eager_pixels), "later jobs run eager"


def test_sdxl_never_gets_diffusers_own_watermark(tiny_sdxl: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zhike marks exports itself; diffusers would add a second mark whenever invisible-watermark is installed."""
    import diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl as txt2img
    import diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img as img2img
    import diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_inpaint as inpaint

    made: list[str] = []

    class Marker:
        def __init__(self) -> None:
            made.append("watermarker")

    for module in (txt2img, img2img, inpaint):
        monkeypatch.setattr(module, "is_invisible_watermark_available", lambda: True)
        monkeypatch.setattr(module, "StableDiffusionXLWatermarker", Marker, raising=False)
    assert StableDiffusionXLPipeline.from_pretrained(tiny_sdxl).watermark is not None  # diffusers' default: on
    made.clear()
    spec = ModelSpec(name="xl", path=tiny_sdxl, format="diffusers", kind="checkpoint", family="sdxl")
    loaded = load_pipeline(spec, device="cpu", offload=False, configs_root=tiny_sdxl.parent)
    from zhike.backends.diffusion import DiffusionRequest, build_pipeline

    for mode in ("txt2img", "img2img", "inpaint"):
        req = DiffusionRequest(mode, "x", "", 64, 64, 2, 5.0, 1, "Euler a")
        assert build_pipeline(loaded, req).watermark is None
    assert loaded.pipe.watermark is None and made == []


def test_no_text_encoder_pass_is_wasted(tiny_sd15: Path, tiny_sdxl: Path) -> None:
    from diffusers import StableDiffusionPipeline

    sd15 = StableDiffusionPipeline.from_pretrained(tiny_sd15, safety_checker=None, requires_safety_checker=False)
    sdxl = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    passes: list[str] = []
    for pipe in (sd15, sdxl):
        for name in ("text_encoder", "text_encoder_2"):
            enc = getattr(pipe, name, None)
            if enc is not None:
                enc.register_forward_hook(lambda *_a, n=name: passes.append(n))
    # Without guidance (CFG <= 1) diffusers never reads the negative: it is not encoded.
    unguided = encode_prompts(sd15, "sd15", "a red apple", "blurry", guided=False)
    assert unguided.negative_prompt_embeds is None and passes == ["text_encoder"]
    passes.clear()
    # SDXL's empty negative is zeros: each of its encoders runs once, for the prompt.
    xl = encode_prompts(sdxl, "sdxl", "a red apple", "")
    assert sorted(passes) == ["text_encoder", "text_encoder_2"]
    assert torch.count_nonzero(xl.negative_prompt_embeds) == 0 and torch.count_nonzero(xl.negative_pooled) == 0
    passes.clear()
    encode_prompts(sdxl, "sdxl", "a red apple", "blurry")
    assert sorted(passes) == ["text_encoder", "text_encoder", "text_encoder_2", "text_encoder_2"]


def test_guidance_one_gives_a_picture_without_a_negative(zhike: Zhike) -> None:
    a = pixels(zhike, first(run(zhike, "txt2img", {**BASE, "guidance": 1.0, "negative_prompt": "blurry"})))
    b = pixels(zhike, first(run(zhike, "txt2img", {**BASE, "guidance": 1.0, "negative_prompt": "sharp"})))
    assert np.array_equal(a, b), "without guidance the negative prompt cannot matter"


def test_vae_plan_by_size_and_memory() -> None:
    gib = 1 << 30
    assert speed.vae_plan(1024, 1024, 4, "cuda", 80 * gib) == speed.VaePlan(tiling=False, slicing=False)
    assert speed.vae_plan(1024, 1024, 4, "cuda", 6 * gib) == speed.VaePlan(tiling=False, slicing=True)
    assert speed.vae_plan(4096, 4096, 1, "cuda", 6 * gib) == speed.VaePlan(tiling=True, slicing=False)
    assert speed.vae_plan(512, 512, 1, "cpu", 2 * gib) == speed.VaePlan(tiling=False, slicing=False)


def test_a_tiled_decode_still_gives_the_picture(zhike: Zhike, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = pixels(zhike, first(run(zhike, "txt2img", {**BASE, "width": 128, "height": 128})))
    monkeypatch.setattr(speed, "VAE_BYTES_PER_MP", {"cpu": 1e15, "cuda": 1e15})  # nothing fits: tiles
    from zhike.backends import diffusion

    seen: list[speed.VaePlan] = []
    real = diffusion.apply_vae_plan
    monkeypatch.setattr(diffusion, "apply_vae_plan", lambda pipe, plan: seen.append(plan) or real(pipe, plan))
    tiled = pixels(zhike, first(run(zhike, "txt2img", {**BASE, "width": 128, "height": 128, "seed": 42})))
    assert seen == [speed.VaePlan(tiling=True, slicing=False)]
    assert tiled.shape == whole.shape and np.abs(tiled - whole).mean() < 20


def test_warm_up_loads_the_default_model_before_the_first_job(tmp_path: Path, tiny_sd15: Path) -> None:
    off = zhike_with(tmp_path / "off", tiny_sd15)
    assert warm_up(off) is None and off.models.cached_names() == []  # auto on the CPU: nothing
    z = zhike_with(tmp_path / "on", tiny_sd15, warmup="on")
    seconds = warm_up(z)
    assert seconds is not None and seconds > 0 and z.models.cached_names() == ["tiny"]
    row = run(z, "txt2img", BASE)
    assert row.timings["load"] < 0.5, "the first job found the model loaded"
