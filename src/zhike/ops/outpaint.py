"""outpaint (智能外拓): grow the canvas and generate the new area to match; the original pixels stay exact."""

from __future__ import annotations

import re
from typing import Literal

from PIL import Image
from pydantic import Field, field_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import operation
from zhike.core.types import READ_ONLY, AssetId, ImagesResult
from zhike.ops.diffusion_common import DiffusionParams, native_side, prepare_fill, run_diffusion, save_outputs
from zhike.ops.masking import extend_canvas, fit_to

MAX_CANVAS = 4096
ASPECT_RE = re.compile(r"^(\d{1,3}):(\d{1,3})$")


class OutpaintParams(DiffusionParams):
    image: AssetId = Field(..., description="The image to extend")
    left: int = Field(0, ge=0, le=MAX_CANVAS, description="New pixels on the left")
    right: int = Field(0, ge=0, le=MAX_CANVAS)
    top: int = Field(0, ge=0, le=MAX_CANVAS)
    bottom: int = Field(0, ge=0, le=MAX_CANVAS)
    aspect: str | None = Field(None, description="Instead of per-side pixels: a target aspect like '16:9' or '3:4'")
    anchor: Literal["center", "left", "right", "top", "bottom"] = Field("center", description="Where the original sits")
    method: Literal["auto", "diffusion", "classical"] = Field("auto", description="classical: mirror fill, no model")
    strength: float = Field(1.0, ge=0.01, le=1.0)
    width: int | None = Field(None, description="Set by Zhike: the working width", json_schema_extra=READ_ONLY)
    height: int | None = Field(None, description="Set by Zhike: the working height", json_schema_extra=READ_ONLY)

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
            field="params.aspect" if p.aspect else "params.left",
        )
    return sides


def prepare_outpaint(env: PrepareEnv, p: OutpaintParams) -> OutpaintParams:
    row = env.assets.get(p.image, owner_id=env.owner_id, field="params.image")
    sides = sides_for(p, row["width"], row["height"])
    cw, ch = row["width"] + sides["left"] + sides["right"], row["height"] + sides["top"] + sides["bottom"]
    if max(cw, ch) > MAX_CANVAS:
        raise InvalidInput(
            f"the new canvas would be {cw}x{ch}; the limit is {MAX_CANVAS} px per side",
            field="params.aspect" if p.aspect else "params.right",
            limit=MAX_CANVAS,
        )
    p = p.model_copy(update={**sides, "aspect": None})  # store the resolved pixels: the row re-makes the image
    return prepare_fill(env, p)


@operation(
    "outpaint",
    version=1,
    params=OutpaintParams,
    result=OutpaintResult,
    prepare=prepare_outpaint,
    title={"en": "Smart extend", "zh": "智能外拓"},
    tags=("image", "edit"),
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
            warnings=["extended by mirroring (no image model used); add an SD model for generated content"],
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
