"""OpenAI-compatible chat, so users' existing OpenAI clients and bots work against Zhike's own LLMs.

POST /v1/chat/completions (streaming and not) and GET /v1/models. The model runs in a thread pool of its own (the
event loop keeps serving); its pieces reach the response through an asyncio queue. Messages are screened by the
prompt-safety lists on the way in (4xx content_refused naming the policy) and the answer on the way out (it stops
with finish_reason "content_filter"). A client that goes away stops the generation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from zhike.api.deps import AppDep, OwnerDep
from zhike.api.errors import error_body
from zhike.backends.llm.base import ChatMessage, Chunk, GenerateOptions
from zhike.backends.llm.resolve import check_llm, llm_choices, open_chat
from zhike.core.errors import ContentRefused, ErrorCode, InvalidInput, TooLarge, TooManyRequests, ZhikeError
from zhike.services.container import Zhike
from zhike.services.safety import PromptSafety

router = APIRouter(tags=["openai"])
log = logging.getLogger("zhike.api.chat")

# Model names OpenAI clients send by default; they mean this deployment's default LLM.
OPENAI_PREFIXES = ("gpt-", "chatgpt", "o1", "o3", "o4", "text-davinci")
HOLD_CHARS = 16  # streamed text held back until screened: a policy term completed by the next piece is never sent
SCREEN_WINDOW = 96  # characters screened per piece (terms are short; screening all text per piece is quadratic)
POLL_SECONDS = 0.5  # how often a non-streaming request checks that its client is still there
MAX_STOP = 4


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, ... accepted and ignored
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # user, logit_bias, ... accepted and ignored
    model: str | None = None
    messages: list[MessageIn] = Field(..., min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "content_filter"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[Choice]
    usage: Usage


class ModelEntry(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "zhike"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelEntry]


STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A chat.completion object; with stream=true, Server-Sent Events: chat.completion.chunk "
        "objects, then `data: [DONE]`",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@dataclass
class Piece:
    """What the generating thread hands the response: text, the end (finish reason, usage) or an error."""

    text: str = ""
    finish: str | None = None
    usage: dict[str, int] | None = None
    error: BaseException | None = None


# -- the request ----------------------------------------------------------------------------------------------------


def _text(m: MessageIn, i: int) -> str:
    if m.content is None or isinstance(m.content, str):
        return m.content or ""
    parts = []
    for p in m.content:
        if p.type != "text" or p.text is None:
            raise InvalidInput(
                f"messages.{i}.content: only text parts are supported, not {p.type!r}",
                code="validation_failed",
                field=f"messages.{i}.content",
                kind="literal_error",
                ctx={"expected": "text"},
            )
        parts.append(p.text)
    return "".join(parts)


def read_messages(body: ChatRequest, max_messages: int, max_chars: int) -> list[ChatMessage]:
    if len(body.messages) > max_messages:
        raise InvalidInput(
            f"messages: at most {max_messages} messages",
            code="chat_too_many_messages",
            field="messages",
            limit=max_messages,
        )
    out: list[ChatMessage] = []
    total = 0
    for i, m in enumerate(body.messages):
        text = _text(m, i)
        total += len(text)
        if total > max_chars:
            raise TooLarge(
                f"messages.{i}.content: the messages hold more than {max_chars} characters",
                code="chat_message_too_large",
                field=f"messages.{i}.content",
                limit=max_chars,
            )
        out.append(ChatMessage("system" if m.role == "developer" else m.role, text))
    return out


def options(body: ChatRequest, cap: int) -> GenerateOptions:
    if (body.n or 1) != 1:
        raise ZhikeError("n: only n=1 is supported (one answer per request)", code="chat_n_unsupported", field="n")
    max_tokens = body.max_completion_tokens or body.max_tokens or cap  # unset: as long as the model goes on
    if max_tokens > cap:
        field = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
        raise InvalidInput(
            f"{field}: at most {cap}",
            code="validation_failed",
            field=field,
            limit=cap,
            kind="less_than_equal",
            ctx={"le": cap},
        )
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > MAX_STOP or any(not s or len(s) > 200 for s in stop):
        raise InvalidInput("stop: up to 4 strings of 1-200 characters", code="validation_failed", field="stop")
    defaults = GenerateOptions()
    return GenerateOptions(
        max_tokens=max_tokens,
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=defaults.top_p if body.top_p is None else body.top_p,
        seed=body.seed,
        stop=tuple(stop),
    )


def model_name(app: Zhike, requested: str | None) -> str:
    """The LLM a request names: one of llm_choices, or the default for OpenAI's own names (gpt-4o-mini...)."""
    known = requested in llm_choices(app.catalog, app.settings)  # a local gpt-oss keeps its name
    if requested and not known and requested.lower().startswith(OPENAI_PREFIXES):
        requested = None
    return check_llm(app.catalog, app.settings, requested, field="model")


def screen_messages(safety: PromptSafety, messages: list[ChatMessage]) -> None:
    for i, m in enumerate(messages):
        hit = safety.check_text(m.content)
        if hit is not None:
            raise refusal(safety, hit.policy, f"messages.{i}.content")


def refusal(safety: PromptSafety, policy: str, field: str) -> ContentRefused:
    name = safety.policy_name(policy)
    return ContentRefused(
        f"refused under the content policy “{name['en']}” ({policy}).",
        code="content_refused",
        field=field,
        limit=policy,
        ctx={"policy_zh": name["zh"], "policy_en": name["en"]},
    )


# -- running a generation -------------------------------------------------------------------------------------------


class ChatRunner:
    """The generation threads and each owner's share of them (app.state.chat_runner)."""

    def __init__(self, threads: int, per_owner: int) -> None:
        self.per_owner = per_owner
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="zhike-chat")
        self._held: Counter[str] = Counter()
        self._running: set[threading.Event] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        """The server is stopping: every generation ends at its next token, none starts."""
        with self._lock:
            for stop in self._running:
                stop.set()
        self._pool.shutdown(wait=False)  # queued ones still run, find `stop` set and end at once

    def start(
        self, owner: str, work: Callable[[Callable[[Piece], None], threading.Event], None]
    ) -> tuple[asyncio.Queue[Piece], threading.Event]:
        """Run `work(put, stop)` in a generation thread; the owner's slot is held until it returns (a client that
        leaves frees it once the model has noticed `stop`)."""
        with self._lock:
            if self._held[owner] >= self.per_owner:
                err = TooManyRequests(
                    f"you already have {self.per_owner} chat generations running: wait for them to finish",
                    code="chat_busy",
                    limit=self.per_owner,
                )
                err.headers = {"Retry-After": "1"}  # type: ignore[attr-defined]  # read by api/errors.py
                raise err
            self._held[owner] += 1
            stop = threading.Event()
            self._running.add(stop)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Piece] = asyncio.Queue()

        def put(piece: Piece) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, piece)

        def release() -> None:
            with self._lock:
                self._running.discard(stop)
                self._held[owner] -= 1
                if not self._held[owner]:
                    del self._held[owner]

        def run() -> None:
            try:
                work(put, stop)
            except BaseException as e:  # noqa: BLE001 - handed to the request, which raises it there
                put(Piece(error=e))
            finally:
                release()

        try:
            self._pool.submit(run)
        except RuntimeError:  # shut down: the server is stopping
            release()
            raise
        return queue, stop


def chat_runner(request: Request) -> ChatRunner:
    state = request.app.state
    runner: ChatRunner | None = getattr(state, "chat_runner", None)
    if runner is None:
        s = state.zhike.settings
        runner = state.chat_runner = ChatRunner(s.chat_threads, s.chat_per_user)
    return runner


def screened(
    chunks: Iterable[Chunk], check: Callable[[str], object], count: Callable[[str], int], prompt: str = ""
) -> Iterator[Piece]:
    """The model's text as it passes output screening (`check(text)` is the policy hit or None), then one last
    Piece with the finish reason and usage (`count` counts the tokens of `prompt` and the answer where the model
    reported none).

    The last HOLD_CHARS characters are held back until the next piece has been screened with them, so a term the
    model is in the middle of writing is never handed on; on a hit the answer ends with "content_filter"."""
    text = ""  # everything generated so far
    sent = 0  # of which this much was handed on
    finish = "stop"
    usage: dict[str, int] | None = None
    for chunk in chunks:
        if chunk.text:
            text += chunk.text
            if check(text[-SCREEN_WINDOW:]) is not None:
                finish = "content_filter"
                break
            if len(text) - sent > HOLD_CHARS:
                yield Piece(text[sent : len(text) - HOLD_CHARS])
                sent = len(text) - HOLD_CHARS
        if chunk.finish_reason is not None:
            finish = "stop" if chunk.finish_reason == "cancelled" else chunk.finish_reason
            if chunk.completion_tokens is not None:
                usage = {"prompt_tokens": chunk.prompt_tokens or 0, "completion_tokens": chunk.completion_tokens}
    if finish != "content_filter" and check(text) is not None:
        finish = "content_filter"  # a term spread wider than the window: say so, hand on no more
    if finish != "content_filter" and len(text) > sent:
        yield Piece(text[sent:])
    usage = usage or {"prompt_tokens": count(prompt), "completion_tokens": count(text)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    yield Piece(finish=finish, usage=usage)


def generation(
    app: Zhike, name: str, messages: list[ChatMessage], opts: GenerateOptions
) -> Callable[[Callable[[Piece], None], threading.Event], None]:
    """The work of one request: stream the model's answer through output screening to the response."""

    def work(put: Callable[[Piece], None], stop: threading.Event) -> None:
        with open_chat(app.models, app.settings, name) as model:
            stream = model.stream(messages, opts, should_stop=stop.is_set)
            try:
                prompt = "\n".join(m.content for m in messages)
                for piece in screened(stream, app.safety.check_text, model.count_tokens, prompt):
                    put(piece)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()  # ends the model's generation (a remote server's connection) when screening broke off

    return work


# -- routes ---------------------------------------------------------------------------------------------------------


def _answer_ids() -> tuple[str, int]:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())


async def _next(queue: asyncio.Queue[Piece], request: Request, stop: threading.Event) -> Piece:
    """The next piece, checking at least every POLL_SECONDS that the client is still there (a model may take
    seconds to load; a fast one never leaves the queue empty for long)."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        try:
            piece = await asyncio.wait_for(queue.get(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            piece = None
        if piece is None or time.monotonic() >= deadline:
            if await request.is_disconnected():
                stop.set()
                raise ZhikeError("the client closed the connection")
            deadline = time.monotonic() + POLL_SECONDS
        if piece is not None:
            if piece.error is not None:
                raise piece.error
            return piece


@router.post(
    "/v1/chat/completions",
    summary="OpenAI-compatible chat completion (streaming with stream=true)",
    response_model=ChatCompletion,
    responses=STREAM_DOC,
)
async def chat_completions(body: ChatRequest, request: Request, app: AppDep, owner: OwnerDep) -> Any:
    s = app.settings
    messages = read_messages(body, s.chat_max_messages, s.chat_max_chars)
    opts = options(body, s.chat_max_tokens)
    name = model_name(app, body.model)
    screen_messages(app.safety, messages)
    queue, stop = chat_runner(request).start(owner, generation(app, name, messages, opts))
    answer_id, created = _answer_ids()
    try:
        first = await _next(queue, request, stop)  # errors before the first token answer with their own status
    except BaseException:
        stop.set()
        raise
    if not body.stream:
        return await _whole(first, queue, request, stop, answer_id, created, name)
    usage = bool(body.stream_options and body.stream_options.include_usage)
    events = _events(first, queue, stop, answer_id, created, name, usage)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _whole(
    piece: Piece,
    queue: asyncio.Queue[Piece],
    request: Request,
    stop: threading.Event,
    answer_id: str,
    created: int,
    name: str,
) -> dict[str, Any]:
    parts: list[str] = []
    try:
        while piece.finish is None:
            parts.append(piece.text)
            piece = await _next(queue, request, stop)
    finally:
        stop.set()  # a no-op once the model is done; stops it when the client left
    return {
        "id": answer_id,
        "object": "chat.completion",
        "created": created,
        "model": name,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(parts), "refusal": None},
                "finish_reason": piece.finish,
                "logprobs": None,
            }
        ],
        "usage": piece.usage,
    }


async def _events(
    piece: Piece,
    queue: asyncio.Queue[Piece],
    stop: threading.Event,
    answer_id: str,
    created: int,
    name: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    """Server-Sent Events as OpenAI sends them. Starlette cancels this when the client disconnects: `finally`
    then tells the model to stop."""

    def event(delta: dict[str, Any], finish: str | None = None) -> str:
        chunk: dict[str, Any] = {
            "id": answer_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": name,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if include_usage:
            chunk["usage"] = None
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    try:
        yield event({"role": "assistant", "content": ""})
        while piece.finish is None:
            yield event({"content": piece.text})
            piece = await queue.get()
            if piece.error is not None:
                yield f"data: {json.dumps(_error_event(piece.error), ensure_ascii=False)}\n\n"
                return
        yield event({}, piece.finish)
        if include_usage:
            last = {"id": answer_id, "object": "chat.completion.chunk", "created": created, "model": name}
            yield f"data: {json.dumps(last | {'choices': [], 'usage': piece.usage})}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        stop.set()


def _error_event(e: BaseException) -> dict[str, Any]:
    """A failure after the stream began (headers are sent): an event `{"error": ...}` as OpenAI sends it."""
    if isinstance(e, ZhikeError):
        return error_body(e.code, e.message, e.field, type=e.type, ctx=e.ctx)
    log.error("chat generation failed", exc_info=e)
    return error_body(ErrorCode.INTERNAL_ERROR, f"internal error: {type(e).__name__}")


@router.get("/v1/models", summary="OpenAI-compatible model list: the LLMs chat can use", response_model=ModelList)
def list_models(app: AppDep, owner: OwnerDep) -> ModelList:
    return ModelList(data=[ModelEntry(id=n) for n in llm_choices(app.catalog, app.settings)])
