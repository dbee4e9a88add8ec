"""Stable Diffusion family pipelines (SD 1.x, SDXL) through diffusers: load, generate, preview.

The only module that talks to diffusers pipelines. Operations call `generate()` with plain values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from zhike.backends.devices import dtype_for
from zhike.backends.library_logs import quiet_library_logs
from zhike.backends.loaders import LoadEnv, loader
from zhike.backends.pipeline_classes import PIPELINES
from zhike.backends.prompt_embeds import encode_prompts
from zhike.backends.schedulers import make_scheduler
from zhike.core.specs import ModelSpec

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
    base_nbytes: int
    load_seconds: float

    @property
    def nbytes(self) -> int:
        """Memory held: the weights plus the LoRA adapters loaded into them (the cache budget counts both)."""
        from zhike.backends.lora import lora_nbytes

        return self.base_nbytes + lora_nbytes(self.pipe)


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
        pipe=pipe, spec=spec, device=device, base_nbytes=module_nbytes(pipe), load_seconds=time.perf_counter() - t0
    )


@loader(family=("sd15", "sdxl"), kind="checkpoint", format=("diffusers", "single_file"))
def _load_checkpoint(spec: ModelSpec, env: LoadEnv) -> LoadedPipeline:
    return load_pipeline(spec, device=env.device, offload=env.cpu_offload, configs_root=env.configs_root)


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


@dataclass
class ControlInput:
    """One ControlNet applied to a generation: the loaded model, its map, weight and step window."""

    model: Any  # diffusers ControlNetModel (backends.controlnet.LoadedControlNet.model)
    image: Image.Image
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0


@dataclass
class DiffusionRequest:
    """Everything one Stable Diffusion run needs, in plain values (operations build it from their params)."""

    mode: str  # txt2img | img2img | inpaint
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance: float
    seed: int
    scheduler: str
    batch_size: int = 1
    clip_skip: int = 1
    init_image: Image.Image | None = None
    mask: Image.Image | None = None  # inpaint: white = repaint
    strength: float | None = None
    loras: list[tuple[str, Path, float]] = field(default_factory=list)  # (adapter name, file, weight)
    controls: list[ControlInput] = field(default_factory=list)
    on_step: StepCallback | None = None


def build_pipeline(loaded: LoadedPipeline, req: DiffusionRequest) -> DiffusionPipeline:
    """The mode's pipeline over the cached components: no weights are copied or reloaded."""
    base, family = loaded.pipe, loaded.spec.family
    scheduler = make_scheduler(req.scheduler, base.scheduler.config)
    if req.controls:
        from zhike.backends.controlnet import control_pipeline

        pipe = control_pipeline(base, family, req.mode, [c.model for c in req.controls], scheduler=scheduler)
    else:
        # dtype: without it from_pipe casts the shared (cached) modules to float32 in place.
        pipe = PIPELINES[(family, req.mode)].from_pipe(base, scheduler=scheduler, dtype=base.dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(loaded: LoadedPipeline, req: DiffusionRequest) -> Generation:
    """Run one request. Image i of a batch uses seed + i, so any one image can be re-made alone."""
    family = loaded.spec.family
    seeds = [req.seed + i for i in range(req.batch_size)]
    warnings: list[str] = []

    # 1. Nothing to denoise (img2img strength ~0): the input is the answer; diffusers would fail on 0 steps.
    if req.mode == "img2img" and req.init_image is not None and int(req.steps * (req.strength or 0.0)) < 1:
        kept = req.init_image.convert("RGB").resize((req.width, req.height), Image.LANCZOS)
        warnings.append(
            f"strength {req.strength} with {req.steps} steps leaves no denoising step: the input is returned"
        )
        return Generation(images=[kept.copy() for _ in seeds], seeds=seeds, warnings=warnings)

    pipe = build_pipeline(loaded, req)
    with ExitStack() as stack:
        if req.loras:
            from zhike.backends.lora import loras_applied

            stack.enter_context(loras_applied(loaded.pipe, req.loras))
        # 2. Prompt embeddings A1111-style (weights, BREAK, 75-token chunks: long prompts are not cut).
        enc = encode_prompts(pipe, family, req.prompt, req.negative_prompt, clip_skip=req.clip_skip)
        if enc.chunks > 1:
            warnings.append(
                f"the prompt is {enc.prompt_tokens} tokens; the text encoder reads 75 at a time, so it was encoded "
                f"in {enc.chunks} chunks (as A1111 does); nothing was cut"
            )

        # 3. Seeds: CPU generators make the same pixels on CPU and GPU machines.
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]

        def step_end(p: DiffusionPipeline, i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if req.on_step is not None:
                latents = kwargs["latents"]
                req.on_step(i + 1, p.num_timesteps, lambda: latents_preview(latents, family))
            return kwargs

        call: dict[str, Any] = {
            "prompt_embeds": enc.prompt_embeds,
            "negative_prompt_embeds": enc.negative_prompt_embeds,
            "num_inference_steps": req.steps,
            "guidance_scale": req.guidance,
            "num_images_per_prompt": req.batch_size,
            "generator": generators,
            "callback_on_step_end": step_end,
            "output_type": "pil",
            "width": req.width,
            "height": req.height,
        }
        if enc.pooled is not None:
            call |= {"pooled_prompt_embeds": enc.pooled, "negative_pooled_prompt_embeds": enc.negative_pooled}
        if req.mode in ("img2img", "inpaint"):
            assert req.init_image is not None and req.strength is not None
            call |= {
                "image": req.init_image.convert("RGB").resize((req.width, req.height), Image.LANCZOS),
                "strength": req.strength,
            }
            if req.mode == "img2img":
                del call["width"], call["height"]  # img2img takes its size from the image
        if req.mode == "inpaint":
            assert req.mask is not None
            call["mask_image"] = req.mask.convert("L").resize((req.width, req.height), Image.NEAREST)
        if req.controls:
            from zhike.backends.controlnet import control_call_kwargs

            call |= control_call_kwargs(
                [c.image for c in req.controls],
                [c.scale for c in req.controls],
                [c.start for c in req.controls],
                [c.end for c in req.controls],
                req.width,
                req.height,
                mode=req.mode,
            )
        if family == "sdxl" and req.mode != "txt2img":
            call |= {"target_size": (req.height, req.width), "original_size": (req.height, req.width)}
        with torch.inference_mode():
            out = pipe(**call)
    return Generation(images=list(out.images), seeds=seeds, warnings=warnings)
