"""GET /api/v1/ops: each operation as its Params model describes it (the studio and the CLI read the same)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from zhike.api.schemas.common import LocalText, Out


class StudioPlacement(Out):
    """Where the web studio shows the op beyond Create's pro mode (core/ui.py Studio)."""

    canvas: str | None = Field(description="Canvas mode id (a tab beside the image), or null")
    tool: bool = Field(description="Listed among the Canvas tools")
    order: int
    label: LocalText | None = None
    help: LocalText | None = None
    run: LocalText | None = None
    hint: LocalText | None = None
    preview: str | None = Field(None, description="An op the mode runs to preview its input")


class CliCommand(Out):
    name: str = Field(description="`zhike NAME`")
    aliases: list[str]
    hidden: bool = Field(description="No generated command (the op has a command of its own)")


class OpPublic(Out):
    name: str
    version: int
    title: LocalText
    description: str
    tags: list[str]
    studio: StudioPlacement
    cli: CliCommand
    module: str = Field(description="The Python module that defines it (a plugin's ops name their package)")
    lane: str = Field(description="Which workers run its jobs: gpu (diffusion), cpu (heavy CPU work), quick (seconds)")
    params_schema: dict[str, Any] = Field(
        description="JSON Schema of the parameters; each property's `x-zhike` holds labels (zh/en), help, group, "
        "order, widget, canvas role, choices and CLI hints"
    )
    result_schema: dict[str, Any] = Field(description="JSON Schema of the result")


class OpList(Out):
    ops: list[OpPublic]
