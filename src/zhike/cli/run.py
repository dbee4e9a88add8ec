"""`zhike run OP`: any operation with its parameters as KEY=VALUE pairs or one JSON object (for scripts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from zhike.cli import common
from zhike.cli.common import submit_and_save, upload_file


def parse_assignments(pairs: list[str] | None, flag: str) -> dict[str, str]:
    """Repeated `KEY=VALUE` flags (a value may contain ',' and '=')."""
    return dict(common.assignment(pair, flag) for pair in pairs or [])


def run(
    op: Annotated[str, typer.Argument(help="Operation name (the API's GET /api/v1/ops lists them)")],
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="KEY=VALUE (JSON values allowed)")] = None,
    image: Annotated[
        list[str] | None, typer.Option("--image", help="FIELD=PATH: upload a file for an asset field")
    ] = None,
    params_json: Annotated[str | None, typer.Option("--json", help="All params as one JSON object")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file (several: OUT-1.png, ...)")] = Path(
        "zhike.png"
    ),
) -> None:
    """Run any operation by name: `zhike run erase --image image=a.png --image mask=m.png -o out.png`.

    Every operation also has its own command with a flag per parameter (`zhike erase --help`)."""
    z = common.services()
    params: dict[str, Any] = common.json_object(params_json, "--json") if params_json else {}
    for key, raw in parse_assignments(param, "--param").items():
        set_path(params, key, common.scalar(raw))  # JSON values, else plain text (-p prompt=a cat)
    for key, path in parse_assignments(image, "--image").items():
        set_path(params, key, upload_file(z, Path(path), f"--image {key}"))
    submit_and_save(z, op, params, output)


def set_path(params: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `controls.0.image` style keys, creating the lists and objects on the way."""
    parts = dotted.split(".")
    node: Any = params
    for part, nxt in zip(parts, parts[1:], strict=False):
        child: Any = [] if nxt.isdigit() else {}
        if isinstance(node, list):
            i = int(part)
            while len(node) <= i:
                node.append(None)
            node[i] = node[i] if node[i] is not None else child
            node = node[i]
        else:
            node = node.setdefault(part, child)
    last = parts[-1]
    if isinstance(node, list):
        i = int(last)
        while len(node) <= i:
            node.append(None)
        node[i] = value
    else:
        node[last] = value
