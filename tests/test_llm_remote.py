"""The OpenAI-compatible backend (backends/llm/openai_http.py) against a SECOND real Zhike: a `zhike serve` process
with the tiny random Qwen2 registered, answering on its own /v1/chat/completions. Servers that are not there or
that stall are real sockets too.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.helpers.server import Server, free_port, server_fixture
from zhike.backends.llm.base import ChatMessage, GenerateOptions, complete
from zhike.backends.llm.openai_http import OpenAIChat
from zhike.backends.llm.resolve import open_chat
from zhike.core.errors import ModelError
from zhike.settings import Settings

QUESTION = [ChatMessage("system", "你是客服"), ChatMessage("user", "这款保温杯能保温多久？")]
LONG = 4000  # tokens the tiny model would write for minutes: only cancelling ends such an answer quickly


@pytest.fixture(scope="module")
def zhike_b(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_llm: Path
) -> Iterator[Server]:
    """The second Zhike: the tiny model as its default LLM, one chat generation per key at once."""
    root = tmp_path_factory.mktemp("zhike-b")
    for server in server_fixture(
        request, root, tiny_llm, model_name="tiny-qwen", llm_default="tiny-qwen", chat_per_user=1
    ):
        # Its first answer loads the model and the safety lists (a minute on a busy CI machine): not timed here.
        oai = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.key_a, max_retries=0, timeout=600)
        oai.chat.completions.create(model="tiny-qwen", messages=[{"role": "user", "content": "hi"}], max_tokens=1)
        yield server


def remote(server: Server, **settings: object) -> Settings:
    """Settings of a Zhike whose "remote" LLM is zhike_b's tiny model."""
    base = {
        "llm_remote_url": f"{server.base_url}/v1",
        "llm_remote_model": "tiny-qwen",
        "llm_remote_key": server.key_a,
        "llm_timeout_seconds": 120,  # CI machines share 2 cores with a second server
    }
    return Settings(**(base | settings))  # type: ignore[arg-type]


def test_streams_pieces_with_the_servers_usage(zhike_b: Server) -> None:
    pieces: list[str] = []
    with open_chat(None, remote(zhike_b), "remote") as chat:
        assert chat.name == "remote"
        done = complete(chat, QUESTION, GenerateOptions(max_tokens=8, temperature=0), on_text=pieces.append)
    assert done.finish_reason == "length"
    assert done.completion_tokens == 8  # counted by zhike_b's tokenizer, sent with stream_options.include_usage
    assert done.prompt_tokens > 10
    assert len(pieces) > 1 and done.text == "".join(pieces)
    # The same greedy answer, asked without streaming by the official client: nothing lost or doubled on the way.
    oai = openai.OpenAI(base_url=f"{zhike_b.base_url}/v1", api_key=zhike_b.key_a, max_retries=0)
    whole = oai.chat.completions.create(
        model="tiny-qwen",
        messages=[{"role": m.role, "content": m.content} for m in QUESTION],
        max_tokens=8,
        temperature=0,
    )
    assert done.text == whole.choices[0].message.content


def test_cancel_closes_the_stream_and_the_server_stops(zhike_b: Server) -> None:
    """should_stop ends our stream at once; zhike_b sees the connection close and frees the key's only slot (it
    allows one generation at once), and answered its health check all along (generation is off its event loop)."""
    stop = threading.Event()
    got: list[str] = []
    outcome: dict[str, object] = {}

    def run() -> None:
        with OpenAIChat(f"{zhike_b.base_url}/v1", "tiny-qwen", key=zhike_b.key_a, retries=0, timeout=120) as chat:
            outcome["done"] = complete(
                chat, QUESTION, GenerateOptions(max_tokens=LONG), should_stop=stop.is_set, on_text=got.append
            )

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not got and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
        assert got, "no text streamed"
        start = time.monotonic()
        assert httpx.get(f"{zhike_b.base_url}/api/v1/health", timeout=5).status_code == 200
        assert time.monotonic() - start < 5  # not after the 4000 tokens
        # The key's one slot is taken: a second answer is refused (429 chat_busy) while this one runs.
        with (
            OpenAIChat(f"{zhike_b.base_url}/v1", "tiny-qwen", key=zhike_b.key_a, retries=0, timeout=120) as other,
            pytest.raises(ModelError) as info,
        ):
            complete(other, QUESTION, GenerateOptions(max_tokens=2))
        assert info.value.code == "llm_remote_error"
        assert info.value.ctx == {"status": 429, "remote_code": "chat_busy"}
    finally:
        stop.set()
        thread.join(60)
    done = outcome["done"]
    assert done.finish_reason == "cancelled"  # type: ignore[attr-defined]
    assert done.completion_tokens < LONG  # type: ignore[attr-defined]
    # Retries before the first token ride out the 429 until zhike_b has noticed the closed stream.
    with OpenAIChat(f"{zhike_b.base_url}/v1", "tiny-qwen", key=zhike_b.key_a, retries=6, timeout=120) as again:
        start = time.monotonic()
        assert complete(again, QUESTION, GenerateOptions(max_tokens=2)).completion_tokens == 2
        assert time.monotonic() - start < 30  # the cancelled answer (4000 tokens) was not written to the end


def test_a_wrong_key_is_llm_auth_failed(zhike_b: Server) -> None:
    with (
        open_chat(None, remote(zhike_b, llm_remote_key="zk_not-a-key-123"), "remote:tiny-qwen") as chat,
        pytest.raises(ModelError) as info,
    ):
        complete(chat, QUESTION, GenerateOptions(max_tokens=2))
    assert (info.value.code, info.value.field, info.value.ctx) == ("llm_auth_failed", "llm", {"status": 401})
    assert "zk_not-a-key-123" not in info.value.message


def test_a_port_with_nothing_listening_is_llm_unreachable_after_the_retries() -> None:
    port = free_port()
    settings = Settings(
        llm_remote_url=f"http://user:pw-secret@127.0.0.1:{port}/v1",
        llm_remote_model="m",
        llm_remote_key="sk-secret-key",
        llm_retries=2,
    )
    start = time.monotonic()
    with open_chat(None, settings, "remote") as chat, pytest.raises(ModelError) as info:
        complete(chat, QUESTION, GenerateOptions(max_tokens=2))
    elapsed = time.monotonic() - start
    err = info.value
    assert (err.code, err.status) == ("llm_unreachable", 502)
    assert err.ctx == {"url": f"http://127.0.0.1:{port}/v1", "attempts": 3}
    assert "secret" not in err.message and f"127.0.0.1:{port}" in err.message
    assert 1.4 <= elapsed < 10  # backoff 0.5 s + 1 s between the three attempts, nothing more


class Stalling:
    """A TCP server that accepts connections and answers with `reply` (maybe nothing), then holds them open."""

    def __init__(self, reply: bytes = b"") -> None:
        self.reply = reply
        self.accepted = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._open.append(conn)
            conn.recv(65536)
            conn.sendall(self.reply)

    def close(self) -> None:
        self._sock.close()
        for conn in self._open:
            conn.close()


def test_a_server_that_stalls_is_llm_timeout() -> None:
    server = Stalling()
    try:
        start = time.monotonic()
        with (
            OpenAIChat(f"http://127.0.0.1:{server.port}/v1", "m", timeout=1.0, retries=2) as chat,
            pytest.raises(ModelError) as info,
        ):
            complete(chat, QUESTION, GenerateOptions(max_tokens=2))
        assert (info.value.code, info.value.status) == ("llm_timeout", 504)
        assert time.monotonic() - start < 5 and server.accepted == 1  # a slow server is not asked again
    finally:
        server.close()


def test_a_stall_after_the_first_token_is_never_retried() -> None:
    """Text was already handed on: asking again would write it twice. The stream ends with llm_timeout."""
    event = b'data: {"choices":[{"index":0,"delta":{"content":"\xe4\xbd\xa0\xe5\xa5\xbd"}}]}\n\n'
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    server = Stalling(head + hex(len(event))[2:].encode() + b"\r\n" + event + b"\r\n")
    got: list[str] = []
    try:
        with (
            OpenAIChat(f"http://127.0.0.1:{server.port}/v1", "m", timeout=1.0, retries=3) as chat,
            pytest.raises(ModelError) as info,
        ):
            complete(chat, QUESTION, GenerateOptions(max_tokens=8), on_text=got.append)
        assert info.value.code == "llm_timeout"
        assert got == ["你好"] and server.accepted == 1
    finally:
        server.close()


def test_a_server_that_does_not_stream_is_read_whole() -> None:
    """Some servers ignore `stream: true` and answer one chat.completion object: that is the answer."""
    body = json.dumps(
        {
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "保温 12 小时"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26},
        }
    ).encode()
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
    server = Stalling(head + body)
    try:
        with OpenAIChat(f"http://127.0.0.1:{server.port}/v1", "m", timeout=5.0) as chat:
            done = complete(chat, QUESTION, GenerateOptions(max_tokens=8))
        assert (done.text, done.finish_reason, done.prompt_tokens, done.completion_tokens) == (
            "保温 12 小时",
            "stop",
            21,
            5,
        )
    finally:
        server.close()
