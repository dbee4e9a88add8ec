"""Design templates as data: a canvas, a background and layers (text, image, shape, generated) in JSON.

A template is versioned (`schema_version`) and validated with errors that name the JSON path
(`layers.2.font_size`). Text, image sources and prompts take `{{column}}` placeholders filled from one data row.
Bundled starter templates live in `zhike/design/templates/*.json`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from PIL import ImageColor
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from zhike.core.errors import InvalidInput, TooLarge, plain_ctx
from zhike.design import brand, stock
from zhike.design.categories import CATEGORIES

SCHEMA_VERSION = 1
MAX_SIDE = 4096
MAX_TEMPLATE_BYTES = 256_000  # a template sent with a request or stored; its JSON, UTF-8

# `{{ name }}`: a column name of word characters (CJK included), '-', '.', and single inner spaces.
PLACEHOLDER_RE = re.compile(r"\{\{\s*([\w.-]+(?: [\w.-]+)*)\s*\}\}")


class TemplateError(InvalidInput):
    """A template that cannot be used; `field` is the JSON path of the offending value."""

    code = "invalid_template"


def _colour(v: str) -> str:
    ref = brand.colour_ref(v)  # `brand.primary` or `brand.primary|#e4393c`: the owner's kit, at render time
    if ref is not None:
        return v if ref[1] is None else f"brand.{ref[0]}|{_colour(ref[1])}"
    try:
        ImageColor.getrgb(v)
    except ValueError:
        raise ValueError(f"{v!r} is not a colour (use #rrggbb, #rrggbbaa or a CSS name)") from None
    return v


def _placeholders(v: str) -> str:
    rest = PLACEHOLDER_RE.sub("", v)
    if "{" in rest or "}" in rest:
        # Literal braces are rare on a design; a stray one is nearly always a mistyped placeholder.
        raise ValueError(f"unknown placeholder syntax in {v!r}: write columns as {{{{column}}}}")
    bad = [n for n in PLACEHOLDER_RE.findall(v) if not brand.placeholder_ok(n)]
    if bad:
        raise ValueError(f"unknown brand placeholder {{{{{bad[0]}}}}}: use {{{{brand.name}}}} or {{{{brand.logo}}}}")
    return v


def _stock_src(v: str) -> str:
    sid = stock.ref(v)
    if sid is not None and sid not in stock.items():
        raise ValueError(f"no bundled stock item {sid!r} (GET /api/v1/stock/bundled lists them)")
    return v


Colour = Annotated[str, AfterValidator(_colour)]
Templated = Annotated[str, AfterValidator(_placeholders)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalText(_Model):
    zh: str = Field(..., min_length=1, max_length=200)
    en: str = Field(..., min_length=1, max_length=200)


class Gradient(_Model):
    type: Literal["linear"] = "linear"
    angle: float = Field(90, description="Degrees: 0 runs left to right, 90 top to bottom")
    colors: list[Colour] = Field(..., min_length=2, max_length=8, description="Evenly spaced colour stops")


def _fill_kind(v: Any) -> str:
    return "gradient" if isinstance(v, dict | Gradient) else "colour"


Fill = Annotated[
    Annotated[Colour, Tag("colour")] | Annotated[Gradient, Tag("gradient")],
    Discriminator(_fill_kind),
]


class Box(_Model):
    x: int = Field(..., ge=-MAX_SIDE, le=MAX_SIDE)
    y: int = Field(..., ge=-MAX_SIDE, le=MAX_SIDE)
    w: int = Field(..., ge=1, le=MAX_SIDE)
    h: int = Field(..., ge=1, le=MAX_SIDE)

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, v: Any) -> Any:
        # [x, y, w, h] is accepted as shorthand.
        if isinstance(v, list | tuple) and len(v) == 4:
            return dict(zip("xywh", v, strict=True))
        return v


class Stroke(_Model):
    width: int = Field(2, ge=0, le=64)
    color: Colour = "#000000"


class Shadow(_Model):
    dx: int = Field(0, ge=-200, le=200)
    dy: int = Field(4, ge=-200, le=200)
    blur: float = Field(6, ge=0, le=100)
    color: Colour = "#00000080"


class _Layer(_Model):
    id: str | None = Field(None, max_length=64, description="Name used in reports; defaults to layers.N")
    box: Box
    optional: bool = Field(False, description="A missing/empty column leaves this layer empty instead of failing")
    when: str | None = Field(
        None,
        pattern=r"^[\w.-]+(?: [\w.-]+)*$",
        description="Draw only when this column has a value (e.g. a tag's backdrop)",
    )
    rotate: float = Field(0, ge=-360, le=360, description="Degrees clockwise about the box centre")
    hidden: bool = Field(False, description="Kept in the template but not drawn (the editor's eye toggle)")
    locked: bool = Field(False, description="The editor does not move or resize it; rendering ignores this")


class TextLayer(_Layer):
    type: Literal["text"]
    text: Templated = Field(..., max_length=2000)
    font: str = Field("sans", max_length=100, description="Family; unknown or missing -> the fallback chain")
    weight: Literal["regular", "bold"] = "regular"
    font_size: int = Field(48, ge=4, le=1000)
    min_size: int | None = Field(None, ge=4, le=1000, description="Auto-shrink floor; default font_size / 2")
    color: Colour = "#000000"
    align: Literal["left", "center", "right"] = "left"
    valign: Literal["top", "middle", "bottom"] = "top"
    line_spacing: float = Field(1.25, ge=0.8, le=4)
    max_lines: int | None = Field(None, ge=1, le=100)
    vertical: bool = Field(False, description="CJK vertical: columns right to left, characters upright")
    stroke: Stroke | None = None
    shadow: Shadow | None = None

    @model_validator(mode="after")
    def _min_le_size(self) -> TextLayer:
        if self.min_size is not None and self.min_size > self.font_size:
            raise ValueError(f"min_size ({self.min_size}) is larger than font_size ({self.font_size})")
        return self


class ImageLayer(_Layer):
    type: Literal["image"]
    src: Annotated[Templated, AfterValidator(_stock_src)] = Field(
        ..., min_length=1, max_length=1000, description="{{column}}, an asset id, stock:ID or {{brand.logo}}"
    )
    fit: Literal["cover", "contain", "fill"] = "cover"
    radius: int = Field(0, ge=0, le=MAX_SIDE)
    cutout: bool = Field(False, description="Cut the subject out when the image has no alpha")


class ShapeLayer(_Layer):
    type: Literal["shape"]
    shape: Literal["rect", "ellipse"] = "rect"
    fill: Fill | None = "#000000"
    radius: int = Field(0, ge=0, le=MAX_SIDE)
    stroke: Stroke | None = None


class GeneratedLayer(_Layer):
    type: Literal["generated"]
    prompt: Templated = Field(..., min_length=1, max_length=2000)
    fit: Literal["cover", "contain", "fill"] = "cover"
    radius: int = Field(0, ge=0, le=MAX_SIDE)


Layer = Annotated[TextLayer | ImageLayer | ShapeLayer | GeneratedLayer, Field(discriminator="type")]
LAYER_TYPES = ("text", "image", "shape", "generated")


class Template(_Model):
    schema_version: int = Field(SCHEMA_VERSION, ge=1)
    id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: LocalText
    description: LocalText | None = None
    # Gallery metadata (zhike/design/categories.py holds the categories' labels and sizes).
    category: str | None = Field(None, max_length=32, description="A key of zhike.design.categories.CATEGORIES")
    tags: list[Annotated[str, Field(min_length=1, max_length=24)]] = Field(default_factory=list, max_length=16)
    sample: dict[str, str] = Field(
        default_factory=dict, max_length=32, description="A data row that shows the template off (gallery, preview)"
    )
    width: int = Field(..., ge=16, le=MAX_SIDE)
    height: int = Field(..., ge=16, le=MAX_SIDE)
    background: Fill = "#ffffff"
    layers: list[Layer] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _check(self) -> Template:
        if self.schema_version > SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is newer than this Zhike reads ({SCHEMA_VERSION}); update Zhike"
            )
        ids = [layer.id for layer in self.layers if layer.id]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"layer ids must be unique: {', '.join(sorted(dup))}")
        if self.category is not None and self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}: use one of {', '.join(CATEGORIES)}")
        return self

    def columns(self) -> tuple[set[str], set[str]]:
        """(required, optional) column names used by placeholders. A column used by any required layer is required."""
        required: set[str] = set()
        optional: set[str] = set()
        for layer in self.layers:
            if layer.hidden:  # not drawn, so it asks nothing of the data
                continue
            (optional if layer.optional else required).update(layer_columns(layer))
            if layer.when:
                optional.add(layer.when)
        return required, optional - required


def layer_columns(layer: Any) -> list[str]:
    """Column names a layer's templated fields use, in order of appearance (brand placeholders are no columns)."""
    return [n for n in _placeholder_names(layer) if not brand.is_placeholder(n)]


def layer_brand_refs(layer: Any) -> list[str]:
    """The brand placeholders a layer uses (`brand.logo`, `brand.name`)."""
    return [n for n in _placeholder_names(layer) if brand.is_placeholder(n)]


def _placeholder_names(layer: Any) -> list[str]:
    text = {"text": "text", "image": "src", "generated": "prompt"}.get(layer.type)
    return PLACEHOLDER_RE.findall(getattr(layer, text)) if text else []


def layer_condition(layer: Any) -> list[str]:
    """Columns that decide whether an optional layer is drawn: its own placeholders and its `when` column."""
    return [*layer_columns(layer), *([layer.when] if layer.when else [])]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # prices read as floats print as 199, not 199.0
    return str(value)


def fill(text: str, row: Mapping[str, Any]) -> str:
    """Replace `{{column}}` placeholders with the row's values; unknown or empty columns become ''."""
    return PLACEHOLDER_RE.sub(lambda m: _cell(row.get(m[1])), text)


def _path(err: Mapping[str, Any]) -> str:
    loc = list(err["loc"])
    out: list[str] = []
    for i, part in enumerate(loc):
        # Drop the union tags pydantic puts into locations (layers.2.text.font_size -> layers.2.font_size).
        if part in ("colour", "gradient"):
            continue
        if part in LAYER_TYPES and i >= 2 and loc[i - 2] == "layers" and isinstance(loc[i - 1], int):
            continue
        out.append(str(part))
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        out.append("type")
    return ".".join(out)


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "union_tag_invalid":
        return f"unknown layer type {err['ctx'].get('tag')!r}: use one of {', '.join(LAYER_TYPES)}"
    if err["type"] == "union_tag_not_found":
        return f"a layer needs a type: one of {', '.join(LAYER_TYPES)}"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def parse_template(obj: Mapping[str, Any] | str) -> Template:
    """A validated Template from a dict or JSON text. TemplateError names the JSON path of the first problem."""
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as e:
            raise TemplateError(f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    if not isinstance(obj, Mapping):
        raise TemplateError("a template is a JSON object")
    try:
        return Template.model_validate(obj)
    except ValidationError as e:
        errors = e.errors()
        first = errors[0]
        path = _path(first)
        parts = [f"{_path(x) or 'template'}: {_message(x)}" for x in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise TemplateError(
            "; ".join(parts) + more, field=path or None, kind=first["type"], ctx=plain_ctx(first.get("ctx"))
        ) from None


def parse_or_invalid(body: Any, *, field: str) -> Template:
    """parse_template with the error's field prefixed by where the template was sent (`template.layers.2.text`)."""
    if isinstance(body, dict) and len(json.dumps(body, ensure_ascii=False)) > MAX_TEMPLATE_BYTES:
        raise TooLarge(f"{field}: the template is over {MAX_TEMPLATE_BYTES // 1000} kB", field=field)
    try:
        return parse_template(body)
    except TemplateError as e:
        path = f"{field}.{e.field}" if e.field else field
        raise TemplateError(f"{field}: {e.message}", field=path, kind=e.kind, ctx=e.ctx) from None


@cache
def _bundled() -> dict[str, Template]:
    out: dict[str, Template] = {}
    folder = resources.files("zhike.design") / "templates"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            try:
                tpl = parse_template(entry.read_text(encoding="utf-8"))
            except TemplateError as e:  # a broken bundled file is a bug; say which one
                raise TemplateError(f"bundled template {entry.name}: {e.message}", field=e.field) from None
            out[tpl.id] = tpl
    return out


def bundled_templates() -> dict[str, Template]:
    """The starter templates that ship with Zhike, by id (a fresh dict; the Templates are shared, do not mutate)."""
    return dict(_bundled())
