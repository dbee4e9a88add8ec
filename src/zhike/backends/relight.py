"""IC-Light-style relighting UNets (kind `relight`): load, and relight a product composite with an SD 1.5 model.

IC-Light (lllyasviel) is an SD 1.5 UNet whose first convolution takes the noisy latent plus the foreground's
latent (fc: 8 input channels) or plus the foreground's and the background's (fbc: 12). Zhike loads the
diffusers format: a folder with config.json (`UNet2DConditionModel`, in_channels 8 or 12) and its weights, as
`UNet2DConditionModel.save_pretrained` writes it (the published merged IC-Light UNets convert to this). The text
encoder, VAE and scheduler come from the SD 1.5 checkpoint the job uses (`LoadedPipeline`).

Use: `relight(pipe, unet, req)` is called by backends.diffusion for requests with mode "relight", so its pixels
go through the same screening gate (ops.diffusion_common.generate) as every other generation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers import UNet2DConditionModel
from PIL import Image

from zhike.backends.devices import dtype_for
from zhike.backends.library_logs import quiet_library_logs
from zhike.backends.loaders import LoadEnv, loader
from zhike.backends.schedulers import make_scheduler
from zhike.core.errors import ModelError
from zhike.core.specs import ModelSpec

VARIANTS = {8: "fc", 12: "fbc"}  # input channels -> IC-Light variant
GREY = (127, 127, 127)  # IC-Light's neutral backdrop behind the foreground


@dataclass
class LoadedRelight:
    unet: Any  # diffusers UNet2DConditionModel
    spec: ModelSpec
    variant: str  # fc | fbc
    nbytes: int


@loader(kind="relight", family=("sd15", "unknown"), format="diffusers")
def load_relight(spec: ModelSpec, env: LoadEnv) -> LoadedRelight:
    quiet_library_logs()
    unet = UNet2DConditionModel.from_pretrained(spec.path, torch_dtype=dtype_for(env.device))
    channels = int(unet.config.in_channels)
    if channels not in VARIANTS:
        raise ModelError(
            f"{spec.name!r} is not an IC-Light UNet: it takes {channels} input channels (IC-Light: 8 or 12)",
            field="params.relight_model",
        )
    unet.to(env.device).eval()
    nbytes = sum(p.numel() * p.element_size() for p in unet.parameters())
    return LoadedRelight(unet, spec, VARIANTS[channels], nbytes)


def _latents(pipe: Any, image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    vae = pipe.vae
    x = torch.from_numpy(np.asarray(image.convert("RGB").resize(size, Image.LANCZOS)).copy())
    x = x.permute(2, 0, 1)[None].to(vae.device, vae.dtype) / 127.5 - 1.0
    return vae.encode(x).latent_dist.mode() * vae.config.scaling_factor


@torch.inference_mode()
def relight(pipe: Any, relighter: LoadedRelight, req: Any) -> tuple[Image.Image, dict[str, float]]:
    """Relight `req.init_image` (the composite; `req` a diffusion.DiffusionRequest, `pipe` its SD 1.5 pipeline):
    img2img from it at `req.strength`, the UNet conditioned on the foreground (`req.relight_fg`: the product on
    grey) and, for fbc, the background (`req.relight_bg`). Returns (image, seconds per phase)."""
    if req.relight_fg is None or req.init_image is None:
        raise ValueError("relight needs the composite (init_image) and the foreground (relight_fg)")
    t0 = time.perf_counter()
    size = (req.width, req.height)
    device = pipe.vae.device
    cond, uncond = pipe.encode_prompt(req.prompt, device, 1, True, req.negative_prompt)
    extra = [_latents(pipe, req.relight_fg, size)]
    if relighter.variant == "fbc":
        extra.append(_latents(pipe, req.relight_bg or req.init_image, size))
    concat = torch.cat(extra, dim=1).to(relighter.unet.dtype)
    start = _latents(pipe, req.init_image, size)
    scheduler = make_scheduler(req.scheduler, pipe.scheduler.config)
    scheduler.set_timesteps(req.steps, device=device)
    keep = max(1, min(req.steps, int(round(req.steps * (req.strength or 1.0)))))
    timesteps = scheduler.timesteps[len(scheduler.timesteps) - keep :]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(len(scheduler.timesteps) - keep)
    gen = torch.Generator("cpu").manual_seed(req.seed)
    noise = torch.randn(start.shape, generator=gen, dtype=torch.float32).to(device, start.dtype)
    latents = scheduler.add_noise(start, noise, timesteps[:1])
    text = torch.cat([uncond, cond]).to(relighter.unet.dtype)
    t1 = time.perf_counter()
    for i, t in enumerate(timesteps):
        x = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        x = torch.cat([x, torch.cat([concat] * 2)], dim=1).to(relighter.unet.dtype)
        eps_u, eps_c = relighter.unet(x, t, encoder_hidden_states=text).sample.chunk(2)
        eps = eps_u + req.guidance * (eps_c - eps_u)
        latents = scheduler.step(eps.to(latents.dtype), t, latents).prev_sample
        if req.on_step is not None:
            req.on_step(i + 1, len(timesteps), None)
    t2 = time.perf_counter()
    out = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
    arr = ((out[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    timings = {"encode_prompt": round(t1 - t0, 4), "denoise": round(t2 - t1, 4)}
    timings["decode"] = round(time.perf_counter() - t2, 4)
    return Image.fromarray(arr), timings
