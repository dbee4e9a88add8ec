"""inpaint, erase (智能消除) and material_swap (材质替换): change the masked area, keep the rest exactly."""

from __future__ import annotations

from typing import Literal

from PIL import Image
from pydantic import Field

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.registry import operation
from zhike.core.types import AssetId, ImagesResult, note
from zhike.core.ui import Studio, ui
from zhike.ops.diffusion_common import (
    MAX_SIDE,
    METHOD_CHOICES,
    NEGATIVE_UI,
    DiffusionParams,
    fill_lane,
    has_checkpoint,
    native_side,
    prepare_diffusion,
    prepare_fill,
    run_diffusion,
    save_outputs,
)
from zhike.ops.masking import binary_mask, composite_keep, fit_to, grow, mask_box

Area = Literal["auto", "whole", "masked"]
STRENGTH_UI = ui("重绘幅度", "Strength", help_zh="蒙版内可以改变多少", widget="slider", step=0.05, canvas="strength")
METHOD_UI = ui(
    "方法",
    "Method",
    help_zh="自动：装了图像模型就用 AI 生成，否则用传统算法",
    group="more",
    choices=METHOD_CHOICES,
)


class InpaintParams(DiffusionParams):
    image: AssetId = Field(
        ..., description="The image to edit", json_schema_extra=ui("图片", "Image", canvas="image", cli_argument=True)
    )
    mask: AssetId = Field(
        ...,
        description="Mask image: white = change, black = keep (or alpha)",
        json_schema_extra=ui("蒙版", "Mask", help_zh="白色 = 修改，黑色 = 保留（或透明度）", canvas="mask"),
    )
    strength: float = Field(
        1.0,
        ge=0.01,
        le=1.0,
        description="How much the masked area may change",
        json_schema_extra=STRENGTH_UI,
    )
    mask_blur: int = Field(
        6,
        ge=0,
        le=64,
        description="Soft seam width inside the mask, px",
        json_schema_extra=ui("蒙版边缘模糊", "Mask blur", help_zh="蒙版内侧的柔和过渡宽度（像素）", group="more"),
    )
    area: Area = Field(
        "auto",
        description="masked: work on a crop around the mask at full detail; auto: when large",
        json_schema_extra=ui(
            "重绘区域",
            "Area",
            help_zh="masked：只在蒙版周围裁一块高清重绘；auto：图大时自动这样做",
            group="more",
            choices={"auto": ("自动", "Auto"), "whole": ("整张", "Whole image"), "masked": ("蒙版区域", "Masked area")},
        ),
    )
    padding: int = Field(
        48,
        ge=0,
        le=512,
        description="Context around the mask for area=masked, px",
        json_schema_extra=ui("留白", "Padding", help_zh="蒙版区域模式下保留的周边像素", group="more"),
    )
    width: int | None = Field(
        None,
        ge=64,
        le=MAX_SIDE,
        description="Working width (default: the model's native)",
        json_schema_extra=ui("工作宽度", "Working width", group="more", step=8),
    )
    height: int | None = Field(
        None,
        ge=64,
        le=MAX_SIDE,
        description="Working height",
        json_schema_extra=ui("工作高度", "Working height", group="more", step=8),
    )


def prepare_inpaint(env: PrepareEnv, p: InpaintParams) -> InpaintParams:
    env.assets.get(p.image, owner_id=env.owner_id, field="params.image")
    env.assets.get(p.mask, owner_id=env.owner_id, field="params.mask")
    return prepare_diffusion(env, p, inpainting=True)


def inpaint_images(
    ctx: RunContext, p: InpaintParams, image: Image.Image, mask: Image.Image, *, init: Image.Image | None = None
) -> tuple[ImagesResult, list[Image.Image]]:
    """Inpaint `mask` of `image` (starting from `init` if given) and composite: outside the mask stays exact."""
    assert p.model is not None
    family = ctx.models.catalog.get(p.model, field="params.model").family
    side = native_side(family)
    box = (0, 0, *image.size)
    if p.area == "masked" or (p.area == "auto" and max(image.size) > side * 1.25):
        box = mask_box(mask, p.padding)
    crop_w, crop_h = box[2] - box[0], box[3] - box[1]
    work = (p.width, p.height) if p.width and p.height else fit_to(crop_w, crop_h, min(side, max(crop_w, crop_h, 64)))
    source = (init or image).convert("RGB").crop(box).resize(work, Image.LANCZOS)
    # Generate a little past the mask so the soft seam has generated pixels under it.
    gen_mask = grow(mask, max(1, p.mask_blur // 2)).crop(box).resize(work, Image.NEAREST)
    result, generated = run_diffusion(
        ctx,
        p,
        mode="inpaint",
        init_image=source,
        mask=gen_mask,
        strength=p.strength,
        width=work[0],
        height=work[1],
        save=False,
    )
    outs = []
    for g in generated:
        full = image.convert("RGB").copy()
        full.paste(g.resize((crop_w, crop_h), Image.LANCZOS), box[:2])
        outs.append(composite_keep(image, full, mask, p.mask_blur))
    return result, outs


@operation(
    "inpaint",
    lane="gpu",
    version=1,
    params=InpaintParams,
    result=ImagesResult,
    prepare=prepare_inpaint,
    title={"en": "Inpaint", "zh": "局部重绘"},
    tags=("image", "edit"),
    studio=Studio(
        canvas="inpaint",
        order=2,
        label=("局部重绘", "Inpaint"),
        help=(
            "涂抹要重画的区域，写下想要的内容。没涂到的地方保持原样。",
            "Paint the area to redraw and describe what should be there. Unpainted pixels stay as they are.",
        ),
        run=("开始重绘", "Inpaint"),
        hint=("例如：一束白色郁金香", "e.g. a bunch of white tulips"),
    ),
)
def inpaint(ctx: RunContext, p: InpaintParams) -> ImagesResult:
    """Redraw the masked area from the prompt; pixels outside the mask are kept exactly."""
    image = ctx.load_image(p.image, field="params.image")
    mask = binary_mask(ctx.load_image(p.mask, field="params.mask"), image.size, field="params.mask")
    result, outs = inpaint_images(ctx, p, image, mask)
    save_outputs(ctx, result, outs, [p.seed + i for i in range(len(outs))], p, parent_id=p.image)
    return result


# -- erase ----------------------------------------------------------------------------------------------
ERASE_NEGATIVE = "object, person, people, animal, text, letters, watermark, logo, signature, frame, border"


class EraseParams(InpaintParams):
    prompt: str = Field(
        "",
        max_length=4000,
        description="Optional: what should be there instead (e.g. 'wooden table')",
        json_schema_extra=ui(
            "填充内容", "Fill with", help_zh="可选：这里应该是什么（例如“木质桌面”）", widget="textarea", group="more"
        ),
    )
    negative_prompt: str = Field(
        ERASE_NEGATIVE,
        max_length=4000,
        description="What the fill must not show",
        json_schema_extra=ui("反向提示词", "Negative prompt", widget="textarea", group="more", cli_flag="--negative"),
    )
    method: Literal["auto", "diffusion", "classical"] = Field(
        "auto",
        description="auto: diffusion when an image model is installed, else the classical (OpenCV) fill",
        json_schema_extra=METHOD_UI,
    )
    strength: float = Field(
        0.8,
        ge=0.01,
        le=1.0,
        description="How far diffusion may move from the classical fill",
        json_schema_extra=ui("重绘幅度", "Strength", widget="slider", step=0.05, group="more"),
    )
    steps: int = Field(
        20, ge=1, le=150, description="Sampling steps", json_schema_extra=ui("步数", "Steps", widget="slider")
    )
    mask_grow: int = Field(
        6,
        ge=0,
        le=64,
        description="Grow the mask to take the object's edge and shadow, px",
        json_schema_extra=ui("蒙版外扩", "Mask grow", help_zh="把蒙版向外扩，带走物体的边缘和影子（像素）"),
    )


class EraseResult(ImagesResult):
    method: str = Field(..., description="What filled the area: diffusion (model name) or classical-telea")


def prepare_erase(env: PrepareEnv, p: EraseParams) -> EraseParams:
    env.assets.get(p.image, owner_id=env.owner_id, field="params.image")
    env.assets.get(p.mask, owner_id=env.owner_id, field="params.mask")
    return prepare_fill(env, p)


@operation(
    "erase",
    lane="gpu",
    lane_for=fill_lane("quick"),
    version=1,
    params=EraseParams,
    result=EraseResult,
    prepare=prepare_erase,
    title={"en": "Smart erase", "zh": "智能消除"},
    tags=("image", "edit"),
    studio=Studio(
        canvas="erase",
        order=1,
        label=("智能消除", "Erase"),
        help=(
            "用画笔涂抹想去掉的东西（路人、文字、杂物），再点“开始消除”。没涂到的地方保持原样。",
            "Paint over what should go (people, text, clutter), then press “Erase”. Unpainted pixels stay as they are.",
        ),
        run=("开始消除", "Erase"),
    ),
)
def erase(ctx: RunContext, p: EraseParams) -> EraseResult:
    """Remove what the mask covers and fill it to match the surroundings; the rest is kept exactly."""
    from zhike.backends.classical import telea_fill

    ctx.progress(0, 1)
    image = ctx.load_image(p.image, field="params.image").convert("RGB")
    mask = grow(binary_mask(ctx.load_image(p.mask, field="params.mask"), image.size, field="params.mask"), p.mask_grow)
    filled = telea_fill(image, mask)
    if p.method == "classical":
        result = EraseResult(
            images=[],
            method="classical-telea",
        )
        if not has_checkpoint(ctx):  # chosen on purpose while a model is installed: nothing to point out
            result.warn(
                note(
                    "filled_classically",
                    "filled with the classical OpenCV method (no image model used); add an SD inpainting model "
                    "for generated fills: zhike models add PATH",
                )
            )
        save_outputs(
            ctx, result, [composite_keep(image, filled, mask, 0)], [None], p, parent_id=p.image, tags=["erase"]
        )
        ctx.progress(1, 1)
        return result
    # Diffusion starts from the classical fill, so it refines a background instead of inventing an object.
    base, outs = inpaint_images(ctx, p, image, mask, init=filled)
    result = EraseResult(**base.model_dump(), method=f"diffusion:{p.model}")
    save_outputs(ctx, result, outs, [p.seed + i for i in range(len(outs))], p, parent_id=p.image, tags=["erase"])
    return result


# -- material swap --------------------------------------------------------------------------------------
class MaterialSwapParams(InpaintParams):
    prompt: str = Field(
        "",
        max_length=4000,
        description="Optional: more about the object (the material words are added to it)",
        json_schema_extra=ui("补充描述", "More description", widget="textarea", group="more"),
    )
    material: str = Field(
        ...,
        min_length=1,
        max_length=200,
        description="The new material, e.g. 'brown leather'",
        json_schema_extra=ui(
            "新材质",
            "New material",
            canvas="prompt",
            placeholder=("例如：棕色真皮、浅色木纹、亚麻布", "e.g. brown leather, light oak, linen"),
        ),
    )
    strength: float = Field(0.85, ge=0.01, le=1.0, description="How much may change", json_schema_extra=STRENGTH_UI)
    negative_prompt: str = Field(
        "blurry, deformed, low quality, watermark",
        max_length=4000,
        description="What to avoid",
        json_schema_extra=NEGATIVE_UI,
    )


def prepare_material(env: PrepareEnv, p: MaterialSwapParams) -> MaterialSwapParams:
    prompt = p.prompt.strip()
    if f"made of {p.material}" not in prompt:  # stored params re-submitted (--from) are already expanded
        extra = (f"made of {p.material}", f"{p.material} texture", "realistic material, detailed, product photo")
        prompt = ", ".join(x for x in (prompt, *extra) if x)
    return prepare_inpaint(env, p.model_copy(update={"prompt": prompt}))


@operation(
    "material_swap",
    lane="gpu",
    version=1,
    params=MaterialSwapParams,
    result=ImagesResult,
    prepare=prepare_material,
    title={"en": "Material swap", "zh": "材质替换"},
    tags=("image", "edit"),
    studio=Studio(
        canvas="material",
        order=3,
        label=("材质替换", "Material"),
        help=(
            "涂抹要换材质的物体（沙发、包、桌面…），写下新材质。没涂到的地方保持原样。",
            "Paint the object whose material should change (sofa, bag, table top…) and name the new material. "
            "Unpainted pixels stay as they are.",
        ),
        run=("替换材质", "Swap material"),
    ),
)
def material_swap(ctx: RunContext, p: MaterialSwapParams) -> ImagesResult:
    """Give the masked object a new material (leather, wood, metal...); outside the mask is kept exactly."""
    return inpaint(ctx, p)
