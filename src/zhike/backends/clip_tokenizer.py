"""Write the real CLIP BPE tokenizer files without touching the network.

Every Stable Diffusion family uses OpenAI's CLIP tokenizer (SDXL's second tokenizer only pads
differently). Instead of shipping a 2 MB vocab we rebuild ``vocab.json``/``merges.txt`` from the
BPE merges file that ``open_clip_torch`` already ships, the same way CLIP's own ``SimpleTokenizer``
does, so token ids match the published tokenizer exactly.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import json
from functools import cache
from pathlib import Path

BPE_FILENAME = "bpe_simple_vocab_16e6.txt.gz"
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
MODEL_MAX_LENGTH = 77
VOCAB_SIZE = 49408
# CLIP keeps the first 49152 - 256 - 2 merges (256 byte symbols and 2 special tokens fill the rest).
_NUM_MERGES = 49152 - 256 - 2

_MISSING_MSG = (
    "The CLIP tokenizer is rebuilt from open_clip's BPE file, but open_clip_torch is not installed. "
    "Install it with: pip install --no-deps open_clip_torch"
)


def _bpe_path() -> Path:
    """Locate open_clip's merges file without importing open_clip (it needs torchvision)."""
    try:
        files = importlib.metadata.files("open_clip_torch") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == BPE_FILENAME:
            located = Path(str(f.locate()))
            if located.is_file():
                return located
    # Fallback for installs without a RECORD file: find_spec only locates the package, it does
    # not execute open_clip/__init__.py.
    spec = importlib.util.find_spec("open_clip")
    if spec is not None:
        for loc in spec.submodule_search_locations or []:
            candidate = Path(loc) / BPE_FILENAME
            if candidate.is_file():
                return candidate
    raise RuntimeError(_MISSING_MSG)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-to-printable-unicode table (byte order matters: it fixes the first ids)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


@cache
def _vocab_and_merges() -> tuple[dict[str, int], tuple[str, ...]]:
    lines = gzip.decompress(_bpe_path().read_bytes()).decode("utf-8").split("\n")
    merges = tuple(lines[1 : _NUM_MERGES + 1])  # line 0 is the "#version" header
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    tokens += ["".join(m.split()) for m in merges]
    tokens += [BOS_TOKEN, EOS_TOKEN]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:
        raise RuntimeError(f"Rebuilt CLIP vocab has {len(vocab)} entries, expected {VOCAB_SIZE}")
    return vocab, merges


def write_clip_tokenizer(dest: Path, pad_token: str = EOS_TOKEN) -> Path:
    """Write a transformers ``CLIPTokenizer`` folder into ``dest`` and return it.

    ``pad_token`` is ``<|endoftext|>`` for SD1.x/SDXL's first tokenizer and ``"!"`` for SDXL's
    second (OpenCLIP) tokenizer, which matters because SDXL pools the padded sequence.
    """
    vocab, merges = _vocab_and_merges()
    if pad_token not in vocab:
        raise ValueError(f"pad_token {pad_token!r} is not in the CLIP vocabulary")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (dest / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special = {"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "unk_token": EOS_TOKEN, "pad_token": pad_token}
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MODEL_MAX_LENGTH,
        "do_lower_case": True,
        "add_prefix_space": False,
        "errors": "replace",
        **special,
    }
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (dest / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    return dest
