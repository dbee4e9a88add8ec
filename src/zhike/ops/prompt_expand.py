"""prompt_expand (扩写提示词): a short idea, usually Chinese, -> an English SD prompt, a negative prompt and a
suggested style preset from the installed ones.

The model is asked for three labelled lines; the answer is parsed leniently (labels in English or Chinese, JSON,
code fences, extra chatter), and whatever it fails to give is filled without it: Chinese left in the prompt is
translated (ops/translate.py), a missing negative gets the usual quality negatives, and a preset that is not
installed is replaced by one whose name the idea mentions (or none).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ConfigDict, Field

from zhike.backends.llm.base import ChatMessage
from zhike.core.context import PrepareEnv, RunContext
from zhike.core.registry import operation
from zhike.core.types import TextResult
from zhike.core.ui import Studio, ui
from zhike.ops.text_common import LlmParams, generate, llm_options, prepare_llm
from zhike.ops.translate import clean_answer, has_chinese, translate_prompt

DEFAULT_NEGATIVE = "lowres, blurry, worst quality, low quality, jpeg artifacts, watermark, text, deformed"
_FIELD = re.compile(
    r"^\s*[*#>\-\s]*(prompt|positive(?: prompt)?|negative(?: prompt)?|preset|style|"
    r"提示词|正向提示词|画面描述|反向提示词|负面提示词|风格|预设)\s*[*]*\s*[:：]\s*[*]*\s*(.*)$",
    re.I,
)
_KEYS = {"negative": "negative_prompt", "反向提示词": "negative_prompt", "负面提示词": "negative_prompt"}
_KEYS |= dict.fromkeys(("preset", "style", "风格", "预设"), "preset")


class PromptExpandParams(LlmParams):
    model_config = ConfigDict(extra="forbid")

    idea: str = Field(
        ...,
        min_length=1,
        max_length=1000,
        description="A short idea in any words, e.g. 国风茶叶礼盒，桌上有茶具",
        json_schema_extra=ui(
            "想法",
            "Idea",
            widget="textarea",
            cli_argument=True,
            placeholder=("例如：国风茶叶礼盒", "e.g. tea gift box"),
        ),
    )
    max_tokens: int = Field(
        200,
        ge=16,
        le=1024,
        description="At most this many tokens in the model's answer",
        json_schema_extra=ui("最大长度", "Max length", group="more"),
    )
    presets: dict[str, str] = Field(
        default_factory=dict,
        description="Set by Zhike: the installed presets offered (id: English description)",
        json_schema_extra=ui("可选风格", "Presets offered", read_only=True),
    )

    def screened_texts(self) -> list[tuple[str, str]]:
        return [("idea", self.idea)]


class PromptExpandResult(TextResult):
    prompt: str = Field(description="English prompt for the Create page")
    negative_prompt: str
    preset: str | None = Field(None, description="Suggested installed preset id, or none")


def prepare_prompt_expand(env: PrepareEnv, p: PromptExpandParams) -> PromptExpandParams:
    p = prepare_llm(env, p)
    listing = getattr(env.presets, "list", None)
    offered: dict[str, str] = {}
    for preset in listing() if callable(listing) else []:
        name, desc = preset.name or {}, preset.description or {}
        # "English name / Chinese name / English description": the model reads it, pick_preset matches the names
        offered[preset.id] = " / ".join((name.get("en", ""), name.get("zh", ""), desc.get("en", "")))[:300]
    return p.model_copy(update={"presets": offered})


def messages(p: PromptExpandParams) -> list[ChatMessage]:
    styles = "\n".join(f"- {pid}: {desc}" for pid, desc in p.presets.items()) or "- none"
    system = (
        "You write prompts for Stable Diffusion image generation. From the user's idea write:\n"
        "PROMPT: one line of English keywords and short phrases separated by commas: subject, details, setting, "
        "lighting, composition, quality words\n"
        "NEGATIVE: one line of English words for what must not appear\n"
        "PRESET: the id of the best matching style from this list, or none\n"
        f"{styles}\n"
        "Answer with exactly these three lines and nothing else."
    )
    return [ChatMessage("system", system), ChatMessage("user", p.idea)]


def parse_answer(text: str) -> dict[str, str]:
    """prompt / negative_prompt / preset from a model answer: labelled lines (English or Chinese labels, Markdown
    bold, a label on its own line with the value below), or a JSON object; unlabelled first line = the prompt."""
    text = clean_answer(text)
    found: dict[str, str] = {}
    m = re.search(r"\{.*\}", text, re.S)
    if m:
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            for k, v in obj.items():
                key = str(k).lower().replace(" ", "_")
                key = {"negative": "negative_prompt", "style": "preset", "positive": "prompt"}.get(key, key)
                if key in ("prompt", "negative_prompt", "preset") and isinstance(v, str):
                    found[key] = v.strip()
            if found.get("prompt"):
                return found
    pending: str | None = None
    loose: list[str] = []
    for line in text.splitlines():
        fm = _FIELD.match(line)
        if fm:
            label = fm.group(1).lower().split()[0] if fm.group(1).isascii() else fm.group(1)
            key = _KEYS.get(label, "prompt")
            value = fm.group(2).strip().strip("*").strip()
            if key not in found:
                found[key] = value
            pending = key if not value else None
        elif line.strip() and pending:
            found[pending] = line.strip()
            pending = None
        elif line.strip():
            loose.append(line.strip())
    if not found.get("prompt") and loose:
        found["prompt"] = loose[0]
    return {k: clean_answer(v, one_line=True) for k, v in found.items() if v}


def pick_preset(answer: str | None, idea: str, offered: dict[str, str]) -> str | None:
    """The model's preset when it is installed; else one the idea names (id, English or Chinese name); else none."""
    if answer:
        token = re.sub(r"[^a-z0-9_-]", "", answer.strip().lower().split()[0]) if answer.strip() else ""
        if token in offered:
            return token
    lowered = idea.lower()
    for pid, desc in offered.items():
        names = [pid, *(part.strip().lower() for part in desc.split(" / ")[:2])]  # id, English and Chinese name
        if any(n and len(n) >= 2 and n in lowered for n in names):
            return pid
    return None


def tidy_prompt(text: str) -> str:
    """One line, comma-separated, no doubled commas or trailing punctuation."""
    text = " ".join(text.replace("\n", ", ").split())
    text = re.sub(r"\s*,\s*(?:,\s*)*", ", ", text)
    return text.strip(" ,.;")


@operation(
    "prompt_expand",
    lane="cpu",
    version=1,
    params=PromptExpandParams,
    result=PromptExpandResult,
    prepare=prepare_prompt_expand,
    title={"en": "Expand prompt", "zh": "扩写提示词"},
    tags=("text", "words", "prompt"),
    studio=Studio(
        help=(
            "把一句简短的想法扩写成英文画面提示词、反向提示词，并推荐一个风格。",
            "Turn a short idea into an English image prompt, a negative prompt and a suggested style.",
        )
    ),
)
def prompt_expand(ctx: RunContext, p: PromptExpandParams) -> PromptExpandResult:
    """Expand a short (Chinese) idea into an English SD prompt, a negative prompt and a suggested preset."""
    ctx.progress(0, 2)
    done = generate(ctx, messages(p), llm_options(p), llm=p.llm, field="prompt")
    parsed = parse_answer(done.text)
    ctx.progress(1, 2)
    prompt = tidy_prompt(parsed.get("prompt", ""))
    if not prompt or not re.search(r"[A-Za-z]", prompt):  # nothing usable: the idea itself, translated below
        prompt = tidy_prompt(p.idea.translate(str.maketrans("，。、；", ",,,,")))
    if has_chinese(prompt):
        prompt = tidy_prompt(translate_prompt(ctx, prompt, llm=p.llm, seed=p.seed).text)
    negative = tidy_prompt(parsed.get("negative_prompt", ""))
    if not negative or has_chinese(negative) or not re.search(r"[A-Za-z]", negative):
        negative = DEFAULT_NEGATIVE
    preset = pick_preset(parsed.get("preset"), p.idea, p.presets)
    data: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative, "preset": preset, "idea": p.idea}
    text = f"**Prompt:** {prompt}\n\n**Negative prompt:** {negative}\n\n**Preset:** {preset or '-'}\n"
    ctx.screen_text(text, "text")
    aid = ctx.save_text(text, params=p.model_dump(mode="json"), model=p.llm, name="prompt.md")
    ctx.progress(2, 2)
    return PromptExpandResult(
        asset_id=aid,
        text=text,
        data=data,
        llm=p.llm,
        prompt=prompt,
        negative_prompt=negative,
        preset=preset,
        timings={"generate": round(ctx.timings.get("generate", 0.0), 3)},
    )
