"""What the edges (studio, CLI, API docs) need to know about an operation, said once beside its Params.

Field metadata lives in the field's JSON schema under `x-zhike` (so the web studio, the CLI and any client read
the same thing from GET /api/v1/ops):

    width: int = Field(512, ge=64, le=2048, json_schema_extra=ui("宽度", "Width", group="size"))

Operation metadata (where the studio shows it, the CLI's name) is given to `@operation(..., studio=Studio(...))`.
Nothing here imports a model library or a web framework.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

UI_KEY = "x-zhike"

# How a field is edited. Anything not named here gets the widget its JSON type implies (text, number, select,
# checkbox, asset picker for `format: asset-id`, repeatable group for arrays of objects).
Widget = Literal[
    "prompt",  # a multi-line text box for a prompt (A1111 syntax)
    "textarea",  # multi-line plain text
    "slider",  # a number between its schema limits
    "colour",  # '#rrggbb' with a swatch (and the field's choices as named colours)
    "model",  # a registered model's name; `model_kind` filters the suggestions
    "preset",  # a style preset id
    "seed",  # an integer seed with "random"
    "sizes",  # a list of marketplace size ids (GET /api/v1/sizes) or WxH: checkboxes
    "hidden",  # set by the page or by Zhike, never typed by a user
]

# The part a Canvas mode's own controls play for a field: such fields are set by the page (the open image, the
# painted mask, the prompt box, the extend handles, the control panel) instead of appearing in "More settings".
# Inside a `controls` unit: `image` (the open image or the previewed map), `detector` (how the map is made; the
# value "none" means the image is the map already), and the field with widget "model" (the ControlNet).
# A tool with a `scene` image field and a `spot` object (x, y shares) gets a scene preview to drag the open
# image's spot on (views/edit_spot.js); the spot field stays in the form too.
CanvasRole = Literal["image", "mask", "prompt", "strength", "side", "aspect", "controls", "detector", "scene", "spot"]

# Groups, in the order forms show them. "more" is folded away ("More settings") and lists what most users leave.
Group = Literal["main", "size", "style", "more"]
GROUPS: tuple[str, ...] = get_args(Group)


def ui(
    zh: str,
    en: str,
    *,
    help_zh: str | None = None,
    group: Group = "main",
    order: int | None = None,
    widget: Widget | None = None,
    canvas: CanvasRole | None = None,
    model_kind: str | None = None,
    choices: dict[str, tuple[str, str]] | None = None,
    placeholder: tuple[str, str] | None = None,
    step: float | None = None,
    cli_flag: str | None = None,
    cli_argument: bool = False,
    cli_shorthand: tuple[str, ...] | None = None,
    read_only: bool = False,
) -> dict[str, Any]:
    """The `json_schema_extra` of a Params field: its labels, help and hints for forms and the CLI.

    zh/en: the label in both languages. The English help is the field's `description`; help_zh is the Chinese one.
    choices: labels of enum values ({value: (zh, en)}). cli_flag: the flag name when it is not `--field-name`;
    cli_argument: may be the command's positional argument (the first required field so marked wins, else the first
    marked: e.g. `zhike inpaint IMAGE`, `zhike control [PROMPT]`); cli_shorthand: an array of objects written as
    `a:b` on the command line (e.g. ("name", "weight") for `--lora NAME:0.8`).
    read_only: set by Zhike (e.g. the preset already applied); kept on remix, never shown.
    """
    meta: dict[str, Any] = {"label": {"zh": zh, "en": en}, "group": group}
    if help_zh:
        meta["help"] = {"zh": help_zh}
    optional = {
        "order": order,
        "widget": widget,
        "canvas": canvas,
        "model_kind": model_kind,
        "step": step,
        "cli_flag": cli_flag,
    }
    meta.update({k: v for k, v in optional.items() if v is not None})
    if choices:
        meta["choices"] = {value: {"zh": z, "en": e} for value, (z, e) in choices.items()}
    if placeholder:
        meta["placeholder"] = {"zh": placeholder[0], "en": placeholder[1]}
    if cli_argument:
        meta["cli_argument"] = True
    if cli_shorthand:
        meta["cli_shorthand"] = list(cli_shorthand)
    out: dict[str, Any] = {UI_KEY: meta}
    if read_only:
        out["readOnly"] = True  # JSON Schema's own word: form builders keep the value but do not show it
    return out


def field_ui(schema: dict[str, Any]) -> dict[str, Any]:
    """The x-zhike metadata of one property schema ({} when it has none)."""
    return schema.get(UI_KEY) or {}


@dataclass(frozen=True)
class Studio:
    """Where the web studio shows an operation. Every op is reachable in Create's pro mode; these add more.

    canvas: the id of a Canvas mode (a tab beside the image); which of the page's controls it uses follows from
    its fields' `canvas` roles (a `mask` field paints a mask, `side` fields get the extend handles, ...).
    tool: listed among the Canvas page's tools (a form from the schema under the open image).
    """

    canvas: str | None = None
    tool: bool = False
    order: int = 100
    label: tuple[str, str] | None = None  # the tab's or tool's short name; default: the op's title
    help: tuple[str, str] | None = None  # one sentence shown above the form
    run: tuple[str, str] | None = None  # the run button's text; default "开始处理" / "Run"
    hint: tuple[str, str] | None = None  # placeholder of the page's prompt box, e.g. "例如：一束白色郁金香"
    preview: str | None = None  # an op the mode runs to preview its input (control: `preprocess` for the map)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("label", "help", "run", "hint"):
            if d[key] is not None:
                d[key] = {"zh": d[key][0], "en": d[key][1]}
        return d


@dataclass(frozen=True)
class Cli:
    """The operation's command on the command line: `zhike NAME` (default: the op name with dashes)."""

    name: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    hidden: bool = False  # no generated command (e.g. batch_design, whose `zhike batch` reads data files)
