"""ControlNets for SD 1.x and SDXL: load (diffusers folder or original single file) and build pipelines.

Users bring ControlNets as diffusers folders and as the single ``.safetensors`` files A1111/Civitai ship
(``control_model.input_blocks...``, ``zero_convs``, ``input_hint_block``; some without the prefix). Single
files are converted by diffusers against a local config folder, so nothing reaches for the Hub.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    ControlNetModel,
    DiffusionPipeline,
    MultiControlNetModel,
    StableDiffusionControlNetImg2ImgPipeline,
    StableDiffusionControlNetInpaintPipeline,
    StableDiffusionControlNetPipeline,
    StableDiffusionXLControlNetImg2ImgPipeline,
    StableDiffusionXLControlNetInpaintPipeline,
    StableDiffusionXLControlNetPipeline,
)
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from zhike.backends.checkpoint_inspect import CheckpointError, inspect_checkpoint
from zhike.backends.devices import dtype_for
from zhike.backends.library_logs import quiet_library_logs
from zhike.backends.loaders import LoadEnv, loader
from zhike.core.errors import InvalidInput, ModelError
from zhike.core.specs import ModelSpec

CONTROLNET_PIPELINES: dict[tuple[str, str], type[DiffusionPipeline]] = {
    ("sd15", "txt2img"): StableDiffusionControlNetPipeline,
    ("sd15", "img2img"): StableDiffusionControlNetImg2ImgPipeline,
    ("sd15", "inpaint"): StableDiffusionControlNetInpaintPipeline,
    ("sdxl", "txt2img"): StableDiffusionXLControlNetPipeline,
    ("sdxl", "img2img"): StableDiffusionXLControlNetImg2ImgPipeline,
    ("sdxl", "inpaint"): StableDiffusionXLControlNetInpaintPipeline,
}
CONTROLNET_FAMILIES = ("sd15", "sdxl")
# Keys only the original (LDM) ControlNet layout has; "control_model." is optional in the wild.
_LDM_MARKERS = ("input_hint_block.", "zero_convs.", "middle_block_out.")
_LDM_PREFIX = "control_model."


class ControlNetError(ModelError):
    """A ControlNet cannot be loaded or used; the message names the file and is meant for the user."""


@dataclass
class LoadedControlNet:
    model: ControlNetModel
    spec: ModelSpec
    nbytes: int


def bundled_config_dir(family: str) -> Path:
    """The packaged diffusers config of the family's reference ControlNet (a folder with config.json)."""
    if family not in CONTROLNET_FAMILIES:
        raise ControlNetError(f"ControlNets for {family!r} models are not supported; supported: sd15, sdxl")
    # Package data installed as plain files (wheel or editable), so a filesystem path exists.
    folder = Path(str(resources.files("zhike.backends.sd_configs").joinpath(f"controlnet_{family}")))
    if not (folder / "config.json").is_file():
        raise ControlNetError(f"Zhike's bundled ControlNet config for {family} is missing ({folder}).")
    return folder


# --------------------------------------------------------------------------- loading


def load_controlnet(spec: ModelSpec, *, device: str, dtype: torch.dtype) -> LoadedControlNet:
    """Load a registered ControlNet from disk (never from the network) onto ``device`` in ``dtype``."""
    quiet_library_logs()
    path = Path(spec.path)
    if spec.family not in CONTROLNET_FAMILIES:
        raise ControlNetError(f"{path.name}: ControlNets for {spec.family!r} models are not supported (sd15, sdxl).")
    try:
        info = inspect_checkpoint(path)
    except CheckpointError as exc:
        raise ControlNetError(str(exc), field="controlnet") from exc
    if path.is_dir():
        model = _load_folder(path, spec.family, info.kind, dtype)
    else:
        model = _load_file(path, spec, info.kind, dtype)
    model.to(device)
    model.eval()
    nbytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    return LoadedControlNet(model=model, spec=spec, nbytes=nbytes)


@loader(family=CONTROLNET_FAMILIES, kind="controlnet", format=("diffusers", "single_file"))
def _load_registered(spec: ModelSpec, env: LoadEnv) -> LoadedControlNet:
    return load_controlnet(spec, device=env.device, dtype=dtype_for(env.device))


def _check_family(name: str, family: str, is_sdxl: bool, width: int | None) -> None:
    # Only SDXL ControlNets embed pooled text + image sizes ("text_time"); the cross-attention width
    # (text encoder width) separates SD1.x (768) from SD2 (1024). Tiny test widths say nothing.
    found = "sdxl" if is_sdxl else {768: "sd15", 1024: "sd2"}.get(width or 0, "SD 1.x/2.x")
    if (family == "sdxl") != is_sdxl or found == "sd2":
        raise ControlNetError(
            f"{name} is a ControlNet for {found} models, not {family}; use it with a {found} base model.",
            field="controlnet",
        )


def _load_folder(path: Path, family: str, kind: str, dtype: torch.dtype) -> ControlNetModel:
    if kind != "controlnet":
        raise ControlNetError(f"{path.name} is a {kind}, not a ControlNet.", field="controlnet")
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))  # the inspector read it already
    cls = config.get("_class_name")
    if cls != "ControlNetModel":
        raise ControlNetError(
            f"{path.name} is a {cls}; only SD 1.x/SDXL ControlNets (ControlNetModel) are supported.",
            field="controlnet",
        )
    _check_family(
        path.name, family, config.get("addition_embed_type") == "text_time", config.get("cross_attention_dim")
    )
    try:
        return ControlNetModel.from_pretrained(str(path), local_files_only=True, dtype=dtype)
    except Exception as exc:
        raise ControlNetError(
            f"Could not load the ControlNet folder {path.name}: {type(exc).__name__}: {exc}", field="controlnet"
        ) from exc


def _header(path: Path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(path), framework="pt") as handle:
        return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118


def _load_file(path: Path, spec: ModelSpec, kind: str, dtype: torch.dtype) -> ControlNetModel:
    shapes = _header(path)  # already validated by inspect_checkpoint: readable, non-empty
    keys = list(shapes)
    # Files without the "control_model." prefix are not recognised by the inspector; their markers are.
    if kind != "controlnet" and not (kind == "unknown" and any(k.startswith(_LDM_MARKERS) for k in keys)):
        raise ControlNetError(f"{path.name} is a {kind}, not a ControlNet.", field="controlnet")
    is_sdxl = any(k.startswith(("add_embedding.", "label_emb.", _LDM_PREFIX + "label_emb.")) for k in keys)
    to_k = next((shapes[k] for k in keys if k.endswith("attn2.to_k.weight")), None)
    _check_family(path.name, spec.family, is_sdxl, to_k[-1] if to_k else None)

    config_dir = Path(spec.config_dir) if spec.config_dir else bundled_config_dir(spec.family)
    if not (config_dir / "config.json").is_file():
        raise ControlNetError(f"ControlNet config folder {config_dir} has no config.json.", field="config_dir")
    # diffusers 0.42 converts original-layout files but drops SDXL's label_emb (its text_time embedding):
    # convert those ourselves and hand diffusers the finished state dict.
    ldm_sdxl_prefix = next((p for p in (_LDM_PREFIX, "") if p + "label_emb.0.0.weight" in shapes), None)
    try:
        source: str | dict[str, torch.Tensor] = str(path)
        if ldm_sdxl_prefix is not None:
            source = _convert_ldm_sdxl(path, ldm_sdxl_prefix, config_dir)
        # On the meta device (low_cpu_mem_usage), a weight the file lacks fails the load instead of
        # silently keeping a random init.
        model = ControlNetModel.from_single_file(
            source, config=str(config_dir), local_files_only=True, dtype=dtype, low_cpu_mem_usage=True
        )
    except Exception as exc:
        raise ControlNetError(
            f"Could not load {path.name} as a {spec.family} ControlNet using the config in {config_dir}: "
            f"{_failure_reason(exc)}. "
            f"The file is incomplete, or it is not a standard {spec.family} ControlNet (different block sizes): "
            "then register it with a config folder (a config.json) matching its architecture.",
            field="controlnet",
        ) from exc
    return model


def _failure_reason(exc: Exception) -> str:
    """diffusers' load errors in the user's terms (its own advice, ignore_mismatched_sizes, does not apply)."""
    text = str(exc)
    shape = re.search(r"because (\S+) expected shape torch.Size\((\[.*?\])\), but got torch.Size\((\[.*?\])\)", text)
    if shape:
        name, expected, got = shape.groups()
        return f"{name} has shape {got} in the file but {expected} in the config"
    if "meta tensor" in text or "NoneType" in text:  # how diffusers 0.42 reports a weight the file lacks
        return "it lacks weights the config expects"
    return f"{type(exc).__name__}: {text.rstrip('.')}"


def _convert_ldm_sdxl(path: Path, prefix: str, config_dir: Path) -> dict[str, torch.Tensor]:
    """diffusers' own conversion of an original-layout SDXL ControlNet, plus the label_emb it leaves out."""
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    state = load_file(str(path))
    config = json.loads((config_dir / "config.json").read_text(encoding="utf-8"))
    converted = convert_controlnet_checkpoint(state, config)
    for new, old in (("linear_1", "label_emb.0.0"), ("linear_2", "label_emb.0.2")):
        for param in ("weight", "bias"):
            converted[f"add_embedding.{new}.{param}"] = state[f"{prefix}{old}.{param}"]
    return converted


# --------------------------------------------------------------------------- pipelines


def control_pipeline(
    base_pipe: DiffusionPipeline,
    family: str,
    mode: str,
    controlnets: Sequence[LoadedControlNet | ControlNetModel],
    *,
    scheduler: Any = None,
) -> DiffusionPipeline:
    """The ControlNet pipeline for ``mode`` over the base pipeline's components (nothing is copied or reloaded)."""
    cls = CONTROLNET_PIPELINES.get((family, mode))
    if cls is None:
        raise InvalidInput(f"ControlNet is not available for {family} {mode}.", field="controlnets")
    models = [c.model if isinstance(c, LoadedControlNet) else c for c in controlnets]
    if not models:
        raise InvalidInput("At least one ControlNet is needed.", field="controlnets")
    controlnet = models[0] if len(models) == 1 else MultiControlNetModel(models)
    extra: dict[str, Any] = {} if scheduler is None else {"scheduler": scheduler}
    if family == "sdxl":
        # Mirror the base pipeline: None would turn the watermark on whenever invisible-watermark is installed.
        extra["add_watermarker"] = getattr(base_pipe, "watermark", None) is not None
    # from_pipe casts every shared module to `dtype` (float32 by default) in place: keep the base's dtype.
    pipe = cls.from_pipe(base_pipe, controlnet=controlnet, dtype=base_pipe.dtype, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def control_call_kwargs(
    images: Sequence[Image.Image],
    scales: Sequence[float],
    starts: Sequence[float],
    ends: Sequence[float],
    width: int,
    height: int,
    *,
    mode: str,
) -> dict[str, Any]:
    """Pipeline call kwargs for one control image per ControlNet (same order as in ``control_pipeline``)."""
    n = len(images)
    if n == 0 or not (len(scales) == len(starts) == len(ends) == n):
        raise InvalidInput("Each ControlNet needs one image, weight, start and end.", field="controlnets")
    for start, end in zip(starts, ends, strict=True):
        if not 0.0 <= start < end <= 1.0:
            raise InvalidInput(f"ControlNet start/end {start}/{end}: need 0 <= start < end <= 1.", field="controlnets")
    resized = [_control_image(img, width, height) for img in images]
    # txt2img pipelines take the control image as `image`; img2img/inpaint use `image` for the init image.
    key = "image" if mode == "txt2img" else "control_image"
    one = n == 1  # a single ControlNetModel wants plain values, MultiControlNetModel wants lists
    return {
        key: resized[0] if one else resized,
        "controlnet_conditioning_scale": float(scales[0]) if one else [float(s) for s in scales],
        "control_guidance_start": float(starts[0]) if one else [float(s) for s in starts],
        "control_guidance_end": float(ends[0]) if one else [float(e) for e in ends],
    }


def _control_image(image: Image.Image, width: int, height: int) -> Image.Image:
    image = image.convert("RGB")
    return image if image.size == (width, height) else image.resize((width, height), Image.LANCZOS)


__all__ = [
    "CONTROLNET_PIPELINES",
    "ControlNetError",
    "LoadedControlNet",
    "bundled_config_dir",
    "control_call_kwargs",
    "control_pipeline",
    "load_controlnet",
]
