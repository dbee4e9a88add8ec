"""The one registry of model loaders, keyed by (family, kind, format). The model manager asks it; no one else chooses.

A backend module declares what it loads beside the code that loads it:

    @loader(family=("sd15", "sdxl"), kind="checkpoint", format=("diffusers", "single_file"))
    def _load_checkpoint(spec: ModelSpec, env: LoadEnv) -> LoadedPipeline: ...

and is named in `BUILTIN_LOADER_MODULES`, imported on the first lookup (in the worker, never at API start), as
`core.registry` imports the operations. A loader returns any object with `nbytes` (what it holds in memory, for
the manager's cache budget). Lookup tries the exact key, then `"*"` for the format, then for the family: a
loader registered with family "*" serves every family of its kind.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from zhike.backends.speed import SpeedSettings
from zhike.core.errors import ModelError
from zhike.core.specs import ModelSpec

BUILTIN_LOADER_MODULES: tuple[str, ...] = (
    "zhike.backends.diffusion",
    "zhike.backends.controlnet",
    "zhike.backends.matting",
    "zhike.backends.upscale",
    "zhike.backends.face",
    "zhike.backends.preprocessors.hed",
    "zhike.backends.preprocessors.pose",
    "zhike.backends.safety_checker",
    "zhike.backends.relight",
    "zhike.backends.embeddings",
    "zhike.backends.llm.transformers_chat",
    "zhike.backends.asr",
    "zhike.backends.tts.piper",
    "zhike.backends.tts.kokoro",
    "zhike.backends.video_diffusion",
    "zhike.backends.music",
)
ANY = "*"


@dataclass(frozen=True)
class LoadEnv:
    """Where and how this process loads models (from Settings, resolved at the first load)."""

    device: str
    cpu_offload: bool = False
    configs_root: Path = Path()  # generated diffusers config folders for single-file checkpoints
    speed: SpeedSettings = field(default_factory=SpeedSettings)  # compile, and how (backends/speed.py)
    converted_root: Path = Path()  # users' GGUF chat models converted once to safetensors (backends/llm)
    llm_quantize: str = "auto"  # chat models on a CPU: "auto"/"int8" quantise to int8, "off" keeps bf16 (llm/int8.py)


Loader = Callable[[ModelSpec, LoadEnv], Any]
Key = tuple[str, str, str]  # (family, kind, format)
F = TypeVar("F", bound=Loader)
_registry: dict[Key, Loader] = {}
_builtins_lock = threading.Lock()
_builtins_loaded = False


def _names(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def loader(*, kind: str, family: str | tuple[str, ...] = ANY, format: str | tuple[str, ...] = ANY) -> Callable[[F], F]:  # noqa: A002
    """Register the decorated `(spec, env) -> loaded` function for every (family, kind, format) given."""

    def register(fn: F) -> F:
        for fam in _names(family):
            for fmt in _names(format):
                key = (fam, kind, fmt)
                if key in _registry and _registry[key] is not fn:
                    raise RuntimeError(f"two loaders for {key}: {_registry[key].__qualname__} and {fn.__qualname__}")
                _registry[key] = fn
        return fn

    return register


def _load_builtins() -> None:
    global _builtins_loaded
    with _builtins_lock:
        if not _builtins_loaded:
            for module in BUILTIN_LOADER_MODULES:
                importlib.import_module(module)
            _builtins_loaded = True


def registered() -> list[Key]:
    _load_builtins()
    return sorted(_registry)


def find_loader(spec: ModelSpec) -> Loader:
    """The loader for `spec`, or a ModelError naming the spec and what can be loaded instead."""
    _load_builtins()
    f, k, fmt = spec.family, spec.kind, spec.format
    for key in ((f, k, fmt), (f, k, ANY), (ANY, k, fmt), (ANY, k, ANY)):
        if key in _registry:
            return _registry[key]
    same_kind = sorted(f"{fam}/{form}" for fam, kind, form in _registry if kind == k)
    known = f"{k} loaders: {', '.join(same_kind)}" if same_kind else f"Zhike has no loader for {k} models"
    raise ModelError(f"cannot load {spec.name!r}: a {f} {k} in {fmt} format ({known})", field="model")


class ModelLoaders:
    """The registry bound to this process's device settings: what the container gives the ModelManager."""

    def __init__(
        self,
        *,
        device_setting: str = "auto",
        cpu_offload: bool = False,
        configs_root: Path = Path(),
        speed: SpeedSettings | None = None,
        converted_root: Path = Path(),
        llm_quantize: str = "auto",
    ) -> None:
        self.device_setting = device_setting
        self.cpu_offload = cpu_offload
        self.configs_root = configs_root
        self.speed = speed or SpeedSettings()
        self.converted_root = converted_root
        self.llm_quantize = llm_quantize
        self._device: str | None = None

    @property
    def device(self) -> str:
        if self._device is None:  # probed at the first load, never at import
            from zhike.backends.devices import resolve_device

            self._device = resolve_device(self.device_setting)
        return self._device

    def load(self, spec: ModelSpec) -> Any:
        env = LoadEnv(
            device=self.device,
            cpu_offload=self.cpu_offload,
            configs_root=self.configs_root,
            speed=self.speed,
            converted_root=self.converted_root,
            llm_quantize=self.llm_quantize,
        )
        return find_loader(spec)(spec, env)

    def release(self) -> None:
        """Give freed accelerator memory back after the manager dropped models."""
        if self._device == "cuda":
            import torch

            torch.cuda.empty_cache()
