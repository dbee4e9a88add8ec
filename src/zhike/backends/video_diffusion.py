"""Image-to-video models users add (图生视频): Stable Video Diffusion and AnimateDiff, in their diffusers formats.

- `svd` (kind video): a StableVideoDiffusionPipeline folder (model_index.json; unet = UNetSpatioTemporalCondition,
  vae = AutoencoderKLTemporalDecoder, image_encoder = CLIPVisionModelWithProjection). The image alone conditions it.
- `animatediff` (kind video): a MotionAdapter folder (config.json, as guoyww/animatediff-motion-adapter-v1-5-*
  publish it). It animates an SD 1.5 checkpoint from the catalogue: AnimateDiffVideoToVideoPipeline denoises the
  still repeated as a clip at `strength`, so the picture stays the user's while the motion modules move it; the
  prompt says what moves.

Both run on the CPU (minutes for real weights; a GPU is what they are made for) with CPU seeds, like txt2img.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import AnimateDiffVideoToVideoPipeline, MotionAdapter, StableVideoDiffusionPipeline
from PIL import Image

from zhike.backends.diffusion import LoadedPipeline, module_nbytes
from zhike.backends.loaders import LoadEnv, loader
from zhike.core.specs import ModelSpec

OnStep = Callable[[int, int], None]  # (done, total); may raise JobCancelled


@dataclass
class LoadedVideoModel:
    """An SVD pipeline or an AnimateDiff motion adapter, cached by the ModelManager like any model."""

    spec: ModelSpec
    module: Any  # StableVideoDiffusionPipeline | MotionAdapter
    device: str
    base_nbytes: int
    load_seconds: float
    run_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def nbytes(self) -> int:
        return self.base_nbytes

    @property
    def native_frames(self) -> int:
        """The clip length the model was trained on (SVD: 14 or 25; AnimateDiff: 16)."""
        if isinstance(self.module, StableVideoDiffusionPipeline):
            return int(self.module.unet.config.num_frames)
        return 16


def _variant(folder: Path) -> str | None:
    """ "fp16" where the folder holds only half-precision weights (the SVD repos offer both; some copies keep one)."""
    unet = folder / "unet"
    if any(unet.glob("*.fp16.safetensors")) and not any(unet.glob("diffusion_pytorch_model.safetensors")):
        return "fp16"
    return None


@loader(family="svd", kind="video", format="diffusers")
def _load_svd(spec: ModelSpec, env: LoadEnv) -> LoadedVideoModel:
    t0 = time.perf_counter()
    pipe = StableVideoDiffusionPipeline.from_pretrained(spec.path, variant=_variant(spec.path))
    if env.device == "cpu":
        pipe.to(torch.float32)  # half precision is slow or unsupported on CPUs
    pipe.set_progress_bar_config(disable=True)
    pipe.to(env.device)
    return LoadedVideoModel(spec, pipe, env.device, module_nbytes(pipe), time.perf_counter() - t0)


@loader(family="animatediff", kind="video", format="diffusers")
def _load_motion_adapter(spec: ModelSpec, env: LoadEnv) -> LoadedVideoModel:
    t0 = time.perf_counter()
    adapter = MotionAdapter.from_pretrained(spec.path)
    nbytes = sum(p.numel() * p.element_size() for p in adapter.parameters())
    return LoadedVideoModel(spec, adapter, env.device, nbytes, time.perf_counter() - t0)


def _callback(on_step: OnStep | None) -> Callable[..., dict[str, Any]]:
    def step_end(pipe: Any, i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if on_step is not None:  # num_timesteps: what the scheduler runs (strength, PNDM's extra step)
            on_step(i + 1, pipe.num_timesteps)
        return kwargs

    return step_end


def svd_frames(
    model: LoadedVideoModel,
    image: Image.Image,
    *,
    frames: int,
    steps: int,
    seed: int,
    fps: int,
    motion: int = 127,
    on_step: OnStep | None = None,
) -> list[Image.Image]:
    """`frames` frames animated from `image` (its size, multiples of 8). `motion` is SVD's motion bucket id."""
    pipe: StableVideoDiffusionPipeline = model.module
    with model.run_lock, torch.inference_mode():
        out = pipe(
            image.convert("RGB"),
            height=image.height,
            width=image.width,
            num_frames=frames,
            num_inference_steps=steps,
            fps=max(fps - 1, 1),  # SVD was conditioned on fps - 1 (diffusers' docs)
            motion_bucket_id=motion,
            decode_chunk_size=min(frames, 8),  # bounded memory in the temporal decoder
            generator=torch.Generator("cpu").manual_seed(seed),
            callback_on_step_end=_callback(on_step),
            output_type="pil",
        )
    return list(out.frames[0])


def animatediff_frames(
    model: LoadedVideoModel,
    base: LoadedPipeline,
    image: Image.Image,
    *,
    prompt: str,
    frames: int,
    steps: int,
    seed: int,
    strength: float = 0.6,
    guidance: float = 7.5,
    on_step: OnStep | None = None,
) -> list[Image.Image]:
    """`frames` frames: the still repeated, re-denoised from `strength` by the SD 1.5 `base` with the motion adapter.

    The motion UNet is built for the call from the base's UNet (its weights shared, the motion modules added) and
    dropped afterwards: the cached base stays a plain SD pipeline for the image ops."""
    sd = base.pipe
    pipe = AnimateDiffVideoToVideoPipeline(
        vae=sd.vae,
        text_encoder=sd.text_encoder,
        tokenizer=sd.tokenizer,
        unet=sd.unet,
        motion_adapter=model.module,
        scheduler=sd.scheduler.__class__.from_config(sd.scheduler.config),
    )
    pipe.set_progress_bar_config(disable=True)
    still = image.convert("RGB")
    with base.run_lock, model.run_lock, torch.inference_mode():
        out = pipe(
            video=[still] * frames,
            prompt=prompt,
            height=still.height,
            width=still.width,
            num_inference_steps=steps,
            strength=strength,
            guidance_scale=guidance,
            generator=torch.Generator("cpu").manual_seed(seed),
            callback_on_step_end=_callback(on_step),
            output_type="pil",
        )
    return list(out.frames[0])
