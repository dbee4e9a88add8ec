"""Stable Diffusion family pipelines (SD 1.x, SDXL) through diffusers: load, generate, preview.

The only module that talks to diffusers pipelines. Operations call `generate()` with plain values.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
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
from zhike.backends.prompt_embeds import Encoded, encode_prompts
from zhike.backends.schedulers import make_scheduler
from zhike.backends.speed import (
    CompileState,
    SpeedSettings,
    apply_vae_plan,
    fall_back_to_eager,
    free_bytes,
    is_compile_error,
    vae_plan,
)
from zhike.backends.speed import prepare as prepare_for_speed
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
    compiled: CompileState = field(default_factory=CompileState)
    # One generation at a time per model: the start-up warm-up and the worker must not compile or run it together.
    run_lock: threading.Lock = field(default_factory=threading.Lock)
    # The mode pipelines (txt2img, img2img, inpaint) built over these modules (from_pipe walks every parameter: tens
    # of ms a job): kept, and given a fresh scheduler per job.
    pipelines: OrderedDict[tuple[Any, ...], DiffusionPipeline] = field(default_factory=OrderedDict)
    # Recent prompt embeddings (the same prompt with another seed, a batch design's shared prompt): encoded once.
    prompts: OrderedDict[tuple[Any, ...], Encoded] = field(default_factory=OrderedDict)

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
    # Seconds: encode_prompt, denoise (the sampling loop), decode (VAE and conversion to images).
    timings: dict[str, float] = field(default_factory=dict)


def module_nbytes(pipe: DiffusionPipeline) -> int:
    total = 0
    for comp in pipe.components.values():
        if isinstance(comp, torch.nn.Module):
            total += sum(t.numel() * t.element_size() for t in comp.parameters())
            total += sum(t.numel() * t.element_size() for t in comp.buffers())
    return total


def load_pipeline(
    spec: ModelSpec, *, device: str, offload: bool, configs_root: Path, speed: SpeedSettings | None = None
) -> LoadedPipeline:
    """Load a registered checkpoint from disk (never from the network)."""
    t0 = time.perf_counter()
    quiet_library_logs()
    dtype = dtype_for(device)
    cls = PIPELINES[(spec.family, "txt2img")]
    # Zhike labels every export with its own invisible watermark: diffusers' SDXL one would be a second mark (and
    # turns itself on whenever invisible-watermark happens to be installed).
    no_mark: dict[str, Any] = {"add_watermarker": False} if spec.family == "sdxl" else {}
    if spec.format == "diffusers":
        kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True, **no_mark}
        if spec.family == "sd15":
            kwargs |= {"safety_checker": None, "requires_safety_checker": False}
        pipe = cls.from_pretrained(str(spec.path), **kwargs)
    else:
        from zhike.backends.sd_configs import family_config_dir
        from zhike.backends.single_file import load_single_file_pipeline

        config_dir = spec.config_dir or family_config_dir(spec.family, configs_root)
        pipe = load_single_file_pipeline(spec.path, spec.family, config_dir, dtype, extra=no_mark)
    pipe.set_progress_bar_config(disable=True)
    if device == "cuda" and offload:
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(device)
    compiled = prepare_for_speed(pipe, device, speed or SpeedSettings())
    return LoadedPipeline(
        pipe=pipe,
        spec=spec,
        device=device,
        base_nbytes=module_nbytes(pipe),
        load_seconds=time.perf_counter() - t0,
        compiled=compiled,
    )


@loader(family=("sd15", "sdxl"), kind="checkpoint", format=("diffusers", "single_file"))
def _load_checkpoint(spec: ModelSpec, env: LoadEnv) -> LoadedPipeline:
    return load_pipeline(
        spec, device=env.device, offload=env.cpu_offload, configs_root=env.configs_root, speed=env.speed
    )


def start_preview(latents: torch.Tensor, family: str) -> Callable[[], Image.Image]:
    """Start a step preview without waiting for the device: the linear latent->RGB projection is queued on the
    latents' device and copied to pinned memory asynchronously; the returned function (called on the progress
    writer's thread) waits for that copy alone and makes the image, at twice the latent size."""
    factors, bias = _LATENT_RGB.get(family, _LATENT_RGB["sd15"])
    with torch.no_grad():
        lat = latents[0, :4].detach()
        weights = torch.tensor(factors, device=lat.device, dtype=torch.float32)
        rgb = torch.einsum("chw,cr->hwr", lat.float(), weights) + torch.tensor(bias, device=lat.device)
        rgb = ((rgb + 1) / 2).clamp(0, 1).mul(255).to(torch.uint8)
        if rgb.is_cuda:
            host = torch.empty(rgb.shape, dtype=torch.uint8, pin_memory=True)
            host.copy_(rgb, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record()
        else:
            host, copied = rgb, None

    def finish() -> Image.Image:
        if copied is not None:
            copied.synchronize()  # waits for this copy only, on this (writer) thread
        img = Image.fromarray(host.numpy(), "RGB")
        return img.resize((img.width * 2, img.height * 2), Image.BILINEAR)

    return finish


# (step, total, preview start): the op's progress hook (core.context.PreviewStart for the last argument)
StepCallback = Callable[[int, int, Callable[[], Callable[[], Image.Image]]], None]


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

    mode: str  # txt2img | img2img | inpaint | relight
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
    # mode "relight" (backends/relight.py): the loaded IC-Light UNet, the foreground on grey, the background (fbc)
    relight: Any = None
    relight_fg: Image.Image | None = None
    relight_bg: Image.Image | None = None


def build_pipeline(loaded: LoadedPipeline, req: DiffusionRequest) -> DiffusionPipeline:
    """The mode's pipeline over the cached components: no weights are copied or reloaded. Built once per mode and
    kept (ControlNet pipelines: per job); each job gets its own scheduler (schedulers keep per-run state)."""
    base, family = loaded.pipe, loaded.spec.family
    scheduler = make_scheduler(req.scheduler, base.scheduler.config)
    key = (req.mode,)
    pipe = None if req.controls else loaded.pipelines.get(key)
    if pipe is not None:
        loaded.pipelines.move_to_end(key)
        pipe.scheduler = scheduler
        return pipe
    if req.controls:
        from zhike.backends.controlnet import control_pipeline

        pipe = control_pipeline(base, family, req.mode, [c.model for c in req.controls], scheduler=scheduler)
    else:
        # dtype: without it from_pipe casts the shared (cached) modules to float32 in place.
        extra: dict[str, Any] = {"add_watermarker": False} if family == "sdxl" else {}
        pipe = PIPELINES[(family, req.mode)].from_pipe(base, scheduler=scheduler, dtype=base.dtype, **extra)
    pipe.set_progress_bar_config(disable=True)
    if not req.controls:  # a ControlNet pipeline would keep its ControlNet alive after the model cache let it go
        loaded.pipelines[key] = pipe
    return pipe


PROMPT_CACHE = 32  # prompt embeddings kept per loaded model


def _encoded(loaded: LoadedPipeline, pipe: DiffusionPipeline, req: DiffusionRequest) -> Encoded:
    """A1111-style prompt embeddings, from the model's small cache when the same prompt ran lately (same LoRAs:
    they change the text encoders)."""
    guided = req.guidance > 1.0  # diffusers' do_classifier_free_guidance: the negative is read only then
    key = (req.prompt, req.negative_prompt, req.clip_skip, guided, tuple((n, str(p), w) for n, p, w in req.loras))
    hit = loaded.prompts.get(key)
    if hit is not None:
        loaded.prompts.move_to_end(key)
        return hit
    enc = encode_prompts(
        pipe, loaded.spec.family, req.prompt, req.negative_prompt, clip_skip=req.clip_skip, guided=guided
    )
    loaded.prompts[key] = enc
    while len(loaded.prompts) > PROMPT_CACHE:
        loaded.prompts.popitem(last=False)
    return enc


class _Clock:
    """Marks on the device's own timeline (CUDA events: reading them after the run costs the loop no sync) or the
    host's (CPU)."""

    def __init__(self, device: str) -> None:
        self.cuda = device == "cuda" and torch.cuda.is_available()
        self.marks: dict[str, Any] = {}

    def mark(self, name: str) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks[name] = event
        else:
            self.marks[name] = time.perf_counter()

    def seconds(self, start: str, end: str) -> float:
        a, b = self.marks.get(start), self.marks.get(end)
        if a is None or b is None:
            return 0.0
        if self.cuda:
            b.synchronize()
            return round(a.elapsed_time(b) / 1000.0, 4)
        return round(b - a, 4)


def generate(loaded: LoadedPipeline, req: DiffusionRequest) -> Generation:
    """Run one request. Image i of a batch uses seed + i, so any one image can be re-made alone.

    With compile on, a compile error falls back to eager for this model (logged) and the request runs again."""
    with loaded.run_lock:
        try:
            return _generate(loaded, req)
        except Exception as e:
            if not (loaded.compiled.active and is_compile_error(e)):
                raise
            fall_back_to_eager(loaded.pipe, loaded.compiled, e)
            return _generate(loaded, req)


def warm_up(loaded: LoadedPipeline, *, steps: int = 2) -> float:
    """A short txt2img at the model's native size, batch 1: CUDA and cuDNN start-up, and with compile on, the
    compile of the bucket most jobs use. Returns its seconds."""
    side = 1024 if loaded.spec.family == "sdxl" else 512
    req = DiffusionRequest(
        mode="txt2img",
        prompt="warm-up",
        negative_prompt="",
        width=side,
        height=side,
        steps=steps,
        guidance=7.0,
        seed=0,
        scheduler="DPM++ 2M Karras",
    )
    started = time.perf_counter()
    generate(loaded, req)
    return time.perf_counter() - started


def _generate(loaded: LoadedPipeline, req: DiffusionRequest) -> Generation:
    if req.mode == "relight":
        from zhike.backends.relight import relight

        image, timings = relight(loaded.pipe, req.relight, req)
        return Generation(images=[image], seeds=[req.seed], timings=timings)
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
    clock = _Clock(loaded.device)
    with ExitStack() as stack:
        if req.loras:
            from zhike.backends.lora import loras_applied

            stack.enter_context(loras_applied(loaded.pipe, req.loras))
        # 2. Prompt embeddings A1111-style (weights, BREAK, 75-token chunks: long prompts are not cut).
        clock.mark("start")
        enc = _encoded(loaded, pipe, req)
        clock.mark("encoded")
        if enc.chunks > 1:
            warnings.append(
                f"the prompt is {enc.prompt_tokens} tokens; the text encoder reads 75 at a time, so it was encoded "
                f"in {enc.chunks} chunks (as A1111 does); nothing was cut"
            )

        # 3. Seeds: CPU generators make the same pixels on CPU and GPU machines.
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]

        def step_end(p: DiffusionPipeline, i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if i + 1 == p.num_timesteps:
                clock.mark("denoised")
            if req.on_step is not None:
                latents = kwargs["latents"]
                req.on_step(i + 1, p.num_timesteps, lambda: start_preview(latents, family))
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
        apply_vae_plan(pipe, vae_plan(req.width, req.height, req.batch_size, loaded.device, free_bytes(loaded.device)))
        with torch.inference_mode():
            out = pipe(**call)
        clock.mark("end")
    if loaded.compiled.active:
        loaded.compiled.buckets.add((req.mode, req.batch_size, req.height, req.width, len(req.controls)))
    timings = {
        "encode_prompt": clock.seconds("start", "encoded"),
        "denoise": clock.seconds("encoded", "denoised"),  # with the pipeline's preparation of the latents
        "decode": clock.seconds("denoised", "end"),  # VAE, and the conversion to images
    }
    return Generation(images=list(out.images), seeds=seeds, warnings=warnings, timings=timings)
