"""One `zhike OP` command per operation, generated from its Params schema and x-zhike metadata.

Nothing here names an operation: a new op (built in or a plugin) gets its command, flags, help, defaults and
limits from its Params model. Image/mask/asset fields take a file path (uploaded first) or an asset id; arrays of
objects take `key=value,key=value` (or the field's shorthand, e.g. `--lora NAME:0.8`), repeated; objects take
`key=value,...` or JSON.
"""

from __future__ import annotations

import enum
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from zhike.cli import common
from zhike.cli.common import fail, submit_and_save, upload_file
from zhike.core.errors import ZhikeError
from zhike.core.registry import OperationDef, get_op, list_ops
from zhike.core.types import MediaResult, TextResult
from zhike.core.ui import field_ui

ASSET_FORMAT = "asset-id"
log = logging.getLogger("zhike.cli")

# The default -o per result type: a media op's file gets its suffix from what it made (cli/common.py).
_OUTPUT_SUFFIX: dict[type, str] = {TextResult: ".md", MediaResult: ""}


@dataclass
class FieldSpec:
    """One top-level parameter as the command line sees it."""

    name: str
    schema: dict[str, Any]  # the resolved property schema (refs and nullable unwrapped)
    meta: dict[str, Any]
    required: bool
    kind: str  # asset | bool | int | float | choice | str | list | objects | object | json
    flag: str = ""
    item_schema: dict[str, Any] = field(default_factory=dict)  # arrays: the items' resolved schema


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """A property schema with $ref and `anyOf [X, null]` replaced by X (its own keys kept)."""
    s = dict(schema)
    if "$ref" in s:
        target = root.get("$defs", {}).get(s.pop("$ref").split("/")[-1], {})
        s = {**target, **s}
    if "anyOf" in s:
        options = [resolve(o, root) for o in s.pop("anyOf") if o.get("type") != "null"]
        if len(options) == 1:
            s = {**options[0], **s}
        elif all(o.get("type") == "string" or "enum" in o or "const" in o for o in options):
            s = {"type": "string", **s}  # e.g. "white" | "blue" | "#rrggbb": any text, validated by the model
    return s


def kind_of(s: dict[str, Any], root: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if s.get("format") == ASSET_FORMAT:
        return "asset", {}
    t = s.get("type")
    if "enum" in s:
        return "choice", {}
    if t == "boolean":
        return "bool", {}
    if t == "integer":
        return "int", {}
    if t == "number":
        return "float", {}
    if t == "array":
        items = resolve(s.get("items", {}), root)
        return ("objects" if items.get("type") == "object" and "properties" in items else "list"), items
    if t == "object":
        return ("object" if "properties" in s else "json"), s
    return "str", {}


def field_specs(op: OperationDef) -> list[FieldSpec]:
    root = op.params_model.model_json_schema()
    required = set(root.get("required", []))
    specs = []
    for name, raw in root.get("properties", {}).items():
        s = resolve(raw, root)
        if s.get("readOnly"):
            continue  # Zhike sets it
        kind, items = kind_of(s, root)
        if kind == "object":
            items = s
        meta = field_ui(raw) or field_ui(s)
        flag = meta.get("cli_flag") or "--" + name.replace("_", "-")
        specs.append(FieldSpec(name, s, meta, name in required, kind, flag, items))
    return specs


def positional(specs: list[FieldSpec]) -> FieldSpec | None:
    """The command's argument: the first required field marked cli_argument, else the first marked one."""
    marked = [f for f in specs if f.meta.get("cli_argument")]
    return next((f for f in marked if f.required), marked[0] if marked else None)


def number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def limits_text(s: dict[str, Any]) -> str:
    lo = s.get("minimum", s.get("exclusiveMinimum"))
    hi = s.get("maximum", s.get("exclusiveMaximum"))
    if lo is not None and hi is not None:
        return f"{number(lo)}–{number(hi)}"
    if lo is not None:
        return f"≥ {number(lo)}"
    if hi is not None:
        return f"≤ {number(hi)}"
    return ""


def help_text(f: FieldSpec) -> str:
    label = f.meta.get("label", {})
    head = " ".join(x for x in (label.get("zh"), label.get("en")) if x)
    desc = f.schema.get("description", "")
    notes = []
    if f.required:
        notes.append("required")
    elif "default" in f.schema and f.schema["default"] not in (None, "", [], {}):
        d = f.schema["default"]
        notes.append(f"default: {json.dumps(d, ensure_ascii=False) if isinstance(d, dict | list) else d}")
    if lim := limits_text(f.schema):
        notes.append(lim)
    if f.kind == "asset":
        notes.append("a file path or an asset id")
    elif f.kind == "objects":
        short = f.meta.get("cli_shorthand")
        keys = ",".join(f"{k}=…" for k in f.item_schema.get("properties", {}))
        notes.append(("`" + ":".join(s.upper() for s in short) + "` or " if short else "") + f"`{keys}`; repeat")
    elif f.kind == "object":
        notes.append("`" + ",".join(f"{k}=…" for k in f.item_schema.get("properties", {})) + "`")
    elif f.kind == "list":
        notes.append("repeat for several")
    elif f.kind == "json":
        notes.append("JSON")
    text = f"{head}: {desc}" if desc else head
    # Typer renders help as Rich markup: brackets must be escaped or "[default: 4]" disappears as a style tag
    return escape(f"{text} [{'; '.join(notes)}]" if notes else text)


def click_param(f: FieldSpec, *, argument: bool) -> tuple[Any, Any]:
    """(annotation, default) of the generated function's parameter for this field."""
    help_ = help_text(f)
    metavar = {"asset": "FILE|ID", "objects": "SPEC", "object": "SPEC", "json": "JSON"}.get(f.kind)
    py: Any = {"bool": bool, "int": int, "float": float}.get(f.kind, str)
    if f.kind == "choice":  # Typer turns an Enum into a choice list that --help shows and click checks
        py = enum.Enum(f"{f.name}_choices", {str(v): str(v) for v in f.schema["enum"]}, type=str)
    if f.kind in ("list", "objects"):
        py = list[str]
    if argument:
        info = typer.Argument(help=help_, metavar=f.name.upper(), show_default=False)
    else:
        flags = [f.flag] if f.kind != "bool" else [f"{f.flag}/--no-{f.flag.removeprefix('--')}"]
        info = typer.Option(*flags, help=help_, metavar=metavar, show_default=False)
    return Annotated[py | None, info], None


def parse_pairs(text: str, flag: str) -> dict[str, str]:
    """`a=1,b=two` -> {"a": "1", "b": "two"}: one flag's pairs; a value may contain '=' but not ','."""
    pairs = (common.assignment(p.strip(), flag) for p in text.split(",") if p.strip())
    return {key: value.strip() for key, value in pairs}


class Converter:
    """Turns what was typed into param values; uploads files for asset fields (once per path)."""

    def __init__(self, z: Any) -> None:
        self.z = z
        self._uploaded: dict[str, str] = {}

    def asset(self, value: str, flag: str) -> str:
        path = Path(value).expanduser()
        if path.is_file():
            key = str(path.resolve())
            if key not in self._uploaded:
                self._uploaded[key] = upload_file(self.z, path, flag)
            return self._uploaded[key]
        if "/" in value or "." in value:  # looks like a path, not an asset id
            fail(f"{flag}: no file at {value}")
        return value  # an asset id: the op's prepare checks it exists and is the caller's

    def obj(self, text: str, schema: dict[str, Any], flag: str, shorthand: list[str] | None = None) -> dict[str, Any]:
        text = text.strip()
        if text.startswith("{"):
            try:
                raw = json.loads(text)
            except ValueError as e:
                fail(f"{flag}: not valid JSON: {e}")
            values = dict(raw)
        elif shorthand and "=" not in text:
            parts = text.rsplit(":", len(shorthand) - 1) if ":" in text else [text]
            values = {k: common.scalar(v) for k, v in zip(shorthand, parts, strict=False) if v != ""}
            values[shorthand[0]] = parts[0]  # the name stays text even when it looks like a number
        else:
            values = {k: common.scalar(v) for k, v in parse_pairs(text, flag).items()}
        props = schema.get("properties", {})
        for key, value in values.items():
            if key not in props:
                fail(f"{flag}: unknown key {key!r}; known: {', '.join(props)}")
            sub = props[key]
            is_asset = sub.get("format") == ASSET_FORMAT or any(
                o.get("format") == ASSET_FORMAT for o in sub.get("anyOf", [])
            )
            if is_asset and isinstance(value, str):
                values[key] = self.asset(value, f"{flag} {key}")
            elif isinstance(value, int | float) and not isinstance(value, bool) and sub.get("type") == "string":
                values[key] = str(value)  # a name that looks like a number stays the text typed
        return values

    def value(self, f: FieldSpec, raw: Any) -> Any:
        if isinstance(raw, enum.Enum):
            return raw.value
        if f.kind == "asset":
            return self.asset(raw, f.flag)
        if f.kind == "objects":
            return [self.obj(v, f.item_schema, f.flag, f.meta.get("cli_shorthand")) for v in raw]
        if f.kind == "object":
            return self.obj(raw, f.item_schema, f.flag)
        if f.kind == "json":
            try:
                return json.loads(raw)
            except ValueError as e:
                fail(f"{f.flag}: not valid JSON: {e}")
        return raw


def remake_hint(op_name: str) -> str:
    """How to re-make a PNG made by `op_name` from the command line."""
    try:
        made_by = get_op(op_name)
    except ZhikeError:
        return "that operation is not on this server"
    if made_by.cli.hidden:
        return f"`zhike run {op_name} --json ...` runs it"
    return f"use `zhike {made_by.cli_name} --from`"


def flag_names(specs: list[FieldSpec], arg: FieldSpec | None) -> dict[str, str]:
    """params.FIELD -> the flag the user typed, for error messages."""
    return {f.name: (f.name.upper() if f is arg else f.flag) for f in specs}


def make_command(op: OperationDef) -> Callable[..., None]:
    """A function whose signature Typer reads: one parameter per field plus -o/--from/--json."""
    specs = field_specs(op)
    arg = positional(specs)
    flags = flag_names(specs, arg)

    def command(**kwargs: Any) -> None:
        z = common.services()
        output: Path = kwargs.pop("output")
        from_png: Path | None = kwargs.pop("from_png")
        params_json: str | None = kwargs.pop("params_json")
        params: dict[str, Any] = {}
        if from_png is not None:
            made_by, stored = common.params_from_image(from_png)
            if made_by not in (None, op.name):
                fail(f"--from: {from_png} was made by {made_by}; {remake_hint(made_by)}")
            # Only this op's parameters: an A1111 PNG carries sampler settings, a Zhike PNG its seed (even None)
            params = {k: v for k, v in stored.items() if k in op.params_model.model_fields}
        if params_json:
            params.update(common.json_object(params_json, "--json"))
        convert = Converter(z)
        for f in specs:
            raw = kwargs.get(f.name)
            if raw is None or raw == []:
                continue
            params[f.name] = convert.value(f, raw)
        submit_and_save(z, op.name, params, output, flags=flags)

    parameters = []
    for f in specs:
        annotation, default = click_param(f, argument=f is arg)
        parameters.append(
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
    parameters += [
        inspect.Parameter(
            "output",
            inspect.Parameter.KEYWORD_ONLY,
            default=Path(op.cli_name + _OUTPUT_SUFFIX.get(op.result_model, ".png")),
            annotation=Annotated[
                Path, typer.Option("-o", "--output", help="Output file (several images: OUT-1.png, OUT-2.png, ...)")
            ],
        ),
        inspect.Parameter(
            "from_png",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Path | None,
                typer.Option("--from", help="Start from the parameters embedded in a PNG made by Zhike or A1111"),
            ],
        ),
        inspect.Parameter(
            "params_json",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[str | None, typer.Option("--json", help="Parameters as one JSON object (flags win)")],
        ),
    ]
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__name__ = op.name
    title = f"{op.title.get('zh', '')} {op.title.get('en', '')}".strip()
    command.__doc__ = f"{title}: {op.description}" if op.description else title
    return command


def register(app: typer.Typer) -> None:
    """Add `zhike NAME` (and its aliases) for every operation that has a command. A name that another command
    already has (a plugin op called `serve`, say) is left out with a warning: `zhike run OP` still reaches it."""
    taken = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    for op in list_ops():
        if op.cli.hidden:
            continue
        fn = make_command(op)
        for name in (op.cli_name, *op.cli.aliases):
            if name in taken:
                log.warning(
                    "operation %s: `zhike %s` is another command's name; use `zhike run %s`", op.name, name, op.name
                )
                continue
            taken.add(name)
            doc = None if name == op.cli_name else f"{fn.__doc__} (= zhike {op.cli_name})"
            app.command(name=name, rich_help_panel="Operations", help=doc)(fn)
