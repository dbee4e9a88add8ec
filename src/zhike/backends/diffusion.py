"""Stable Diffusion family pipelines (SD 1.x, SDXL) through diffusers: load, generate, preview.

The only module that talks to diffusers pipelines. Operations call `generate()` with plain values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from zhike.backends.devices import dtype_for
from zhike.backends.pipeline_classes import PIPELINES
from zhike.backends.schedulers import make_scheduler
from zhike.models.specs import ModelSpec

# Linear latent -> RGB approximations for cheap step previews (as A1111's "Approx cheap" and ComfyUI).
_LATENT_RGB = {
    "sd15": (
        [
            [0.3512, 0.2297, 0.3227],
            [0.3250, 0.4974, 0.2350],
            [-0.2829, 0.1762, 0.2721],
            [-0.2120, -0.2616, -0.7177],
        ],
        [0.0, 0.0, 0.0],
    ),
    "sdxl": (
        [
            [0.3651, 0.4232, 0.4341],
            [-0.2533, -0.0042, 0.1068],
            [0.1076, 0.1111, -0.0362],
            [-0.3165, -0.2492, -0.2188],
        ],
        [0.1084, -0.0175, -0.0011],
    ),
}


class Interrupted(Exception):
    """Raised from the step callback to stop a pipeline (cancel, lost lease)."""


@dataclass
class LoadedPipeline:
    pipe: DiffusionPipeline
    spec: ModelSpec
    device: str
    nbytes: int
    load_seconds: float


@dataclass
class Generation:
    images: list[Image.Image]
    seeds: list[int]
    warnings: list[str] = field(default_factory=list)


def module_nbytes(pipe: DiffusionPipeline) -> int:
    total = 0
    for comp in pipe.components.values():
        if isinstance(comp, torch.nn.Module):
            total += sum(t.numel() * t.element_size() for t in comp.parameters())
            total += sum(t.numel() * t.element_size() for t in comp.buffers())
    return total


def quiet_library_logs() -> None:
    """diffusers/transformers log progress bars and casting notes that mean nothing to Zhike's users."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()


def load_pipeline(spec: ModelSpec, *, device: str, offload: bool, configs_root: Path) -> LoadedPipeline:
    """Load a registered checkpoint from disk (never from the network)."""
    t0 = time.perf_counter()
    quiet_library_logs()
    dtype = dtype_for(device)
    cls = PIPELINES[(spec.family, "txt2img")]
    if spec.format == "diffusers":
        kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
        if spec.family == "sd15":
            kwargs |= {"safety_checker": None, "requires_safety_checker": False}
        pipe = cls.from_pretrained(str(spec.path), **kwargs)
    else:
        from zhike.backends.sd_configs import family_config_dir
        from zhike.backends.single_file import load_single_file_pipeline

        config_dir = spec.config_dir or family_config_dir(spec.family, configs_root)
        pipe = load_single_file_pipeline(spec.path, spec.family, config_dir, dtype)
    pipe.set_progress_bar_config(disable=True)
    if device == "cuda" and offload:
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(device)
    return LoadedPipeline(
        pipe=pipe, spec=spec, device=device, nbytes=module_nbytes(pipe), load_seconds=time.perf_counter() - t0
    )


def prompt_overflow(tokenizer: Any, text: str, what: str) -> str | None:
    """A warning naming the words the text encoder will not see, or None if the prompt fits."""
    if not text or tokenizer is None:
        return None

    def n_tokens(t: str) -> int:
        return len(tokenizer(t, truncation=False, add_special_tokens=False).input_ids)

    limit = tokenizer.model_max_length - 2  # room for the start and end tokens
    total = n_tokens(text)
    if total <= limit:
        return None
    # Quote the user's own words (decoding tokens would respell them): find the first word that overflows.
    words = text.split()
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi) // 2
        if n_tokens(" ".join(words[: mid + 1])) > limit:
            hi = mid
        else:
            lo = mid + 1
    dropped = " ".join(words[lo:])
    return f"{what} is {total} tokens; the text encoder reads {limit}, so these words were ignored: {dropped!r}"


def latents_preview(latents: torch.Tensor, family: str) -> Image.Image:
    factors, bias = _LATENT_RGB.get(family, _LATENT_RGB["sd15"])
    lat = latents[0].detach().float().cpu()
    if lat.shape[0] != 4:
        lat = lat[:4]
    rgb = torch.einsum("chw,cr->hwr", lat, torch.tensor(factors)) + torch.tensor(bias)
    arr = ((rgb + 1) / 2).clamp(0, 1).mul(255).byte().numpy()
    img = Image.fromarray(arr, "RGB")
    return img.resize((img.width * 2, img.height * 2), Image.BILINEAR)


StepCallback = Callable[[int, int, Callable[[], Image.Image]], None]


def generate(
    loaded: LoadedPipeline,
    *,
    mode: str,
    prompt: str,
    negative_prompt: str,
    width: int,
    height: int,
    steps: int,
    guidance: float,
    seed: int,
    scheduler: str,
    batch_size: int,
    init_image: Image.Image | None = None,
    strength: float | None = None,
    on_step: StepCallback | None = None,
) -> Generation:
    """Run txt2img or img2img. Image i of a batch uses seed + i, so any one image can be re-made alone."""
    # 1. Build the mode's pipeline over the cached components (no weights are copied or reloaded).
    base = loaded.pipe
    family = loaded.spec.family
    cls = PIPELINES[(family, mode)]
    pipe = cls.from_pipe(base, scheduler=make_scheduler(scheduler, base.scheduler.config))
    pipe.set_progress_bar_config(disable=True)

    # 2. Report prompt overflow instead of cutting silently.
    warnings = [
        w
        for w in (
            prompt_overflow(getattr(pipe, "tokenizer", None), prompt, "the prompt"),
            prompt_overflow(getattr(pipe, "tokenizer", None), negative_prompt, "the negative prompt"),
        )
        if w
    ]

    # 3. Seeds: CPU generators make the same pixels on CPU and GPU machines.
    seeds = [seed + i for i in range(batch_size)]
    if mode == "img2img" and init_image is not None and int(steps * (strength or 0.0)) < 1:
        # diffusers would run zero timesteps and fail; with no step to take, the input is the answer.
        kept = init_image.convert("RGB").resize((width, height), Image.LANCZOS)
        warnings.append(f"strength {strength} with {steps} steps leaves no denoising step: the input is returned")
        return Generation(images=[kept.copy() for _ in seeds], seeds=seeds, warnings=warnings)
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]

    def step_end(p: DiffusionPipeline, i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if on_step is not None:
            latents = kwargs["latents"]
            on_step(i + 1, p.num_timesteps, lambda: latents_preview(latents, family))
        return kwargs

    call: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": negative_prompt or None,
        "num_inference_steps": steps,
        "guidance_scale": guidance,
        "num_images_per_prompt": batch_size,
        "generator": generators,
        "callback_on_step_end": step_end,
        "output_type": "pil",
    }
    if mode == "txt2img":
        call |= {"width": width, "height": height}
    else:
        assert init_image is not None and strength is not None
        call |= {
            "image": init_image.convert("RGB").resize((width, height), Image.LANCZOS),
            "strength": strength,
        }
        if family == "sdxl":
            call |= {"target_size": (height, width), "original_size": (height, width)}
    with torch.inference_mode():
        out = pipe(**call)
    return Generation(images=list(out.images), seeds=seeds, warnings=warnings)
