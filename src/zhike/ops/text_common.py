"""What every words op shares: the LLM fields of its Params, one `generate` call that streams, cancels and screens,
and storing the result as a text asset.

A words op is then its Params (subclass `LlmParams`), its prompt building and its parsing:

    class CopyParams(LlmParams):
        product: str = Field(...)

    def run(ctx, p):
        done = generate(ctx, [ChatMessage("user", ...)], llm_options(p), llm=p.llm)
        return save_text_result(ctx, done.text, params=p, llm=p.llm, data={...})
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zhike.backends.llm.base import ChatMessage, Completion, GenerateOptions, complete
from zhike.backends.llm.resolve import check_llm, open_chat
from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import JobCancelled
from zhike.core.types import TextResult
from zhike.core.ui import ui

MAX_SEED = 2**32 - 1
# The studio's forms offer the deployment's LLMs for a field with this format (GET /api/v1/models kind llm and
# "remote" when a server is configured: backends/llm/resolve.py llm_choices).
LLM_FORMAT = {"format": "llm-name"}

P = TypeVar("P", bound="LlmParams")


class LlmParams(BaseModel):
    """The fields every words op has (subclass it; override a default by redeclaring the field)."""

    model_config = ConfigDict(extra="forbid")

    llm: str | None = Field(
        None,
        max_length=200,
        description="Language model: a catalogue LLM, `remote` (the configured OpenAI-compatible server) or "
        "`remote:<model id>`; empty: the deployment's default (recorded)",
        json_schema_extra={
            **ui(
                "语言模型",
                "Language model",
                help_zh="留空：默认模型（内置 Qwen2.5）；remote：已配置的远程服务",
                group="more",
                widget="model",
                model_kind="llm",
            ),
            **LLM_FORMAT,
        },
    )
    temperature: float = Field(
        0.7,
        ge=0.0,
        le=2.0,
        description="Randomness: 0 always picks the likeliest word; higher is more varied",
        json_schema_extra=ui(
            "随机度",
            "Temperature",
            help_zh="0：每次都选最可能的词；越高越多变",
            group="more",
            widget="slider",
            step=0.1,
        ),
    )
    seed: int | None = Field(
        None,
        ge=-1,
        le=MAX_SEED,
        description="-1 or empty: random (recorded)",
        json_schema_extra=ui(
            "随机种子", "Seed", help_zh="-1 或留空：随机（会被记录，可复现）", group="more", widget="seed"
        ),
    )
    max_tokens: int = Field(
        1024,
        ge=16,
        le=8192,
        description="At most this many tokens per model answer (about 1-1.5 Chinese characters each)",
        json_schema_extra=ui(
            "最大长度", "Max length", help_zh="每次回答最多的 token 数（约等于 1–1.5 个汉字）", group="more"
        ),
    )

    @field_validator("seed")
    @classmethod
    def _random_is_none(cls, v: int | None) -> int | None:
        return None if v == -1 else v  # -1 and empty both mean "random": one spelling, one request hash


def prepare_llm(env: PrepareEnv, p: P) -> P:
    """Fix at submission what makes a run repeatable: a random seed and the default model's name; an unknown
    model name is a 422 `model_not_found` on params.llm now, not a failed job later."""
    name = check_llm(env.catalog, env.settings, p.llm, field="params.llm")
    seed = p.seed if p.seed is not None else secrets.randbelow(MAX_SEED)
    return p.model_copy(update={"llm": name, "seed": seed})


def llm_options(p: LlmParams, **overrides: Any) -> GenerateOptions:
    """GenerateOptions from the shared fields (`overrides`: e.g. max_tokens for one chunk, stop strings)."""
    values: dict[str, Any] = {"max_tokens": p.max_tokens, "temperature": p.temperature, "seed": p.seed}
    return GenerateOptions(**(values | overrides))


def generate(
    ctx: RunContext,
    messages: Sequence[ChatMessage],
    options: GenerateOptions,
    *,
    llm: str | None,
    field: str = "text",
) -> Completion:
    """One model answer: each piece goes to `ctx.stream_text` as it comes (the job's partial text), a cancel or a
    lost lease stops the model between tokens (JobCancelled), and the whole answer is screened by the prompt-safety
    lists (ContentRefused naming the policy and `field`). Seconds add to ctx.timings["generate"]."""
    started = time.perf_counter()
    with open_chat(ctx.models, ctx.settings, llm) as model:
        done = complete(model, messages, options, should_stop=lambda: ctx.stopping, on_text=ctx.stream_text)
    ctx.timings["generate"] = ctx.timings.get("generate", 0.0) + time.perf_counter() - started
    if done.finish_reason == "cancelled" or ctx.stopping:
        raise JobCancelled("lease lost" if ctx.lost else "cancelled by the user")
    ctx.screen_text(done.text, field)
    return done


def save_text_result(
    ctx: RunContext,
    text: str,
    *,
    params: BaseModel,
    llm: str | None,
    data: dict[str, Any] | None = None,
    parent_id: str | None = None,
    name: str | None = None,
    mime: str = "text/markdown",
) -> TextResult:
    """Screen the final text, store it as a text asset (parameters, lineage, name) and return the TextResult."""
    ctx.screen_text(text, "text")
    asset_id = ctx.save_text(
        text, params=params.model_dump(mode="json"), model=llm, parent_id=parent_id, mime=mime, name=name
    )
    return TextResult(asset_id=asset_id, text=text, data=data or {}, llm=llm, timings=dict(ctx.timings))
