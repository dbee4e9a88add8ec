"""The one interface every LLM backend implements (embedded transformers model, OpenAI-compatible server).

Operations, the knowledge base and Zhike's own `/v1/chat/completions` talk to a `ChatModel` and nothing else: they
never know whether the words come from the embedded GGUF on this CPU or from a vLLM server across the room.
`stream` yields `Chunk`s as the tokens arrive; the last chunk carries `finish_reason` and the token counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerateOptions:
    max_tokens: int = 512
    temperature: float = 0.7  # 0: greedy (the same prompt gives the same words on the same backend)
    top_p: float = 0.9
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # > 1 makes a token already in the context (prompt included) less likely. Local models only (OpenAI's API has no
    # such field). Without it the small embedded model's greedy lists run on repeating themselves; work that must
    # copy its input faithfully (translation, answers quoting a passage) sets 1.0.
    repetition_penalty: float = 1.1


@dataclass(frozen=True)
class Chunk:
    """A piece of the answer. The last one has `finish_reason` (its `text` may be empty) and the usage counts."""

    text: str
    finish_reason: FinishReason | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class Completion:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds_to_first_token: float | None = None
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class ChatModel(Protocol):
    """A loaded chat model. Thread-safe: implementations serialise what cannot run twice at once."""

    name: str  # what users chose it by (catalogue name, or "remote:<model>")

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerateOptions,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[Chunk]:
        """Yield the answer as it is generated. `should_stop()` is asked between tokens; when it says True the
        stream ends with finish_reason "cancelled". Raises core.errors.ModelError (a stable code, e.g.
        llm_unreachable) when the model cannot answer at all."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's tokenizer (an estimate where the server does not say)."""
        ...


def complete(
    model: ChatModel,
    messages: Sequence[ChatMessage],
    options: GenerateOptions,
    *,
    should_stop: Callable[[], bool] | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Completion:
    """Run `stream` to the end: the whole answer, its finish reason and usage; `on_text(piece)` sees each piece."""

    start = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    last = Chunk("", "stop")
    for chunk in model.stream(messages, options, should_stop=should_stop):
        if chunk.text:
            if first is None:
                first = time.perf_counter() - start
            parts.append(chunk.text)
            if on_text is not None:
                on_text(chunk.text)
        if chunk.finish_reason is not None:
            last = chunk
    return Completion(
        text="".join(parts),
        finish_reason=last.finish_reason or "stop",
        prompt_tokens=last.prompt_tokens or 0,
        completion_tokens=last.completion_tokens or 0,
        seconds_to_first_token=first,
        seconds=time.perf_counter() - start,
    )
