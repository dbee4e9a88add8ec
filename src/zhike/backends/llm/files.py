"""Tell a chat model's files from the other models users add: a transformers causal-LM folder or a .gguf file.

Reads only config.json / tokenizer_config.json, or the GGUF's header (the file is mapped; no tensor is read), so
`zhike models add` answers at once for a multi-GB file. What transformers cannot load is refused here with a
sentence the user can act on, not deep inside the first job.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

GGUF_SUFFIX = ".gguf"
_PICKLES = ("pytorch_model.bin", "model.bin")


class NotAnLlm(ValueError):
    """Files that look like a chat model but cannot be used as one; the message is for the end user."""


@dataclass(frozen=True)
class LlmFiles:
    format: Literal["transformers", "gguf"]
    family: str  # the architecture: qwen2, llama, gemma3...
    variant: str  # "instruct" when the files carry a chat template, else "base"
    notes: str = ""


def _config(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def is_llm_folder(folder: Path) -> bool:
    """A transformers model folder whose config names a causal language model (…ForCausalLM)."""
    config = _config(folder) if (folder / "config.json").is_file() else None
    archs = config.get("architectures") if config else None
    return isinstance(archs, list) and any(str(a).endswith("ForCausalLM") for a in archs)


def _folder_has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        cfg = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return bool(isinstance(cfg, dict) and cfg.get("chat_template"))


def inspect_llm_folder(folder: Path) -> LlmFiles:
    config = _config(folder) or {}
    family = str(config.get("model_type") or "unknown")
    if not any(folder.glob("*.safetensors")):
        pickled = [n for n in _PICKLES if (folder / n).is_file()]
        detail = f" (it has {pickled[0]}: Zhike does not open pickles, they can run code)" if pickled else ""
        raise NotAnLlm(f"{folder.name}: a {family} language model folder without .safetensors weights{detail}")
    if not any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        raise NotAnLlm(f"{folder.name}: a {family} language model folder without its tokenizer (tokenizer.json)")
    variant = "instruct" if _folder_has_chat_template(folder) else "base"
    return LlmFiles("transformers", family, variant, f"{config.get('architectures', ['?'])[0]}")


_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class _Header:
    """A plain reader of the GGUF header's documented layout (little-endian; a string is a u64 length + bytes). It
    steps over the 151k-token arrays of a Qwen tokenizer in a fraction of a second (gguf's own reader builds a numpy
    view per item and takes half a minute on 2 cores)."""

    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.pos = data, 0

    def read(self, fmt: str) -> Any:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.read("Q")
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        self.pos += n
        return self.data[self.pos - n : self.pos].decode("utf-8", "replace")

    def value(self, kind: int) -> Any:
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            return self.read(_SCALAR[kind])
        item, n = self.read("I"), self.read("Q")
        if item in _SCALAR:  # fixed-size items: stepped over at once
            self.pos += struct.calcsize("<" + _SCALAR[item]) * n
        else:
            for _ in range(n):
                self.value(item)
        return None  # arrays are not needed, only whether they are there


def gguf_metadata(path: Path) -> tuple[dict[str, Any], int]:
    """The GGUF header's key/values (arrays as None) and its tensor count."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"GGUF":
            raise ValueError("it does not start with the GGUF magic")
        h = _Header(data)
        h.pos = 4
        version, tensors, count = h.read("I"), h.read("Q"), h.read("Q")
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old")
        meta = {}
        for _ in range(count):
            key = h.string()
            meta[key] = h.value(h.read("I"))
        return meta, tensors


def inspect_gguf(path: Path) -> LlmFiles:
    try:
        meta, tensors = gguf_metadata(path)
    except (ValueError, KeyError, OSError, struct.error) as e:
        raise NotAnLlm(f"{path.name} is not a readable GGUF file (truncated or damaged download?): {e}") from e
    if "tokenizer.ggml.tokens" not in meta:
        raise NotAnLlm(f"{path.name}: this GGUF carries no tokenizer, so it cannot be used as a chat model")
    variant = "instruct" if "tokenizer.chat_template" in meta else "base"
    return LlmFiles("gguf", str(meta.get("general.architecture", "unknown")), variant, f"GGUF, {tensors} tensors")


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """One writer of a derived model file across processes (the API and a worker may both load a model first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
