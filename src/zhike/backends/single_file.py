"""Load A1111/ComfyUI/Civitai-style single-file Stable Diffusion checkpoints offline.

diffusers converts the original LDM key layout itself; what it cannot do offline is find the
pipeline skeleton (component configs, tokenizers, scheduler). We always hand it a local diffusers
config folder (``zhike.backends.sd_configs.family_config_dir`` or a user-supplied one) together
with ``local_files_only=True`` so nothing ever reaches for the Hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline, UNet2DConditionModel

from zhike.backends.checkpoint_inspect import CheckpointError, inspect_checkpoint
from zhike.backends.pipeline_classes import FAMILIES, LOAD_MODE_FOR_VARIANT, pipeline_class


class SingleFileLoadError(RuntimeError):
    """A single-file checkpoint could not be turned into a pipeline; message is user-facing."""


def load_single_file_pipeline(
    path: Path,
    family: str,
    config_dir: Path,
    torch_dtype: torch.dtype | None = None,
    *,
    variant: str | None = None,
    extra: dict[str, Any] | None = None,
) -> DiffusionPipeline:
    """Build a diffusers pipeline from one ``.safetensors`` checkpoint, fully offline.

    ``config_dir`` is a diffusers-layout folder without weights (model_index.json, component
    configs, tokenizers) describing the checkpoint's architecture. ``variant`` ("base" or
    "inpaint") picks the pipeline class and defaults to what the checkpoint's header says. A UNet
    whose input channels differ from the config (a 9-channel inpaint checkpoint with the stock
    text-to-image config) is built with the checkpoint's value.
    The safety checker is never loaded: it is not part of these files and needs a download.
    """
    path = Path(path)
    config_dir = Path(config_dir)
    families = list(FAMILIES)
    if family not in families:
        raise SingleFileLoadError(
            f"Loading {family!r} single-file checkpoints is not supported; supported: {', '.join(families)}"
        )
    if not (config_dir / "model_index.json").is_file():
        raise SingleFileLoadError(f"Config folder {config_dir} is not a diffusers layout (model_index.json missing).")
    # Header-only check first: gives clear errors for pickles, missing or truncated files.
    try:
        info = inspect_checkpoint(path)
    except CheckpointError as exc:
        raise SingleFileLoadError(str(exc)) from exc
    if info.format == "diffusers":
        raise SingleFileLoadError(f"{path} is a diffusers folder, not a single-file checkpoint.")
    if info.kind != "checkpoint":
        raise SingleFileLoadError(f"{path.name} is a {info.kind}, not a full model checkpoint.")
    if info.family not in (family, "unknown"):
        raise SingleFileLoadError(f"{path.name} looks like a {info.family} checkpoint, not {family}.")
    variant = variant or info.variant
    pipeline_cls = pipeline_class(family, LOAD_MODE_FOR_VARIANT.get(variant, variant))
    if pipeline_cls is None:
        raise SingleFileLoadError(f"{family} checkpoints of variant {variant!r} are not supported yet.")

    kwargs: dict[str, Any] = {
        "config": str(config_dir),
        "local_files_only": True,
        "torch_dtype": torch_dtype,
    }
    if family == "sd15":
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    kwargs.update(extra or {})  # e.g. add_watermarker=False

    try:
        unet_in = _config_in_channels(config_dir)
        if info.in_channels is not None and unet_in is not None and info.in_channels != unet_in:
            # Passing in_channels through from_single_file would also reach the VAE (same kwarg
            # name), so build the UNet alone and hand it to the pipeline.
            kwargs["unet"] = UNet2DConditionModel.from_single_file(
                str(path),
                config=str(config_dir),
                subfolder="unet",
                in_channels=info.in_channels,
                local_files_only=True,
                torch_dtype=torch_dtype,
            )
        return pipeline_cls.from_single_file(str(path), **kwargs)
    except Exception as exc:
        raise SingleFileLoadError(
            f"Could not load {path.name} as a {family} checkpoint using the config in {config_dir}: "
            f"{type(exc).__name__}: {str(exc).rstrip('.')}. If this is not a standard {family} model (different block "
            "sizes or text encoders), pass a diffusers config folder that matches its architecture."
        ) from exc


def _config_in_channels(config_dir: Path) -> int | None:
    cfg_path = config_dir / "unet" / "config.json"
    if not cfg_path.is_file():
        return None
    value = json.loads(cfg_path.read_text(encoding="utf-8")).get("in_channels")
    return value if isinstance(value, int) else None


__all__ = ["SingleFileLoadError", "load_single_file_pipeline"]
