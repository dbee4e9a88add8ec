"""Tiny random ControlNets for the tiny SD1.5/SDXL test models, and their A1111-layout single files.

``write_controlnet_single_file`` inverts diffusers' ``convert_controlnet_checkpoint``
(diffusers/loaders/single_file_utils.py): the UNet-encoder part maps like a UNet (``convert_unet_to_ldm``),
the ControlNet-only parts are the hint encoder (``input_hint_block``: convs at even indices, SiLUs
between), the zero convolutions (``zero_convs.N.0``) and ``middle_block_out.0``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from safetensors.torch import save_file

from tests.helpers.tiny_sd import _load_component, config_only_dir, convert_unet_to_ldm

_CONTROL_ONLY = ("controlnet_cond_embedding.", "controlnet_down_blocks.", "controlnet_mid_block.")


def build_tiny_controlnet(sd_dir: Path, dest: Path, *, seed: int = 0) -> Path:
    """A ControlNet made from ``sd_dir``'s UNet, every tensor perturbed with seeded noise, saved to ``dest``.

    ``from_unet`` zero-initialises the zero convs and the hint encoder's last conv (and norms have zero
    biases): a ControlNet like that changes nothing, and a converter that swapped two zero tensors would
    pass. Noise everywhere makes each tensor distinct and the ControlNet's effect (and its control
    image's) visible.
    """
    unet = UNet2DConditionModel.from_pretrained(Path(sd_dir) / "unet", local_files_only=True)
    controlnet = ControlNetModel.from_unet(unet)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in controlnet.named_parameters():
            if name.startswith("controlnet_cond_embedding.") and param.ndim == 4:
                # He init: the default init shrinks the hint signal ~7 convs deep, so the control image
                # would barely matter next to the latents.
                param.normal_(0.0, (2.0 / param[0].numel()) ** 0.5, generator=gen)
            else:
                scale = 0.02 if param.any() else 0.1  # zero tensors get more so the residuals are visible
                param.add_(torch.randn(param.shape, generator=gen) * scale)
    controlnet.save_pretrained(dest, safe_serialization=True)
    return Path(dest)


def _control_only_to_ldm(key: str, n_hint_blocks: int) -> str:
    if key.startswith("controlnet_cond_embedding.conv_in."):
        return "input_hint_block.0." + key.removeprefix("controlnet_cond_embedding.conv_in.")
    if key.startswith("controlnet_cond_embedding.conv_out."):
        # conv_out is the last conv: after conv_in and every block, each followed by a SiLU.
        return f"input_hint_block.{2 * (n_hint_blocks + 1)}." + key.removeprefix("controlnet_cond_embedding.conv_out.")
    if key.startswith("controlnet_cond_embedding.blocks."):
        index, rest = key.removeprefix("controlnet_cond_embedding.blocks.").split(".", 1)
        return f"input_hint_block.{2 * (int(index) + 1)}.{rest}"
    if key.startswith("controlnet_down_blocks."):
        index, rest = key.removeprefix("controlnet_down_blocks.").split(".", 1)
        return f"zero_convs.{index}.0.{rest}"
    if key.startswith("controlnet_mid_block."):
        return "middle_block_out.0." + key.removeprefix("controlnet_mid_block.")
    raise KeyError(f"ControlNet key {key!r} has no LDM equivalent")


def write_controlnet_single_file(controlnet_dir: Path, out: Path, *, prefix: str = "control_model.") -> Path:
    """Write a diffusers ControlNet folder as one ``.safetensors`` in the original (A1111) key layout.

    ``prefix=""`` writes the variant some files ship without the ``control_model.`` prefix.
    """
    state, config = _load_component(Path(controlnet_dir))
    control = {k: v for k, v in state.items() if k.startswith(_CONTROL_ONLY)}
    encoder = {k: v for k, v in state.items() if k not in control}
    # A ControlNet is a UNet encoder + middle block: the UNet mapping with no up blocks covers it
    # (time_embed, label_emb for SDXL, input_blocks, middle_block).
    ldm = convert_unet_to_ldm(encoder, {**config, "up_block_types": []})
    n_hint_blocks = len({k.split(".")[2] for k in control if k.startswith("controlnet_cond_embedding.blocks.")})
    ldm |= {_control_only_to_ldm(k, n_hint_blocks): v for k, v in control.items()}

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({prefix + k: v.contiguous() for k, v in ldm.items()}, str(out), metadata={"format": "pt"})
    return out


def controlnet_config_dir(controlnet_dir: Path, dest: Path) -> Path:
    """A config-only copy of a ControlNet folder: the ``config`` a non-standard single file loads with."""
    return config_only_dir(Path(controlnet_dir), Path(dest))
