"""CPU int8 for local chat models: torch's dynamic quantisation of the Linear layers, cached on disk.

On a CPU a chat model's decoding is bound by reading its weights: int8 reads a quarter of fp32's bytes and half of
bf16's, and torch's int8 matmuls (fbgemm) do not need bf16 units, which most CPUs lack (there bf16 is emulated and
slower than fp32). Measured on the 2-core AVX2 EPYC (docs/WORDS.md): int8 4-7x the tokens/s of bf16, ~13x faster
on the prompt. Weights are int8 per output channel, activations quantised per call; the embedding stays fp32 in memory.

Quantising the 1.5B embedded model takes 1-2 min, so its result is saved ONCE beside the source folder as a plain
`state_dict` (torch.save; read back with `weights_only=True`: tensors, no code) in a file named by the torch version
and the source files (a torch upgrade, whose packed format may differ, or a re-converted source makes a new one).
Its float tensors are stored as the source held them (bf16 for the embedded model; exact, since they were bf16
before) and widened to fp32 when read: 2.4 GB instead of 3.6 for the embedded model.
A later load builds the quantised skeleton without weights (parameters on the meta device) and assigns the saved
tensors: no quantising, no fp32 copy in memory (torch re-packing the int8 weights is most of such a load). The file
is written under a temporary name and renamed into place under a file lock, like the GGUF conversion.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, Literal

import torch
import torch.ao.nn.quantized.dynamic as nnqd
from accelerate import init_empty_weights
from torch.ao.quantization import per_channel_dynamic_qconfig
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

from zhike.backends.llm.files import file_lock

Quantize = Literal["auto", "int8", "off"]
FORMAT = 2  # what the saved file holds; bump when that changes (old files are then rebuilt, never misread)
# Layers kept in float (name suffixes). Measured on the embedded Qwen (docs/WORDS.md): the MLPs' down_proj reads the
# SwiGLU product, whose outliers int8 activations clip; keeping it fp32 lifts next-token agreement with fp32 from
# 57% to 79% for 3.9 instead of ~5 tokens/s on 2 cores (bf16: 0.7).
KEEP_FLOAT: tuple[str, ...] = ("mlp.down_proj",)
quantised_count = 0  # models quantised in this process (tests tell a cached load from a fresh one by it)


def wants_int8(setting: Quantize, device: str) -> bool:
    """int8 on every CPU unless set "off"; never on a GPU (fp16/bf16 there)."""
    return device == "cpu" and setting != "off"


def is_int8(model: torch.nn.Module) -> bool:
    return any(isinstance(m, nnqd.Linear) for m in model.modules())


def packed_nbytes(model: torch.nn.Module) -> int:
    """The int8 layers' weights, which are neither parameters nor buffers (for the model cache's budget)."""
    return sum(
        m.in_features * m.out_features + m.out_features * 12 for m in model.modules() if isinstance(m, nnqd.Linear)
    )


def _linears(model: torch.nn.Module) -> list[tuple[str, torch.nn.Linear]]:
    return [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and not any(n.endswith(k) for k in KEEP_FLOAT)
    ]


def _swap(model: torch.nn.Module, name: str, new: torch.nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)


def quantize(model: Any) -> Any:
    """`model` (fp32 or bf16) with its Linear layers int8, in place: each float layer is freed as it is replaced."""
    global quantised_count
    model.float()
    with warnings.catch_warnings():  # torch.ao's eager quantisation warns that it is deprecated for torchao
        warnings.simplefilter("ignore")
        for name, linear in _linears(model):
            linear.qconfig = per_channel_dynamic_qconfig
            _swap(model, name, nnqd.Linear.from_float(linear))
    gc.collect()
    quantised_count += 1
    return model


def _stem(folder: Path, where: Path) -> str:
    """The start of the int8 file's name: the folder's name, plus a hash of its path where several sources share
    `where` (two users' models both called "model" keep a file each)."""
    if folder.resolve().parent == where.resolve():
        return folder.name
    return f"{folder.name}-{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]}"


def cache_file(folder: Path, where: Path) -> Path:
    """The int8 file for source `folder`, in directory `where`: named by torch's version, this file format, what
    is kept in float and the source files' names, sizes and times (no hashing of GBs at every load)."""
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".json") and p.is_file())
    ident = json.dumps(
        [torch.__version__, FORMAT, KEEP_FLOAT, [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]]
    )
    key = hashlib.sha256(ident.encode()).hexdigest()[:12]
    return where / f"{_stem(folder, where)}.int8-torch{torch.__version__.split('+')[0]}-{key}.pt"


def is_cached(folder: Path, where: Path) -> bool:
    return cache_file(folder, where).is_file()


def _skeleton(folder: Path) -> Any:
    """The model's int8 structure with no weights read: parameters on the meta device (buffers such as the rotary
    frequencies are real), Linear layers as empty int8 ones, ready for `load_state_dict(assign=True)`."""
    config = AutoConfig.from_pretrained(folder)
    with init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with warnings.catch_warnings():  # torch.ao's deprecation notice, as in `quantize`
        warnings.simplefilter("ignore")
        for name, linear in _linears(model):
            # Made 1x1 and given its real size after: a full-size empty layer would be packed now for nothing
            # (12 s for the embedded model); load_state_dict packs the saved weights once.
            empty = nnqd.Linear(1, 1, bias_=linear.bias is not None)
            empty.in_features, empty.out_features = linear.in_features, linear.out_features
            _swap(model, name, empty)
    with suppress(OSError):  # a folder without generation_config.json keeps the config's own defaults
        model.generation_config = GenerationConfig.from_pretrained(folder)
    return model


def _read(folder: Path, path: Path) -> Any:
    model = _skeleton(folder)
    state = torch.load(path, weights_only=True, mmap=True)
    state = _mapped(state, lambda v: v.float() if isinstance(v, torch.Tensor) and v.dtype in _NARROW else v)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


_NARROW = (torch.bfloat16, torch.float16)


def _mapped(state: Any, fn: Callable[[Any], Any]) -> Any:
    """`state` with `fn` applied to each value, keeping its `_metadata`: the int8 layers' format version is there,
    and without it torch reads them as the old layout."""
    out = OrderedDict((k, fn(v)) for k, v in state.items())
    out._metadata = getattr(state, "_metadata", None)  # type: ignore[attr-defined]
    return out


def _narrowed(tensor: Any, dtype: torch.dtype) -> Any:
    """`tensor` in the source's narrower float type where that loses nothing (its values came from there)."""
    if dtype not in _NARROW or not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.float32:
        return tensor
    narrow = tensor.to(dtype)
    return narrow if torch.equal(narrow.float(), tensor) else tensor


def _write(model: Any, path: Path, source_dtype: torch.dtype) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        torch.save(_mapped(model.state_dict(), lambda v: _narrowed(v, source_dtype)), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_int8(folder: Path, where: Path, source: Any | None = None) -> tuple[Any, bool]:
    """The int8 model of safetensors `folder`, and whether it was quantised now (False: read from the cache in
    `where`). `source`: that folder's model already in memory (just converted from a GGUF), quantised in place."""
    path = cache_file(folder, where)
    if path.is_file():
        return _read(folder, path), False
    stem = _stem(folder, where)
    with file_lock(path.with_name(f"{stem}.int8.lock")):
        if path.is_file():  # another process wrote it meanwhile
            return _read(folder, path), False
        for stale in where.glob(f"{stem}.int8-*"):  # older torch, changed source, a crash's temporary
            stale.unlink(missing_ok=True)
        model = source if source is not None else AutoModelForCausalLM.from_pretrained(folder, dtype="auto")
        source_dtype = next(model.parameters()).dtype
        quantize(model.eval())
        _write(model, path, source_dtype)
        return model, True
