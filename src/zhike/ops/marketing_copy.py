"""marketing_copy (营销文案): copy in a platform's style — 小红书 note, 抖音 short-video script, 朋友圈 post, 淘宝
detail page, banner slogans — from product facts or a free-text brief, in a tone and a length.

Each style is a data file in zhike/words/data: its parts (title, body, tags, hook, shots...), their limits and the
guidance for the model. The op asks for the style's parts in a fixed layout, reads them back forgivingly and holds
every limited part to its limit the same way product_copy holds its title (zhike.words.enforce_limit).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field

from zhike.backends.llm.base import ChatMessage
from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import operation
from zhike.core.types import Note, TextResult
from zhike.core.ui import Studio, ui
from zhike.ops.copy_common import (
    CopyParams,
    facts_prompt,
    fit_part,
    max_tokens_for,
    md_part,
    missing_note,
    photo_facts,
    prepare_photo,
    save_copy,
    system_prompt,
    write,
)
from zhike.ops.text_common import prepare_llm
from zhike.words.layout import format_instruction
from zhike.words.measures import text_length
from zhike.words.styles import Lang, Part, Style, choices_of, get_length, get_style, get_tone, marketing_styles

StyleId = Literal[tuple(s.id for s in marketing_styles())]  # type: ignore[valid-type]
ROLE = {
    "zh": "你是一名擅长社交媒体和电商营销的文案策划，按指定平台的风格写营销文案。",
    "en": "You are a marketing copywriter for social media and e-commerce, writing in the given platform's style.",
}


class MarketingCopyParams(CopyParams):
    style: StyleId = Field(  # type: ignore[valid-type]
        "xiaohongshu",
        description="Platform style: what parts the copy has and their limits",
        json_schema_extra=ui("文案类型", "Style", choices=choices_of(marketing_styles()), order=0),
    )
    brief: str | None = Field(
        None,
        max_length=2000,
        description="What to write about, in your words (with or instead of the product facts)",
        json_schema_extra=ui(
            "文案需求",
            "Brief",
            widget="textarea",
            placeholder=(
                "例如：夏季新品防晒衣上新，主打轻薄透气",
                "e.g. new summer sun-protection jacket, light and airy",
            ),
            order=1,
        ),
    )

    def screened_texts(self) -> list[tuple[str, str]]:
        return super().screened_texts() + ([("brief", self.brief)] if self.brief else [])


def prepare(env: PrepareEnv, p: MarketingCopyParams) -> MarketingCopyParams:
    if not (p.brief or "").strip() and not (p.name or "").strip():
        raise InvalidInput(
            "say what to write about: a product name or a brief",
            code="copy_brief_missing",
            field="params.brief",
        )
    prepare_photo(env, p)
    return prepare_llm(env, p)


def messages(p: MarketingCopyParams, style: Style, photo: dict[str, Any]) -> list[ChatMessage]:
    lang: Lang = p.language
    length = get_length(p.length)
    system = system_prompt(ROLE, style.guidance, get_tone(p.tone), lang)
    if lang == "zh":
        head = f"写一篇{style.name['zh']}，正文约 {length.chars} 字。"
    else:
        head = f"Write a {style.name['en']}, about {length.chars // 2} words of body text."
    facts = facts_prompt(p, photo, lang)
    brief = (("需求：" if lang == "zh" else "Brief: ") + p.brief) if p.brief else ""
    user = "\n\n".join(x for x in (head, brief, facts, format_instruction(style.parts, lang)) if x)
    return [ChatMessage("system", system), ChatMessage("user", user)]


def fallback(part: Part, answer: str, found_any: bool) -> Any:
    """What stands in for a part the model left out: its whole answer as the body when it ignored the layout."""
    if not found_any and part.key in ("body", "sections"):
        return answer if part.kind == "text" else [{"heading": "", "text": answer}]
    return None


@operation(
    "marketing_copy",
    lane="cpu",  # minutes of LLM compute on the embedded model: never the quick lane; not a diffusion job either
    version=1,
    params=MarketingCopyParams,
    result=TextResult,
    prepare=prepare,
    title={"en": "Marketing copy", "zh": "营销文案"},
    tags=("text", "words"),
    studio=Studio(
        order=2,
        help=(
            "按平台风格写营销文案：小红书笔记、抖音脚本、朋友圈、淘宝详情页、海报标语，标题等字数自动控制在限制内。",
            "Marketing copy in a platform's style: Xiaohongshu note, Douyin script, Moments post, Taobao detail "
            "page, banner slogans; titles and hooks are kept within their limits.",
        ),
        run=("生成营销文案", "Write the copy"),
    ),
)
def marketing_copy(ctx: RunContext, p: MarketingCopyParams) -> TextResult:
    """Write marketing copy in a platform style (parts, limits and guidance from zhike/words/data)."""
    t0 = time.perf_counter()
    lang: Lang = p.language
    style = get_style(p.style)
    photo = photo_facts(ctx, p)
    answer, parsed = write(ctx, p, messages(p, style, photo), max_tokens_for(p, get_length(p.length)), style.parts)
    notes: list[Note] = []
    if parsed.missing:
        notes.append(missing_note(parsed.missing, parsed.found_any))
    values: dict[str, Any] = {}
    limits: dict[str, dict[str, Any]] = {}
    for part in style.parts:
        value = parsed.values.get(part.key) or fallback(part, answer, parsed.found_any)
        value = fit_part(ctx, p, value, part, lang, notes)
        values[part.key] = value if value is not None else ([] if part.kind != "text" else "")
        if part.limit and part.kind == "text":
            limits[part.key] = {
                "limit": part.limit,
                "rule": part.rule,
                "length": text_length(values[part.key], part.rule),
            }
    if style.id == "douyin":
        values["total_seconds"] = sum(s["seconds"] or 0 for s in values.get("shots", []))

    heading = values.get("title") or values.get("headline") or style.name[lang]
    md = [f"# {heading}"]
    for part in style.parts:
        if part.key in ("title", "headline") or not values[part.key]:
            continue
        md += md_part(part, values[part.key], lang)
    data = {"style": style.id, **values, "limits": limits, **photo}
    ctx.timings["copy"] = time.perf_counter() - t0
    return save_copy(ctx, "\n".join(md).strip() + "\n", params=p, data=data, notes=notes, name=str(heading)[:80])
