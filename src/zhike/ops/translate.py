"""translate (翻译): Chinese <-> English for copy and image prompts, on the job's LLM.

`translate_text` is the one function every op reuses (prompt_expand, the diffusion ops' Chinese prompts). Copy is
translated paragraph block by block (each block its own LLM call, so long copy streams and fits the model's
context). A prompt is translated *around* its syntax: only the runs of Chinese are sent to the model (one call,
numbered lines), and the English words, weights `(…:1.3)`, `BREAK` and commas stay exactly as written, so a small
model cannot break the A1111 syntax.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict, Field

from zhike.backends.llm.base import ChatMessage, GenerateOptions
from zhike.core.context import RunContext
from zhike.core.errors import InvalidInput, ModelError, NotFound
from zhike.core.registry import operation
from zhike.core.types import Note, TextResult, note
from zhike.core.ui import Studio, ui
from zhike.ops.text_common import LlmParams, generate, llm_options, prepare_llm

Lang = Literal["zh", "en"]
Target = Literal["auto", "zh", "en"]
Kind = Literal["copy", "prompt"]

# CJK ideographs (with extension A and the compatibility block): what CLIP's English vocabulary cannot read.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HAN = re.compile(f"[{_HAN}]")
# A run of Chinese to translate as one phrase: ideographs, with Chinese punctuation and spaces inside it.
_RUN = re.compile(f"[{_HAN}](?:[{_HAN}\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\\s]*[{_HAN}])?")
# Full-width punctuation a user types in a Chinese prompt -> the ASCII that A1111 syntax and CLIP read.
_ASCII_PUNCT = str.maketrans(
    {"，": ", ", "、": ", ", "。": ", ", "；": ", ", "：": ":", "（": "(", "）": ")", "【": "[", "】": "]", "！": "!"}
)
_LATIN = re.compile(r"[A-Za-z]")
# Labels small models put before an answer ("Translation:", "译文：") and quotes around it.
_LABEL = re.compile(r"^\s*(?:translation|translated text|english|chinese|英文|中文|译文|翻译)\s*[:：]\s*", re.I)
_NUMBERED = re.compile(r"^\s*(\d{1,3})\s*[.)、:：]\s*(.*)$")
BLOCK_CHARS = 1200  # copy is sent in blocks of whole paragraphs up to this size
MAX_RUNS = 40  # Chinese runs in one prompt sent in one call; more is a long Chinese text: translated as copy

LANG_NAMES = {"zh": "Simplified Chinese", "en": "English"}


def has_chinese(text: str) -> bool:
    return HAN.search(text) is not None


def detect_language(text: str) -> Lang:
    """zh when Chinese carries the text: one ideograph counts like a four-letter word (mixed copy such as
    "iPhone 15 手机壳" is Chinese; an English sentence with one brand name in Chinese is English)."""
    han = len(HAN.findall(text))
    return "zh" if han and han * 4 >= len(_LATIN.findall(text)) else "en"


def clean_answer(text: str, *, one_line: bool = False) -> str:
    """The translation without what small models wrap it in: code fences, a label, surrounding quotes."""
    text = re.sub(r"^\s*```[\w-]*\s*\n?|\n?```\s*$", "", text.strip())
    text = _LABEL.sub("", text).strip()
    if one_line:
        text = next((line.strip() for line in text.splitlines() if line.strip()), "")
        text = _LABEL.sub("", text)
    if len(text) >= 2 and text[0] in "\"'“‘「" and text[-1] in "\"'”’」":
        text = text[1:-1].strip()
    return text.strip()


@dataclass
class Translation:
    text: str
    source: Lang
    target: Lang
    llm: str | None = None
    calls: int = 0
    seconds: float = 0.0
    pieces: list[tuple[str, str]] = field(default_factory=list)  # prompt kind: (Chinese run, English)


def _messages(text: str, source: Lang, target: Lang, kind: Kind) -> list[ChatMessage]:
    if kind == "prompt":
        system = (
            "You translate phrases of an image-generation prompt (Stable Diffusion) from Chinese into English. "
            "Each numbered line is one phrase: answer with the same numbers, one line each, a short English "
            "phrase (nouns and adjectives, no sentences), and nothing else."
        )
    else:
        system = (
            f"You are a professional e-commerce translator. Translate the user's text from {LANG_NAMES[source]} "
            f"into natural, fluent {LANG_NAMES[target]}. Keep the Markdown, line breaks, numbers, prices, units, "
            "brand names and emoji. Answer with the translation only: no notes, no quotes."
        )
    return [ChatMessage("system", system), ChatMessage("user", text)]


def _blocks(text: str, limit: int = BLOCK_CHARS) -> list[str]:
    """Whole paragraphs packed into blocks of at most `limit` characters (a longer paragraph is its own block)."""
    blocks: list[str] = []
    for para in re.split(r"\n\s*\n", text.strip()):
        if blocks and len(blocks[-1]) + len(para) + 2 <= limit:
            blocks[-1] += "\n\n" + para
        else:
            blocks.append(para)
    return [b for b in blocks if b.strip()]


def _max_tokens(text: str, ceiling: int) -> int:
    # A Chinese character is about one token; its English is about as many tokens; English into Chinese is shorter.
    return max(16, min(ceiling, int(len(text) * 1.5) + 32))


def _numbered(answer: str, n: int) -> dict[int, str]:
    found: dict[int, str] = {}
    for line in answer.splitlines():
        m = _NUMBERED.match(line)
        if m and 1 <= int(m.group(1)) <= n and int(m.group(1)) not in found:
            phrase = clean_answer(m.group(2), one_line=True).rstrip(".。")
            if phrase:
                found[int(m.group(1))] = phrase
    return found


def _join(before: str, phrase: str, after: str) -> str:
    """Put an English phrase where Chinese was, with a space where it would touch a letter or digit."""
    left = " " if before and before[-1].isalnum() else ""
    right = " " if after and after[0].isalnum() else ""
    return f"{left}{phrase}{right}"


def chinese_runs(prompt: str) -> list[str]:
    """The runs of Chinese in a prompt, in order: what `translate_prompt` sends to the model."""
    return [m.group(0) for m in _RUN.finditer(prompt)]


def splice(prompt: str, english: list[str]) -> str:
    """`prompt` with its Chinese runs replaced, in order, by `english`; full-width punctuation made ASCII."""
    parts, last = [], 0
    for m, phrase in zip(_RUN.finditer(prompt), english, strict=True):
        parts.append(prompt[last : m.start()])
        parts.append(_join(prompt[: m.start()], phrase, prompt[m.end() :]))
        last = m.end()
    parts.append(prompt[last:])
    return " ".join("".join(parts).translate(_ASCII_PUNCT).split())


def translate_prompt(ctx: RunContext, prompt: str, *, llm: str | None, seed: int | None = None) -> Translation:
    """An English prompt for an English-only text encoder: each Chinese run replaced by its English, the rest
    (English words, weights, BREAK) untouched; full-width punctuation made ASCII so `（词：1.3）` stays a weight."""
    t0 = time.perf_counter()
    phrases = chinese_runs(prompt)
    out = Translation(text=prompt, source="zh" if phrases else "en", target="en")
    if not phrases:
        return out
    if len(phrases) > MAX_RUNS:  # a Chinese text rather than a prompt with some Chinese in it
        whole = translate_text(ctx, prompt, target="en", llm=llm, seed=seed)
        whole.text = " ".join(whole.text.translate(_ASCII_PUNCT).split())
        return whole
    # a few English tokens per Chinese character, and the line numbers: enough for a phrase, no room to ramble
    options = GenerateOptions(
        max_tokens=min(1024, 2 * len("".join(phrases)) + 6 * len(phrases) + 8), temperature=0.0, repetition_penalty=1.0
    )
    numbered = "\n".join(f"{i}. {p}" for i, p in enumerate(phrases, 1))
    done = generate(ctx, _messages(numbered, "zh", "en", "prompt"), options, llm=llm, field="prompt")
    out.llm, out.calls = llm or ctx.settings.llm_default, 1
    english = _numbered(done.text, len(phrases))
    if len(phrases) == 1 and 1 not in english:
        english[1] = clean_answer(done.text, one_line=True)
    for i, phrase in enumerate(phrases, 1):  # what the batch answer missed: one call per phrase
        if not english.get(i):
            one = generate(ctx, _messages(f"1. {phrase}", "zh", "en", "prompt"), options, llm=llm, field="prompt")
            out.calls += 1
            english[i] = _numbered(one.text, 1).get(1) or clean_answer(one.text, one_line=True) or phrase
    out.text = splice(prompt, [english[i] for i in range(1, len(phrases) + 1)])
    out.pieces = list(zip(phrases, (english[i] for i in range(1, len(phrases) + 1)), strict=True))
    out.seconds = round(time.perf_counter() - t0, 3)
    return out


def translate_text(
    ctx: RunContext,
    text: str,
    *,
    target: Target = "auto",
    kind: Kind = "copy",
    llm: str | None = None,
    temperature: float = 0.2,
    seed: int | None = None,
    max_tokens: int = 2048,
) -> Translation:
    """Translate `text` zh<->en on the job's LLM (streamed to the job's partial text, cancellable).

    target "auto": Chinese becomes English, anything else Chinese. kind "prompt": an image prompt, translated
    around its syntax (see `translate_prompt`); "copy": prose and Markdown, block by block. Text already in the
    target language comes back unchanged, without a model call."""
    source = detect_language(text)
    if kind == "prompt" and has_chinese(text):  # a prompt with any Chinese in it is for English (CLIP)
        source = "zh"
    goal: Lang = ("en" if source == "zh" else "zh") if target == "auto" else target
    if kind == "prompt" and goal == "en":
        return translate_prompt(ctx, text, llm=llm, seed=seed)
    out = Translation(text=text, source=source, target=goal)
    if source == goal or not text.strip():
        return out
    t0 = time.perf_counter()
    done_parts: list[str] = []
    blocks = _blocks(text)
    for i, block in enumerate(blocks):
        if i:
            ctx.stream_text("\n\n")
        options = GenerateOptions(
            max_tokens=_max_tokens(block, max_tokens), temperature=temperature, seed=seed, repetition_penalty=1.0
        )
        done = generate(ctx, _messages(block, source, goal, kind), options, llm=llm, field="text")
        done_parts.append(clean_answer(done.text))
    out.text = "\n\n".join(done_parts)
    out.llm = llm or ctx.settings.llm_default
    out.calls = len(blocks)
    out.seconds = round(time.perf_counter() - t0, 3)
    return out


class TranslateParams(LlmParams):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        ...,
        min_length=1,
        max_length=20000,
        description="Copy or a prompt to translate",
        json_schema_extra=ui("原文", "Text", widget="textarea", cli_argument=True, order=0),
    )
    target: Target = Field(
        "auto",
        description="Language to translate into; auto: Chinese -> English, otherwise -> Chinese",
        json_schema_extra=ui(
            "译成",
            "Into",
            help_zh="自动：中文译成英文，其他译成中文",
            choices={"auto": ("自动", "Auto"), "zh": ("中文", "Chinese"), "en": ("英文", "English")},
            order=1,
        ),
    )
    kind: Kind = Field(
        "copy",
        description="copy: prose and Markdown; prompt: an image prompt (its syntax and English words are kept)",
        json_schema_extra=ui(
            "内容类型",
            "Kind",
            help_zh="文案：保留排版；提示词：只翻译中文部分，保留权重等写法",
            choices={"copy": ("文案", "Copy"), "prompt": ("画面提示词", "Image prompt")},
            order=2,
        ),
    )

    def screened_texts(self) -> list[tuple[str, str]]:
        return [("text", self.text)]


class TranslateResult(TextResult):
    pass


@operation(
    "translate",
    lane="cpu",
    version=1,
    params=TranslateParams,
    result=TranslateResult,
    prepare=prepare_llm,
    title={"en": "Translate", "zh": "中英翻译"},
    tags=("text", "words"),
    studio=Studio(help=("中文与英文互译：商品文案或画面提示词。", "Chinese <-> English for copy or image prompts.")),
)
def translate(ctx: RunContext, p: TranslateParams) -> TranslateResult:
    """Translate copy or an image prompt between Chinese and English (source language detected)."""
    ctx.progress(0, 1)
    options = llm_options(p)
    tr = translate_text(
        ctx,
        p.text,
        target=p.target,
        kind=p.kind,
        llm=p.llm,
        temperature=options.temperature,
        seed=options.seed,
        max_tokens=options.max_tokens,
    )
    ctx.screen_text(tr.text, "text")
    data = {"source": tr.source, "target": tr.target, "kind": p.kind, "calls": tr.calls}
    aid = ctx.save_text(tr.text, params=p.model_dump(mode="json"), model=tr.llm, name="translation.md")
    ctx.progress(1, 1)
    return TranslateResult(asset_id=aid, text=tr.text, data=data, llm=tr.llm, timings={"translate": tr.seconds})


# -- Chinese prompts for English-only text encoders (every diffusion op: ops/diffusion_common.py) ------------------
ENGLISH_ONLY_FAMILIES = ("sd15", "sdxl")  # CLIP's vocabulary is English: Chinese reaches it as byte noise


def needs_translation(family: str, prompt: str, negative: str) -> bool:
    return family in ENGLISH_ONLY_FAMILIES and (has_chinese(prompt) or has_chinese(negative))


def english_prompts(ctx: RunContext, prompt: str, negative: str) -> dict[str, Any] | Note:
    """The prompt and negative prompt in English for CLIP, as the record kept in the output's parameters
    ({source, prompt, negative_source, negative_prompt, llm}); a `prompt_not_translated` note when no language
    model can answer (the pack is not fetched, no remote server): the job then goes on with the original words.

    Checkpointed in the job's work folder: a retried job, and the second image op of one job (a batch design's
    rows share a prompt), reuse the translation instead of asking the model again."""
    key = "prompt-tr-" + hashlib.sha1(f"{prompt}\0{negative}".encode()).hexdigest()[:16]
    rec = ctx.work.done(key)
    if rec is not None and rec.get("source") == prompt and rec.get("negative_source") == negative:
        return rec
    try:
        pos = translate_prompt(ctx, prompt, llm=None) if has_chinese(prompt) else None
        neg = translate_prompt(ctx, negative, llm=None) if has_chinese(negative) else None
    except (InvalidInput, NotFound, ModelError) as e:  # no LLM here: not a reason to fail an image job
        return note(
            "prompt_not_translated",
            f"the Chinese prompt was not translated for this English-only model ({e.code}): no language model is "
            "available; the image follows the untranslated words",
            reason=e.code,
        )
    rec = {
        "source": prompt,
        "prompt": pos.text if pos else prompt,
        "negative_source": negative,
        "negative_prompt": neg.text if neg else negative,
        "llm": (pos or neg).llm if (pos or neg) else None,
    }
    ctx.work.record(key, rec)
    return rec
