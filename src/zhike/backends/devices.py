"""Device choice, made at run time (never at import)."""

from __future__ import annotations

import torch


def resolve_device(setting: str) -> str:
    if setting == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("ZHIKE_DEVICE=cuda but no CUDA device is available")
        return "cuda"
    if setting == "cpu":
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def dtype_for(device: str) -> torch.dtype:
    # fp16 on GPU halves memory; CPU kernels are fastest and exact in fp32.
    return torch.float16 if device == "cuda" else torch.float32
