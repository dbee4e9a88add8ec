"""Keeps loaded models in a bounded LRU cache (by bytes of weights). Loading itself is the loader registry's.

The manager asks its `loaders` (backends.loaders.ModelLoaders, given by the container) for a model by its spec and
never chooses a loader or imports a model library. A second job on a warm model pays no load. Models in use are
never evicted; eviction happens when a use ends.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from zhike.core.errors import ModelError
from zhike.core.specs import Catalog, ModelSpec

# How a load error names the model to the user ("could not load model 'x': ...").
_WORDS = {"checkpoint": "model", "controlnet": "ControlNet", "matting": "matting model"}


class Loaders(Protocol):
    """What the manager needs from the loader registry (backends.loaders.ModelLoaders)."""

    @property
    def device(self) -> str: ...

    def load(self, spec: ModelSpec) -> Any: ...

    def release(self) -> None: ...


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0


class ModelManager:
    def __init__(self, catalog: Catalog, loaders: Loaders, *, cache_bytes: int) -> None:
        self.catalog = catalog
        self.loaders = loaders
        self.cache_bytes = cache_bytes
        self.stats = CacheStats()
        self._cache: OrderedDict[str, Any] = OrderedDict()  # key -> loaded object with .nbytes
        self._identity: dict[str, ModelSpec] = {}
        self._in_use: dict[str, int] = {}
        self._lock = threading.RLock()
        self._load_locks: dict[str, threading.Lock] = {}

    @property
    def device(self) -> str:
        return self.loaders.device

    def cached_names(self) -> list[str]:
        """Names of the models that are loaded (catalogue models and built-in ones such as the face mesh)."""
        with self._lock:
            return [self._identity[k].name for k in self._cache]

    def cached_bytes(self) -> int:
        with self._lock:
            return sum(m.nbytes for m in self._cache.values())

    def spec(self, name: str, *, kind: str, field: str = "model") -> ModelSpec:
        """The catalogue's spec for `name`, which must be of `kind` (a LoRA named as a checkpoint fails here)."""
        spec = self.catalog.get(name, field=field)
        if spec.kind != kind:
            raise ModelError(
                f"{name!r} is a {spec.kind}, not a {kind}",
                field=field,
                code="model_wrong_kind",
                ctx={"name": name, "kind": spec.kind, "expected": kind},
            )
        return spec

    def use_named(self, name: str, *, kind: str, field: str = "model") -> Any:
        """`use(spec(name, kind=kind))`: a context manager yielding the loaded catalogue model."""
        return self.use(self.spec(name, kind=kind, field=field))

    @contextmanager
    def use(self, spec: ModelSpec) -> Iterator[Any]:
        """Yield the loaded model for `spec`, loaded once through the loader registry and then cached.

        The spec is compared on a hit: a re-registered model with other files is loaded again. Objects in use are
        never evicted; eviction runs when a use ends.
        """
        key = f"{spec.kind}:{spec.name}"
        loaded = self._get_or_load(key, lambda: self.loaders.load(spec), spec)
        with self._lock:
            self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            yield loaded
        finally:
            with self._lock:
                self._in_use[key] -= 1
                self._evict()

    def _get_or_load(self, key: str, load: Callable[[], Any], spec: ModelSpec) -> Any:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and self._identity.get(key) == spec:
                self._cache.move_to_end(key)
                self.stats.hits += 1
                return hit
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        with load_lock:  # two jobs asking for the same cold model load it once
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None and self._identity.get(key) == spec:
                    self.stats.hits += 1
                    return hit
            try:
                loaded = load()
            except ModelError:
                raise
            except Exception as e:
                what = _WORDS.get(spec.kind, spec.kind)
                raise ModelError(
                    f"could not load {what} {spec.name!r}: {e}",
                    code="model_load_failed",
                    field="model",
                    ctx={"name": spec.name},
                ) from e
            with self._lock:
                self.stats.misses += 1
                self._cache[key] = loaded
                self._identity[key] = spec
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
            self.loaders.release()

    def unload_all(self) -> None:
        with self._lock:
            self._cache.clear()
            self._identity.clear()
            gc.collect()
            self.loaders.release()
