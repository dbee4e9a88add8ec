"""cutout (智能抠图): any subject -> RGBA with a clean alpha edge, or flattened onto a colour or an image."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import operation
from zhike.core.types import AssetId, ImageOut, ImagesResult, note
from zhike.core.ui import Studio, ui
from zhike.ops.placement import NO_MATTING, pick_matting

if TYPE_CHECKING:
    from PIL import Image

CutoutMode = Literal["auto", "person", "product", "logo"]
_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def parse_colour(value: str) -> tuple[int, int, int]:
    """'#rgb' or '#rrggbb' (the '#' optional) -> (r, g, b)."""
    h = value.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


class CutoutParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: AssetId = Field(
        ..., description="Input image asset", json_schema_extra=ui("图片", "Image", canvas="image", cli_argument=True)
    )
    mode: CutoutMode = Field(
        "auto",
        description="auto: any subject; person: people, hair and what they hold; product: one object, specks "
        "removed; logo: graphics on a plain background colour",
        json_schema_extra=ui(
            "模式",
            "Mode",
            help_zh="自动：任何主体；人像：人、头发和手里的东西；商品：单个物体，去掉杂点；标志：纯色底上的图形",
            choices={
                "auto": ("自动", "Auto"),
                "person": ("人像", "Person"),
                "product": ("商品", "Product"),
                "logo": ("标志", "Logo"),
            },
        ),
    )
    model: str | None = Field(
        None,
        description="Matting model (kind matting); empty: isnet-medium if installed; logo uses none",
        json_schema_extra=ui("抠图模型", "Matting model", widget="model", model_kind="matting", group="more"),
    )
    background: str | None = Field(
        None,
        description="'#rrggbb' to flatten onto a colour, 'transparent' or empty for a PNG cut-out",
        json_schema_extra=ui(
            "背景色", "Background", help_zh="#rrggbb 纯色背景；留空或 transparent：透明底", widget="colour"
        ),
    )
    background_image: AssetId | None = Field(
        None,
        description="Image to place the subject on (cover-cropped)",
        json_schema_extra=ui("背景图", "Background image", help_zh="把主体放到这张图上（铺满裁切）"),
    )
    feather: int = Field(
        0,
        ge=0,
        le=50,
        description="Soften the edge inward by this many pixels",
        json_schema_extra=ui("边缘羽化", "Feather", help_zh="向内柔化边缘的像素数", widget="slider"),
    )
    shadow: bool = Field(
        False,
        description="Soft drop and contact shadow under the subject",
        json_schema_extra=ui("投影", "Shadow", help_zh="在主体下方加柔和投影"),
    )
    refine: bool = Field(
        True,
        description="Refine the edge at full resolution (guided filter)",
        json_schema_extra=ui("边缘精修", "Refine edges", help_zh="按原图分辨率精修边缘", group="more"),
    )
    return_mask: bool = Field(
        False,
        description="Also store the alpha as a greyscale PNG",
        json_schema_extra=ui("同时输出蒙版", "Also return the mask", group="more"),
    )

    @field_validator("background")
    @classmethod
    def _colour(cls, v: str | None) -> str | None:
        if v is None or v.strip().lower() in ("", "transparent", "none"):
            return None
        if not _HEX.match(v.strip()):
            raise ValueError("use a hex colour like '#ffffff' or 'transparent'")
        r, g, b = parse_colour(v.strip())
        return f"#{r:02x}{g:02x}{b:02x}"


class CutoutResult(ImagesResult):
    mask: str | None = Field(None, description="Asset id of the alpha mask (L PNG) when return_mask was set")
    subject_box: list[int] | None = Field(None, description="[x0, y0, x1, y1] of the subject (alpha >= 50 %)")
    coverage: float = Field(0.0, description="Fraction of the image the subject covers (mean alpha)")


def prepare_cutout(env: PrepareEnv, p: CutoutParams) -> CutoutParams:
    env.assets.get(p.image, owner_id=env.owner_id, field="params.image")
    if p.background_image is not None:
        if p.background is not None:
            raise InvalidInput(
                "give either background (a colour) or background_image, not both",
                code="background_conflict",
                field="params.background_image",
            )
        env.assets.get(p.background_image, owner_id=env.owner_id, field="params.background_image")
    if p.mode == "logo" and p.model is None:
        return p  # no net: nothing to pin
    name = pick_matting(env.catalog, p.model, field="params.model")  # pinned: the job row alone re-makes it
    if name is None:
        raise InvalidInput(NO_MATTING, code="no_matting_model", field="params.model")
    return p.model_copy(update={"model": name})


@operation(
    "cutout",
    lane="quick",
    version=1,
    params=CutoutParams,
    result=CutoutResult,
    prepare=prepare_cutout,
    title={"en": "Cutout", "zh": "智能抠图"},
    tags=("image", "edit", "merchant"),
    studio=Studio(
        tool=True,
        order=1,
        label=("抠图", "Cutout"),  # the tool's short name; also names downloads (抠图-咖啡杯-800x800.png)
        help=(
            "去掉背景，得到透明底 PNG，或换成纯色、图片背景。",
            "Remove the background: a transparent PNG, or the subject on a colour or image.",
        ),
    ),
)
def cutout(ctx: RunContext, p: CutoutParams) -> CutoutResult:
    """Cut out the subject: a transparent PNG, or the subject on a new colour or image."""
    import numpy as np

    from zhike.backends.alpha import composite, feather_alpha
    from zhike.backends.matting import alpha_matte

    t0 = time.perf_counter()
    ctx.progress(0, 2)
    image = ctx.load_image(p.image, field="params.image")
    alpha = alpha_matte(ctx.models, image, mode=p.mode, model=None if p.mode == "logo" else p.model, refine=p.refine)
    ctx.progress(1, 2)
    t_matte = time.perf_counter()
    background = None
    if p.background_image is not None:
        background = ctx.load_image(p.background_image, field="params.background_image")
    elif p.background is not None:
        background = parse_colour(p.background)
    alpha = feather_alpha(alpha, p.feather)  # the stored mask is the alpha as used (feathered), without shadow
    out = composite(image, alpha, background=background, shadow=p.shadow)
    t_comp = time.perf_counter()

    used = None if p.mode == "logo" else p.model
    model_hash = ctx.models.catalog.get(used, field="params.model").short_hash if used else None
    params = p.model_dump(mode="json")

    def save(img: Image.Image, tags: list[str]) -> str:
        return ctx.save_image(
            img, params=params, seed=None, model=used, model_hash=model_hash, parent_id=p.image, tags=tags
        )

    aid = save(out, ["cutout", p.mode])  # RGBA stays RGBA: encode_png keeps the mode
    mask_id = save(alpha, ["cutout", p.mode, "mask"]) if p.return_mask else None
    ctx.progress(2, 2)

    a = np.asarray(alpha)
    box = alpha.point(lambda v: 255 if v >= 128 else 0).getbbox()
    empty = note("cutout_empty", "no subject was found: the cut-out is empty; try another mode or model")
    return CutoutResult(
        images=[ImageOut(asset_id=aid, seed=None, width=out.width, height=out.height)],
        model=used,
        warnings=[] if box else [empty.message],
        notes=[] if box else [empty],
        mask=mask_id,
        subject_box=list(box) if box else None,
        coverage=round(float(a.mean()) / 255, 4),
        timings={
            "matte": round(t_matte - t0, 4),
            "composite": round(t_comp - t_matte, 4),
            "save": round(time.perf_counter() - t_comp, 4),
        },
    )
