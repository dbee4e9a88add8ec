"""Loads models through the backends and keeps them in a bounded LRU cache (by bytes of weights).

A second job on a warm model pays no load. Models in use are never evicted; eviction happens when a use ends.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zhike.core.errors import ModelError
from zhike.models.catalog import LOADABLE, ModelCatalog


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0


class ModelManager:
    def __init__(
        self,
        catalog: ModelCatalog,
        *,
        cache_bytes: int,
        device_setting: str,
        cpu_offload: bool,
        configs_root: Path,
    ) -> None:
        self.catalog = catalog
        self.cache_bytes = cache_bytes
        self.device_setting = device_setting
        self.cpu_offload = cpu_offload
        self.configs_root = configs_root
        self.stats = CacheStats()
        self._cache: OrderedDict[str, Any] = OrderedDict()  # key -> loaded object with .nbytes
        self._identity: dict[str, Any] = {}
        self._in_use: dict[str, int] = {}
        self._lock = threading.RLock()
        self._load_locks: dict[str, threading.Lock] = {}
        self._device: str | None = None

    @property
    def device(self) -> str:
        if self._device is None:
            from zhike.backends.devices import resolve_device

            self._device = resolve_device(self.device_setting)
        return self._device

    def cached_names(self) -> list[str]:
        """Names of the checkpoints whose pipelines are loaded."""
        with self._lock:
            return [k.removeprefix("pipeline:") for k in self._cache if k.startswith("pipeline:")]

    def cached_bytes(self) -> int:
        with self._lock:
            return sum(m.nbytes for m in self._cache.values())

    @contextmanager
    def use_pipeline(self, name: str) -> Iterator[Any]:
        """Yield a loaded pipeline (backends.diffusion.LoadedPipeline) for the named checkpoint."""
        spec = self.catalog.get(name, field="model")
        if (spec.kind, spec.family) not in LOADABLE:
            raise ModelError(
                f"model {name!r} is a {spec.family} {spec.kind}; image generation loads SD 1.5 and SDXL checkpoints",
                field="model",
            )

        def load() -> Any:
            from zhike.backends.diffusion import load_pipeline

            return load_pipeline(spec, device=self.device, offload=self.cpu_offload, configs_root=self.configs_root)

        with self.use(f"pipeline:{spec.name}", load, identity=spec, label=f"model {spec.name!r}") as loaded:
            yield loaded

    @contextmanager
    def use_controlnet(self, name: str, *, family: str, field: str = "model") -> Iterator[Any]:
        """Yield a loaded ControlNet (backends.controlnet.LoadedControlNet), cached like checkpoints.

        `family` is the base model's: it is assumed when the file's own family could not be read.
        """
        spec = self.catalog.get(name, field=field)
        if spec.kind != "controlnet":
            raise ModelError(
                f"{name!r} is a {spec.kind}, not a ControlNet",
                field=field,
                code="model_wrong_kind",
                ctx={"name": name, "kind": spec.kind, "expected": "controlnet"},
            )
        if spec.family == "unknown":
            spec = replace(spec, family=family)

        def load() -> Any:
            from zhike.backends.controlnet import load_controlnet
            from zhike.backends.devices import dtype_for

            return load_controlnet(spec, device=self.device, dtype=dtype_for(self.device))

        with self.use(f"controlnet:{spec.name}", load, identity=spec, label=f"ControlNet {spec.name!r}") as loaded:
            yield loaded

    @contextmanager
    def use(
        self, key: str, loader: Callable[[], Any], *, identity: Any = None, label: str | None = None
    ) -> Iterator[Any]:
        """Yield the cached object under `key`, loading it once with `loader()`.

        The object must have an `nbytes` attribute (what it holds in memory). `identity` (e.g. the ModelSpec)
        is compared on a hit: a re-registered model with other files is loaded again. Objects in use are never
        evicted; eviction runs when a use ends.
        """
        loaded = self._get_or_load(key, loader, identity, label or key)
        with self._lock:
            self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            yield loaded
        finally:
            with self._lock:
                self._in_use[key] -= 1
                self._evict()

    def _get_or_load(self, key: str, loader: Callable[[], Any], identity: Any, label: str) -> Any:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and self._identity.get(key) == identity:
                self._cache.move_to_end(key)
                self.stats.hits += 1
                return hit
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        with load_lock:  # two jobs asking for the same cold model load it once
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None and self._identity.get(key) == identity:
                    self.stats.hits += 1
                    return hit
            try:
                loaded = loader()
            except ModelError:
                raise
            except Exception as e:
                raise ModelError(f"could not load {label}: {e}", field="model") from e
            with self._lock:
                self.stats.misses += 1
                self._cache[key] = loaded
                self._identity[key] = identity
                self._cache.move_to_end(key)
            return loaded

    def _evict(self) -> None:
        """Drop least-recently-used idle models until the cache fits its budget."""
        freed = False
        while self.cached_bytes() > self.cache_bytes:
            idle = [n for n in self._cache if not self._in_use.get(n)]
            if not idle:
                break
            self._cache.pop(idle[0])
            self._identity.pop(idle[0], None)
            self.stats.evictions += 1
            freed = True
        if freed:
            gc.collect()
            if self._device == "cuda":
                import torch

                torch.cuda.empty_cache()

    def unload_all(self) -> None:
        with self._lock:
            self._cache.clear()
            gc.collect()
