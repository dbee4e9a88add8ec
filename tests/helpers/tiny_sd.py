"""Tiny random Stable Diffusion pipelines and their A1111-style single-file twins, for tests.

The tiny models keep the real block *structure* of SD1.5/SDXL (number of down/up blocks, layers per
block, cross-attention placement, SDXL's text_time embedding and two text encoders) with tiny
widths, so the LDM key conversion exercises the same index arithmetic as the real checkpoints while
a 64x64 image takes milliseconds per step on CPU.

``write_single_file`` is a port of diffusers' ``scripts/convert_diffusers_to_original_stable_
diffusion.py`` and ``scripts/convert_diffusers_to_original_sdxl.py`` that derives block indices from
the configs instead of hard-coding SD's sizes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from zhike.backends.clip_tokenizer import write_clip_tokenizer

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx")

# Scheduler settings of the reference repos (runwayml/stable-diffusion-v1-5, SDXL base 1.0).
_SD15_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    steps_offset=1,
)
_SDXL_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    interpolation_type="linear",
    num_train_timesteps=1000,
    prediction_type="epsilon",
    steps_offset=1,
    timestep_spacing="leading",
    use_karras_sigmas=False,
)


def _tiny_clip_config(hidden: int, layers: int, heads: int, act: str, projection_dim: int) -> CLIPTextConfig:
    # vocab_size stays 49408 so the real CLIP tokenizer's ids fit; bos/eos ids 0/2 mirror the
    # published SD configs (transformers then pools at argmax(input_ids), i.e. the EOS token).
    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=hidden * 2 + 5,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=77,
        hidden_act=act,
        layer_norm_eps=1e-5,
        projection_dim=projection_dim,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )


def _tiny_vae(scaling_factor: float, force_upcast: bool, *, mid_attention: bool = True) -> AutoencoderKL:
    # 4 blocks -> 3 downsamples -> vae_scale_factor 8, like the real SD VAE.
    return AutoencoderKL(
        mid_block_add_attention=mid_attention,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=scaling_factor,
        force_upcast=force_upcast,
    )


def _tokenizer(pad_token: str) -> CLIPTokenizer:
    with tempfile.TemporaryDirectory() as tmp:
        return CLIPTokenizer.from_pretrained(write_clip_tokenizer(Path(tmp), pad_token=pad_token))


def build_tiny_sd15(dest: Path, *, in_channels: int = 4, fast_at_large_sizes: bool = False) -> Path:
    """Save a deterministic tiny SD1.5-structured pipeline to ``dest`` (diffusers layout).

    `fast_at_large_sizes` (benchmarks at 512-1024 px on a CPU): attention only at a quarter of the latent size and
    none in the VAE, so no attention runs over 4,096+ positions; the block structure is otherwise the same."""
    torch.manual_seed(0)
    down = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    if fast_at_large_sizes:
        down = ("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
    up = tuple(b.replace("Down", "Up") for b in reversed(down))
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,  # 9 builds an inpainting-style UNet
        out_channels=4,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=(32, 32, 64, 64),
        layers_per_block=2,
        norm_num_groups=8,
        cross_attention_dim=32,
        attention_head_dim=4,  # SD1.5's legacy name: this is the number of heads
    )
    vae = _tiny_vae(scaling_factor=0.18215, force_upcast=True, mid_attention=not fast_at_large_sizes)
    text_encoder = CLIPTextModel(_tiny_clip_config(32, 3, 4, "quick_gelu", 32))
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_tokenizer("<|endoftext|>"),
        unet=unet,
        scheduler=PNDMScheduler(**_SD15_SCHEDULER),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(dest, safe_serialization=True)
    return Path(dest)


def build_tiny_sdxl(dest: Path) -> Path:
    """Save a deterministic tiny SDXL-structured pipeline to ``dest`` (diffusers layout)."""
    torch.manual_seed(0)
    te1_hidden, te2_hidden, te2_proj, time_dim = 32, 64, 48, 8
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64, 64),
        layers_per_block=2,
        norm_num_groups=8,
        attention_head_dim=(2, 4, 4),
        transformer_layers_per_block=(1, 1, 2),
        use_linear_projection=True,
        # SDXL concatenates both encoders' hidden states for cross-attention...
        cross_attention_dim=te1_hidden + te2_hidden,
        # ...and feeds the pooled OpenCLIP embedding plus 6 size/crop numbers to text_time.
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + te2_proj,
    )
    vae = _tiny_vae(scaling_factor=0.13025, force_upcast=True)
    # Different widths for the two encoders matter: diffusers' single-file loader tells them apart
    # by the position-embedding width (768 vs 1280 in the real model). te2_proj != te2_hidden makes
    # a missing transpose of the OpenCLIP text_projection fail loudly.
    text_encoder = CLIPTextModel(_tiny_clip_config(te1_hidden, 3, 4, "quick_gelu", te1_hidden))
    text_encoder_2 = CLIPTextModelWithProjection(_tiny_clip_config(te2_hidden, 3, 4, "gelu", te2_proj))
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=_tokenizer("<|endoftext|>"),
        tokenizer_2=_tokenizer("!"),
        unet=unet,
        scheduler=EulerDiscreteScheduler(**_SDXL_SCHEDULER),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    pipe.save_pretrained(dest, safe_serialization=True)
    return Path(dest)


def config_only_dir(diffusers_dir: Path, dest: Path) -> Path:
    """Copy a diffusers folder without its weight files (a custom ``config=`` for single files)."""
    shutil.copytree(
        diffusers_dir,
        dest,
        ignore=lambda _dir, names: [n for n in names if n.endswith(_WEIGHT_SUFFIXES)],
        dirs_exist_ok=True,
    )
    return Path(dest)


# --------------------------------------------------------------------------- LDM conversion


def _load_component(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    weights = sorted(folder.glob("*.safetensors"))
    if len(weights) != 1:
        raise FileNotFoundError(f"expected exactly one .safetensors file in {folder}, found {weights}")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return load_file(str(weights[0])), config


_UNET_TOP_LEVEL = {
    # diffusers -> LDM
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "add_embedding.linear_1.": "label_emb.0.0.",
    "add_embedding.linear_2.": "label_emb.0.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}
_RESNET_RENAMES = (
    ("norm1.", "in_layers.0."),
    ("conv1.", "in_layers.2."),
    ("norm2.", "out_layers.0."),
    ("conv2.", "out_layers.3."),
    ("time_emb_proj.", "emb_layers.1."),
    ("conv_shortcut.", "skip_connection."),
)


def _unet_prefix_map(config: dict) -> list[tuple[str, str, bool]]:
    """(diffusers prefix, LDM prefix, is_resnet) for every block, from the UNet config.

    LDM numbers ``input_blocks`` sequentially: conv_in is 0, then per down block ``layers`` slots of
    [resnet, attention] followed by one downsampler slot. ``output_blocks`` have ``layers + 1``
    slots per up block; the upsampler sits in the last slot after the resnet (and attention).
    """
    layers = config["layers_per_block"]
    if not isinstance(layers, int):
        raise ValueError("per-block layers_per_block lists are not supported by the LDM layout")
    n_down = len(config["down_block_types"])
    n_up = len(config["up_block_types"])
    out: list[tuple[str, str, bool]] = []
    for i in range(n_down):
        for j in range(layers):
            slot = 1 + i * (layers + 1) + j
            out.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{slot}.0.", True))
            out.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{slot}.1.", False))
        if i < n_down - 1:
            out.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(i + 1) * (layers + 1)}.0.op.", False))
    for i, block_type in enumerate(config["up_block_types"]):
        for j in range(layers + 1):
            slot = i * (layers + 1) + j
            out.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{slot}.0.", True))
            out.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{slot}.1.", False))
        if i < n_up - 1:
            last = i * (layers + 1) + layers
            index = 2 if "CrossAttn" in block_type else 1
            out.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{last}.{index}.", False))
    out.append(("mid_block.resnets.0.", "middle_block.0.", True))
    out.append(("mid_block.attentions.0.", "middle_block.1.", False))
    out.append(("mid_block.resnets.1.", "middle_block.2.", True))
    return out


def convert_unet_to_ldm(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    prefixes = _unet_prefix_map(config) + [(k, v, False) for k, v in _UNET_TOP_LEVEL.items()]
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        match = next(((hf, sd, res) for hf, sd, res in prefixes if key.startswith(hf)), None)
        if match is None:
            raise KeyError(f"UNet key {key!r} has no LDM equivalent")
        hf, sd, is_resnet = match
        rest = key[len(hf) :]
        if is_resnet:
            for old, new in _RESNET_RENAMES:
                if rest.startswith(old):
                    rest = new + rest[len(old) :]
                    break
        # Transformer blocks (attn1/attn2/ff/norm/proj_in/proj_out) keep their names in LDM.
        out[sd + rest] = tensor
    return out


_VAE_ATTN_RENAMES = (
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
)


def convert_vae_to_ldm(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    n = len(config["down_block_types"])
    prefixes: list[tuple[str, str]] = []
    for i in range(n):
        prefixes.append((f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block."))
        prefixes.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."))
        # LDM counts decoder blocks from the lowest resolution up; diffusers counts in call order.
        prefixes.append((f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{n - 1 - i}.block."))
        prefixes.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{n - 1 - i}.upsample."))
    for part in ("encoder", "decoder"):
        prefixes.append((f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1."))
        prefixes.append((f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2."))
        prefixes.append((f"{part}.conv_norm_out.", f"{part}.norm_out."))
        prefixes.append((f"{part}.conv_in.", f"{part}.conv_in."))
        prefixes.append((f"{part}.conv_out.", f"{part}.conv_out."))
    prefixes += [("quant_conv.", "quant_conv."), ("post_quant_conv.", "post_quant_conv.")]

    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        for part in ("encoder", "decoder"):
            attn = f"{part}.mid_block.attentions.0."
            if key.startswith(attn):
                rest = key[len(attn) :]
                for old, new in _VAE_ATTN_RENAMES:
                    if rest.startswith(old):
                        rest = new + rest[len(old) :]
                        break
                # LDM's VAE attention uses 1x1 convs where diffusers uses linear layers.
                if rest.endswith(".weight") and tensor.ndim == 2:
                    tensor = tensor.reshape(*tensor.shape, 1, 1)
                out[f"{part}.mid.attn_1.{rest}"] = tensor
                break
        else:
            match = next(((hf, sd) for hf, sd in prefixes if key.startswith(hf)), None)
            if match is None:
                raise KeyError(f"VAE key {key!r} has no LDM equivalent")
            hf, sd = match
            out[sd + key[len(hf) :].replace("conv_shortcut.", "nin_shortcut.")] = tensor
    return out


def _with_text_model_prefix(key: str) -> str:
    # transformers >= 5.6 saves CLIPTextModel without the "text_model." level; LDM files have it.
    if key.startswith("text_model.") or key.startswith("text_projection."):
        return key
    return "text_model." + key


def convert_clip_to_ldm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI CLIP (SD1.x, SDXL's first encoder) keeps the transformers layout under a prefix."""
    return {
        _with_text_model_prefix(k): v
        for k, v in state.items()
        if not k.endswith("position_ids") and not k.startswith("text_projection.")
    }


_OPENCLIP_RENAMES = (
    ("text_model.encoder.layers.", "transformer.resblocks."),
    (".self_attn.out_proj.", ".attn.out_proj."),
    (".layer_norm1.", ".ln_1."),
    (".layer_norm2.", ".ln_2."),
    (".mlp.fc1.", ".mlp.c_fc."),
    (".mlp.fc2.", ".mlp.c_proj."),
)
_OPENCLIP_TOP_LEVEL = {
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
}


def convert_openclip_to_ldm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers CLIPTextModelWithProjection -> OpenCLIP text tower (SDXL's second encoder)."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for raw_key, tensor in state.items():
        key = _with_text_model_prefix(raw_key)
        if key.endswith("position_ids"):
            continue
        if key == "text_projection.weight":
            # nn.Linear stores (out, in); OpenCLIP multiplies x @ text_projection, i.e. (in, out).
            out["text_projection"] = tensor.T.contiguous()
            continue
        if key in _OPENCLIP_TOP_LEVEL:
            out[_OPENCLIP_TOP_LEVEL[key]] = tensor
            continue
        for proj in ("q_proj", "k_proj", "v_proj"):
            marker = f".self_attn.{proj}."
            if marker in key:
                layer_prefix, param = key.split(marker)
                qkv.setdefault((layer_prefix, param), {})[proj[0]] = tensor
                break
        else:
            for old, new in _OPENCLIP_RENAMES:
                key = key.replace(old, new)
            out[key] = tensor
    # OpenCLIP uses nn.MultiheadAttention: one packed in_proj in q, k, v order.
    for (layer_prefix, param), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise KeyError(f"incomplete q/k/v projections for {layer_prefix}")
        ldm_layer = layer_prefix.replace("text_model.encoder.layers.", "transformer.resblocks.")
        out[f"{ldm_layer}.attn.in_proj_{param}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def write_single_file(diffusers_dir: Path, out: Path) -> Path:
    """Write ``diffusers_dir``'s weights as one ``.safetensors`` in the original LDM key layout."""
    diffusers_dir = Path(diffusers_dir)
    index = json.loads((diffusers_dir / "model_index.json").read_text(encoding="utf-8"))
    is_sdxl = "text_encoder_2" in index

    unet, unet_cfg = _load_component(diffusers_dir / "unet")
    vae, vae_cfg = _load_component(diffusers_dir / "vae")
    te, _ = _load_component(diffusers_dir / "text_encoder")

    state: dict[str, torch.Tensor] = {}
    state.update({"model.diffusion_model." + k: v for k, v in convert_unet_to_ldm(unet, unet_cfg).items()})
    state.update({"first_stage_model." + k: v for k, v in convert_vae_to_ldm(vae, vae_cfg).items()})
    if is_sdxl:
        te2, _ = _load_component(diffusers_dir / "text_encoder_2")
        state.update({"conditioner.embedders.0.transformer." + k: v for k, v in convert_clip_to_ldm(te).items()})
        state.update({"conditioner.embedders.1.model." + k: v for k, v in convert_openclip_to_ldm(te2).items()})
    else:
        state.update({"cond_stage_model.transformer." + k: v for k, v in convert_clip_to_ldm(te).items()})

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out), metadata={"format": "pt"})
    return out
