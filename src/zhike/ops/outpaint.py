"""outpaint (智能外拓): grow the canvas and generate the new area to match; the original pixels stay exact."""

from __future__ import annotations

import re
from typing import Literal

from PIL import Image
from pydantic import Field, field_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import operation
from zhike.core.types import AssetId, ImagesResult, note
from zhike.core.ui import Studio, ui
from zhike.ops.diffusion_common import (
    METHOD_CHOICES,
    DiffusionParams,
    fill_lane,
    has_checkpoint,
    native_side,
    prepare_fill,
    run_diffusion,
    save_outputs,
)
from zhike.ops.masking import extend_canvas, fit_to

MAX_CANVAS = 4096
ASPECT_RE = re.compile(r"^(\d{1,3}):(\d{1,3})$")


def side_ui(zh: str, en: str) -> dict[str, object]:
    return ui(zh, en, canvas="side", group="size")


class OutpaintParams(DiffusionParams):
    image: AssetId = Field(
        ..., description="The image to extend", json_schema_extra=ui("图片", "Image", canvas="image", cli_argument=True)
    )
    left: int = Field(
        0,
        ge=0,
        le=MAX_CANVAS,
        description="New pixels on the left",
        json_schema_extra=side_ui("左侧扩展", "Extend left"),
    )
    right: int = Field(
        0,
        ge=0,
        le=MAX_CANVAS,
        description="New pixels on the right",
        json_schema_extra=side_ui("右侧扩展", "Extend right"),
    )
    top: int = Field(
        0, ge=0, le=MAX_CANVAS, description="New pixels at the top", json_schema_extra=side_ui("上方扩展", "Extend top")
    )
    bottom: int = Field(
        0,
        ge=0,
        le=MAX_CANVAS,
        description="New pixels at the bottom",
        json_schema_extra=side_ui("下方扩展", "Extend bottom"),
    )
    aspect: str | None = Field(
        None,
        description="Instead of per-side pixels: a target aspect like '16:9' or '3:4'",
        json_schema_extra=ui(
            "目标比例", "Target aspect", help_zh="代替逐边像素：如 16:9、3:4", canvas="aspect", group="size"
        ),
    )
    anchor: Literal["center", "left", "right", "top", "bottom"] = Field(
        "center",
        description="Where the original sits",
        json_schema_extra=ui(
            "原图位置",
            "Anchor",
            canvas="aspect",
            group="size",
            choices={
                "center": ("居中", "Centre"),
                "left": ("靠左", "Left"),
                "right": ("靠右", "Right"),
                "top": ("靠上", "Top"),
                "bottom": ("靠下", "Bottom"),
            },
        ),
    )
    method: Literal["auto", "diffusion", "classical"] = Field(
        "auto",
        description="classical: mirror fill, no model",
        json_schema_extra=ui(
            "方法",
            "Method",
            help_zh="传统算法：镜像填充，无需模型",
            group="more",
            choices=METHOD_CHOICES,
        ),
    )
    strength: float = Field(
        1.0,
        ge=0.01,
        le=1.0,
        description="How much the new area follows the prompt over the prefill",
        json_schema_extra=ui("重绘幅度", "Strength", widget="slider", step=0.05, group="more"),
    )
    width: int | None = Field(
        None,
        description="Set by Zhike: the working width",
        json_schema_extra=ui("工作宽度", "Working width", read_only=True),
    )
    height: int | None = Field(
        None,
        description="Set by Zhike: the working height",
        json_schema_extra=ui("工作高度", "Working height", read_only=True),
    )

    @field_validator("aspect")
    @classmethod
    def _aspect(cls, v: str | None) -> str | None:
        if v is not None:
            m = ASPECT_RE.match(v)
            if not m or int(m[1]) == 0 or int(m[2]) == 0:
                raise ValueError("use W:H with whole numbers, e.g. 16:9")
        return v


class OutpaintResult(ImagesResult):
    method: str
    added: dict[str, int] = Field(..., description="Pixels added per side")


def sides_for(p: OutpaintParams, w: int, h: int) -> dict[str, int]:
    """Per-side growth from explicit pixels or from a target aspect ratio around the anchor."""
    if p.aspect is None:
        sides = {"left": p.left, "right": p.right, "top": p.top, "bottom": p.bottom}
    else:
        m = ASPECT_RE.match(p.aspect)
        assert m
        target = int(m[1]) / int(m[2])
        sides = {"left": 0, "right": 0, "top": 0, "bottom": 0}
        if w / h < target:  # too narrow: grow width
            extra = round(h * target) - w
            a, b = ("left", "right")
        else:
            extra = round(w / target) - h
            a, b = ("top", "bottom")
        if p.anchor in ("left", "top"):
            sides[b] = extra
        elif p.anchor in ("right", "bottom"):
            sides[a] = extra
        else:
            sides[a], sides[b] = extra // 2, extra - extra // 2
    if sum(sides.values()) == 0:
        raise InvalidInput(
            "nothing to extend: give pixels per side or an aspect different from the image's",
            code="nothing_to_extend",
            field="params.aspect" if p.aspect else "params.left",
        )
    return sides


def prepare_outpaint(env: PrepareEnv, p: OutpaintParams) -> OutpaintParams:
    row = env.assets.get(p.image, owner_id=env.owner_id, field="params.image")
    sides = sides_for(p, row.width, row.height)
    cw, ch = row.width + sides["left"] + sides["right"], row.height + sides["top"] + sides["bottom"]
    if max(cw, ch) > MAX_CANVAS:
        raise InvalidInput(
            f"the new canvas would be {cw}x{ch}; the limit is {MAX_CANVAS} px per side",
            code="output_too_large",
            field="params.aspect" if p.aspect else "params.right",
            limit=MAX_CANVAS,
            ctx={"width": cw, "height": ch, "max": MAX_CANVAS},
        )
    p = p.model_copy(update={**sides, "aspect": None})  # store the resolved pixels: the row re-makes the image
    return prepare_fill(env, p)


@operation(
    "outpaint",
    lane="gpu",
    lane_for=fill_lane("quick"),
    version=1,
    params=OutpaintParams,
    result=OutpaintResult,
    prepare=prepare_outpaint,
    title={"en": "Smart extend", "zh": "智能外拓"},
    tags=("image", "edit"),
    studio=Studio(
        canvas="extend",
        order=4,
        label=("扩图", "Extend"),
        help=(
            "拖动画布四边的把手向外扩展，或直接输入每边增加的像素。原图像素保持不变。",
            "Drag the handles on the canvas edges outwards, or type the pixels to add per side. "
            "The original pixels are kept.",
        ),
        run=("开始扩图", "Extend"),
        hint=("可选：描述扩展出来的部分，例如：木质桌面", "Optional: what the new area shows, e.g. a wooden table top"),
    ),
)
def outpaint(ctx: RunContext, p: OutpaintParams) -> OutpaintResult:
    """Extend the canvas on any side or to an aspect ratio; the original pixels are kept exactly."""
    from zhike.backends.classical import mirror_fill

    ctx.progress(0, 1)
    image = ctx.load_image(p.image, field="params.image").convert("RGB")
    sides = {"left": p.left, "right": p.right, "top": p.top, "bottom": p.bottom}
    canvas, new_area = extend_canvas(image, p.left, p.top, p.right, p.bottom)
    known = Image.eval(new_area, lambda v: 255 - v)
    prefill = mirror_fill(canvas, known)
    place = (p.left, p.top)
    if p.method == "classical":
        out = prefill.copy()
        out.paste(image, place)
        result = OutpaintResult(
            images=[],
            method="classical-mirror",
            added=sides,
        )
        if not has_checkpoint(ctx):  # chosen on purpose while a model is installed: nothing to point out
            result.warn(
                note(
                    "extended_by_mirroring",
                    "extended by mirroring (no image model used); add an SD model for generated content",
                )
            )
        save_outputs(ctx, result, [out], [None], p, parent_id=p.image, tags=["outpaint"])
        ctx.progress(1, 1)
        return result
    assert p.model is not None
    family = ctx.models.catalog.get(p.model, field="params.model").family
    work = fit_to(*canvas.size, min(native_side(family), max(canvas.size)))
    base, generated = run_diffusion(
        ctx,
        p,
        mode="inpaint",
        init_image=prefill.resize(work, Image.LANCZOS),
        mask=new_area.resize(work, Image.NEAREST),
        strength=p.strength,
        width=work[0],
        height=work[1],
        save=False,
    )
    outs = []
    for g in generated:
        out = g.resize(canvas.size, Image.LANCZOS)
        out.paste(image, place)  # the original, exactly, over its own place
        outs.append(out)
    result = OutpaintResult(**base.model_dump(), method=f"diffusion:{p.model}", added=sides)
    save_outputs(ctx, result, outs, [p.seed + i for i in range(len(outs))], p, parent_id=p.image, tags=["outpaint"])
    return result
