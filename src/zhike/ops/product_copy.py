"""product_copy (商品文案): from product facts, a listing for 淘宝/天猫, 京东 or 拼多多 — a title within the platform's
limit, five selling points, detail-page sections and SKU descriptions — as Markdown and as structured `data`.

The model writes once in a fixed layout (zhike/words/layout.py reads it, forgiving drift). The title is held to the
platform's limit by zhike.words.enforce_limit: the model is asked once for a shorter one, then it is cut at a word
boundary (note `title_trimmed`). A part the model left out is a note, never a failed job. The spec table is made
from the facts themselves, so the numbers in it are the merchant's, not the model's.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field

from zhike.backends.llm.base import ChatMessage
from zhike.core.context import PrepareEnv, RunContext
from zhike.core.registry import operation
from zhike.core.types import Note, TextResult, note
from zhike.core.ui import Studio, ui
from zhike.ops.copy_common import (
    CopyParams,
    facts_lines,
    facts_prompt,
    fit_part,
    max_tokens_for,
    md_part,
    md_table,
    missing_note,
    name_field,
    photo_facts,
    prepare_photo,
    price_text,
    save_copy,
    system_prompt,
    write,
)
from zhike.ops.text_common import prepare_llm
from zhike.words import text_length
from zhike.words.layout import format_instruction
from zhike.words.styles import Lang, Part, Style, choices_of, get_length, get_platform, get_tone, product_platforms

POINTS = 5
PlatformId = Literal[tuple(s.id for s in product_platforms())]  # type: ignore[valid-type]
ROLE = {
    "zh": "你是一名资深电商文案，为商品写上架文案：标题、卖点、详情页和 SKU 描述。",
    "en": "You are a senior e-commerce copywriter writing a product listing: title, selling points, detail page, SKUs.",
}
HEADINGS = {
    "zh": {"specs": "规格参数"},
    "en": {"specs": "Specifications"},
}


class ProductCopyParams(CopyParams):
    name: str = name_field(...)
    platform: PlatformId = Field(  # type: ignore[valid-type]
        "taobao",
        description="Where the product is listed: its title limit and style",
        json_schema_extra=ui("平台", "Platform", choices=choices_of(product_platforms()), order=0),
    )
    skus: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="SKU names to describe, e.g. 红色 500ml (repeat --sku)",
        json_schema_extra=ui(
            "SKU 规格", "SKUs", help_zh="每个规格组合一条，例如：红色 500ml", order=7, cli_flag="--sku"
        ),
    )

    def screened_texts(self) -> list[tuple[str, str]]:
        return super().screened_texts() + [(f"skus.{i}", s) for i, s in enumerate(self.skus) if s]


def layout(p: ProductCopyParams, platform: Style) -> tuple[Part, ...]:
    """The parts asked for: the title carries the platform's limit; SKUs only when there are SKUs."""
    sections = max(2, min(6, get_length(p.length).chars // 120))
    parts = [
        Part(
            "title",
            {"zh": "标题", "en": "Title"},
            limit=platform.title_limit,
            rule=platform.title_rule,
            ask_again=True,
        ),
        Part("points", {"zh": "卖点", "en": "Selling points"}, kind="list", min_items=POINTS, max_items=POINTS),
        Part("sections", {"zh": "详情页", "en": "Detail page"}, kind="pairs", min_items=sections, max_items=sections),
    ]
    if p.skus:
        parts.append(Part("skus", {"zh": "SKU描述", "en": "SKU descriptions"}, kind="pairs", max_items=len(p.skus)))
    return tuple(parts)


def hints(p: ProductCopyParams, platform: Style, parts: tuple[Part, ...]) -> dict[str, str]:
    zh = p.language == "zh"
    sections = next(x for x in parts if x.key == "sections").max_items
    price = "" if p.price is None else price_text(p.price, p.language)
    buy = (
        (f"购买理由（以“到手价{price}，”开头）" if price else "购买理由")
        if zh
        else ("why buy (starting 'Only " + price + ":')" if price else "why buy")
    )
    out = {
        "title": f"一行，不超过 {platform.limit_text['zh']}，由商品名、属性、卖点和适用场景组成，尽量用足字数"
        if zh
        else f" one line, at most {platform.limit_text['en']}: product name, attributes, benefit and use",
        "points": f"正好 {POINTS} 条，每条一行，以“- ”开头，每条 10–30 字；把给出的卖点写得更吸引人，"
        "不够 5 条就补充使用场景和使用体验（不编造参数）"
        if zh
        else f' exactly {POINTS} lines starting with "- ", 6-20 words each; make the given points vivid and add '
        "use cases and experience until there are five (no invented specifications)",
        # The price topic comes first: a short copy asks for two sections and the model drops the last topic.
        "sections": f"{sections} 条，每条一行，格式如“购买理由：……”，依次写{buy}、使用场景、材质工艺"
        if zh
        else f' {sections} lines "Heading: text", in this order: {buy}, where it is used, material and craft',
    }
    if p.skus:
        names = ("、" if zh else ", ").join(p.skus)
        out["skus"] = (
            f"每个 SKU 一行“SKU名称：一句描述”，SKU 是：{names}"
            if zh
            else f' one line per SKU "SKU: one sentence"; SKUs: {names}'
        )
    return out


def messages(
    p: ProductCopyParams, platform: Style, parts: tuple[Part, ...], photo: dict[str, Any]
) -> list[ChatMessage]:
    lang: Lang = p.language
    system = system_prompt(ROLE, platform.guidance, get_tone(p.tone), lang)
    where = platform.name[lang]
    head = f"为{where}写这件商品的上架文案。" if lang == "zh" else f"Write the {where} listing for this product."
    user = "\n\n".join([head, facts_prompt(p, photo, lang), format_instruction(parts, lang, hints(p, platform, parts))])
    return [ChatMessage("system", system), ChatMessage("user", user)]


def fill_points(points: list[str], given: list[str], notes: list[Note]) -> list[str]:
    """Five points: the model's, topped up with the merchant's own points it did not use."""
    points = list(points[:POINTS])
    for s in given:
        if len(points) >= POINTS:
            break
        if not any(s in x or x in s for x in points):
            points.append(s)
    if len(points) < POINTS:
        notes.append(
            note("copy_points_few", f"only {len(points)} selling points instead of {POINTS}", count=len(points))
        )
    return points


def match_skus(skus: list[str], pairs: list[dict[str, str]]) -> list[dict[str, str]]:
    """Each SKU with the model's line for it: by name, else by position among lines without a known name."""

    def norm(s: str) -> str:
        return "".join(s.split()).lower()

    out, free = (
        [],
        [
            x
            for x in pairs
            if not any(norm(s) in norm(x["heading"]) or norm(x["heading"]) in norm(s) for s in skus if x["heading"])
        ],
    )
    for sku in skus:
        hit = next(
            (x for x in pairs if x["heading"] and (norm(sku) in norm(x["heading"]) or norm(x["heading"]) in norm(sku))),
            None,
        )
        if hit is None and free:
            hit = free.pop(0)
        out.append({"name": sku, "text": hit["text"] if hit else ""})
    return out


def prepare(env: PrepareEnv, p: ProductCopyParams) -> ProductCopyParams:
    prepare_photo(env, p)
    return prepare_llm(env, p)


@operation(
    "product_copy",
    lane="cpu",  # minutes of LLM compute on the embedded model: never the quick lane; not a diffusion job either
    version=1,
    params=ProductCopyParams,
    result=TextResult,
    prepare=prepare,
    title={"en": "Product copy", "zh": "商品文案"},
    tags=("text", "words"),
    studio=Studio(
        order=1,
        help=(
            "填写商品信息，生成符合平台字数限制的标题、五条卖点、详情页文案和 SKU 描述。",
            "From the product facts: a title within the platform's limit, five selling points, detail-page "
            "sections and SKU descriptions.",
        ),
        run=("生成商品文案", "Write the listing"),
    ),
)
def product_copy(ctx: RunContext, p: ProductCopyParams) -> TextResult:
    """Write a product listing: title (platform limit), five selling points, detail-page sections, SKU texts."""
    t0 = time.perf_counter()
    lang: Lang = p.language
    platform = get_platform(p.platform)
    photo = photo_facts(ctx, p)
    parts = layout(p, platform)
    answer, parsed = write(ctx, p, messages(p, platform, parts, photo), max_tokens_for(p, get_length(p.length)), parts)
    notes: list[Note] = []
    if parsed.missing:
        notes.append(missing_note(parsed.missing, parsed.found_any))
    by_key = {x.key: x for x in parts}
    title = parsed.values.get("title") or f"{p.name} {p.category or ''}".strip()
    title = fit_part(ctx, p, title, by_key["title"], lang, notes)
    points = fill_points(parsed.values.get("points", []), p.selling_points, notes)
    sections = parsed.values.get("sections") or ([] if parsed.found_any else [{"heading": "", "text": answer}])
    skus = match_skus(p.skus, parsed.values.get("skus", []))
    facts = facts_lines(p, photo, lang)

    md = [f"# {title}"]
    md += md_part(by_key["points"], points, lang) if points else []
    md += md_part(by_key["sections"], sections, lang) if sections else []
    if any(s["text"] for s in skus):
        md += md_part(by_key["skus"], [{"heading": s["name"], "text": s["text"]} for s in skus if s["text"]], lang)
    md += ["", f"## {HEADINGS[lang]['specs']}", "", *md_table(facts, lang)]
    data = {
        "platform": platform.id,
        "title": title,
        "title_limit": platform.title_limit,
        "title_rule": platform.title_rule,
        "title_length": text_length(title, platform.title_rule),
        "points": points,
        "sections": sections,
        "skus": skus,
        "facts": [{"name": k, "value": v} for k, v in facts],
        **photo,
    }
    ctx.timings["copy"] = time.perf_counter() - t0
    return save_copy(ctx, "\n".join(md).strip() + "\n", params=p, data=data, notes=notes, name=title)
