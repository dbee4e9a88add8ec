"""Platform styles, tones and lengths, read from the JSON files in zhike/words/data (one file per platform style).

A style is data, like the image presets: its names (zh/en), its limits (how long a title may be and how the
platform counts it, see measures.py), the parts a piece of copy has and the guidance given to the model. Adding a
platform is adding a file; the ops' choices, the studio's lists and the CLI's --platform/--style follow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from zhike.core.errors import InvalidInput
from zhike.words.measures import RULES, LengthRule

Lang = Literal["zh", "en"]
PartKind = Literal["text", "list", "tags", "pairs", "shots"]


@dataclass(frozen=True)
class Part:
    """One part of a piece of copy, in the order the model writes it: 【标题】, 【正文】, 【标签】...

    kind: text (free text), list (one item a line), tags (#words), pairs ("heading: text" lines), shots
    (画面/台词/时长 lines). limit/rule: the longest a text part, or each list item, may be. ask_again: the model
    is asked once for a shorter one before it is cut (titles and hooks, where a cut loses meaning).
    """

    key: str
    label: dict[str, str]
    kind: PartKind = "text"
    limit: int | None = None
    rule: LengthRule = "chars"
    ask_again: bool = False
    min_items: int = 0
    max_items: int | None = None


@dataclass(frozen=True)
class Style:
    id: str
    kind: Literal["product", "marketing"]
    name: dict[str, str]
    description: dict[str, str]
    guidance: dict[str, str]
    source: dict[str, Any]
    order: int = 100
    parts: tuple[Part, ...] = ()
    title_limit: int | None = None  # product platforms: the title's limit, counted by title_rule
    title_rule: LengthRule = "chars"
    limit_text: dict[str, str] = field(default_factory=dict)

    def label(self, lang: Lang) -> str:
        return self.name[lang]


@dataclass(frozen=True)
class Choice:
    """A tone or a length: an id, its names, and what it asks of the model."""

    id: str
    name: dict[str, str]
    guidance: dict[str, str] = field(default_factory=dict)
    chars: int = 0  # lengths: about how many characters of copy (Chinese; English words take about 1/2 as many)
    max_tokens: int = 0  # lengths: the generation cap that fits them


def _part(raw: dict[str, Any]) -> Part:
    rule = raw.get("rule", "chars")
    if rule not in RULES:
        raise ValueError(f"part {raw.get('key')!r}: unknown length rule {rule!r}")
    return Part(
        key=raw["key"],
        label=raw["label"],
        kind=raw.get("kind", "text"),
        limit=raw.get("limit"),
        rule=rule,
        ask_again=bool(raw.get("ask_again", False)),
        min_items=int(raw.get("min_items", 0)),
        max_items=raw.get("max_items"),
    )


def _style(raw: dict[str, Any]) -> Style:
    title = raw.get("title") or {}
    return Style(
        id=raw["id"],
        kind=raw["kind"],
        name=raw["name"],
        description=raw.get("description", raw["name"]),
        guidance=raw["guidance"],
        source=raw.get("source", {}),
        order=int(raw.get("order", 100)),
        parts=tuple(_part(p) for p in raw.get("parts", [])),
        title_limit=title.get("limit"),
        title_rule=title.get("rule", "chars"),
        limit_text=title.get("limit_text", {}),
    )


def _data_files() -> list[tuple[str, str]]:
    folder = resources.files("zhike.words").joinpath("data")
    return sorted((e.name, e.read_text(encoding="utf-8")) for e in folder.iterdir() if e.name.endswith(".json"))


@cache
def all_styles() -> tuple[Style, ...]:
    """Every platform style, product platforms and marketing styles, in their `order`."""
    styles = [_style(json.loads(text)) for name, text in _data_files() if name != "tones.json"]
    return tuple(sorted(styles, key=lambda s: (s.kind, s.order, s.id)))


def product_platforms() -> tuple[Style, ...]:
    """Where a product title is listed (淘宝/天猫, 京东, 拼多多): each with its title limit."""
    return tuple(s for s in all_styles() if s.kind == "product")


def marketing_styles() -> tuple[Style, ...]:
    """小红书 notes, 抖音 scripts, 朋友圈 posts, detail pages, banner slogans..."""
    return tuple(s for s in all_styles() if s.kind == "marketing")


@cache
def _choices() -> dict[str, tuple[Choice, ...]]:
    raw = json.loads(resources.files("zhike.words").joinpath("data", "tones.json").read_text(encoding="utf-8"))
    return {
        "tones": tuple(Choice(t["id"], t["name"], t.get("guidance", {})) for t in raw["tones"]),
        "lengths": tuple(Choice(x["id"], x["name"], {}, int(x["chars"]), int(x["max_tokens"])) for x in raw["lengths"]),
    }


def tones() -> tuple[Choice, ...]:
    return _choices()["tones"]


def lengths() -> tuple[Choice, ...]:
    return _choices()["lengths"]


def _find(items: tuple[Any, ...], wanted: str, field_name: str, code: str) -> Any:
    for item in items:
        if item.id == wanted:
            return item
    raise InvalidInput(
        f"unknown {field_name.rsplit('.', 1)[-1]} {wanted!r}; known: {', '.join(i.id for i in items)}",
        code=code,
        field=field_name,
        ctx={"name": wanted, "known": [i.id for i in items]},
    )


def get_platform(platform_id: str, *, field: str = "params.platform") -> Style:
    return _find(product_platforms(), platform_id, field, "style_unknown")


def get_style(style_id: str, *, field: str = "params.style") -> Style:
    return _find(marketing_styles(), style_id, field, "style_unknown")


def get_tone(tone_id: str, *, field: str = "params.tone") -> Choice:
    return _find(tones(), tone_id, field, "style_unknown")


def get_length(length_id: str, *, field: str = "params.length") -> Choice:
    return _find(lengths(), length_id, field, "style_unknown")


def choices_of(items: tuple[Any, ...]) -> dict[str, tuple[str, str]]:
    """{id: (zh, en)} for a Params field's `ui(choices=...)`."""
    return {i.id: (i.name["zh"], i.name["en"]) for i in items}
