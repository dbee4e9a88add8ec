"""Loads models through the backends and keeps them in a bounded LRU cache (by bytes of weights).

A second job on a warm model pays no load. Models in use are never evicted; eviction happens when a use ends.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhike.core.errors import ModelError
from zhike.models.catalog import LOADABLE, ModelCatalog
from zhike.models.specs import ModelSpec


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
        self._cache: OrderedDict[str, Any] = OrderedDict()  # name -> backends LoadedPipeline
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
        with self._lock:
            return list(self._cache)

    def cached_bytes(self) -> int:
        with self._lock:
            return sum(m.nbytes for m in self._cache.values())

    @contextmanager
    def use_pipeline(self, name: str) -> Iterator[Any]:
        """Yield a loaded pipeline for the named checkpoint, loading it once and caching it."""
        spec = self.catalog.get(name, field="model")
        if (spec.kind, spec.family) not in LOADABLE:
            raise ModelError(
                f"model {name!r} is a {spec.family} {spec.kind}; image generation loads SD 1.5 and SDXL checkpoints",
                field="model",
            )
        loaded = self._get_or_load(spec)
        with self._lock:
            self._in_use[name] = self._in_use.get(name, 0) + 1
        try:
            yield loaded
        finally:
            with self._lock:
                self._in_use[name] -= 1
                self._evict()

    def _get_or_load(self, spec: ModelSpec) -> Any:
        with self._lock:
            hit = self._cache.get(spec.name)
            if hit is not None and hit.spec == spec:
                self._cache.move_to_end(spec.name)
                self.stats.hits += 1
                return hit
            load_lock = self._load_locks.setdefault(spec.name, threading.Lock())
        with load_lock:  # two jobs asking for the same cold model load it once
            with self._lock:
                hit = self._cache.get(spec.name)
                if hit is not None and hit.spec == spec:
                    self.stats.hits += 1
                    return hit
            from zhike.backends.diffusion import load_pipeline

            try:
                loaded = load_pipeline(
                    spec, device=self.device, offload=self.cpu_offload, configs_root=self.configs_root
                )
            except ModelError:
                raise
            except Exception as e:
                raise ModelError(f"could not load model {spec.name!r} from {spec.path}: {e}", field="model") from e
            with self._lock:
                self.stats.misses += 1
                self._cache[spec.name] = loaded
                self._cache.move_to_end(spec.name)
            return loaded

    def _evict(self) -> None:
        """Drop least-recently-used idle models until the cache fits its budget."""
        freed = False
        while self.cached_bytes() > self.cache_bytes:
            idle = [n for n in self._cache if not self._in_use.get(n)]
            if not idle:
                break
            self._cache.pop(idle[0])
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
