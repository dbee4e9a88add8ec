"""live_script (直播脚本): a live-selling script for a list of products, for a human host or a digital human.

The script is written part by part, each part its own LLM call (opening; per product: hook, demo, price reveal,
urgency, call to action; filler lines; answers to common questions; closing), so a 10,000-character script is
practical on a small model: progress says "part i of n", the words stream, and each finished part is checkpointed
in the job's work folder, so a retried job (a worker died) goes on from the first missing part. Live rooms loop
their products: when the parts come out shorter than the length asked for, further rounds (返场) are written
until it is reached.

Two outputs: a Markdown script for people, and its machine-readable twin (schema `zhike.live_script` v1,
docs/WORDS.md) that the digital-human issue reads: segments with kind, product, text, the pause after it and its
estimated speaking time (characters / `speech_rate`).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zhike.backends.llm.base import ChatMessage, GenerateOptions
from zhike.core.context import RunContext
from zhike.core.registry import operation
from zhike.core.types import TextResult, note
from zhike.core.ui import Studio, ui
from zhike.ops.text_common import LlmParams, generate, llm_options, prepare_llm
from zhike.ops.translate import clean_answer

SCHEMA = "zhike.live_script"
SCHEMA_VERSION = 1
# Speaking rates (characters per second, whitespace not counted): a Chinese live-selling host speaks about
# 4.5 characters a second (~270 a minute, brisk but clear); English about 14 characters (~2.7 words) a second.
SPEECH_RATE = {"zh": 4.5, "en": 14.0}
# Tokens a part is allowed per character asked, before the model's own rate is known (then: its measured rate):
# Qwen writes a Chinese character in about one token, English about 3.5 characters a token; x1.3 headroom.
TOKENS_PER_CHAR = {"zh": 1.0, "en": 0.3}
MAX_ROUNDS = 4  # product rounds at most (the first one and up to three 返场 loops)

Kind = Literal["opening", "hook", "demo", "price", "urgency", "cta", "filler", "faq", "closing"]
PRODUCT_KINDS: tuple[Kind, ...] = ("hook", "demo", "price", "urgency", "cta")
# Share of the length each part is asked for, and the pause after it (ms): a beat after the price reveal and the
# call to action lets viewers react (and a digital human's mouth rest).
WEIGHT: dict[str, float] = {
    "opening": 1.0,
    "hook": 0.6,
    "demo": 2.0,
    "price": 1.0,
    "urgency": 0.6,
    "cta": 0.6,
    "filler": 1.0,
    "faq": 2.0,
    "closing": 0.8,
}
PAUSE_MS: dict[str, int] = {
    "opening": 800,
    "hook": 500,
    "demo": 600,
    "price": 1200,
    "urgency": 500,
    "cta": 1500,
    "filler": 800,
    "faq": 700,
    "closing": 0,
}
HEADINGS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "直播脚本",
        "opening": "开场",
        "hook": "引入",
        "demo": "讲解演示",
        "price": "价格揭晓",
        "urgency": "逼单",
        "cta": "下单引导",
        "filler": "互动与过渡",
        "faq": "常见问题",
        "closing": "结束语",
        "product": "商品",
        "round": "返场",
        "host": "主播",
        "style": "风格",
        "length": "字数",
        "time": "预计时长",
        "pause": "停顿",
        "q": "问",
        "a": "答",
    },
    "en": {
        "title": "Live script",
        "opening": "Opening",
        "hook": "Hook",
        "demo": "Demo",
        "price": "Price reveal",
        "urgency": "Urgency",
        "cta": "Call to action",
        "filler": "Fillers and transitions",
        "faq": "Common questions",
        "closing": "Closing",
        "product": "Product",
        "round": "Round",
        "host": "Host",
        "style": "Style",
        "length": "Characters",
        "time": "Est. time",
        "pause": "pause",
        "q": "Q",
        "a": "A",
    },
}
STYLES = {
    "energetic": ("激情带货", "Energetic"),
    "warm": ("亲切聊天", "Warm and chatty"),
    "professional": ("专业讲解", "Professional"),
    "humorous": ("幽默风趣", "Humorous"),
}
STYLE_WORDS = {
    "energetic": "充满激情、节奏快、感染力强",
    "warm": "亲切自然、像和朋友聊天",
    "professional": "专业可信、讲清楚参数和原理",
    "humorous": "幽默风趣、轻松活泼",
}
TASK_ZH: dict[str, str] = {
    "opening": "直播开场：欢迎进入直播间的观众，介绍自己，预告今天要讲的商品和福利，提醒点关注。",
    "hook": "引入第 {n} 号商品「{name}」：用一两句抓住注意力的话（痛点、场景或悬念）把话题引到它。",
    "demo": "讲解并演示「{name}」：像对着镜头边展示边讲，逐一讲透这些卖点：{points}。",
    "price": "揭晓「{name}」的价格：{price}。{offer}先说平时的价值，再报出直播间价格，制造惊喜。",
    "urgency": "为「{name}」制造紧迫感：{stock}限时限量，错过就没有了，但不要说假话。",
    "cta": "引导观众下单「{name}」：点下方小黄车 {n} 号链接，说明怎么拍、怎么领券、发货和售后放心。",
    "filler": "写一组可以循环播放的互动过渡短句（欢迎新进来的朋友、提醒点赞关注、预告下一个商品、问问大家想看什么），"
    "每句单独一行。",
    "faq": "回答直播间观众最常问的问题（{questions}）。每个问题写成两行：“问：…”和“答：…”。",
    "closing": "直播结束语：感谢观众，回顾今天的商品和福利，提醒还没下单的抓紧，预告下次直播。",
}
TASK_EN: dict[str, str] = {
    "opening": "Opening: welcome viewers into the live room, introduce yourself, preview today's products and deals, "
    "ask them to follow.",
    "hook": "Introduce product no. {n}, '{name}': one or two attention-grabbing lines (a pain point, a scene or a "
    "tease) leading to it.",
    "demo": "Present and demonstrate '{name}' as if showing it to the camera; cover these selling points: {points}.",
    "price": "Reveal the price of '{name}': {price}. {offer}First its usual value, then the live-room price.",
    "urgency": "Create urgency for '{name}': {stock}limited time and quantity; never say anything untrue.",
    "cta": "Tell viewers how to buy '{name}': link no. {n} in the cart below, how to use the coupon, shipping and "
    "returns.",
    "filler": "Write short interaction and transition lines that can loop (welcome newcomers, ask for likes and "
    "follows, tease the next product, ask what they want to see), one per line.",
    "faq": "Answer the questions viewers ask most ({questions}). Write each as two lines: 'Q: ...' and 'A: ...'.",
    "closing": "Closing: thank viewers, recap today's products and deals, urge those who have not bought yet, "
    "announce the next live.",
}
DEFAULT_FAQ = {
    "zh": "尺码或规格怎么选、多久发货、能不能退换、有没有赠品",
    "en": "which size or version to choose, shipping time, returns, free gifts",
}


class LiveProduct(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        ..., min_length=1, max_length=100, description="Product name", json_schema_extra=ui("商品名称", "Name")
    )
    price: str = Field(
        "",
        max_length=60,
        description="Live-room price as it should be said, e.g. 59.9元 or 原价99 直播间59.9",
        json_schema_extra=ui("价格", "Price", help_zh="直播间价格，例如：原价 99，直播间 59.9 元"),
    )
    selling_points: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Selling points, one per entry",
        json_schema_extra=ui("卖点", "Selling points", help_zh="每行一个卖点"),
    )
    offer: str = Field(
        "",
        max_length=200,
        description="Coupon or offer, e.g. 满99减20, 买二送一",
        json_schema_extra=ui("优惠", "Offer", help_zh="优惠券或活动，例如：满 99 减 20"),
    )
    stock: int | None = Field(
        None, ge=0, le=10_000_000, description="Units on sale in this live", json_schema_extra=ui("库存", "Stock")
    )


class LiveScriptParams(LlmParams):
    model_config = ConfigDict(extra="forbid")

    products: list[LiveProduct] = Field(
        ...,
        min_length=1,
        max_length=20,
        description="Products in the order they are sold",
        json_schema_extra=ui("商品", "Products", order=0, cli_flag="--product", cli_shorthand=("name", "price")),
    )
    host: str = Field(
        "",
        max_length=500,
        description="Host persona: name, voice, manner, e.g. 小美，活泼的东北姑娘",
        json_schema_extra=ui(
            "主播人设", "Host persona", help_zh="名字、口吻、性格，例如：小美，活泼的东北姑娘", order=1
        ),
    )
    style: Literal["energetic", "warm", "professional", "humorous"] = Field(
        "energetic", description="Tone of the script", json_schema_extra=ui("风格", "Style", choices=STYLES, order=2)
    )
    target_chars: int = Field(
        3000,
        ge=300,
        le=30000,
        description="Length of the script in characters (10,000 is about 37 minutes of speech in Chinese)",
        json_schema_extra=ui("目标字数", "Target length", help_zh="一万字约 37 分钟口播", step=500, order=3),
    )
    questions: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Questions viewers ask that the script must answer; empty: the usual ones",
        json_schema_extra=ui("常见问题", "Common questions", help_zh="留空则回答尺码、发货、退换等常见问题", order=4),
    )
    language: Literal["zh", "en"] = Field(
        "zh",
        description="Language of the script",
        json_schema_extra=ui("语言", "Language", choices={"zh": ("中文", "Chinese"), "en": ("英文", "English")}),
    )
    speech_rate: float | None = Field(
        None,
        gt=0.5,
        le=40,
        description="Speaking rate for the timings, characters per second; empty: 4.5 (zh) or 14 (en)",
        json_schema_extra=ui("语速（字/秒）", "Speech rate (chars/s)", help_zh="留空：中文 4.5 字/秒", group="more"),
    )

    def screened_texts(self) -> list[tuple[str, str]]:
        out = [("host", self.host)] + [(f"questions.{i}", q) for i, q in enumerate(self.questions)]
        for i, pr in enumerate(self.products):
            out += [(f"products.{i}.name", pr.name), (f"products.{i}.offer", pr.offer)]
            out += [(f"products.{i}.selling_points.{j}", s) for j, s in enumerate(pr.selling_points)]
        return [(f, t) for f, t in out if t]


class LiveScriptResult(TextResult):
    json_asset_id: str = Field(description="The machine-readable script (application/json, schema zhike.live_script)")


# -- the plan -------------------------------------------------------------------------------------------------
def plan(p: LiveScriptParams, rnd: int) -> list[tuple[Kind, int | None]]:
    """The parts of round `rnd`: round 0 is the whole show; later rounds (返场) go through the products again."""
    parts: list[tuple[Kind, int | None]] = [("opening", None)] if rnd == 0 else []
    for i in range(len(p.products)):
        parts += [(k, i) for k in PRODUCT_KINDS]
        if i < len(p.products) - 1 or rnd > 0:
            parts.append(("filler", i))
    if rnd == 0:
        parts += [("faq", None), ("closing", None)]
    return parts


def part_chars(p: LiveScriptParams, kind: str) -> int:
    """Characters asked of one part in round 0, its share of `target_chars`."""
    total = sum(WEIGHT[k] for k, _ in plan(p, 0))
    return max(60, round(p.target_chars * WEIGHT[kind] / total))


def spoken_chars(text: str) -> int:
    return len(re.sub(r"\s", "", text))


def _facts(p: LiveScriptParams) -> str:
    lines = []
    for i, pr in enumerate(p.products, 1):
        bits = [f"{i}. {pr.name}"]
        if pr.price:
            bits.append(f"价格/price: {pr.price}")
        if pr.offer:
            bits.append(f"优惠/offer: {pr.offer}")
        if pr.stock is not None:
            bits.append(f"库存/stock: {pr.stock}")
        if pr.selling_points:
            bits.append("卖点/points: " + "; ".join(pr.selling_points))
        lines.append(" | ".join(bits))
    return "\n".join(lines)


def messages(p: LiveScriptParams, kind: Kind, index: int | None, rnd: int, chars: int) -> list[ChatMessage]:
    zh = p.language == "zh"
    pr = p.products[index] if index is not None else None
    persona = p.host or ("一位热情的带货主播" if zh else "an upbeat live-selling host")
    if zh:
        system = (
            f"你是直播带货主播，人设：{persona}。说话风格：{STYLE_WORDS[p.style]}。只写主播要说的口播原话，"
            "用简体中文，不写舞台说明、不写标题、不用 Markdown；不编造商品信息里没有的参数和承诺。"
        )
    else:
        system = (
            f"You are a live-selling host. Persona: {persona}. Style: {STYLES[p.style][1].lower()}. Write only the "
            "words the host says, in English: no stage directions, no headings, no Markdown; never invent specs or "
            "promises that are not in the product facts."
        )
    task = (TASK_ZH if zh else TASK_EN)[kind]
    if pr is not None:
        stock = (f"库存只有 {pr.stock} 件，" if zh else f"only {pr.stock} in stock, ") if pr.stock is not None else ""
        offer = (f"优惠：{pr.offer}。" if zh else f"Offer: {pr.offer}. ") if pr.offer else ""
        points = ("、" if zh else ", ").join(pr.selling_points) or ("它的亮点" if zh else "its best features")
        task = task.format(
            n=index + 1 if index is not None else 0,
            name=pr.name,
            points=points,
            price=pr.price or ("直播间专属价" if zh else "the live-room price"),
            offer=offer,
            stock=stock,
        )
    if kind == "faq":
        task = task.format(questions=("；" if zh else "; ").join(p.questions) or DEFAULT_FAQ[p.language])
    if kind == "filler" and pr is not None:
        nxt = p.products[(index or 0) + 1].name if (index or 0) + 1 < len(p.products) else p.products[0].name
        task += f"刚讲完「{pr.name}」，接下来是「{nxt}」。" if zh else f" Just sold '{pr.name}'; next: '{nxt}'."
    if rnd > 0:
        task += (
            f"（这是第 {rnd + 1} 轮返场讲解，换个角度讲，不要重复前面的话。）"
            if zh
            else f" (This is round {rnd + 1}: a fresh angle, do not repeat earlier lines.)"
        )
    length = f"长度约 {chars} 字。" if zh else f"About {chars} characters."
    user = f"{'商品信息' if zh else 'Product facts'}:\n{_facts(p)}\n\n{'任务' if zh else 'Task'}: {task}\n{length}"
    return [ChatMessage("system", system), ChatMessage("user", user)]


# -- segments -------------------------------------------------------------------------------------------------
_HEADING = re.compile(r"^\s*#{1,6}\s")
_MARKS = re.compile(r"^\s*(?:[-*•]\s+|\d+[.)、]\s+)")
_QA = re.compile(r"^\s*(?:\*\*)?(问|答|Q|A)(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*(.*)$", re.I)


def tidy(text: str) -> str:
    """Spoken words only: no Markdown headings (their lines are titles, not speech), emphasis or list marks a
    model added anyway."""
    text = clean_answer(text)
    lines = [_MARKS.sub("", ln).replace("**", "").strip() for ln in text.splitlines() if not _HEADING.match(ln)]
    return "\n".join(ln for ln in lines if ln)


def to_segments(kind: Kind, index: int | None, rnd: int, text: str, rate: float) -> list[dict[str, Any]]:
    """One part's segments: a filler part gives one segment per line (each loops on its own), a FAQ part one per
    question and answer, any other part one segment."""
    text = tidy(text)
    pieces: list[tuple[str, str | None]] = []
    if kind == "filler":
        pieces = [(ln, None) for ln in text.splitlines() if ln.strip()]
    elif kind == "faq":
        question: str | None = None
        for ln in text.splitlines():
            m = _QA.match(ln)
            if m and m.group(1).lower() in ("问", "q"):
                question = m.group(2).strip()
            elif m:
                pieces.append((m.group(2).strip(), question))
                question = None
            elif pieces and question is None:
                pieces[-1] = (pieces[-1][0] + ln, pieces[-1][1])
            else:
                pieces.append((ln, None))
    else:
        pieces = [(text, None)]
    segs = []
    for words, question in pieces:
        if not words.strip():
            continue
        seg: dict[str, Any] = {
            "kind": kind,
            "product_index": index,
            "round": rnd,
            "text": words.strip(),
            "pause_after_ms": PAUSE_MS[kind],
            "est_seconds": round(spoken_chars(words) / rate, 1),
        }
        if kind == "faq":
            seg["question"] = question
        segs.append(seg)
    return segs


def markdown(p: LiveScriptParams, doc: dict[str, Any]) -> str:
    h = HEADINGS[p.language]
    minutes, seconds = divmod(round(doc["est_seconds"]), 60)
    names = "、".join(pr.name for pr in p.products) if p.language == "zh" else ", ".join(pr.name for pr in p.products)
    out = [
        f"# {h['title']}：{names}" if p.language == "zh" else f"# {h['title']}: {names}",
        "",
        f"> {h['host']}: {p.host or '-'} · {h['style']}: {STYLES[p.style][0 if p.language == 'zh' else 1]} · "
        f"{h['length']}: {doc['total_chars']} · {h['time']}: {minutes}:{seconds:02d}",
    ]
    last: tuple[Any, ...] | None = None
    for seg in doc["segments"]:
        i, kind, rnd = seg["product_index"], seg["kind"], seg["round"]
        section = (i, rnd) if kind in PRODUCT_KINDS else (kind, rnd)
        if section != last:
            if kind in PRODUCT_KINDS:
                pr = p.products[i]
                extra = f" · {h['round']} {rnd + 1}" if rnd else ""
                out += ["", f"## {h['product']} {i + 1}: {pr.name}" + (f" — {pr.price}" if pr.price else "") + extra]
            else:
                out += ["", f"## {h[kind]}" + (f" · {h['round']} {rnd + 1}" if rnd else "")]
            last = section
        if kind in PRODUCT_KINDS:
            out += ["", f"### {h[kind]}"]
        if kind == "faq" and seg.get("question"):
            out += ["", f"**{h['q']}：** {seg['question']}", "", f"**{h['a']}：** {seg['text']}"]
        elif kind == "filler":
            out += [f"- {seg['text']}"]
        else:
            out += ["", seg["text"]]
        if seg["pause_after_ms"] and kind != "filler":
            out += ["", f"_（{h['pause']} {seg['pause_after_ms'] / 1000:g}s）_"]
    return "\n".join(out).strip() + "\n"


# -- the op ---------------------------------------------------------------------------------------------------
@operation(
    "live_script",
    lane="cpu",
    version=1,
    params=LiveScriptParams,
    result=LiveScriptResult,
    prepare=prepare_llm,
    title={"en": "Live-selling script", "zh": "直播脚本"},
    tags=("text", "words"),
    studio=Studio(
        help=(
            "为直播间的商品写带货口播脚本：开场、逐个商品讲解、互动、答疑、结束，可供数字人直接播放。",
            "A live-selling script for your products: opening, each product, fillers, Q&A and closing; "
            "a digital human can read its timed segments.",
        )
    ),
)
def live_script(ctx: RunContext, p: LiveScriptParams) -> LiveScriptResult:
    """Write a live-selling script part by part (resumable), as Markdown and as timed segments (JSON)."""
    t0 = time.perf_counter()
    rate = p.speech_rate or SPEECH_RATE[p.language]
    options = llm_options(p)
    segments: list[dict[str, Any]] = []
    llm: str | None = p.llm
    total_chars = 0
    step, n_steps = 0, len(plan(p, 0))
    resumed = generated = 0
    tokens = {"tokens": 0, "chars": 0}  # what the model spent so far: its tokens per character sizes the next part
    for rnd in range(MAX_ROUNDS):
        parts = plan(p, rnd)
        if rnd:
            n_steps += len(parts)
        # round 0 asks each part its share of the target; a later round shares out what is still missing
        asked = [part_chars(p, kind) for kind, _ in parts]
        scale = 1.0 if rnd == 0 else max(0.0, p.target_chars - total_chars) / sum(asked)
        for k, (kind, index) in enumerate(parts):
            key = f"part-r{rnd}-{k:03d}"
            ctx.progress(step, n_steps)  # raises JobCancelled between parts
            rec = ctx.work.done(key)
            if rec is not None and isinstance(rec.get("text"), str):
                text = rec["text"]
                llm = rec.get("llm") or llm
                resumed += 1
                ctx.stream_text(("\n\n" if ctx.partial_text else "") + text)
            else:
                chars = max(60, round(asked[k] * scale))
                per_char = tokens["tokens"] / tokens["chars"] if tokens["chars"] else TOKENS_PER_CHAR[p.language]
                opts = GenerateOptions(
                    max_tokens=max(16, min(options.max_tokens, int(chars * per_char * 1.3) + 16)),
                    temperature=options.temperature,
                    top_p=options.top_p,
                    seed=None if options.seed is None else options.seed + step,
                )
                if ctx.partial_text:
                    ctx.stream_text("\n\n")
                done = generate(ctx, messages(p, kind, index, rnd, chars), opts, llm=p.llm, field="text")
                text = tidy(done.text)
                rec = {"text": text, "llm": llm, "tokens": done.completion_tokens}
                ctx.work.record(key, rec)
                generated += 1
            if rec.get("tokens") and spoken_chars(text):
                tokens["tokens"] += int(rec["tokens"])
                tokens["chars"] += spoken_chars(text)
            new = to_segments(kind, index, rnd, text, rate)
            segments += new
            total_chars += sum(spoken_chars(s["text"]) for s in new)
            step += 1
        if total_chars >= p.target_chars * 0.9:
            break
    ctx.progress(n_steps, n_steps)
    for i, seg in enumerate(segments):
        seg["id"] = f"s{i + 1:04d}"
    doc = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "language": p.language,
        "speech_rate_cps": rate,
        "products": [{"index": i, "name": pr.name, "price": pr.price} for i, pr in enumerate(p.products)],
        "segments": [{"id": s.pop("id"), **s} for s in segments],
        "total_chars": total_chars,
        "est_seconds": round(sum(s["est_seconds"] + s["pause_after_ms"] / 1000 for s in segments), 1),
    }
    text = markdown(p, doc)
    ctx.screen_text(text, "text")
    params = p.model_dump(mode="json")
    name = ("直播脚本 " if p.language == "zh" else "Live script ") + p.products[0].name
    md_id = ctx.save_text(text, params=params, model=llm, name=name)
    json_id = ctx.save_text(
        json.dumps(doc, ensure_ascii=False, indent=1),
        params=params,
        model=llm,
        parent_id=md_id,
        mime="application/json",
        name=name,
    )
    result = LiveScriptResult(
        asset_id=md_id,
        json_asset_id=json_id,
        text=text,
        data=doc,
        llm=llm,
        timings={"generate": round(time.perf_counter() - t0, 3)},
    )
    if total_chars < p.target_chars * 0.9:
        result.warn(
            note(
                "live_script_short",
                f"the script has {total_chars} characters of the {p.target_chars} asked for",
                chars=total_chars,
                target=p.target_chars,
            )
        )
    # not in the JSON asset: how this attempt got its parts (a retried job resumes from the checkpoints)
    result.data = {**doc, "parts": {"generated": generated, "resumed": resumed}}
    return result
