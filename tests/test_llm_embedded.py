"""The real embedded LLM (Qwen2.5-Coder-1.5B-Instruct, the `llm` pack; CI fetches it with `make embedded`), int8 on
the CPU as users run it (the first run quantises it once and saves the int8 file; later runs read it).

Few and short: the model is loaded once per run (the `real_llm` fixture) and these tests write under 60 tokens in all
(~10 s on 2 cores). Skipped, saying why, where the pack is not fetched."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_settings
from zhike.backends.llm.base import ChatMessage, GenerateOptions, complete
from zhike.backends.llm.int8 import cache_file
from zhike.backends.llm.transformers_chat import MARKER, TransformersChat
from zhike.models.embedded import EMBEDDED_LLM
from zhike.services.container import Zhike
from zhike.words.measures import chinese_ratio, is_cjk


def test_the_pack_is_the_catalogues_default_llm_and_loads_once(real_llm: TransformersChat, tmp_path: Path) -> None:
    z = Zhike(make_settings(tmp_path / "home"))
    spec = z.catalog.get(EMBEDDED_LLM)
    assert (spec.kind, spec.format, spec.family, spec.embedded) == ("llm", "gguf", "qwen2", True)
    assert (spec.path.parent / "bf16" / MARKER).is_file()  # converted once, beside the GGUF, for every home
    assert real_llm.int8  # on a CPU: quantised once, its int8 file beside the bf16 folder
    assert cache_file(spec.path.parent / "bf16", spec.path.parent).is_file()
    with z.models.use_named(EMBEDDED_LLM, kind="llm") as chat:
        assert chat is real_llm  # a second app in this process shares the loaded weights
    z.engine.dispose()


def test_it_answers_briefly_in_chinese(real_llm: TransformersChat) -> None:
    pieces: list[str] = []
    done = complete(
        real_llm,
        [
            ChatMessage("system", "你是一名电商客服，只用简体中文回答，一句话。"),
            ChatMessage("user", "请向我介绍一下这款 500 毫升的不锈钢保温杯。"),
        ],
        GenerateOptions(max_tokens=48, temperature=0),
        on_text=pieces.append,
    )
    assert len(pieces) > 3 and "".join(pieces) == done.text  # streamed as it was written
    assert done.finish_reason in ("stop", "length") and 0 < done.completion_tokens <= 48
    assert chinese_ratio(done.text) >= 0.8, done.text
    assert sum(map(is_cjk, done.text)) >= 8, done.text
