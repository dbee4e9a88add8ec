"""Every operation says, in its Params model, what the studio and the CLI need; the edges keep no copies of it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from zhike.cli.ops import resolve  # the same unwrapping the CLI applies
from zhike.core.registry import list_ops
from zhike.core.ui import GROUPS, UI_KEY

WEB = Path(__file__).resolve().parent.parent / "src" / "zhike" / "web"
# The page modules that are generated from the metadata: they must not name an operation.
GENERATED_PAGES = ["views/edit.js", "views/edit_control.js", "schema_form.js", "fields.js", "ops.js"]
WIDGETS = {"prompt", "textarea", "slider", "colour", "model", "preset", "seed", "sizes", "hidden"}
ROLES = {"image", "mask", "prompt", "strength", "side", "aspect", "controls", "detector", "scene", "spot"}


def fields(schema: dict[str, Any], root: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(dotted path, property schema) of every field, nested objects and list items included."""
    out = []
    for name, raw in schema.get("properties", {}).items():
        out.append((path + name, raw))
        s = resolve(raw, root)
        if s.get("type") == "object" and "properties" in s:
            out += fields(s, root, f"{path}{name}.")
        if s.get("type") == "array":
            items = resolve(s.get("items", {}), root)
            if "properties" in items:
                out += fields(items, root, f"{path}{name}.")
    return out


OPS = list_ops()


@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
def test_every_field_has_labels_and_valid_hints(op: Any) -> None:
    root = op.params_model.model_json_schema()
    for path, raw in fields(root, root):
        meta = raw.get(UI_KEY)
        assert meta, f"{op.name}.{path}: no x-zhike metadata (use core.ui.ui)"
        assert meta["label"]["zh"].strip() and meta["label"]["en"].strip(), f"{op.name}.{path}: label"
        assert re.search(r"[\u4e00-\u9fff]", meta["label"]["zh"]), f"{op.name}.{path}: the zh label is not Chinese"
        assert meta["group"] in GROUPS, f"{op.name}.{path}: group {meta['group']}"
        assert meta.get("widget", "prompt") in WIDGETS, f"{op.name}.{path}: widget {meta.get('widget')}"
        assert meta.get("canvas", "image") in ROLES, f"{op.name}.{path}: canvas role {meta.get('canvas')}"
        s = resolve(raw, root)
        assert s.get("description") or s.get("readOnly"), f"{op.name}.{path}: no description (the English help)"
        if "choices" in meta:
            assert set(meta["choices"]) <= {str(v) for v in s.get("enum", [])} or meta.get("widget") == "colour", (
                f"{op.name}.{path}: choice labels for values the field does not take"
            )


@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
def test_studio_placement_is_said_in_both_languages(op: Any) -> None:
    studio = op.studio.to_json()
    if studio["canvas"]:
        for key in ("label", "help", "run"):
            assert studio[key] and studio[key]["zh"] and studio[key]["en"], f"{op.name}: studio.{key}"
        roles = {
            m.get("canvas")
            for m in (p.get(UI_KEY, {}) for p in op.params_model.model_json_schema()["properties"].values())
        }
        assert roles & {"image", "controls"}, f"{op.name}: a Canvas mode must take the open image (canvas='image')"
    if studio["tool"]:
        assert studio["help"] and studio["help"]["zh"] and studio["help"]["en"], f"{op.name}: a tool needs its help"
    if studio["preview"]:
        assert studio["preview"] in {o.name for o in OPS}, f"{op.name}: preview op {studio['preview']} is not an op"


def test_cli_names_are_unique() -> None:
    names: dict[str, str] = {}
    for op in OPS:
        for name in (op.cli_name, *op.cli.aliases):
            assert name not in names, f"`zhike {name}` is claimed by {names[name]} and {op.name}"
            names[name] = op.name


def test_the_generated_pages_name_no_operation() -> None:
    op_names = {o.name for o in OPS}
    for rel in GENERATED_PAGES:
        text = (WEB / rel).read_text(encoding="utf-8")
        named = {m for m in re.findall(r"[\"'`]([a-z0-9_]+)[\"'`]", text) if m in op_names}
        assert not named, f"{rel} names operations {sorted(named)}: read them from GET /api/v1/ops instead"


def test_the_web_keeps_no_parameter_labels() -> None:
    """Labels live in the Params models; the old per-parameter table (field.NAME in fields.js) is gone."""
    for path in WEB.rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"[\"']field\.[a-z_]+[\"']\s*:", text), f"{path.name} defines a parameter label"
        assert not re.search(r"[\"']enum\.[a-z_]+\.[a-z0-9_]+[\"']\s*:", text), f"{path.name} defines a choice label"
