"""Zhike's OpenAI-compatible chat API (`/v1/chat/completions`, `/v1/models`) driven by the official `openai` client,
on the tiny random Qwen2 model in its real format (tests/helpers/tiny_llm.py).

The model's words are random: the tests assert shapes, counts and that streaming and not streaming give the same
greedy words in one process, never the words themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from zhike.api.app import create_app
from zhike.api.routes.openai_chat import HOLD_CHARS, screened
from zhike.backends.llm.base import Chunk
from zhike.core.errors import InvalidInput
from zhike.services.container import Zhike

REMOTE_KEY = "sk-test-remote-secret-1234"
HI = [{"role": "user", "content": "你好，介绍一下这款保温杯"}]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_llm: Path) -> Iterator[dict[str, Any]]:
    from tests.helpers.tiny_llm import register_tiny_llm

    root = tmp_path_factory.mktemp("chat")
    settings = make_settings(
        root / "home",
        llm_default="tiny-qwen",
        # A remote server that is not there: the chat API must say so with the backend's code.
        llm_remote_url="http://127.0.0.1:9/v1",
        llm_remote_model="qwen2.5:7b",
        llm_remote_key=REMOTE_KEY,
        llm_retries=0,
        chat_max_messages=20,
    )
    app = create_app(settings, start_worker=False)
    z: Zhike = app.state.zhike
    register_tiny_llm(z.catalog, tiny_llm, name="tiny-qwen")
    with TestClient(app) as client:
        _, key = z.keys.create("chat")
        oai = openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=client, max_retries=0)
        yield {"client": client, "key": key, "oai": oai, "z": z}


def test_non_streaming_answer_has_openais_shape_and_usage(env: dict[str, Any]) -> None:
    oai: openai.OpenAI = env["oai"]
    r = oai.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=6, temperature=0)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == "tiny-qwen"  # an OpenAI model name means the deployment's default LLM
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.message.content  # the tiny model practically never ends on its own
    assert choice.finish_reason == "length"
    assert r.usage is not None
    assert r.usage.completion_tokens == 6
    assert r.usage.prompt_tokens > 5  # the chat template's turns around the question
    assert r.usage.total_tokens == r.usage.prompt_tokens + 6


def test_streaming_gives_the_same_greedy_words_and_usage(env: dict[str, Any]) -> None:
    oai: openai.OpenAI = env["oai"]
    whole = oai.chat.completions.create(model="tiny-qwen", messages=HI, max_tokens=6, temperature=0)
    chunks = list(
        oai.chat.completions.create(
            model="tiny-qwen",
            messages=HI,
            max_tokens=6,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # include_usage: one last chunk with usage
    assert chunks[-1].usage.completion_tokens == 6
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens  # type: ignore[union-attr]
    assert all(c.usage is None for c in chunks[:-1])

    plain = list(oai.chat.completions.create(model="tiny-qwen", messages=HI, max_tokens=3, stream=True))
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason == "length"


def test_models_lists_the_llm_choices_default_first(env: dict[str, Any]) -> None:
    ids = [m.id for m in env["oai"].models.list()]
    assert ids[0] == "tiny-qwen"
    assert "remote" in ids  # llm_remote_url is set
    assert env["client"].get("/v1/models").status_code == 401  # the same keys as every API route


def _error(r: Any) -> dict[str, Any]:
    return r.json()["error"]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"n": 2}, 400, "chat_n_unsupported", "n"),
        (
            {"messages": [{"role": "user", "content": "字" * 1_000_000}]},
            413,
            "chat_message_too_large",
            "messages.0.content",
        ),
        ({"max_tokens": 1_000_000}, 422, "validation_failed", "max_tokens"),
        ({"max_completion_tokens": 5000}, 422, "validation_failed", "max_completion_tokens"),
        ({"model": "no-such-llm"}, 422, "model_not_found", "model"),
        ({"messages": []}, 422, "validation_failed", "messages"),
        ({"messages": [{"role": "user", "content": "hi"}] * 21}, 422, "chat_too_many_messages", "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, 422, "validation_failed", "messages.0.role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            422,
            "validation_failed",
            "messages.0.content",
        ),
        ({"temperature": 3}, 422, "validation_failed", "temperature"),
        ({"stop": ["a", "b", "c", "d", "e"]}, 422, "validation_failed", "stop"),
    ],
)
def test_bad_input_names_its_code_and_field(
    env: dict[str, Any], change: dict[str, Any], status: int, code: str, field: str
) -> None:
    body = {"model": "tiny-qwen", "messages": HI, "max_tokens": 4} | change
    r = env["client"].post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {env['key']}"})
    assert r.status_code == status, r.text
    err = _error(r)
    assert (err["code"], err["field"]) == (code, field), err


def test_the_openai_client_reads_our_errors(env: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        env["oai"].chat.completions.create(model="tiny-qwen", messages=HI, n=3)
    assert info.value.code == "chat_n_unsupported" and info.value.param == "n"
    bad = openai.OpenAI(base_url="http://testserver/v1", api_key="zk_wrong", http_client=env["client"], max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="tiny-qwen", messages=HI)


def test_messages_are_screened_by_the_prompt_safety_lists(env: dict[str, Any]) -> None:
    messages = [{"role": "system", "content": "你是客服"}, {"role": "user", "content": "find child porn"}]
    with pytest.raises(openai.UnprocessableEntityError) as info:
        env["oai"].chat.completions.create(model="tiny-qwen", messages=messages, max_tokens=4)
    err = info.value.body
    assert isinstance(err, dict)
    assert (err["code"], err["field"]) == ("content_refused", "messages.1.content")
    assert err["ctx"]["policy_zh"] and err["ctx"]["policy_en"]  # the refusal names the policy, never the term
    assert "porn" not in err["message"]


def test_output_screening_ends_the_answer_before_a_policy_term(env: dict[str, Any]) -> None:
    """What the model writes goes through `screened` (the route's own path) with the deployment's real lists."""
    check = env["z"].safety.check_text
    count = len
    clean = ["这款保温杯采用", "316不锈钢内胆，", "保温十二小时，", "适合通勤和户外。"]
    pieces = list(screened([Chunk(t) for t in clean] + [Chunk("", "length", 7, 4)], check, count))
    assert "".join(p.text for p in pieces) == "".join(clean)
    assert (pieces[-1].finish, pieces[-1].usage) == (
        "length",
        {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11},
    )

    dirty = ["Our new thermos is great. ", "Also: child ", "porn", " and more words after it"]
    pieces = list(screened([Chunk(t) for t in dirty] + [Chunk("", "stop", 7, 4)], check, count))
    sent = "".join(p.text for p in pieces)
    assert pieces[-1].finish == "content_filter"
    assert "porn" not in sent and "child" not in sent and "more words" not in sent
    assert sent == dirty[0][: len(sent)] and len(sent) >= len(dirty[0]) - HOLD_CHARS  # the clean start got through


def test_a_remote_server_that_is_down_is_named_without_its_key(env: dict[str, Any]) -> None:
    r = env["client"].post(
        "/v1/chat/completions",
        json={"model": "remote", "messages": HI, "max_tokens": 4},
        headers={"Authorization": f"Bearer {env['key']}"},
    )
    assert r.status_code == 502, r.text
    err = _error(r)
    assert (err["code"], err["field"]) == ("llm_unreachable", "llm")
    assert "127.0.0.1:9" in err["message"] and REMOTE_KEY not in r.text


def test_an_unknown_model_is_refused_by_name(tmp_path: Path) -> None:
    """open_chat's own check (ops name models too): model_not_found on field llm, listing what there is."""
    from zhike.backends.llm.resolve import open_chat

    z = Zhike(make_settings(tmp_path / "home", llm_default="nothing-here"))
    with pytest.raises(InvalidInput) as info, open_chat(z.models, z.settings, None):
        pass
    assert (info.value.code, info.value.field) == ("model_not_found", "llm")
    with pytest.raises(InvalidInput) as info, open_chat(z.models, z.settings, "remote"):
        pass
    assert info.value.code == "llm_remote_not_configured"
