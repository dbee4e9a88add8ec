"""Tiny random IC-Light-style UNets for tests: the tiny SD 1.5 UNet's structure with 8 (fc: latent + foreground)
or 12 (fbc: + background) input channels, saved as `UNet2DConditionModel.save_pretrained` writes them (config.json
and diffusion_pytorch_model.safetensors): the diffusers format Zhike loads as a `relight` model."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import UNet2DConditionModel


def build_tiny_iclight(tiny_sd15: Path, dest: Path, *, in_channels: int) -> Path:
    config = dict(UNet2DConditionModel.load_config(tiny_sd15 / "unet"))
    torch.manual_seed(in_channels)
    unet = UNet2DConditionModel.from_config({**config, "in_channels": in_channels})
    unet.save_pretrained(dest, safe_serialization=True)
    return dest
