"""How a loaded pipeline runs fast on the device it is on: torch.compile, memory layout, attention, VAE tiling.

- `compile = true` (settings) compiles the denoiser (UNet) in place with torch.compile on CUDA: the first run of
  each shape bucket (batch, height, width and what the mode feeds it) compiles, later ones reuse it; inductor's
  artefacts are cached on disk under `$ZHIKE_HOME/cache/torch`, so a restart re-traces but does not re-generate
  kernels. `compile_mode = "reduce-overhead"` adds CUDA graphs (launch overhead gone; each bucket keeps its graph's
  memory). A compile that fails falls back to eager for that model, with the reason logged: the job still runs.
  On the CPU compiling a full UNet takes minutes for little gain: `compile` is skipped there with a logged reason
  (another `compile_backend` than inductor, e.g. "aot_eager" for tests, is honoured everywhere).
- On CUDA the UNet and VAE use channels_last (convolutions on tensor cores without layout copies) and attention
  runs through PyTorch's SDPA (flash / memory-efficient kernels), diffusers' default processor with torch 2.
- The VAE decodes in tiles when the image is too big to decode at once on the device (`vae_plan`), and a batch
  one image at a time when the batch would not fit; otherwise whole, which is fastest.

torch is imported inside the functions: the loader registry (and so the API process) imports SpeedSettings.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("zhike.speed")


@dataclass(frozen=True)
class SpeedSettings:
    compile: bool = False
    compile_mode: str = "default"  # default | reduce-overhead (CUDA graphs) | max-autotune
    compile_backend: str = "inductor"
    cache_dir: Path | None = None  # where inductor keeps compiled kernels across restarts


@dataclass
class CompileState:
    """What compile did for one loaded model: shown in logs and the model list."""

    active: bool = False
    reason: str | None = None  # why it is not active (not asked, CPU, failed: the error)
    buckets: set[tuple[Any, ...]] = field(default_factory=set)


def set_cache_dir(cache_dir: Path | None) -> None:
    """Inductor's on-disk caches (FX graphs, kernels, autotuning) go to the data home, kept across restarts."""
    if cache_dir is None or os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir)
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")


def prepare(pipe: Any, device: str, settings: SpeedSettings) -> CompileState:
    """Layout and compile for a freshly loaded pipeline (in place: every pipeline built from it shares them)."""
    import torch

    if device == "cuda":
        for name in ("unet", "vae"):
            module = getattr(pipe, name, None)
            if isinstance(module, torch.nn.Module):
                module.to(memory_format=torch.channels_last)
    if not settings.compile:
        return CompileState(reason="compile is off (settings: compile = true turns it on)")
    if device != "cuda" and settings.compile_backend == "inductor":
        reason = "torch.compile runs on CUDA only: on the CPU compiling a UNet takes minutes for little gain"
        log.info("compile skipped: %s; running eager", reason)
        return CompileState(reason=reason)
    set_cache_dir(settings.cache_dir)
    import torch._dynamo

    # Every shape bucket is its own graph: allow many before dynamo gives up and runs eager.
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    try:
        options = {"mode": settings.compile_mode} if settings.compile_backend == "inductor" else {}
        pipe.unet.compile(backend=settings.compile_backend, fullgraph=False, dynamic=False, **options)
    except Exception as e:  # an old torch, an unknown backend: eager it is
        log.warning("compile not available (%s: %s); running eager", type(e).__name__, e)
        return CompileState(reason=f"{type(e).__name__}: {e}")
    return CompileState(active=True)


def is_compile_error(e: BaseException) -> bool:
    """An error raised by compiling (dynamo, inductor, a backend), not by the model itself."""
    module = type(e).__module__ or ""
    return module.startswith(("torch._dynamo", "torch._inductor")) or type(e).__name__ in (
        "BackendCompilerFailed",
        "InductorError",
    )


def fall_back_to_eager(pipe: Any, state: CompileState, error: BaseException) -> None:
    """Undo `compile` on this model after it failed: later jobs run eager, the reason is logged and kept."""
    pipe.unet._compiled_call_impl = None  # what nn.Module.compile set
    state.active = False
    state.reason = f"compile failed, running eager: {type(error).__name__}: {str(error)[:300]}"
    log.warning("%s", state.reason)


# -- the VAE --------------------------------------------------------------------------------------------------
# Peak memory of one VAE decode per megapixel of output, measured on diffusers' AutoencoderKL (fp16 on CUDA, fp32
# on the CPU doubles it); a safety factor of 1.5 is in the numbers.
VAE_BYTES_PER_MP = {"cuda": 3.0e9, "cpu": 6.0e9}


@dataclass(frozen=True)
class VaePlan:
    tiling: bool
    slicing: bool


def free_bytes(device: str) -> int:
    if device == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return int(free)
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 8 << 30
    return int(pages)


def vae_plan(width: int, height: int, batch: int, device: str, free: int) -> VaePlan:
    """Whole when it fits (fastest); one image at a time when only the batch does not fit; tiles when one image
    does not fit either (tiling blends overlapping tiles: the pixels differ slightly from a whole decode)."""
    per_image = VAE_BYTES_PER_MP.get(device, VAE_BYTES_PER_MP["cpu"]) * width * height / 1e6
    if per_image * batch <= free:
        return VaePlan(tiling=False, slicing=False)
    return VaePlan(tiling=per_image > free, slicing=batch > 1)


def apply_vae_plan(pipe: Any, plan: VaePlan) -> None:
    vae = pipe.vae
    vae.enable_tiling() if plan.tiling else vae.disable_tiling()
    vae.enable_slicing() if plan.slicing else vae.disable_slicing()
