"""control (图生漫 / 线稿上色): generate guided by ControlNets — edges, soft edges, line art or pose.

Each control takes an image (a photo to preprocess, or a ready map such as a user's drawing), a ControlNet,
a weight and a step window. With `init_image` it is img2img (line-art colouring: the line art as both); with
`mask` as well it is inpaint, keeping the unmasked pixels exactly.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import operation
from zhike.core.types import AssetId, ImagesResult
from zhike.core.ui import Studio, ui
from zhike.ops.diffusion_common import (
    MAX_SIDE,
    DiffusionParams,
    native_side,
    prepare_diffusion,
    run_diffusion,
    save_outputs,
)
from zhike.ops.masking import binary_mask, composite_keep, fit_to

PreprocessMode = Literal["none", "canny", "softedge", "scribble", "lineart", "pose"]
DETECTOR_LABELS = {
    "none": ("不处理（已是控制图）", "None (already a map)"),
    "canny": ("边缘（Canny）", "Edges (Canny)"),
    "softedge": ("柔和边缘（HED）", "Soft edges (HED)"),
    "scribble": ("涂鸦", "Scribble"),
    "lineart": ("线稿", "Line art"),
    "pose": ("人体姿势", "Pose"),
}


class ControlUnit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(
        ...,
        max_length=200,
        description="A registered ControlNet (zhike models list)",
        json_schema_extra=ui("ControlNet 模型", "ControlNet model", widget="model", model_kind="controlnet"),
    )
    image: AssetId = Field(
        ...,
        description="Control image: a photo to preprocess or a ready map",
        json_schema_extra=ui("控制图", "Control image", help_zh="要预处理的照片，或现成的控制图", canvas="image"),
    )
    preprocess: PreprocessMode = Field(
        "none",
        description="Make the map first (none: the image is the map)",
        json_schema_extra=ui("预处理", "Preprocessor", choices=DETECTOR_LABELS, canvas="detector"),
    )
    weight: float = Field(
        1.0,
        ge=0.0,
        le=2.0,
        description="Conditioning scale",
        json_schema_extra=ui("控制强度", "Weight", widget="slider", step=0.05),
    )
    start: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Fraction of the steps where control starts",
        json_schema_extra=ui("开始介入", "Start", widget="slider", step=0.05, group="more"),
    )
    end: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Fraction of the steps where control ends",
        json_schema_extra=ui("结束介入", "End", widget="slider", step=0.05, group="more"),
    )

    @model_validator(mode="after")
    def _window(self) -> ControlUnit:
        if self.start >= self.end:
            raise ValueError("start must be below end")
        return self


class ControlParams(DiffusionParams):
    controls: list[ControlUnit] = Field(
        ...,
        min_length=1,
        max_length=4,
        description="1-4 ControlNets: model=NAME,image=FILE,preprocess=MODE,weight=W",
        json_schema_extra=ui("控制单元", "Control units", canvas="controls", cli_flag="--control"),
    )
    init_image: AssetId | None = Field(
        None,
        description="img2img from this image (e.g. line art to colour)",
        json_schema_extra=ui("底图", "Initial image", help_zh="从这张图出发（例如给线稿上色）", cli_flag="--init"),
    )
    mask: AssetId | None = Field(
        None,
        description="With init_image: only the white area changes",
        json_schema_extra=ui("蒙版", "Mask", help_zh="配合底图：只改白色区域", group="more"),
    )
    strength: float = Field(
        0.75,
        ge=0.01,
        le=1.0,
        description="With init_image: how far it may move",
        json_schema_extra=ui("重绘幅度", "Strength", widget="slider", step=0.05, group="more"),
    )
    width: int | None = Field(
        None,
        ge=64,
        le=MAX_SIDE,
        description="Default: the control image's aspect",
        json_schema_extra=ui("宽度", "Width", help_zh="默认：按控制图的比例", group="size", step=8),
    )
    height: int | None = Field(
        None,
        ge=64,
        le=MAX_SIDE,
        description="Default: from the width",
        json_schema_extra=ui("高度", "Height", group="size", step=8),
    )
    save_maps: bool = Field(
        False,
        description="Also store the preprocessed maps as assets",
        json_schema_extra=ui("保存控制图", "Save control maps", group="more"),
    )


def prepare_control(env: PrepareEnv, p: ControlParams) -> ControlParams:
    if p.mask and not p.init_image:
        raise InvalidInput("a mask needs init_image (the image to edit)", code="mask_needs_image", field="params.mask")
    first = None
    for i, unit in enumerate(p.controls):
        row = env.assets.get(unit.image, owner_id=env.owner_id, field=f"params.controls.{i}.image")
        first = first or row
        spec = env.catalog.get(unit.model, field=f"params.controls.{i}.model")
        if spec.kind != "controlnet":
            raise InvalidInput(
                f"{unit.model!r} is a {spec.kind}, not a ControlNet",
                field=f"params.controls.{i}.model",
                code="model_wrong_kind",
                ctx={"name": unit.model, "kind": spec.kind, "expected": "controlnet"},
            )
    for name in ("init_image", "mask"):
        if getattr(p, name):
            env.assets.get(getattr(p, name), owner_id=env.owner_id, field=f"params.{name}")
    p = prepare_diffusion(env, p, inpainting=p.mask is not None)
    base = env.catalog.get(p.model or "", field="params.model")
    for i, unit in enumerate(p.controls):
        family = env.catalog.get(unit.model).family
        if family not in (base.family, "unknown"):
            raise InvalidInput(
                f"ControlNet {unit.model!r} is for {family}; the model is {base.family}",
                field=f"params.controls.{i}.model",
                code="model_wrong_family",
                ctx={"name": unit.model, "family": family, "expected": base.family},
            )
    if p.width is None or p.height is None:
        src = env.assets.get(p.init_image, owner_id=env.owner_id) if p.init_image else first
        assert src is not None
        w, h = fit_to(src.width, src.height, min(native_side(base.family), max(src.width, src.height)))
        p = p.model_copy(update={"width": p.width or w, "height": p.height or h})
    return p


class ControlResult(ImagesResult):
    maps: list[str] = Field(default_factory=list, description="Asset ids of the stored control maps")


@operation(
    "control",
    lane="gpu",
    version=1,
    params=ControlParams,
    result=ControlResult,
    prepare=prepare_control,
    title={"en": "ControlNet", "zh": "图生漫 / 线稿控制"},
    tags=("image", "generate", "control"),
    studio=Studio(
        canvas="control",
        order=5,
        label=("控制", "Control"),
        help=(
            "选一种控制方式，先预览控制图，再写画面描述生成新图；新图会沿用原图的轮廓或姿势。",
            "Choose a control type, preview its map, then describe the picture and generate; it follows the "
            "photo's outlines or pose.",
        ),
        run=("生成", "Generate"),
        hint=("例如：水彩风格的城市街景", "e.g. a watercolour city street"),
        preview="preprocess",
    ),
)
def control(ctx: RunContext, p: ControlParams) -> ControlResult:
    """Generate following the edges, line art or pose of control images (several at once, each weighted)."""
    from zhike.backends.diffusion import ControlInput
    from zhike.backends.preprocessors import run_preprocessor

    ctx.progress(0, 1)
    maps: list[Image.Image] = []
    for i, unit in enumerate(p.controls):
        img = ctx.load_image(unit.image, field=f"params.controls.{i}.image").convert("RGB")
        if unit.preprocess != "none":
            img = run_preprocessor(ctx.models, unit.preprocess, img, {}).image
        maps.append(img)
    init = ctx.load_image(p.init_image, field="params.init_image").convert("RGB") if p.init_image else None
    mask = (
        binary_mask(ctx.load_image(p.mask, field="params.mask"), init.size, field="params.mask")
        if (p.mask and init)
        else None
    )
    mode = "inpaint" if mask is not None else "img2img" if init is not None else "txt2img"
    family = ctx.models.catalog.get(p.model or "", field="params.model").family
    with ExitStack() as stack:
        inputs = []
        for i, (unit, img) in enumerate(zip(p.controls, maps, strict=True)):
            spec = ctx.models.spec(unit.model, kind="controlnet", field=f"params.controls.{i}.model")
            if spec.family == "unknown":  # headers that cannot tell: the base model's family is assumed
                spec = replace(spec, family=family)
            loaded = stack.enter_context(ctx.models.use(spec))
            inputs.append(
                ControlInput(model=loaded.model, image=img, scale=unit.weight, start=unit.start, end=unit.end)
            )
        work = (p.width, p.height)
        assert work[0] and work[1]
        base, images = run_diffusion(
            ctx,
            p,
            mode=mode,
            controls=inputs,
            save=False,
            strength=p.strength if init else None,
            init_image=init.resize(work, Image.LANCZOS) if init else None,
            mask=mask.resize(work, Image.NEAREST) if mask is not None else None,
        )
    if mask is not None and init is not None:
        images = [composite_keep(init, g, mask, 6) for g in images]
    result = ControlResult(**base.model_dump())
    parent = p.init_image or p.controls[0].image
    save_outputs(
        ctx,
        result,
        images,
        [p.seed + i for i in range(len(images))],
        p,
        parent_id=parent,
        tags=["control", *{u.preprocess for u in p.controls if u.preprocess != "none"}],
    )
    if p.save_maps:
        maps_params: dict[str, Any] = {"controls": [u.model_dump() for u in p.controls]}
        for unit, img in zip(p.controls, maps, strict=True):
            result.maps.append(
                ctx.save_image(
                    img,
                    params=maps_params,
                    seed=None,
                    model=None,
                    parent_id=unit.image,
                    tags=["control-map", unit.preprocess],
                )
            )
    return result
