"""LoRA adapters on a warm base pipeline: load once, switch per job, never reload the base model.

Adapters are injected (PEFT) into the pipeline's modules - UNet and text encoder(s) - not into the pipeline object,
so every pipeline built over those modules with ``from_pipe`` (img2img, inpaint) sees what is active. The book-
keeping (which adapters are loaded, least recently used first) therefore lives on the UNet too.

Threading: a base pipeline's modules are shared by every job that uses the model, and the active adapter set is
module state. ``loras_applied`` holds a per-UNet lock from activation to deactivation, so two threads can never
interleave activate / generate / deactivate on the same modules. Today each process runs one job at a time (one
worker thread), so the lock is uncontended; base-only jobs should also run inside ``loras_applied(pipe, [])`` so a
future second worker thread cannot generate with another job's LoRA still active.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline
from safetensors import safe_open

from zhike.backends.checkpoint_inspect import CheckpointError, inspect_checkpoint, lora_structural_family
from zhike.core.errors import ModelError

MAX_LOADED = 8  # adapters kept per base model; a typical SD1.5 LoRA is 10-150 MB
_COMPONENTS = ("unet", "text_encoder", "text_encoder_2")
_FAMILY_NAMES = {"sd15": "SD 1.5", "sd2": "SD 2.x", "sdxl": "SDXL", "sd3": "SD3", "flux": "Flux"}
_REGISTRY_ATTR = "_zhike_loras"
_LOCK_ATTR = "_zhike_lora_lock"
_lock_guard = threading.Lock()


class LoraError(ModelError):
    """A LoRA file that cannot be applied to this model; the message names the file."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="params.loras")


@dataclass(frozen=True)
class _Loaded:
    path: Path
    stamp: tuple[int, int]  # (size, mtime_ns): a replaced file under the same name is loaded again


# --------------------------------------------------------------------------- public API


def activate_loras(
    pipe: DiffusionPipeline, loras: Sequence[tuple[str, Path, float]], *, max_loaded: int = MAX_LOADED
) -> None:
    """Make exactly ``loras`` (name, file, weight) active on ``pipe``; adapters already loaded are reused.

    Weight 0 means "off" (not even loaded). On any error the pipe is left deactivated (the exact base model):
    loading an adapter can enable LoRA layers it creates, so a half-done activation must not outlive the call.
    """
    wanted: OrderedDict[str, tuple[str, Path, float]] = OrderedDict()
    for name, path, weight in loras:
        if not math.isfinite(float(weight)):
            raise LoraError(f"LoRA {name!r}: weight must be a finite number, got {weight!r}")
        adapter = _adapter_name(name)
        if adapter in wanted:
            raise LoraError(f"LoRA {name!r} is listed twice; give it once with the combined weight")
        if float(weight) != 0.0:
            wanted[adapter] = (name, Path(path), float(weight))
    if len(wanted) > max_loaded:
        raise LoraError(f"{len(wanted)} LoRAs requested; at most {max_loaded} can be active at once")

    registry = _registry(pipe)
    try:
        for adapter, (name, path, _) in wanted.items():
            _ensure_loaded(pipe, registry, adapter, name, path, keep=set(wanted), max_loaded=max_loaded)
        if not wanted:
            deactivate_loras(pipe)
            return
        pipe.set_adapters(list(wanted), adapter_weights=[w for _, _, w in wanted.values()])
        pipe.enable_lora()
        _freeze_adapters(pipe)
    except BaseException:
        deactivate_loras(pipe)
        raise


def deactivate_loras(pipe: DiffusionPipeline) -> None:
    """Back to the exact base model; adapters stay loaded for the next job.

    ``disable_lora()`` flips PEFT's ``disable_adapters`` on every LoRA layer, whose forward then returns
    ``base_layer(x)`` and nothing else - the same op on the same tensors as the unwrapped layer.
    """
    if any(pipe.get_list_adapters().values()):
        pipe.disable_lora()


@contextmanager
def loras_applied(pipe: DiffusionPipeline, loras: Sequence[tuple[str, Path, float]]) -> Iterator[None]:
    """Activate ``loras`` for the body; always deactivate after (errors, cancellation, failed activation)."""
    with _lock(pipe):
        try:
            activate_loras(pipe, loras)
            yield
        finally:
            deactivate_loras(pipe)


def lora_nbytes(pipe: DiffusionPipeline) -> int:
    """Bytes held by the loaded adapters (all of them, active or not)."""
    total = 0
    for module in _modules(pipe).values():
        for pname, param in module.named_parameters():
            if "lora_" in pname:
                total += param.numel() * param.element_size()
    return total


def loaded_loras(pipe: DiffusionPipeline) -> list[str]:
    """Adapter names loaded on ``pipe``, least recently used first."""
    return list(_registry(pipe))


# --------------------------------------------------------------------------- loading


def _adapter_name(name: str) -> str:
    # PEFT stores adapters in nn.ModuleDicts: keys may not contain "." (model names often do).
    safe = re.sub(r"[^0-9A-Za-z_]", "_", name)[:48]
    return f"{safe}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def _registry(pipe: DiffusionPipeline) -> OrderedDict[str, _Loaded]:
    unet = pipe.unet
    registry = getattr(unet, _REGISTRY_ATTR, None)
    if registry is None:
        registry = OrderedDict()
        setattr(unet, _REGISTRY_ATTR, registry)
    return registry


def _lock(pipe: DiffusionPipeline) -> threading.RLock:
    with _lock_guard:
        lock = getattr(pipe.unet, _LOCK_ATTR, None)
        if lock is None:
            lock = threading.RLock()
            setattr(pipe.unet, _LOCK_ATTR, lock)
        return lock


def _modules(pipe: DiffusionPipeline) -> dict[str, torch.nn.Module]:
    return {c: m for c in _COMPONENTS if isinstance(m := getattr(pipe, c, None), torch.nn.Module)}


def _lora_file(path: Path) -> Path:
    """A diffusers LoRA folder (save_lora_weights) holds its weights in one .safetensors file."""
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        default = path / "pytorch_lora_weights.safetensors"
        return default if default in files else files[0] if len(files) == 1 else default
    return path


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _ensure_loaded(
    pipe: DiffusionPipeline,
    registry: OrderedDict[str, _Loaded],
    adapter: str,
    name: str,
    path: Path,
    *,
    keep: set[str],
    max_loaded: int,
) -> None:
    path = _lora_file(path)
    if not path.is_file():
        raise LoraError(f"LoRA {name!r}: file not found: {path}")
    stamp = _stamp(path)
    hit = registry.get(adapter)
    present = any(adapter in names for names in pipe.get_list_adapters().values())  # unless unloaded behind our back
    if hit is not None and hit.path == path and hit.stamp == stamp and present:
        registry.move_to_end(adapter)
        return
    if hit is not None:  # same name, other file or file changed on disk
        _delete(pipe, registry, adapter)
    _check_compatible(pipe, name, path)
    while len(registry) >= max_loaded:
        oldest = next((a for a in registry if a not in keep), None)
        if oldest is None:
            break
        _delete(pipe, registry, oldest)
    _load(pipe, adapter, name, path)
    registry[adapter] = _Loaded(path, stamp)


def _load(pipe: DiffusionPipeline, adapter: str, name: str, path: Path) -> None:
    from diffusers.loaders import StableDiffusionXLLoraLoaderMixin

    kwargs: dict[str, Any] = {"adapter_name": adapter}
    # The SD1.x loader maps LDM-named kohya keys (lora_unet_input_blocks_4_1_...) only when given the UNet
    # config; the SDXL loader passes it itself (and rejects a second copy).
    if not isinstance(pipe, StableDiffusionXLLoraLoaderMixin):
        kwargs["unet_config"] = pipe.unet.config
    # PEFT freezes every base parameter when it injects an adapter. requires_grad picks PyTorch's matmul path
    # for non-contiguous inputs (SDXL's linear proj_in), which changes results in the last bit even under
    # inference_mode, so restore the flags to keep the disabled model bit-identical to a never-LoRA one.
    flags = [(p, p.requires_grad) for m in _modules(pipe).values() for p in m.parameters()]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*peft_config.*multiple adapters", category=UserWarning)
            warnings.filterwarnings(
                "ignore", message="Adapter .* was active which is now deleted", category=UserWarning
            )
            pipe.load_lora_weights(str(path), **kwargs)
    except Exception as exc:
        with contextlib.suppress(Exception):  # best effort: the load error is the one to report
            _drop_partial(pipe, adapter)
        detail = str(exc) if len(str(exc)) <= 300 else str(exc)[:300] + "..."  # diffusers may list every key
        raise LoraError(
            f"LoRA {name!r} ({path.name}) could not be loaded (unsupported or corrupt file): {detail}"
        ) from exc
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)
    if not any(adapter in names for names in pipe.get_list_adapters().values()):
        _drop_partial(pipe, adapter)
        raise LoraError(f"LoRA {name!r} ({path.name}): none of its layers match this model")


def _delete(pipe: DiffusionPipeline, registry: OrderedDict[str, _Loaded], adapter: str) -> None:
    registry.pop(adapter, None)
    _drop_partial(pipe, adapter)


def _drop_partial(pipe: DiffusionPipeline, adapter: str) -> None:
    """Remove an adapter from whichever components hold it (a failed load may have reached only some)."""
    if not any(adapter in names for names in pipe.get_list_adapters().values()):
        return
    with warnings.catch_warnings():
        # PEFT warns when it re-points layers whose active adapter is deleted; activation sets them anyway.
        warnings.filterwarnings("ignore", message="Adapter .* was active which is now deleted", category=UserWarning)
        pipe.delete_adapters([adapter])


def _freeze_adapters(pipe: DiffusionPipeline) -> None:
    # set_adapters() marks the active adapters trainable; we only infer, and a stable flag keeps numerics stable.
    for module in _modules(pipe).values():
        for pname, param in module.named_parameters():
            if "lora_" in pname and param.requires_grad:
                param.requires_grad_(False)


# --------------------------------------------------------------------------- compatibility checks


def _pipe_family(pipe: DiffusionPipeline) -> str:
    if getattr(pipe, "text_encoder_2", None) is not None or pipe.unet.config.get("addition_embed_type") == "text_time":
        return "sdxl"
    return "sd2" if pipe.unet.config.get("cross_attention_dim") == 1024 else "sd15"


def _context_width(shapes: dict[str, tuple[int, ...]]) -> int | None:
    """Text-embedding width the LoRA's cross-attention key projection reads (in-features of its down matrix)."""
    for key, shape in shapes.items():
        k = key.replace(".", "_")
        if (
            "attn2" in k
            and ("to_k" in k or "to_v" in k)
            and (k.endswith("lora_down_weight") or k.endswith("lora_A_weight"))
        ):
            return shape[-1] if len(shape) == 2 else None
    return None


def _check_compatible(pipe: DiffusionPipeline, name: str, path: Path) -> None:
    label = f"LoRA {name!r} ({path.name})"
    try:
        info = inspect_checkpoint(path)
    except CheckpointError as exc:
        raise LoraError(f"{label}: {exc}") from exc
    if info.kind != "lora":
        what = {"checkpoint": "a full model checkpoint", "controlnet": "a ControlNet", "vae": "a VAE"}.get(info.kind)
        hint = f"it is {what}; register it as such" if what else f"its tensors are not LoRA layers ({info.notes})"
        raise LoraError(f"{label} is not a LoRA: {hint}")
    with safe_open(str(path), framework="pt") as handle:
        shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
    if any(marker in k for k in shapes for marker in (".hada_w", ".lokr_w", ".oft_")):
        raise LoraError(
            f"{label} is a LyCORIS adapter (LoHa/LoKr/OFT); only plain LoRA files (lora_down/lora_up or "
            "lora_A/lora_B) are supported"
        )
    base = _pipe_family(pipe)
    family = info.family if info.family != "unknown" else lora_structural_family(list(shapes))
    width = _context_width(shapes)
    expected_width = pipe.unet.config.get("cross_attention_dim")
    wrong_width = width is not None and width != expected_width
    wants_te2 = any(k.startswith(("lora_te2_", "text_encoder_2.")) for k in shapes)
    wrong_te2 = wants_te2 and getattr(pipe, "text_encoder_2", None) is None
    if (family not in ("unknown", base)) or wrong_width or wrong_te2:
        lora_family = _FAMILY_NAMES.get(family, "another model family")
        raise LoraError(
            f"{label} is for {lora_family} models and cannot be applied to this {_FAMILY_NAMES.get(base, base)} "
            "model; choose a LoRA trained for the same base model family"
            + (f" (its cross-attention width is {width}, the model's is {expected_width})" if wrong_width else "")
        )


__all__ = [
    "MAX_LOADED",
    "LoraError",
    "activate_loras",
    "deactivate_loras",
    "lora_nbytes",
    "loaded_loras",
    "loras_applied",
]
