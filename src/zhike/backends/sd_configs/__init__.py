"""Bundled diffusers configs for the checkpoint families Zhike can load from a single file.

diffusers' ``from_single_file`` needs a diffusers-layout config folder to build the pipeline
skeleton; without one it tries to download it from the Hub. Zhike ships the JSON configs of the
reference repos (runwayml/stable-diffusion-v1-5, stabilityai/stable-diffusion-xl-base-1.0) as
package data and materialises a complete folder (plus generated CLIP tokenizers) in a cache
directory, so single-file loading works fully offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from zhike.backends.clip_tokenizer import write_clip_tokenizer

SUPPORTED_FAMILIES: tuple[str, ...] = ("sd15", "sdxl")

# tokenizer folder -> pad token. SDXL's second (OpenCLIP) tokenizer pads with "!".
_TOKENIZERS: dict[str, dict[str, str]] = {
    "sd15": {"tokenizer": "<|endoftext|>"},
    "sdxl": {"tokenizer": "<|endoftext|>", "tokenizer_2": "!"},
}
_MARKER = ".zhike-config-complete"
# Bump when the generated (non-JSON) part of the folder changes, e.g. tokenizer files.
_LAYOUT_VERSION = "1"


def _bundled_root(family: str) -> Traversable:
    if family not in SUPPORTED_FAMILIES:
        raise ValueError(f"Unknown model family {family!r}; supported: {', '.join(SUPPORTED_FAMILIES)}")
    return resources.files(__name__).joinpath(family)


def _bundled_files(family: str) -> dict[str, bytes]:
    """Relative posix path -> content of every bundled JSON file of the family."""
    out: dict[str, bytes] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
            elif child.name.endswith(".json"):
                out[rel] = child.read_bytes()

    walk(_bundled_root(family), "")
    if "model_index.json" not in out:
        raise RuntimeError(f"Bundled config for {family!r} is incomplete (no model_index.json)")
    return out


def _fingerprint(files: dict[str, bytes], family: str) -> str:
    h = hashlib.sha256(f"{_LAYOUT_VERSION}:{family}".encode())
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + files[rel] + b"\0")
    h.update(json.dumps(_TOKENIZERS[family], sort_keys=True).encode())
    return h.hexdigest()


def _is_complete(dest: Path, fingerprint: str) -> bool:
    marker = dest / _MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8").strip() == fingerprint


def family_config_dir(family: str, cache_root: Path) -> Path:
    """Return ``cache_root/<family>``, a complete diffusers config folder (no weights).

    Built once, then reused; it is rebuilt when the bundled configs change (a fingerprint marker
    records what was written). The folder is assembled in a temporary sibling and renamed into
    place, so concurrent callers never see a half-written config.
    """
    files = _bundled_files(family)
    fingerprint = _fingerprint(files, family)
    cache_root = Path(cache_root)
    dest = cache_root / family
    if _is_complete(dest, fingerprint):
        return dest

    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{family}-", dir=cache_root))
    try:
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for folder, pad in _TOKENIZERS[family].items():
            write_clip_tokenizer(tmp / folder, pad_token=pad)
        (tmp / _MARKER).write_text(fingerprint, encoding="utf-8")

        if dest.exists() and not _is_complete(dest, fingerprint):
            # Stale or partial folder from an older version: move it aside before replacing.
            stale = cache_root / f".{family}-stale-{uuid.uuid4().hex}"
            try:
                os.replace(dest, stale)
            except FileNotFoundError:
                pass  # another process removed it first
            else:
                shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, dest)
        except OSError:
            # Another caller won the race; its folder is as good as ours.
            if not _is_complete(dest, fingerprint):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


__all__ = ["SUPPORTED_FAMILIES", "family_config_dir"]
