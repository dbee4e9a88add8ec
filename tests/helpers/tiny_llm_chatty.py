"""A variant of the tiny random Qwen2 (tests/helpers/tiny_llm.py) that writes varied, long words, for tests that
need the model to *write* (a 10,000-character live script, translations that are not empty).

Why: with tied embeddings and tiny layers, the base model's last hidden state is close to the embedding of the last
input token, so its likeliest next token is that token again: it repeats the chat template's final "\\n" forever
(answers are whitespace). This variant unties the output layer (a random head of its own, so the next token depends
on the context) and makes whole-word ASCII tokens of 8+ letters likelier, so an answer is ~10 characters per token:
10,000 characters take ~1,000 tokens, seconds on a CPU. Same format, same tokenizer, same backend.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.helpers.tiny_llm import make_tiny_qwen2


def make_chatty_qwen2(directory: Path) -> Path:
    """The chatty model folder under `directory` (built once per directory from the base tiny model)."""
    import torch
    from safetensors.torch import load_file, save_file

    folder = directory / "tiny-qwen2-chatty"
    if (folder / "model.safetensors").is_file():
        return folder
    base = make_tiny_qwen2(directory, gguf=False)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base, tmp)
    weights = load_file(str(tmp / "model.safetensors"))
    emb = weights["model.embed_tokens.weight"]
    usable = emb.abs().sum(1) > 0  # the base zeroed special tokens and partial UTF-8 bytes: never written
    vocab = json.loads((tmp / "tokenizer.json").read_text())["model"]["vocab"]
    long_word = torch.zeros(emb.shape[0], dtype=torch.bool)
    for text, i in vocab.items():
        core = text.removeprefix("Ġ")  # byte-level BPE: Ġ is a leading space
        long_word[i] = core.isascii() and core.isalpha() and len(core) >= 8
    head = torch.randn(emb.shape, generator=torch.Generator().manual_seed(1))
    head[~usable] = 0
    head[long_word & usable] *= 3
    weights["lm_head.weight"] = head.to(emb.dtype).contiguous()
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((tmp / "config.json").read_text())
    (tmp / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": False}, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder
