"""LoRA files for the tiny models of ``tiny_sd.py``, in the formats users download.

* ``write_kohya_lora``: kohya-ss / A1111 ``.safetensors`` (``lora_unet_down_blocks_0_..``, ``lora_te_`` or, for
  SDXL, ``lora_te1_`` / ``lora_te2_``; ``lora_down`` / ``lora_up`` / ``alpha``).
* ``write_kohya_ldm_lora``: the same with the UNet named in the original LDM layout
  (``lora_unet_input_blocks_4_1_transformer_blocks_0_..``), as kohya's SDXL trainer writes it.
* ``write_peft_lora``: diffusers/PEFT (``unet.down_blocks.0...to_q.lora_A.weight``), built with peft's
  ``LoraConfig`` on the real modules and saved by the pipeline's ``save_lora_weights``.

Every writer draws the low-rank factors of a layer from the same seeded generator (keyed by seed and layer), so
the three formats of one seed hold the *same* adapter: tests can demand pixel-identical images across formats,
which proves diffusers mapped every key onto the right layer (not merely that something changed).
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tests.helpers.tiny_sd import _unet_prefix_map

# Attention projections a typical Civitai LoRA trains (kohya's default targets minus the MLPs).
_UNET_TARGET = re.compile(r"^(.*\.attn[12])\.(to_q|to_k|to_v|to_out\.0)\.weight$")
_TE_TARGET = re.compile(r"^(.*\.self_attn)\.(q_proj|k_proj|v_proj|out_proj)\.weight$")
_UNET_PEFT_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
_TE_PEFT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]

Factors = dict[str, tuple[torch.Tensor, torch.Tensor]]  # module path -> (down (r, in), up (out, r))


def _is_sdxl(diffusers_dir: Path) -> bool:
    index = json.loads((Path(diffusers_dir) / "model_index.json").read_text(encoding="utf-8"))
    return "text_encoder_2" in index


def _linear_shapes(folder: Path, pattern: re.Pattern[str]) -> dict[str, tuple[int, int]]:
    """Module path -> (out, in) of the targeted Linear layers, read from the weight file's header only."""
    (weights,) = sorted(folder.glob("*.safetensors"))
    with safe_open(str(weights), framework="pt") as handle:
        shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
    out: dict[str, tuple[int, int]] = {}
    for key, shape in shapes.items():
        if pattern.match(key):
            out[key.removesuffix(".weight")] = (shape[0], shape[1])
    return out


def _te_path(module: str) -> str:
    # transformers >= 5.6 saves CLIPTextModel without the "text_model." level; LoRA files always name it.
    return module if module.startswith("text_model.") else "text_model." + module


def _factors(shapes: dict[str, tuple[int, int]], component: str, rank: int, seed: int, scale: float) -> Factors:
    out: Factors = {}
    for module, (n_out, n_in) in sorted(shapes.items()):
        name = module if component == "unet" else _te_path(module)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(f"{component}.{name}".encode()))
        # |up @ down| is about half a freshly initialised weight: a clearly visible but finite change.
        down = torch.randn(rank, n_in, generator=gen) / n_in**0.5
        up = torch.randn(n_out, rank, generator=gen) * (0.5 * scale / rank**0.5)
        out[name] = (down, up)
    return out


def lora_factors(diffusers_dir: Path, *, rank: int, seed: int, scale: float, text_encoder: bool) -> dict[str, Factors]:
    """component (unet | text_encoder | text_encoder_2) -> module path -> (down, up); text encoders as LoRA files
    name them (with "text_model.")."""
    diffusers_dir = Path(diffusers_dir)
    comps = {"unet": _UNET_TARGET}
    if text_encoder:
        comps["text_encoder"] = _TE_TARGET
        if _is_sdxl(diffusers_dir):
            comps["text_encoder_2"] = _TE_TARGET
    return {c: _factors(_linear_shapes(diffusers_dir / c, p), c, rank, seed, scale) for c, p in comps.items()}


def _alpha(rank: int) -> float:
    # alpha != rank so a loader that ignores alpha (scale alpha/rank) makes different pixels than one that reads it.
    return rank / 2


def _write_kohya(
    diffusers_dir: Path, out: Path, unet_name: dict[str, str] | None, *, rank: int, seed: int, scale: float, te: bool
) -> Path:
    sdxl = _is_sdxl(diffusers_dir)
    te_prefix = {"text_encoder": "lora_te1_" if sdxl else "lora_te_", "text_encoder_2": "lora_te2_"}
    state: dict[str, torch.Tensor] = {}
    for comp, factors in lora_factors(diffusers_dir, rank=rank, seed=seed, scale=scale, text_encoder=te).items():
        for module, (down, up) in factors.items():
            if comp == "unet":
                name = "lora_unet_" + (unet_name or {}).get(module, module).replace(".", "_")
            else:
                name = te_prefix[comp] + module.replace(".", "_")
            state[f"{name}.lora_down.weight"] = down.contiguous()
            state[f"{name}.lora_up.weight"] = up.contiguous()
            state[f"{name}.alpha"] = torch.tensor(_alpha(rank))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # kohya writes ss_* training metadata; loaders must not depend on it, so only a minimal header here.
    save_file(state, str(out), metadata={"ss_network_module": "networks.lora", "ss_network_dim": str(rank)})
    return out


def write_kohya_lora(
    diffusers_dir: Path, out: Path, *, rank: int = 4, seed: int = 0, scale: float = 1.0, text_encoder: bool = True
) -> Path:
    """kohya/A1111 LoRA with the UNet in diffusers block naming (``lora_unet_down_blocks_0_attentions_0_..``)."""
    return _write_kohya(Path(diffusers_dir), out, None, rank=rank, seed=seed, scale=scale, te=text_encoder)


def write_kohya_ldm_lora(
    diffusers_dir: Path, out: Path, *, rank: int = 4, seed: int = 0, scale: float = 1.0, text_encoder: bool = True
) -> Path:
    """kohya LoRA with the UNet in LDM naming (``lora_unet_input_blocks_4_1_transformer_blocks_0_..``)."""
    diffusers_dir = Path(diffusers_dir)
    config = json.loads((diffusers_dir / "unet" / "config.json").read_text(encoding="utf-8"))
    prefixes = [(hf, sd) for hf, sd, _ in _unet_prefix_map(config)]
    names: dict[str, str] = {}
    for module in _linear_shapes(diffusers_dir / "unet", _UNET_TARGET):
        hf, sd = next((hf, sd) for hf, sd in prefixes if module.startswith(hf))
        names[module] = sd + module[len(hf) :]
    return _write_kohya(diffusers_dir, out, names, rank=rank, seed=seed, scale=scale, te=text_encoder)


def write_peft_lora(
    diffusers_dir: Path,
    out: Path,
    *,
    rank: int = 4,
    seed: int = 0,
    scale: float = 1.0,
    text_encoder: bool = True,
) -> Path:
    """diffusers/PEFT LoRA; ``out`` is a ``.safetensors`` file or a folder (-> pytorch_lora_weights.safetensors)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
    from peft import LoraConfig, get_peft_model_state_dict
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    diffusers_dir = Path(diffusers_dir)
    sdxl = _is_sdxl(diffusers_dir)
    factors = lora_factors(diffusers_dir, rank=rank, seed=seed, scale=scale, text_encoder=text_encoder)
    loaders = {
        "unet": UNet2DConditionModel,
        "text_encoder": CLIPTextModel,
        "text_encoder_2": CLIPTextModelWithProjection,
    }
    layers: dict[str, dict[str, torch.Tensor]] = {}
    metadata: dict[str, dict] = {}
    for comp, comp_factors in factors.items():
        model = loaders[comp].from_pretrained(str(diffusers_dir / comp))
        targets = _UNET_PEFT_TARGETS if comp == "unet" else _TE_PEFT_TARGETS
        config = LoraConfig(r=rank, lora_alpha=_alpha(rank), target_modules=targets, init_lora_weights=False)
        model.add_adapter(config)
        with torch.no_grad():
            for path, module in model.named_modules():
                if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
                    down, up = comp_factors[path if comp == "unet" else _te_path(path)]
                    module.lora_A["default"].weight.copy_(down)
                    module.lora_B["default"].weight.copy_(up)
        layers[comp] = get_peft_model_state_dict(model)
        metadata[comp] = config.to_dict()

    out = Path(out)
    folder, weight_name = (out.parent, out.name) if out.suffix == ".safetensors" else (out, None)
    folder.mkdir(parents=True, exist_ok=True)
    kwargs: dict = {
        "save_directory": str(folder),
        "unet_lora_layers": layers["unet"],
        "text_encoder_lora_layers": layers.get("text_encoder"),
        "unet_lora_adapter_metadata": metadata["unet"],
        "text_encoder_lora_adapter_metadata": metadata.get("text_encoder"),
        "safe_serialization": True,
    }
    if weight_name:
        kwargs["weight_name"] = weight_name
    if sdxl:
        kwargs["text_encoder_2_lora_layers"] = layers.get("text_encoder_2")
        kwargs["text_encoder_2_lora_adapter_metadata"] = metadata.get("text_encoder_2")
        StableDiffusionXLPipeline.save_lora_weights(**kwargs)
    else:
        StableDiffusionPipeline.save_lora_weights(**kwargs)
    return out if weight_name else folder / "pytorch_lora_weights.safetensors"


def write_not_a_lora(diffusers_dir: Path, out: Path) -> Path:
    """A real .safetensors that is no LoRA: the tiny model's bare UNet weights."""
    (weights,) = sorted((Path(diffusers_dir) / "unet").glob("*.safetensors"))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(weights.read_bytes())
    return out


__all__ = ["lora_factors", "write_kohya_ldm_lora", "write_kohya_lora", "write_not_a_lora", "write_peft_lora"]
