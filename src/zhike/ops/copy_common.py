"""What product_copy and marketing_copy share: the product-fact fields, the facts as the model reads them, asking the
model for a shorter title, and turning the parsed parts into Markdown.

The platform styles, limits and the layout reader are model-free data and code in zhike.words; this module is the
part that needs a RunContext and the LLM.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zhike.backends.llm.base import ChatMessage
from zhike.core.context import PrepareEnv, RunContext
from zhike.core.types import AssetId, Note, TextResult, note
from zhike.core.ui import ui
from zhike.ops.text_common import LlmParams, generate, llm_options, save_text_result
from zhike.ops.translate import clean_answer
from zhike.words import enforce_limit
from zhike.words.colours import main_colours
from zhike.words.layout import Parsed, marker, parse, read_part
from zhike.words.measures import LengthRule
from zhike.words.styles import Choice, Lang, Part, choices_of, lengths, tones

SHORTEN_TOKENS = 48  # a title or a hook: 30 汉字 are about 20-30 tokens; more is the model rambling

ToneId = Literal[tuple(t.id for t in tones())]  # type: ignore[valid-type]
LengthId = Literal[tuple(x.id for x in lengths())]  # type: ignore[valid-type]


class Spec(BaseModel):
    """One specification row: 容量 = 500ml."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        ...,
        min_length=1,
        max_length=40,
        description="What is specified, e.g. 容量",
        json_schema_extra=ui("参数名", "Name"),
    )
    value: str = Field(
        ..., min_length=1, max_length=200, description="Its value, e.g. 500ml", json_schema_extra=ui("参数值", "Value")
    )


def name_field(default: Any) -> Any:
    """The product-name field; `...` makes it required (product_copy), None optional (marketing_copy)."""
    return Field(
        default,
        min_length=1,
        max_length=80,
        description="Product name, e.g. 304不锈钢保温杯 500ml",
        json_schema_extra=ui(
            "商品名称",
            "Product name",
            placeholder=("例如：304不锈钢保温杯", "e.g. Steel vacuum flask"),
            order=1,
        ),
    )


class CopyParams(LlmParams):
    """Product facts, language, tone and length: the fields both copy ops have (name is optional here)."""

    name: str | None = name_field(None)
    category: str | None = Field(
        None,
        max_length=40,
        description="Category, e.g. 水杯 / 女装T恤",
        json_schema_extra=ui("类目", "Category", placeholder=("例如：水杯", "e.g. Drinkware"), order=2),
    )
    price: float | None = Field(
        None,
        ge=0,
        le=100_000_000,
        description="Price in yuan (the copy quotes it exactly)",
        json_schema_extra=ui("价格（元）", "Price (yuan)", order=3),
    )
    selling_points: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="What makes it worth buying, one per entry (repeat --selling-point)",
        json_schema_extra=ui("卖点", "Selling points", help_zh="每条一个卖点", order=4, cli_flag="--selling-point"),
    )
    specs: list[Spec] = Field(
        default_factory=list,
        max_length=20,
        description="Specifications: name and value (CLI: --spec 容量:500ml, repeated)",
        json_schema_extra=ui("规格参数", "Specifications", order=5, cli_flag="--spec", cli_shorthand=("name", "value")),
    )
    image: AssetId | None = Field(
        None,
        description="A product photo: its colours and pixel size go into the copy",
        json_schema_extra=ui("商品图", "Product photo", help_zh="可选：从图片读出颜色和尺寸写进文案", order=6),
    )
    language: Lang = Field(
        "zh",
        description="Language of the copy",
        json_schema_extra=ui(
            "语言", "Language", choices={"zh": ("中文", "Chinese"), "en": ("英文", "English")}, group="style"
        ),
    )
    tone: ToneId = Field(  # type: ignore[valid-type]
        "lively",
        description="Tone of voice",
        json_schema_extra=ui("语气", "Tone", choices=choices_of(tones()), group="style"),
    )
    length: LengthId = Field(  # type: ignore[valid-type]
        "medium",
        description="How long the copy is (and at most how many tokens it takes)",
        json_schema_extra=ui("篇幅", "Length", choices=choices_of(lengths()), group="style"),
    )
    requirements: str | None = Field(
        None,
        max_length=1000,
        description="Anything else the copy must do or avoid, in your words",
        json_schema_extra=ui(
            "其他要求",
            "Other requirements",
            widget="textarea",
            placeholder=("例如：突出送礼", "e.g. stress it is a gift"),
            group="more",
        ),
    )

    def screened_texts(self) -> list[tuple[str, str]]:
        """Every free text typed: the prompt-safety lists see them at submission (services/safety.py)."""
        out = [("name", self.name), ("category", self.category), ("requirements", self.requirements)]
        out += [(f"selling_points.{i}", s) for i, s in enumerate(self.selling_points)]
        out += [(f"specs.{i}", f"{s.name} {s.value}") for i, s in enumerate(self.specs)]
        return [(f, t) for f, t in out if t]


def prepare_photo(env: PrepareEnv, p: CopyParams) -> None:
    """An unknown or someone else's photo is a 404 on params.image at submission, not a failed job."""
    if p.image:
        env.assets.get(p.image, owner_id=env.owner_id, field="params.image")


def price_text(price: float, lang: Lang) -> str:
    value = f"{price:.2f}".rstrip("0").rstrip(".")
    return f"{value}元" if lang == "zh" else f"¥{value}"


def photo_facts(ctx: RunContext, p: CopyParams) -> dict[str, Any]:
    """The photo's colours (named) and pixel size, or {} without a photo."""
    if not p.image:
        return {}
    image = ctx.load_image(p.image, field="params.image")
    colours = main_colours(image)
    return {
        "colours": [{"zh": c.zh, "en": c.en, "hex": c.hex, "share": c.share} for c in colours],
        "image_size": [image.width, image.height],
    }


def facts_lines(p: CopyParams, photo: dict[str, Any], lang: Lang) -> list[tuple[str, str]]:
    """The facts as (label, value) rows, in the copy's language: the prompt's facts and the spec table."""
    zh = lang == "zh"
    rows: list[tuple[str, str]] = []
    if p.name:
        rows.append(("商品名称" if zh else "Product", p.name))
    if p.category:
        rows.append(("类目" if zh else "Category", p.category))
    if p.price is not None:
        rows.append(("价格" if zh else "Price", price_text(p.price, lang)))
    rows += [(s.name, s.value) for s in p.specs]
    if photo.get("colours"):
        rows.append(("颜色" if zh else "Colours", ("、" if zh else ", ").join(c[lang] for c in photo["colours"])))
    return rows


def facts_prompt(p: CopyParams, photo: dict[str, Any], lang: Lang) -> str:
    zh = lang == "zh"
    lines = [f"{k}：{v}" if zh else f"{k}: {v}" for k, v in facts_lines(p, photo, lang)]
    if p.selling_points:
        lines.append(("卖点：" if zh else "Selling points: ") + ("；" if zh else "; ").join(p.selling_points))
    if photo.get("image_size"):
        w, h = photo["image_size"]
        lines.append(f"商品图：{w}×{h} 像素" if zh else f"Product photo: {w}x{h} pixels")
    if p.requirements:
        lines.append(("其他要求：" if zh else "Other requirements: ") + p.requirements)
    return "\n".join(lines)


def system_prompt(role: dict[str, str], guidance: dict[str, str], tone: Choice, lang: Lang) -> str:
    """The writer's brief shared by the copy ops: who it is, the platform's rules, the tone, the ground rules."""
    if lang == "zh":
        rules = (
            "只使用给出的商品信息，不编造参数、认证、销量和赠品；价格照原样写；不用“最”“第一”“国家级”等极限词；"
            "全部用简体中文书写（品牌、型号和单位可保留原文）。"
        )
    else:
        rules = (
            "Use only the product facts given; never invent specifications, certificates, sales figures or gifts; "
            "quote the price exactly; no superlatives; write everything in English."
        )
    return "\n".join(
        [role[lang], guidance[lang], ("语气：" if lang == "zh" else "Tone: ") + tone.guidance[lang], rules]
    )


def max_tokens_for(p: CopyParams, length: Choice) -> int:
    """The length's token budget, never more than the user's own max_tokens."""
    return min(p.max_tokens, length.max_tokens)


def write(
    ctx: RunContext, p: CopyParams, messages: list[ChatMessage], max_tokens: int, parts: tuple[Part, ...]
) -> tuple[str, Parsed]:
    """One model answer in the fixed layout, and what could be read from it. A small model sometimes ends its answer
    before the last parts: then it is asked once more, for those parts only."""
    done = generate(ctx, messages, llm_options(p, max_tokens=max_tokens), llm=p.llm)
    answer = clean_answer(done.text)
    parsed = parse(answer, parts)
    missing = tuple(x for x in parts if x.key in parsed.missing)
    if not (parsed.found_any and missing and done.finish_reason == "stop"):
        return answer, parsed
    names = ("、" if p.language == "zh" else ", ").join(marker(x, p.language) for x in missing)
    ask = (
        f"还没写完。请按同样的格式接着写 {names}，每部分以它的名称单独起一行开头，不要重复已经写过的部分。"
        if p.language == "zh"
        else f"Not finished. Continue in the same layout with {names} only, each starting its own line with its name."
    )
    ctx.stream_text("\n\n")
    history = [*messages, ChatMessage("assistant", done.text), ChatMessage("user", ask)]
    more = clean_answer(generate(ctx, history, llm_options(p, max_tokens=max_tokens), llm=p.llm).text)
    extra = parse(more, missing)
    if not extra.found_any and len(missing) == 1:  # the part's text without its marker
        extra.values = {missing[0].key: v} if (v := read_part(more, missing[0])) else {}
    parsed.values.update(extra.values)
    parsed.missing = [k for k in parsed.missing if k not in extra.values]
    return f"{answer}\n\n{more}", parsed


def shortener(ctx: RunContext, p: LlmParams, lang: Lang, limit: int, rule: LengthRule) -> Callable[[str], str]:
    """`shorten(text)`: the model asked once for a version of `text` within the limit (enforce_limit calls it)."""

    def shorten(text: str) -> str:
        if lang == "zh":
            n = (
                f"{limit // 2} 个汉字（{limit} 个字符，英文字母和数字算半个）"
                if rule == "double_width"
                else f"{limit} 个字"
            )
            ask = f"把下面这行文字缩短到不超过 {n}，保留最重要的词，只输出缩短后的一行，不要解释：\n{text}"
        else:
            ask = (
                f"Shorten this line to at most {limit} characters, keep the most important words, "
                f"output only the new line:\n{text}"
            )
        ctx.stream_text("\n\n")  # the job's live text shows the second answer apart from the first
        options = llm_options(p, max_tokens=SHORTEN_TOKENS, temperature=min(p.temperature, 0.3))
        return generate(ctx, [ChatMessage("user", ask)], options, llm=p.llm, field="title").text

    return shorten


def fit_part(ctx: RunContext, p: LlmParams, value: Any, part: Part, lang: Lang, notes: list[Note]) -> Any:
    """A parsed part within its limit: a text part (asked again once when the part says so, then cut), or each
    item of a list part (cut). The notes of what was cut are added to `notes`."""
    if not part.limit or not value:
        return value
    if part.kind == "text":
        shorten = shortener(ctx, p, lang, part.limit, part.rule) if part.ask_again else None
        fitted = enforce_limit(value, part.limit, part.rule, shorten=shorten)
        notes += fitted.notes
        return fitted.text
    if part.kind == "list":
        items = []
        for item in value:
            fitted = enforce_limit(item, part.limit, part.rule)
            notes += fitted.notes
            items.append(fitted.text)
        return [i for i in items if i]
    return value


def missing_note(keys: list[str], found_any: bool) -> Note:
    if not found_any:
        return note(
            "copy_layout_ignored",
            "the model did not write in the asked layout; its answer is kept as the body",
            count=len(keys),
        )
    return note(
        "copy_part_missing",
        f"the model's answer lacks {len(keys)} part(s): {', '.join(keys)}; they are empty or filled from the facts",
        count=len(keys),
    )


def md_part(part: Part, value: Any, lang: Lang) -> list[str]:
    """One part as Markdown lines under its heading."""
    lines = ["", f"## {part.label[lang]}", ""]
    if part.kind == "text":
        lines.append(str(value))
    elif part.kind == "tags":
        lines.append(" ".join(value))
    elif part.kind == "list":
        lines += [f"- {v}" for v in value]
    elif part.kind == "pairs":
        for v in value:
            lines += [f"### {v['heading']}", "", v["text"], ""] if v["heading"] else [v["text"], ""]
    elif part.kind == "shots":
        head = ("| # | 画面 | 台词 | 时长 |", "| # | Visual | Line | Seconds |")[lang == "en"]
        lines += [head, "|---|---|---|---|"]
        for i, s in enumerate(value, 1):
            sec = f"{s['seconds']:g}" if s.get("seconds") is not None else ""
            lines.append(f"| {i} | {_cell(s['visual'])} | {_cell(s['line'])} | {sec} |")
    return lines


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("|", "｜")).strip()


def md_table(rows: list[tuple[str, str]], lang: Lang) -> list[str]:
    head = ("| 项目 | 内容 |", "| Item | Value |")[lang == "en"]
    return [head, "|---|---|", *(f"| {_cell(k)} | {_cell(v)} |" for k, v in rows)]


def save_copy(
    ctx: RunContext, text: str, *, params: LlmParams, data: dict[str, Any], notes: list[Note], name: str
) -> TextResult:
    """Store the copy as a text asset (screened, with its params) and return it with its notes."""
    result = save_text_result(
        ctx, text, params=params, llm=params.llm, data=data, parent_id=params_image(params), name=name
    )
    for n in notes:
        result.warn(n)
    return result


def params_image(p: LlmParams) -> str | None:
    """The product photo the copy was written from: the text asset's parent in the library's lineage."""
    return getattr(p, "image", None)
