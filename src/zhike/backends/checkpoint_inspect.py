"""Identify what a model file or folder is before trying to load it.

Users drop in files from Civitai, A1111 or ComfyUI folders, and diffusers repos. Loading the wrong
thing fails deep inside diffusers with an unhelpful shape error (or, for pickles, can run arbitrary
code), so we look at tensor names and a handful of shapes first. For ``.safetensors`` only the
header is read: a multi-GB checkpoint is inspected in milliseconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from safetensors import safe_open

from zhike.backends.llm.files import GGUF_SUFFIX, NotAnLlm, inspect_gguf, inspect_llm_folder, is_llm_folder
from zhike.backends.music import is_musicgen_folder, musicgen_problem

Format = Literal["diffusers", "single_file", "onnx", "transformers", "gguf"]
Kind = Literal[
    "checkpoint", "lora", "controlnet", "vae", "matting", "upscaler", "relight", "llm", "video", "music", "unknown"
]
Shapes = dict[str, tuple[int, ...]]

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
# Pickle-based formats: unpickling can execute code, so we never open them.
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")

_UNET = "model.diffusion_model."
_SD_IN_CONV = _UNET + "input_blocks.0.0.weight"
# Cross-attention context width of the UNet's first attention -> family (text encoder width).
_CONTEXT_DIM_FAMILY = {768: "sd15", 1024: "sd2", 2048: "sdxl", 1280: "sdxl_refiner"}
# SDXL UNets embed pooled text + size conditioning; the input width tells base from refiner.
_LABEL_EMB_FAMILY = {2816: "sdxl", 2560: "sdxl_refiner"}
_UNET_IN_CHANNELS_VARIANT = {4: "base", 9: "inpaint", 8: "instruct_pix2pix", 7: "upscale"}


class CheckpointError(ValueError):
    """A model file or folder Zhike cannot use; the message is meant for the end user."""


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    format: Format
    kind: Kind
    family: str  # sd15 | sd2 | sdxl | sdxl_refiner | sd3 | flux | unknown
    variant: str = "base"  # base | inpaint | instruct_pix2pix | depth | ...
    in_channels: int | None = None
    notes: str = ""


def inspect_checkpoint(path: Path) -> CheckpointInfo:
    """Classify a single-file checkpoint or a diffusers folder without loading any weights."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"Model not found: {path}")
    if path.is_dir():
        if (path / "model.onnx").is_file() and not (path / "model_index.json").is_file():
            return inspect_onnx(path / "model.onnx")
        if not (path / "model_index.json").is_file() and is_llm_folder(path):
            return _llm_info(path)
        if is_musicgen_folder(path):  # MusicGen (backends/music.py): text encoder + decoder + EnCodec in one config
            problem = musicgen_problem(path)
            if problem:
                raise CheckpointError(problem)
            return CheckpointInfo(path, "transformers", "music", "musicgen")
        return _inspect_diffusers_dir(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return inspect_onnx(path)
    if suffix == GGUF_SUFFIX:
        return _llm_info(path)
    if suffix in PICKLE_SUFFIXES:
        # Upscalers (ESRGAN & co.) mostly ship as .pth. Their tensor layout is read with weights_only onto the
        # meta device, which runs no code; anything that is not an upscaler is still refused.
        from zhike.backends.upscale import state_dict_shapes

        try:
            upscaler = _upscaler_info(path, state_dict_shapes(path))
        except Exception:  # noqa: BLE001 - unreadable or not a plain state dict: refuse as below
            upscaler = None
        if upscaler is not None:
            return upscaler
        raise CheckpointError(
            f"{path.name} is a pickle-based checkpoint ({suffix}). Zhike does not open pickles because "
            "loading them can run arbitrary code; convert it to .safetensors first (or download the "
            ".safetensors version of the model)."
        )
    if suffix not in SAFETENSORS_SUFFIXES:
        raise CheckpointError(
            f"{path.name}: unsupported model file type {suffix or '(no extension)'!r}; "
            "expected a .safetensors file or a diffusers folder."
        )
    shapes = _read_safetensors_header(path)
    return _classify_state_dict(path, shapes)


def inspect_onnx(path: Path) -> CheckpointInfo:
    """An ONNX matting net (ISNet, BiRefNet, RMBG exports): one NCHW image input with 3 (or dynamic) channels.

    onnxruntime reads the graph (no inference). The family picks the input normalisation: BiRefNet/RMBG-2 files
    were trained on ImageNet-normalised input, ISNet/RMBG-1.4 on (x-128)/256.
    """
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - any load failure means "not a usable ONNX model"
        raise CheckpointError(f"{path.name} is not a readable ONNX model: {exc}") from exc
    inputs = session.get_inputs()
    shape = inputs[0].shape if len(inputs) == 1 else []
    if len(shape) != 4 or shape[1] not in (3, None) and not isinstance(shape[1], str):
        raise CheckpointError(
            f"{path.name}: Zhike uses ONNX models for matting (one image input NCHW with 3 channels); this one "
            f"has inputs {[(i.name, i.shape) for i in inputs]}"
        )
    name = path.name.lower() + " " + path.parent.name.lower()
    family = "birefnet" if ("birefnet" in name or "rmbg-2" in name or "rmbg2" in name) else "isnet"
    return CheckpointInfo(path, "onnx", "matting", family, notes=f"input {shape}")


def _llm_info(path: Path) -> CheckpointInfo:
    """A chat model: a transformers causal-LM folder or a .gguf file (backends/llm/files.py)."""
    try:
        llm = inspect_gguf(path) if path.is_file() else inspect_llm_folder(path)
    except NotAnLlm as e:
        raise CheckpointError(str(e)) from e
    return CheckpointInfo(path, llm.format, "llm", llm.family, llm.variant, notes=llm.notes)


def _upscaler_info(path: Path, shapes: Shapes) -> CheckpointInfo | None:
    """An image upscaler (spandrel-recognised architecture, e.g. ESRGAN x4), or None."""
    from zhike.backends.upscale import inspect_upscaler

    up = inspect_upscaler(shapes)
    if up is None:
        return None
    return CheckpointInfo(
        path,
        "single_file",
        "upscaler",
        up.architecture.lower(),
        f"x{up.scale}",
        notes=f"{up.architecture} x{up.scale} upscaler",
    )


# --------------------------------------------------------------------------- single files


def _read_safetensors_header(path: Path) -> Shapes:
    """Return key -> shape from the header only; safe_open validates offsets against file size."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            # get_slice() reads no tensor data, so this stays cheap for multi-GB files.
            shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types (and OSError)
        raise CheckpointError(
            f"{path.name} is not a readable .safetensors file (truncated or corrupted download?): {exc}"
        ) from exc
    if not shapes:
        raise CheckpointError(f"{path.name} contains no tensors.")
    return shapes


def _shape(shapes: Shapes, key: str | None) -> tuple[int, ...] | None:
    return shapes.get(key) if key is not None else None


def _first(keys: Iterable[str], pred: Callable[[str], bool]) -> str | None:
    return next((k for k in keys if pred(k)), None)


def _classify_state_dict(path: Path, shapes: Shapes) -> CheckpointInfo:
    keys = list(shapes)
    single = "single_file"

    def info(
        kind: Kind, family: str, variant: str = "base", in_ch: int | None = None, notes: str = ""
    ) -> CheckpointInfo:
        return CheckpointInfo(path, single, kind, family, variant, in_ch, notes)

    # LoRA / LyCORIS adapters (kohya "lora_unet_*", diffusers/PEFT "lora_A", ".lora_down.").
    lora_markers = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_", "lora_transformer_")
    if any(k.startswith(lora_markers) or ".lora_down." in k or ".lora_A." in k or ".lora.down." in k for k in keys):
        return info("lora", _lora_family(keys, shapes), notes="LoRA adapter; apply on top of a base model")

    # ControlNet (original "control_model.*" or diffusers-style single file).
    # A1111 ControlNets: `control_model.*`, or the same keys without the prefix (input_hint_block, zero_convs);
    # diffusers-keyed single files: controlnet_cond_embedding.
    control_markers = ("control_model.", "controlnet_cond_embedding.", "input_hint_block.", "zero_convs.")
    if any(k.startswith(control_markers) for k in keys):
        return info("controlnet", _controlnet_family(keys, shapes))

    # SD3 / SD3.5 MMDiT.
    if any(k.startswith(("joint_blocks.", _UNET + "joint_blocks.")) for k in keys):
        return info("checkpoint", "sd3", notes="SD3 MMDiT transformer")

    # Flux (double/single stream blocks).
    if any(k.startswith(("double_blocks.", _UNET + "double_blocks.")) for k in keys):
        prefix = _UNET if _UNET + "img_in.weight" in shapes else ""
        in_shape = _shape(shapes, prefix + "img_in.weight")
        in_ch = in_shape[1] if in_shape and len(in_shape) == 2 else None
        variant = {384: "inpaint", 128: "depth"}.get(in_ch or 0, "base")
        has_guidance = any(k.startswith(prefix + "guidance_in.") for k in keys)
        notes = "Flux transformer (" + ("guidance-distilled, dev-style" if has_guidance else "schnell-style") + ")"
        return info("checkpoint", "flux", variant, in_ch, notes)

    # Stable Diffusion UNet checkpoints (SD1.x, SD2.x, SDXL, refiner).
    conv_in = shapes.get(_SD_IN_CONV)
    if conv_in is not None and len(conv_in) == 4:
        in_ch = conv_in[1]
        variant = _UNET_IN_CHANNELS_VARIANT.get(in_ch, "unknown")
        family, notes = _sd_family(keys, shapes)
        if variant == "unknown":
            notes = (notes + "; " if notes else "") + f"unusual UNet input channels: {in_ch}"
        return info("checkpoint", family, variant, in_ch, notes)

    # A VAE on its own (LDM or diffusers naming), not part of a full checkpoint.
    vae_prefixes = ("encoder.down.", "decoder.up.", "encoder.down_blocks.", "decoder.up_blocks.")
    if any(k.startswith(vae_prefixes) for k in keys) or (
        any(k.startswith("first_stage_model.") for k in keys) and not any(k.startswith(_UNET) for k in keys)
    ):
        prefix = "first_stage_model." if any(k.startswith("first_stage_model.") for k in keys) else ""
        z = _shape(shapes, prefix + "decoder.conv_in.weight")
        latent = z[1] if z and len(z) > 1 else None
        notes = f"standalone VAE, {latent}-channel latents" if latent else "standalone VAE"
        if latent == 4:
            notes += " (SD1.x/SD2/SDXL architecture; the weights do not say which)"
        elif latent == 16:
            notes += " (SD3/Flux architecture)"
        return info("vae", "unknown", notes=notes)

    # UNet/transformer saved in diffusers naming as one file (e.g. "unet/diffusion_pytorch_model").
    if "conv_in.weight" in shapes and any(k.startswith("down_blocks.") for k in keys):
        return info(
            "unknown",
            _context_family(shapes, _first(keys, lambda k: "attn2.to_k.weight" in k)),
            notes="bare UNet in diffusers naming; load it as part of a diffusers folder",
        )

    upscaler = _upscaler_info(path, shapes)
    if upscaler is not None:
        return upscaler
    return info("unknown", "unknown", notes="unrecognised tensor layout")


def _context_family(shapes: Shapes, key: str | None) -> str:
    """Family from the width of a cross-attention key projection (= text encoder width)."""
    shape = _shape(shapes, key)
    return _CONTEXT_DIM_FAMILY.get(shape[-1], "unknown") if shape else "unknown"


def _sd_family(keys: list[str], shapes: Shapes) -> tuple[str, str]:
    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    if has("conditioner.embedders.1.model."):
        return "sdxl", ""
    if has("conditioner.embedders.0.model.") and not has("conditioner.embedders.1."):
        return "sdxl_refiner", ""
    if has("cond_stage_model.model."):
        return "sd2", "SD2.x (v-prediction or epsilon cannot be told from the weights)"
    if has("cond_stage_model.transformer."):
        return "sd15", ""
    # Text encoders stripped (UNet-only export): fall back to UNet shapes.
    label = _shape(shapes, _UNET + "label_emb.0.0.weight")
    if label is not None:
        return _LABEL_EMB_FAMILY.get(label[-1], "unknown"), "no text encoder in file"
    family = _context_family(shapes, _first(keys, lambda k: k.startswith(_UNET) and "attn2.to_k.weight" in k))
    return family, "no text encoder in file"


def _lora_family(keys: list[str], shapes: Shapes) -> str:
    if any("double_blocks" in k or "single_transformer_blocks" in k or "single_blocks" in k for k in keys):
        return "flux"
    if any("joint_blocks" in k or "context_block" in k for k in keys):
        return "sd3"
    if any(k.startswith(("lora_te2_", "lora_te1_", "text_encoder_2.")) for k in keys):
        return "sdxl"
    # The down-projection of a cross-attention key LoRA reads the text embedding width.
    key = _first(
        keys,
        lambda k: (
            ("attn2" in k and "to_k" in k)
            and (".lora_down.weight" in k or ".lora_A.weight" in k or ".lora.down.weight" in k)
        ),
    )
    family = _context_family(shapes, key)
    return family if family != "unknown" else lora_structural_family(keys)


def lora_structural_family(keys: list[str]) -> str:
    """Family from block structure alone, for widths the inspector does not know (scaled-down test models)."""
    flat = [k.replace(".", "_") for k in keys]
    if any(k.startswith(("lora_te1_", "lora_te2_", "text_encoder_2_")) for k in flat):
        return "sdxl"
    # SD1.x/2.x have attention in the first down block; SDXL's first block has none but stacks transformers.
    if any("down_blocks_0_attentions" in k or re.search(r"input_blocks_[12]_1_", k) for k in flat):
        return "sd15"
    if any("transformer_blocks_1_" in k for k in flat):
        return "sdxl"
    return "unknown"


def _controlnet_family(keys: list[str], shapes: Shapes) -> str:
    if any(k.startswith(("control_model.label_emb.", "label_emb.", "add_embedding.")) for k in keys):
        return "sdxl"
    return _context_family(shapes, _first(keys, lambda k: "attn2.to_k.weight" in k))


# --------------------------------------------------------------------------- diffusers folders

_PIPELINE_FAMILY = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionImg2ImgPipeline": "sd",
    "StableDiffusionInpaintPipeline": "sd",
    "StableDiffusionInstructPix2PixPipeline": "sd",
    "StableDiffusionUpscalePipeline": "sd",
    "StableDiffusionDepth2ImgPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusionXLImg2ImgPipeline": "sdxl",
    "StableDiffusionXLInpaintPipeline": "sdxl",
    "StableDiffusionXLInstructPix2PixPipeline": "sdxl",
    "StableDiffusion3Pipeline": "sd3",
    "StableDiffusion3Img2ImgPipeline": "sd3",
    "StableDiffusion3InpaintPipeline": "sd3",
    "FluxPipeline": "flux",
    "FluxImg2ImgPipeline": "flux",
    "FluxInpaintPipeline": "flux",
    "FluxFillPipeline": "flux",
    "FluxControlPipeline": "flux",
}
_STANDALONE_CLASSES: dict[str, Kind] = {
    "ControlNetModel": "controlnet",
    "SD3ControlNetModel": "controlnet",
    "FluxControlNetModel": "controlnet",
    "AutoencoderKL": "vae",
}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return data


def _inspect_diffusers_dir(path: Path) -> CheckpointInfo:
    index_path = path / "model_index.json"
    if not index_path.is_file():
        # A standalone diffusers ControlNet/VAE folder has config.json instead of model_index.json.
        config_path = path / "config.json"
        if config_path.is_file():
            config = _read_json(config_path)
            cls = config.get("_class_name", "")
            if cls == "UNet2DConditionModel" and config.get("in_channels") in (8, 12):  # IC-Light fc / fbc
                family = _CONTEXT_DIM_FAMILY.get(config.get("cross_attention_dim"), "unknown")
                variant = "fc" if config["in_channels"] == 8 else "fbc"
                return CheckpointInfo(path, "diffusers", "relight", family, variant, config["in_channels"], cls)
            if cls == "MotionAdapter":  # AnimateDiff's motion modules: they animate an SD 1.5 checkpoint
                return CheckpointInfo(path, "diffusers", "video", "animatediff", notes=cls)
            if cls in _STANDALONE_CLASSES:
                family = _CONTEXT_DIM_FAMILY.get(config.get("cross_attention_dim"), "unknown")
                if config.get("addition_embed_type") == "text_time":  # SDXL's size/crop conditioning
                    family = "sdxl"
                return CheckpointInfo(path, "diffusers", _STANDALONE_CLASSES[cls], family, notes=cls)
        raise CheckpointError(
            f"{path} is a folder but not a diffusers model (no model_index.json). "
            "Pass the .safetensors file itself, or the folder that contains model_index.json."
        )
    index = _read_json(index_path)
    cls = str(index.get("_class_name", ""))
    if cls == "StableVideoDiffusionPipeline":  # image-to-video (the animate op), no text encoder
        return CheckpointInfo(path, "diffusers", "video", "svd", notes=cls)
    base = _PIPELINE_FAMILY.get(cls)
    if base is None:
        return CheckpointInfo(path, "diffusers", "unknown", "unknown", notes=f"unsupported pipeline {cls!r}")

    denoiser = "transformer" if base in ("sd3", "flux") else "unet"
    denoiser_cfg_path = path / denoiser / "config.json"
    denoiser_cfg = _read_json(denoiser_cfg_path) if denoiser_cfg_path.is_file() else {}
    in_ch = denoiser_cfg.get("in_channels")
    in_ch = in_ch if isinstance(in_ch, int) else None

    notes = cls
    if base == "sd":
        te_cfg_path = path / "text_encoder" / "config.json"
        hidden = _read_json(te_cfg_path).get("hidden_size") if te_cfg_path.is_file() else None
        family = "sd2" if hidden == 1024 or denoiser_cfg.get("cross_attention_dim") == 1024 else "sd15"
    elif base == "sdxl":
        # The refiner has only the OpenCLIP encoder (text_encoder is null in model_index).
        te = index.get("text_encoder")
        family = "sdxl_refiner" if not te or te[0] is None else "sdxl"
    else:
        family = base

    if "Inpaint" in cls or "Fill" in cls:
        variant = "inpaint"
    elif "InstructPix2Pix" in cls:
        variant = "instruct_pix2pix"
    elif "Upscale" in cls:
        variant = "upscale"
    elif "Depth2Img" in cls:
        variant = "depth"
    elif base in ("sd", "sdxl") and in_ch is not None:
        variant = _UNET_IN_CHANNELS_VARIANT.get(in_ch, "base")
    else:
        variant = "base"
    return CheckpointInfo(path, "diffusers", "checkpoint", family, variant, in_ch, notes)


__all__ = ["CheckpointError", "CheckpointInfo", "inspect_checkpoint"]
