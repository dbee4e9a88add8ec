"""The fixed layout the model is asked to write copy in, and a forgiving reader of what it actually wrote.

The model is told to start each part with its marker, 【标题】 (or [Title] in English), one part after another.
Small models drift: they add Markdown (**标题**, ### 标题), use a colon instead of brackets, number their lines,
skip a part or write prose. `parse` takes what it can find and says which parts are missing; it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from zhike.words.styles import Lang, Part

_BULLET = re.compile(
    r"^\s*(?:[-*•·●▪◆]|\d{1,2}\s*(?:[、)）]|[.:：](?!\d))|[（(]\d{1,2}[)）]|[①-⑳]|第[一二三四五六七八九十\d]+[条点个]?[:：、])\s*"
)
_SPLIT = re.compile(r"\s*[:：]\s*")
_INLINE_BULLET = re.compile(r"(?<=[。！？；;!?])[ \t]*[-•·][ \t]+")  # "…舒适。- 轻松…": a list on one line
# "…舒适度高。使用场景：日常…": the next "Heading：" of a pairs part on the same line (a heading is 2-8 characters)
_INLINE_HEADING = re.compile(r"(?<=[。！？；!?])[ \t]*(?=[^，。！？；：:\s]{2,8}[：:])")
_TAG = re.compile(r"#\s*([^\s#,，、;；]+)")
_SECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:s|秒|sec|seconds?)?", re.I)
_SHOT_KEYS = {
    "visual": ("画面", "镜头画面", "场景", "visual", "scene", "shot"),
    "line": ("台词", "口播", "文案", "旁白", "line", "voiceover", "voice-over", "script"),
    "seconds": ("时长", "时间", "秒数", "duration", "seconds", "length", "time"),
}


def marker(part: Part, lang: Lang) -> str:
    return f"【{part.label['zh']}】" if lang == "zh" else f"[{part.label['en']}]"


def format_instruction(parts: Sequence[Part], lang: Lang, hints: dict[str, str] | None = None) -> str:
    """The lines telling the model which parts to write, in order, each under its marker (with a per-part hint)."""
    hints = hints or {}
    lines = []
    for p in parts:
        hint = hints.get(p.key) or _default_hint(p, lang)
        lines.append(f"{marker(p, lang)}{hint}")
    head = (
        "严格按下面的格式输出，每部分以【】中的名称单独起一行开头，按顺序写完所有部分，不要输出其他说明："
        if lang == "zh"
        else "Write exactly in this layout: each part starts on its own line with its [name], all parts in "
        "this order, nothing else:"
    )
    return head + "\n" + "\n".join(lines)


def _default_hint(p: Part, lang: Lang) -> str:
    zh = lang == "zh"
    limit = ""
    if p.limit:
        limit = (
            f"（不超过 {p.limit // 2 if p.rule == 'double_width' else p.limit} 个字）"
            if zh
            else f" (at most {p.limit} characters)"
        )
    count = ""
    if p.min_items or p.max_items:
        lo, hi = p.min_items or 1, p.max_items or p.min_items
        count = (f"{lo}–{hi} 条" if lo != hi else f"{lo} 条") if zh else (f"{lo}-{hi} " if lo != hi else f"{lo} ")
    if p.kind == "list":
        return f"{count}，每条一行，以“- ”开头{limit}" if zh else f' {count}items, one a line starting with "- "{limit}'
    if p.kind == "tags":
        return f"{count}话题标签，如 #好物分享 #穿搭" if zh else f" {count}topic tags like #skincare #ootd"
    if p.kind == "pairs":
        return f"{count}，每条一行，格式如“核心卖点：……”" if zh else f' {count}lines, each like "Key benefit: ..."'
    if p.kind == "shots":
        return (
            f"{count}镜头，每个镜头一行，格式“画面：… | 台词：… | 时长：3秒”"
            if zh
            else f' {count}shots, one a line: "Visual: ... | Line: ... | Seconds: 3"'
        )
    return limit


@dataclass
class Parsed:
    """What was found: part key -> str (text), list[str] (list, tags), list[dict] (pairs, shots)."""

    values: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    found_any: bool = False  # False: no marker at all (the model ignored the layout)


def _marker_pattern(parts: Sequence[Part]) -> re.Pattern[str]:
    names = sorted({n for p in parts for n in (p.label["zh"], p.label["en"], p.key)}, key=len, reverse=True)
    alt = "|".join(re.escape(n) for n in names)
    # 【标题】 [Title] 标题： Title: (each maybe in Markdown bold or after ###), or ### 标题 / **标题** alone on a line;
    # the rest of the line is the part's text
    md = r"(?:#{1,6}[ \t]*)?(?:\*\*)?"
    forms = [
        rf"{md}【[ \t]*({alt})[ \t]*】(?:\*\*)?",
        rf"{md}\[[ \t]*({alt})[ \t]*\](?:\*\*)?",
        rf"{md}({alt})(?:\*\*)?[ \t]*[:：]",
        rf"(?:#{{1,6}}[ \t]*|\*\*)({alt})(?:\*\*)?[ \t]*(?=\n|$)",
    ]
    return re.compile(r"^[ \t]*(?:" + "|".join(forms) + r")[ \t]*[:：]?[ \t]*", re.M | re.I)


def _unfold(text: str, parts: Sequence[Part]) -> str:
    """A small model sometimes writes the whole answer on one line ("【标题】…【卖点】- …。- …【详情页】…"): put each
    bracketed marker, and each bullet after a sentence end, at the start of its own line."""
    names = "|".join(re.escape(n) for n in sorted({p.label[lg] for p in parts for lg in ("zh", "en")}, key=len)[::-1])
    text = re.sub(rf"(?<=[^\n])[ \t]*(?=【[ \t]*(?:{names})[ \t]*】|\[[ \t]*(?:{names})[ \t]*\])", "\n", text)
    return _INLINE_BULLET.sub("\n- ", text)


def parse(text: str, parts: Sequence[Part]) -> Parsed:
    """Split the model's answer into its parts; each part's text is read by its kind."""
    by_name = {n.lower(): p for p in parts for n in (p.label["zh"], p.label["en"], p.key)}
    text = _unfold(text, parts)
    out = Parsed()
    spans: list[tuple[Part, int, int]] = []
    matches = list(_marker_pattern(parts).finditer(text))
    for i, m in enumerate(matches):
        name = next(g for g in m.groups() if g).lower()
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        spans.append((by_name[name], m.end(), end))
    out.found_any = bool(spans)
    raw: dict[str, str] = {}
    for part, a, b in spans:
        if part.key not in raw:  # the first occurrence wins: a repeated marker is usually the model rambling on
            raw[part.key] = text[a:b].strip()
    for part in parts:
        value = read_part(raw.get(part.key, ""), part)
        if value:
            out.values[part.key] = value
        else:
            out.missing.append(part.key)
    return out


def read_part(text: str, part: Part) -> Any:
    """One part's text as its kind's value (empty when there is nothing usable)."""
    text = text.strip().strip("*").strip()
    if part.kind == "text":
        return _clean_text(text)
    if part.kind == "tags":
        return read_tags(text, part.max_items)
    items = _items(text)
    if part.max_items:
        items = items[: part.max_items]
    if part.kind == "list":
        return items
    if part.kind == "pairs":
        return read_pairs(text, part.max_items)
    if part.kind == "shots":
        return [s for s in (read_shot(i) for i in items) if s]
    return text


def _clean_text(text: str) -> str:
    lines = [ln.rstrip() for ln in text.splitlines()]
    out = "\n".join(lines).strip()
    if len(lines) == 1:
        out = out.strip("“”\"'「」『』 ")
    return re.sub(r"\n{3,}", "\n\n", out)


def _items(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = _BULLET.sub("", line.strip()).strip().strip("*").strip()
        if line:
            out.append(line)
    return out


_PLACEHOLDER_HEADINGS = {"小标题", "标题", "模块", "heading", "title", "section"}


def read_pairs(text: str, max_items: int | None = None) -> list[dict[str, str]]:
    """ "Heading: text" lines as {heading, text}. A heading alone ("### 材质", "小标题：材质") takes the lines under
    it as its text; a line without a heading is its own section (or the text of a heading still empty)."""
    out: list[dict[str, str]] = []
    for raw in _INLINE_HEADING.sub("\n", text).splitlines():
        bullet = bool(_BULLET.match(raw))
        line = _BULLET.sub("", raw.strip()).strip().strip("*").strip()
        if not line:
            continue
        m = _SPLIT.search(line)
        head, sep, rest = (line[: m.start()], ":", line[m.end() :].strip()) if m else (line, "", "")
        head = head.strip("*#").strip()
        if sep == "" and raw.lstrip().startswith("#"):
            out.append({"heading": head, "text": ""})  # a Markdown heading: its text follows
        elif sep == "":
            if out and (not out[-1]["text"] or bullet):
                out[-1]["text"] = (out[-1]["text"] + "\n" + line).strip()
            else:
                out.append({"heading": "", "text": line})
        elif head.lower() in _PLACEHOLDER_HEADINGS or not rest:
            out.append({"heading": rest or head, "text": ""})  # the model copied the format's word, or a bare heading
        elif len(head) <= 20:
            out.append({"heading": head, "text": rest})
        else:
            out.append({"heading": "", "text": line})
    out = [p for p in out if p["text"] or p["heading"]]
    return out[:max_items] if max_items else out


def read_tags(text: str, max_items: int | None = None) -> list[str]:
    """#tags from a line ("#好物 #穿搭"), or words split by spaces/commas when the model forgot the #."""
    tags = [t.strip() for t in _TAG.findall(text)]
    if not tags:
        tags = [t for t in re.split(r"[\s,，、;；]+", text) if t and len(t) <= 20]
    seen: list[str] = []
    for t in tags:
        t = "#" + t.lstrip("#")
        if t != "#" and t not in seen:
            seen.append(t)
    return seen[:max_items] if max_items else seen


def read_shot(item: str) -> dict[str, Any] | None:
    """A shot line ("画面：… | 台词：… | 时长：3秒") as {visual, line, seconds}; a line without keys is its line."""
    pieces = [p for p in re.split(r"\s*[|｜;；]\s*|\s{2,}", item) if p.strip()]
    shot: dict[str, Any] = {}
    for piece in pieces:
        kv = _SPLIT.split(piece, maxsplit=1)
        if len(kv) != 2:
            continue
        key = kv[0].strip().strip("*").lower()
        for name, words in _SHOT_KEYS.items():
            if name not in shot and any(key.endswith(w) for w in words):
                shot[name] = kv[1].strip()
                break
    if "seconds" in shot:
        m = _SECONDS.search(str(shot["seconds"]))
        shot["seconds"] = float(m[1]) if m else None
    if not shot.get("visual") and not shot.get("line"):
        return {"visual": "", "line": item.strip(), "seconds": None} if item.strip() else None
    return {"visual": shot.get("visual", ""), "line": shot.get("line", ""), "seconds": shot.get("seconds")}
