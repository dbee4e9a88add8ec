"""A ChatModel for any OpenAI-compatible chat server: Ollama, vLLM, llama.cpp server, DeepSeek, DashScope, or a
second Zhike (`POST {base}/chat/completions`).

Streams Server-Sent Events and yields each delta as it arrives. Retries (with backoff) only until the first token:
a retry after text was yielded would repeat that text. Every failure is a ModelError with a stable code
(llm_unreachable, llm_timeout, llm_auth_failed, llm_remote_error) whose message names the URL but never the key.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from zhike.backends.llm.base import ChatMessage, Chunk, FinishReason, GenerateOptions
from zhike.core.errors import ModelError

log = logging.getLogger("zhike.llm.remote")

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
BACKOFF_SECONDS = 0.5  # first wait; doubles per retry
MAX_WAIT_SECONDS = 8.0  # a server's Retry-After is honoured up to this
_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]")


def public_url(url: str) -> str:
    """`url` without user:password@ (some deployments put credentials there), for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def estimate_tokens(text: str) -> int:
    """Roughly what BPE tokenizers of Chinese-trained models take: a CJK character is about one token, other
    text about four characters per token. Used only where the server reports no usage."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def _error(code: str, message: str, http_status: int, ctx: dict[str, Any] | None = None) -> ModelError:
    err = ModelError(message, code=code, field="llm", ctx=ctx)
    err.status = http_status  # a gateway failure (502/504), not the caller's input
    return err


class OpenAIChat:
    """A remote chat model. Thread-safe (httpx.Client pools connections across threads); `close()` when done."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        key: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        name: str | None = None,
        backoff: float = BACKOFF_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name or f"remote:{model}"
        self.retries = retries
        self.backoff = backoff
        self._key = key or None
        self._where = public_url(self.base_url)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        # connect: how long a dead host may take to refuse; read: the longest silence between two events.
        limits = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._client = httpx.Client(timeout=limits, headers=headers, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIChat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerateOptions,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[Chunk]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if options.seed is not None:
            payload["seed"] = options.seed
        if options.stop:
            payload["stop"] = list(options.stop)
        prompt_estimate = sum(estimate_tokens(m.content) + 4 for m in messages)
        yield from self._run(payload, prompt_estimate, should_stop or (lambda: False))

    # -- one request, retried until the first token -------------------------------------------------------------

    def _run(self, payload: dict[str, Any], prompt_estimate: int, should_stop: Callable[[], bool]) -> Iterator[Chunk]:
        url = f"{self.base_url}/chat/completions"
        attempt = 0
        while True:
            wait: float | None = None
            try:
                with self._client.stream("POST", url, json=payload) as response:
                    if response.status_code >= 400:
                        response.read()
                        if (
                            response.status_code in (400, 422)
                            and "stream_options" in payload
                            and "stream" in response.text
                        ):
                            # Older servers refuse stream_options: ask again without (usage is then estimated).
                            payload = {k: v for k, v in payload.items() if k != "stream_options"}
                            continue
                        if response.status_code in RETRY_STATUS and attempt < self.retries:
                            wait = self._retry_after(response, attempt)
                        else:
                            raise self._status_error(response)
                    else:
                        yield from self._read(response, prompt_estimate, should_stop)
                        return
            except httpx.TimeoutException as e:
                if isinstance(e, httpx.ConnectTimeout) and attempt < self.retries:
                    wait = self.backoff * 2**attempt
                else:
                    raise self._timeout(e) from e
            except (httpx.ConnectError, httpx.RemoteProtocolError) as e:
                if attempt >= self.retries:
                    raise self._unreachable(e, attempt) from e
                wait = self.backoff * 2**attempt
            except _AfterFirstToken as e:
                raise e.error from e.__cause__
            attempt += 1
            log.info("LLM server %s: retry %d/%d in %.1f s", self._where, attempt, self.retries, wait)
            time.sleep(wait or 0)

    def _read(self, response: httpx.Response, prompt_estimate: int, should_stop: Callable[[], bool]) -> Iterator[Chunk]:
        """The answer: Server-Sent Events as they come, or one JSON body from a server that does not stream."""
        if "text/event-stream" not in response.headers.get("content-type", ""):
            yield self._whole(response, prompt_estimate)
            return
        parts: list[str] = []
        finish: FinishReason = "stop"
        usage: dict[str, Any] | None = None
        try:
            for line in response.iter_lines():
                if should_stop():
                    break  # leaving the `with` closes the connection: the server stops generating
                if not line.startswith("data:"):
                    continue  # comments (": keep-alive"), event names, blank separators
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                event = self._event(data)
                if event.get("error"):
                    raise self._body_error(event, response.status_code)
                usage = event.get("usage") or usage
                for choice in event.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content") or ""
                    if text:
                        parts.append(text)
                        yield Chunk(text)
                    if choice.get("finish_reason"):
                        finish = "length" if choice["finish_reason"] == "length" else "stop"
            else:
                if not parts and usage is None:
                    raise _error("llm_remote_error", f"LLM server {self._where} ended the stream with no answer", 502)
        except httpx.TimeoutException as e:
            if parts:
                raise _AfterFirstToken(self._timeout(e)) from e
            raise
        except (httpx.TransportError, httpx.StreamError) as e:
            if parts:
                broken = _error(
                    "llm_remote_error", f"LLM server {self._where} broke off the answer: {type(e).__name__}", 502
                )
                raise _AfterFirstToken(broken) from e
            raise
        if should_stop():
            finish = "cancelled"
        text = "".join(parts)
        yield Chunk(
            "",
            finish,
            prompt_tokens=int((usage or {}).get("prompt_tokens") or prompt_estimate),
            completion_tokens=int((usage or {}).get("completion_tokens") or estimate_tokens(text)),
        )

    def _whole(self, response: httpx.Response, prompt_estimate: int) -> Chunk:
        """A non-streaming answer (chat.completion object) as one final chunk."""
        response.read()
        body = self._event(response.text)
        if body.get("error"):
            raise self._body_error(body, response.status_code)
        choices = body.get("choices") or [{}]
        text = (choices[0].get("message") or {}).get("content") or ""
        usage = body.get("usage") or {}
        return Chunk(
            text,
            "length" if choices[0].get("finish_reason") == "length" else "stop",
            prompt_tokens=int(usage.get("prompt_tokens") or prompt_estimate),
            completion_tokens=int(usage.get("completion_tokens") or estimate_tokens(text)),
        )

    # -- errors ---------------------------------------------------------------------------------------------------

    def _event(self, data: str) -> dict[str, Any]:
        try:
            event = json.loads(data)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            raise _error("llm_remote_error", f"LLM server {self._where} sent something that is not JSON", 502)
        return event

    def _redact(self, text: str) -> str:
        text = text.strip()[:300]
        return text.replace(self._key, "***") if self._key else text

    def _body_error(self, body: dict[str, Any], status: int) -> ModelError:
        err = body.get("error")
        message = err.get("message") if isinstance(err, dict) else err
        detail = self._redact(str(message or body))
        ctx: dict[str, Any] = {"status": status}
        if isinstance(err, dict) and isinstance(err.get("code"), str):
            ctx["remote_code"] = err["code"][:100]  # e.g. a second Zhike's chat_busy
        return _error("llm_remote_error", f"LLM server {self._where} answered {status}: {detail}", 502, ctx)

    def _status_error(self, response: httpx.Response) -> ModelError:
        status = response.status_code
        if status in (401, 403):
            return _error(
                "llm_auth_failed",
                f"LLM server {self._where} refused the key ({status}): check llm_remote_key",
                502,
                ctx={"status": status},
            )
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text or response.reason_phrase}
        if not isinstance(body, dict):
            body = {"error": str(body)}
        if not body.get("error"):  # Zhike's own error body: {"code", "message"}
            body = {"error": body.get("message") or body.get("detail") or response.reason_phrase}
        return self._body_error(body, status)

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        try:
            return min(float(response.headers.get("retry-after", "")), MAX_WAIT_SECONDS)
        except ValueError:
            return self.backoff * 2**attempt

    def _unreachable(self, e: Exception, retries: int) -> ModelError:
        return _error(
            "llm_unreachable",
            f"LLM server {self._where} cannot be reached ({type(e).__name__}; tried {retries + 1} times): "
            "is it running, and is llm_remote_url right?",
            502,
            ctx={"url": self._where, "attempts": retries + 1},
        )

    def _timeout(self, e: Exception) -> ModelError:
        return _error(
            "llm_timeout",
            f"LLM server {self._where} did not answer within the timeout ({type(e).__name__})",
            504,
            ctx={"url": self._where},
        )


class _AfterFirstToken(Exception):
    """A failure after text was yielded: never retried (the text would be repeated)."""

    def __init__(self, error: ModelError) -> None:
        super().__init__(str(error))
        self.error = error
