"""Brand kits (品牌) as templates see them: `{{brand.name}}`, `{{brand.logo}}`, colour fields `brand.primary`
(optionally with a fallback, `brand.primary|#e4393c`) and text fonts `brand.heading` / `brand.body`.

The kit is data (`BrandKit`); the owner's kit is stored by services/brand.py and handed to `render_design`, which
resolves the references with `apply_brand` before drawing. Without a kit a colour reference takes its own fallback,
or the DEFAULT_COLOURS, so a template with brand references renders the same for everyone who has none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from zhike import fonts

PREFIX = "brand."
COLOURS = ("primary", "secondary", "accent", "text", "background")
FONTS = ("heading", "body")
PLACEHOLDERS = ("name", "logo")  # {{brand.name}} in text, {{brand.logo}} as an image src
# A calm red-and-ink palette: the colours Zhike's bundled templates use, for owners without a kit.
DEFAULT_COLOURS = {
    "primary": "#e4393c",
    "secondary": "#1f1f1f",
    "accent": "#ffb400",
    "text": "#1f1f1f",
    "background": "#ffffff",
}
DEFAULT_FONT = "sans"  # the fallback chain (zhike/fonts.py)
# The template fields a colour or font reference may stand in: colours (a gradient's `colors` list, a stroke's or
# shadow's `color` too) and a text layer's `font`.
RESOLVED_KEYS = {"color", "fill", "background", "colors", "font"}
HEX_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
COLOUR_REF_RE = re.compile(r"^brand\.(\w+)(?:\|(.+))?$")


def _hex(v: str) -> str:
    if not HEX_RE.match(v):
        raise ValueError(f"{v!r} is not a colour: use #rrggbb")
    return v.lower()


def _font(v: str) -> str:
    if not fonts.family_known(v):
        raise ValueError(f"font {v!r} is not installed: use one of {', '.join(font_choices())}")
    return v


def _logo(v: str | None) -> str | None:
    return v or None  # whether it is one of the owner's images is checked where the kit is saved (services)


Hex = Annotated[str, AfterValidator(_hex)]
Family = Annotated[str, Field(max_length=100), AfterValidator(_font)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrandColours(_Model):
    primary: Hex = DEFAULT_COLOURS["primary"]
    secondary: Hex = DEFAULT_COLOURS["secondary"]
    accent: Hex = DEFAULT_COLOURS["accent"]
    text: Hex = DEFAULT_COLOURS["text"]
    background: Hex = DEFAULT_COLOURS["background"]


class BrandFonts(_Model):
    heading: Family = DEFAULT_FONT
    body: Family = DEFAULT_FONT


class BrandKit(_Model):
    """One owner's brand: what `brand.*` references in templates resolve to."""

    name: str = Field("", max_length=100, description="The brand's name: {{brand.name}}")
    logo: Annotated[str | None, AfterValidator(_logo)] = Field(
        None, max_length=32, description="An asset id of your uploads: {{brand.logo}}"
    )
    colors: BrandColours = Field(default_factory=BrandColours)
    fonts: BrandFonts = Field(default_factory=BrandFonts)


def font_choices() -> list[str]:
    """The families a kit may name: the fallback chain (`sans`) and every installed family."""
    return [DEFAULT_FONT, *sorted(fonts.installed())]


def colour_ref(v: str) -> tuple[str, str | None] | None:
    """(`primary`, fallback or None) for a colour reference `brand.primary[|fallback]`; None for anything else.
    ValueError for a `brand.` value that names no kit colour."""
    m = COLOUR_REF_RE.match(v.strip())
    if m is None:
        return None
    if m[1] not in COLOURS:
        raise ValueError(f"unknown brand colour {v!r}: use brand.{', brand.'.join(COLOURS)}")
    if m[2] is not None and m[2].startswith(PREFIX):
        raise ValueError(f"{v!r}: a fallback is a colour (#rrggbb), not another brand colour")
    return m[1], m[2]


def placeholder_ok(name: str) -> bool:
    """Whether a `{{...}}` name is a column or a known brand placeholder (`brand.xyz` that is neither is not)."""
    return not name.startswith(PREFIX) or name[len(PREFIX) :] in PLACEHOLDERS


def is_placeholder(name: str) -> bool:
    return name.startswith(PREFIX) and name[len(PREFIX) :] in PLACEHOLDERS


def values(kit: BrandKit | None) -> dict[str, str]:
    """What `{{brand.name}}` and `{{brand.logo}}` fill in ('' without a kit or logo)."""
    return {PREFIX + "name": kit.name if kit else "", PREFIX + "logo": (kit.logo or "") if kit else ""}


def _resolve(value: Any, key: str | None, kit: BrandKit | None) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, k, kit) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, key, kit) for v in value]
    if not isinstance(value, str) or not value.startswith(PREFIX) or key not in RESOLVED_KEYS:
        return value  # text that merely starts with "brand." stays as written
    if key == "font":
        slot = value[len(PREFIX) :]
        if slot in FONTS:
            return getattr(kit.fonts, slot) if kit else DEFAULT_FONT
        return value
    ref = colour_ref(value)
    if ref is None:
        return value
    name, fallback = ref
    if kit is not None:
        return getattr(kit.colors, name)
    return fallback or DEFAULT_COLOURS[name]


def uses_brand(body: Mapping[str, Any]) -> bool:
    """Whether a template's JSON refers to the brand kit anywhere (colours, fonts or placeholders)."""
    return _mentions(body)


def _mentions(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_mentions(v) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v) for v in value)
    return isinstance(value, str) and (value.startswith(PREFIX) or "{{" in value and PREFIX in value)


def apply_brand(body: Mapping[str, Any], kit: BrandKit | None) -> dict[str, Any]:
    """The template JSON with every brand colour and font reference replaced by the kit's value (or its fallback).
    Placeholders stay: `values(kit)` fills them with the row."""
    return _resolve(dict(body), None, kit)
