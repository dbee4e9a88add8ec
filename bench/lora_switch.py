"""LoRA switch on a warm base pipeline vs a cold base load, measured in one run on the same model.

(a) cold load: `load_pipeline` of an SD1.5-architecture diffusers folder from disk. The model has random weights
    in the real SD1.5 layout (bundled sd_configs: UNet 860M + CLIP-L 123M + VAE 84M parameters, about 4.3 GB in
    fp32) or, with --model small, a scaled-down one. Its files are evicted from the OS page cache first
    (posix_fadvise DONTNEED, best effort), so the load reads the disk as after a restart.
(b) LoRA switches on that warm base with `zhike.backends.lora`: activate A (first load of A) -> deactivate ->
    activate B (first load of B), then the same switches again with both adapters cached. A is a kohya file in
    diffusers block naming, B one in LDM naming (both with text-encoder layers), rank --rank.
Prints the times and the ratio switch / cold load (target <= 0.1).

Usage: python bench/lora_switch.py [--model real|small] [--rank 32] [--device cpu|cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

from tests.helpers.tiny_lora import write_kohya_ldm_lora, write_kohya_lora  # noqa: E402
from zhike.backends.diffusion import load_pipeline  # noqa: E402
from zhike.backends.library_logs import quiet_library_logs  # noqa: E402
from zhike.backends.lora import activate_loras, deactivate_loras, lora_nbytes  # noqa: E402
from zhike.backends.sd_configs import family_config_dir  # noqa: E402
from zhike.core.specs import ModelSpec  # noqa: E402

# --model small: the SD1.5 block structure at a quarter of the widths (about 70M parameters).
_SMALL_UNET = {"block_out_channels": [80, 160, 320, 320], "attention_head_dim": 8, "norm_num_groups": 16}
_SMALL_TE = {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 12, "num_attention_heads": 8}


def build_model(dest: Path, configs: Path, small: bool) -> int:
    """Save a random-weight SD1.5 pipeline in diffusers layout; returns its parameter count."""
    torch.manual_seed(0)
    unet_cfg = UNet2DConditionModel.load_config(str(configs / "unet"))
    te_cfg = CLIPTextConfig.from_pretrained(str(configs / "text_encoder"))
    if small:
        unet_cfg |= _SMALL_UNET | {"cross_attention_dim": _SMALL_TE["hidden_size"]}
        for k, v in _SMALL_TE.items():
            setattr(te_cfg, k, v)
    with torch.no_grad():  # default init is fine: only load times are measured
        pipe = StableDiffusionPipeline(
            vae=AutoencoderKL.from_config(AutoencoderKL.load_config(str(configs / "vae"))),
            text_encoder=CLIPTextModel(te_cfg),
            tokenizer=CLIPTokenizer.from_pretrained(str(configs / "tokenizer")),
            unet=UNet2DConditionModel.from_config(unet_cfg),
            scheduler=PNDMScheduler.from_pretrained(str(configs / "scheduler")),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    n = sum(p.numel() for c in (pipe.unet, pipe.text_encoder, pipe.vae) for p in c.parameters())
    pipe.save_pretrained(dest, safe_serialization=True)
    return n


def drop_page_cache(*roots: Path) -> None:
    """Ask the kernel to forget these files' cached pages (clean pages only; no root needed)."""
    for root in roots:
        for f in [root] if root.is_file() else root.rglob("*"):
            if f.is_file():
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fsync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def measure_switches(pipe: object, a: list, b: list, repeats: int) -> dict:
    """activate A (first load), switch to B (first load), then switches between the two cached adapters."""
    first_a = timed(lambda: activate_loras(pipe, a))
    first_switch = timed(lambda: (deactivate_loras(pipe), activate_loras(pipe, b)))
    cached = [
        timed(lambda job=(a if i % 2 == 0 else b): (deactivate_loras(pipe), activate_loras(pipe, job)))
        for i in range(repeats)
    ]
    off = timed(lambda: deactivate_loras(pipe))
    return {"first_a": first_a, "first_switch": first_switch, "cached": cached, "off": off}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["real", "small"], default="real")
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    quiet_library_logs()
    work = Path(tempfile.mkdtemp(prefix="zhike-lora-bench-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the real-size model is 4.3 GB


def run(args: argparse.Namespace, work: Path) -> None:
    configs = family_config_dir("sd15", work / "configs")
    model_dir = work / "model"

    t = time.perf_counter()
    n_params = build_model(model_dir, configs, small=args.model == "small")
    gc.collect()
    size = sum(f.stat().st_size for f in model_dir.rglob("*.safetensors"))
    print(
        f"model: {'real-size' if args.model == 'real' else 'scaled-down'} SD1.5 architecture, random weights, "
        f"{n_params / 1e6:.0f}M parameters, {size / 1e9:.2f} GB on disk (built in {time.perf_counter() - t:.0f} s); "
        f"device {args.device}, torch threads {torch.get_num_threads()}"
    )
    lora_a = write_kohya_lora(model_dir, work / "a.safetensors", rank=args.rank, seed=1)
    lora_b = write_kohya_ldm_lora(model_dir, work / "b.safetensors", rank=args.rank, seed=2)
    print(
        f"LoRAs: rank {args.rank}, UNet attention + text encoder; A kohya {lora_a.stat().st_size / 1e6:.1f} MB, "
        f"B kohya-LDM {lora_b.stat().st_size / 1e6:.1f} MB"
    )

    # (a) cold base load
    drop_page_cache(model_dir, lora_a, lora_b)
    spec = ModelSpec(name="bench", path=model_dir, format="diffusers", kind="checkpoint", family="sd15")
    loaded = None

    def cold() -> None:
        nonlocal loaded
        loaded = load_pipeline(spec, device=args.device, offload=False, configs_root=work / "configs")

    cold_s = timed(cold)
    assert loaded is not None
    pipe, unet = loaded.pipe, loaded.pipe.unet

    # (b) switches on the warm base
    times = measure_switches(pipe, [("A", lora_a, 1.0)], [("B", lora_b, 0.8)], args.repeats)
    assert pipe.unet is unet  # the base was never reloaded
    adapters_mb = lora_nbytes(pipe) / 1e6

    # For reference: the same load again with the files in the page cache (a model evicted and reloaded).
    pipe = unet = loaded = None
    gc.collect()
    warm_s = timed(cold)

    first_a, first_switch, cached, off = times["first_a"], times["first_switch"], times["cached"], times["off"]
    med = statistics.median(cached)
    print(f"(a) cold base load (page cache dropped):   {cold_s * 1000:9.1f} ms")
    print(f"    base reload, files in page cache:      {warm_s * 1000:9.1f} ms")
    print(f"(b) activate A, first load of A:           {first_a * 1000:9.1f} ms")
    print(f"    switch A -> B, first load of B:        {first_switch * 1000:9.1f} ms")
    print(
        f"    switch, both cached (median of {args.repeats}):     {med * 1000:9.1f} ms  (min {min(cached) * 1000:.1f})"
    )
    print(f"    deactivate only:                       {off * 1000:9.1f} ms")
    print(f"    adapters held: {adapters_mb:.1f} MB")
    print(
        f"ratio switch / cold load: first-time {first_switch / cold_s:.4f}, cached {med / cold_s:.4f} (target <= 0.1)"
    )
    print(f"ratio switch / page-cache reload: first-time {first_switch / warm_s:.4f}, cached {med / warm_s:.4f}")


if __name__ == "__main__":
    main()
