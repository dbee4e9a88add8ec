"""subject_swap (主体迁移): a product photo placed in a new scene, the product's own pixels kept.

Two ways to get the scene:
- `scene_image` only: the cut-out product is composited on that photo (no image model needed; method "composite").
- `prompt` (with or without `scene_image`): the scene is generated around the placed product by inpainting
  everything outside it (method "diffusion:MODEL"); a scene image then serves as the start, changed by
  `scene_strength`. The product is pasted back exactly afterwards.
Both add a soft contact shadow under the product and harmonise only the product's rim with the scene (its core
keeps the cut-out's pixels exactly: merchants need the product's true colours). See `SubjectSwapResult`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFilter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import operation
from zhike.core.types import AssetId, ImagesResult
from zhike.core.ui import Cli, Studio, ui
from zhike.imaging.product_photo import contact_shadow
from zhike.ops.diffusion_common import (
    MAX_SIDE,
    NEGATIVE_UI,
    DiffusionParams,
    native_side,
    prepare_diffusion,
    run_diffusion,
    save_outputs,
)
from zhike.ops.masking import fit_to
from zhike.ops.placement import Anchor, Box, anchor_origin, cover, cutout, pick_matting, resized
from zhike.ops.scene_fit import (
    Light,
    blend_edges,
    cast_shadow,
    edge_band,
    foot_on,
    foot_scale,
    free_spot,
    match_light,
    photo_reference,
    relight_product,
    scene_light,
    scene_surface,
)

if TYPE_CHECKING:
    from zhike.backends.scene import Surface

MAX_CANVAS = 4096
NO_MODEL = (
    "a scene prompt needs an image model and none is installed: add an SD 1.5 or SDXL checkpoint (ideally an "
    "inpainting one) with `zhike models add PATH`. Without a model, give params.scene_image (a photo of the scene) "
    "and leave the prompt empty: the product is then composited on it"
)


ANCHOR_LABELS = {
    "auto": ("自动（站在桌面或地面上）", "Auto (on the table or floor)"),
    "center": ("居中", "Centre"),
    "bottom-center": ("底部居中", "Bottom centre"),
    "top-center": ("顶部居中", "Top centre"),
    "left": ("靠左", "Left"),
    "right": ("靠右", "Right"),
    "bottom-left": ("左下", "Bottom left"),
    "bottom-right": ("右下", "Bottom right"),
    "top-left": ("左上", "Top left"),
    "top-right": ("右上", "Top right"),
}


class Placement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scale: float | None = Field(
        None,
        ge=0.05,
        le=1.0,
        description="The product's longer side / the canvas's shorter side; empty: fitted to the spot "
        "(0.45 of the room above it; 0.6 with a fixed anchor)",
        json_schema_extra=ui(
            "商品大小",
            "Product size",
            help_zh="商品长边 / 画布短边；留空：按摆放位置自动",
            widget="slider",
            step=0.05,
        ),
    )
    anchor: Anchor = Field(
        "auto",
        description="Where the product stands: auto = on the scene's table or floor (detected), else bottom centre",
        json_schema_extra=ui("位置", "Anchor", choices=ANCHOR_LABELS),
    )
    x: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Position: where the product's foot stands, share of the width from the left (wins over anchor)",
        json_schema_extra=ui(
            "落脚点 X", "Spot X", help_zh="商品底部中点的位置：占宽度的比例（拖动预览可设置）", step=0.01
        ),
    )
    y: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Position: the foot's height, share of the height from the top (wins over anchor)",
        json_schema_extra=ui("落脚点 Y", "Spot Y", help_zh="商品底部的位置：占高度的比例", step=0.01),
    )
    margin: float = Field(
        0.08,
        ge=0.0,
        le=0.45,
        description="Gap to the anchored edges, share of the shorter side",
        json_schema_extra=ui("边距", "Margin", widget="slider", step=0.01, group="more"),
    )
    offset_x: float = Field(
        0.0,
        ge=-1.0,
        le=1.0,
        description="Extra shift right, share of the width",
        json_schema_extra=ui("水平偏移", "Offset X", widget="slider", step=0.01, group="more"),
    )
    offset_y: float = Field(
        0.0,
        ge=-1.0,
        le=1.0,
        description="Extra shift down, share of the height",
        json_schema_extra=ui("垂直偏移", "Offset Y", widget="slider", step=0.01, group="more"),
    )


class SubjectSwapParams(DiffusionParams):
    prompt: str = Field(
        "",
        max_length=4000,
        description="The scene, e.g. '雪山日照 snowy mountain in sunshine' (needs an image model); "
        "empty: composite on scene_image",
        json_schema_extra=ui(
            "场景描述",
            "Scene",
            help_zh="例如“雪山日照”（需要图像模型）；留空：合成到场景图上",
            widget="prompt",
            placeholder=("例如：雪山日照", "e.g. snowy mountain in sunshine"),
        ),
    )
    negative_prompt: str = Field(
        "duplicate product, extra objects, text, watermark, logo, lowres, blurry, deformed",
        max_length=4000,
        description="What the scene must not show",
        json_schema_extra=NEGATIVE_UI,
    )
    image: AssetId = Field(
        ...,
        description="The product photo (or a PNG with transparency)",
        json_schema_extra=ui("商品图", "Product photo", canvas="image", cli_argument=True),
    )
    scene_image: AssetId | None = Field(
        None,
        description="A scene photo: composited on, or the start",
        json_schema_extra=ui(
            "场景图",
            "Scene image",
            help_zh="把商品合成到这张图上，或以它为起点生成",
            cli_flag="--scene",
            canvas="scene",
        ),
    )
    placement: Placement = Field(
        default_factory=Placement,
        description="Where and how large the product stands: anchor=auto (on the detected table/floor), or "
        "x=0.4,y=0.75 (the foot's spot as shares of the scene), scale=0.5,...",
        json_schema_extra=ui("摆放位置", "Placement", canvas="spot"),
    )
    width: int | None = Field(
        None,
        ge=64,
        le=MAX_CANVAS,
        description="Output width; default: the scene's, else native",
        json_schema_extra=ui("宽度", "Width", help_zh="默认：场景图的宽度", group="size"),
    )
    height: int | None = Field(
        None,
        ge=64,
        le=MAX_CANVAS,
        description="Output height",
        json_schema_extra=ui("高度", "Height", group="size"),
    )
    shadow: bool = Field(
        True,
        description="Soft contact shadow under the product",
        json_schema_extra=ui("接触阴影", "Shadow"),
    )
    shadow_opacity: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="How dark the shadow is",
        json_schema_extra=ui("阴影浓度", "Shadow opacity", widget="slider", step=0.05),
    )
    light_match: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Match the product's colour temperature and brightness to the light around its spot (bounded: "
        "it stays recognisable); 0 keeps its pixels exact",
        json_schema_extra=ui(
            "光色匹配",
            "Light match",
            help_zh="让商品的色温和亮度贴合场景光线（有上限，商品仍可辨认）；0 = 保持原色",
            widget="slider",
            step=0.05,
        ),
    )
    edge_blend: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="With an image model installed: a light diffusion pass over a thin band around the product's "
        "edge; 0 = off",
        json_schema_extra=ui(
            "AI 边缘融合",
            "AI edge blend",
            help_zh="装有图像模型时：对商品边缘一圈做轻度重绘，接缝更自然；0 = 关闭",
            widget="slider",
            step=0.05,
            group="more",
        ),
    )
    relight_model: str | None = Field(
        None,
        max_length=200,
        description="An IC-Light-style relighting model (kind relight, SD 1.5) to relight the product in the scene's "
        "light; needs an SD 1.5 image model too",
        json_schema_extra=ui(
            "重新打光模型",
            "Relight model",
            help_zh="IC-Light 类重打光模型（需要同时装有 SD 1.5 模型）：让商品的光影随场景变化",
            widget="model",
            model_kind="relight",
            group="more",
        ),
    )
    harmonize: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="Match the product's rim colours to the scene (its core stays exact)",
        json_schema_extra=ui(
            "边缘融色", "Harmonize", help_zh="让商品边缘的颜色贴合场景（主体不变）", widget="slider", step=0.05
        ),
    )
    mask_grow: int = Field(
        4,
        ge=0,
        le=64,
        description="How far the generated scene reaches under the product's edge",
        json_schema_extra=ui("蒙版外扩", "Mask grow", group="more"),
    )
    scene_strength: float = Field(
        0.6,
        ge=0.05,
        le=1.0,
        description="With scene_image and a prompt: how much changes",
        json_schema_extra=ui("场景重绘幅度", "Scene strength", widget="slider", step=0.05, group="more"),
    )
    steps: int = Field(
        25,
        ge=1,
        le=150,
        description="Sampling steps",
        json_schema_extra=ui("步数", "Steps", widget="slider", group="more"),
    )
    matting_model: str | None = Field(
        None,
        max_length=200,
        description="Cuts the product out (kind matting); empty: isnet-medium if installed",
        json_schema_extra=ui("抠图模型", "Matting model", widget="model", model_kind="matting", group="more"),
    )

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, v: int | None) -> int | None:
        return v  # the output is resized from the model's working size: any size works (e.g. 1242x1660)


class SubjectSwapResult(ImagesResult):
    method: str = Field(..., description="composite, or diffusion:MODEL")
    product_box: list[int] = Field(..., description="[x0, y0, x1, y1] of the product in the output")
    source_box: list[int] = Field(..., description="[x0, y0, x1, y1] the product was cut from in its photo")
    kept_inset_px: int = Field(
        ...,
        description="With light_match 0 and no edge pass: product pixels (alpha >= 128) farther than this inside "
        "its edge are the cut-out's, exactly",
    )
    placed_on: str = Field("anchor", description="surface (detected support), position (the user's x/y) or anchor")
    surface: list[float] | None = Field(
        None, description="The detected support: [back edge y at x=0, at x=1, front edge y], shares of the height"
    )
    light: list[float] = Field(default_factory=list, description="[dx, dy, strength]: towards the scene's light")
    light_shift: list[float] = Field(
        default_factory=list, description="[L* gain, a* shift, b* shift] applied to the product"
    )
    edge_band_px: int = Field(0, description="The edge pass changed pixels at most this far from the product's edge")
    relight_model: str | None = Field(None, description="The relighting model that relit the product, if any")


def prepare_subject_swap(env: PrepareEnv, p: SubjectSwapParams) -> SubjectSwapParams:
    env.assets.get(p.image, owner_id=env.owner_id, field="params.image")
    # Pinned now, so the job row alone re-makes the cut-out.
    p = p.model_copy(update={"matting_model": pick_matting(env.catalog, p.matting_model, field="params.matting_model")})
    if p.scene_image is not None:
        env.assets.get(p.scene_image, owner_id=env.owner_id, field="params.scene_image")
    if not p.prompt.strip() and p.preset is None:
        if p.scene_image is None:
            raise InvalidInput(
                "give the scene: a prompt (generated; needs an image model) or params.scene_image (a photo)",
                field="params.prompt",
            )
        has_model = p.model is not None or any(s.kind == "checkpoint" for s in env.catalog.list())
        if p.relight_model is not None:
            return check_relight(env, p, has_model)
        if p.edge_blend > 0 and has_model:  # composite, then a light pass over the edge band: model and seed pinned
            return prepare_diffusion(env, p, inpainting=True)
        return p.model_copy(update={"seed": p.seed if p.seed is not None else 0})  # composite: no model involved
    if p.model is None and not any(s.kind == "checkpoint" for s in env.catalog.list()):
        raise InvalidInput(NO_MODEL, field="params.prompt")
    return prepare_diffusion(env, p, inpainting=True)


def check_relight(env: PrepareEnv, p: SubjectSwapParams, has_model: bool) -> SubjectSwapParams:
    """A relight model must be one (kind relight) and runs with an SD 1.5 image model (its text encoder and VAE)."""
    field = "params.relight_model"
    assert p.relight_model is not None
    spec = env.catalog.get(p.relight_model, field=field)
    if spec.kind != "relight":
        raise InvalidInput(
            f"{p.relight_model!r} is a {spec.kind}, not a relighting model",
            field=field,
            code="model_wrong_kind",
            ctx={"name": p.relight_model, "kind": spec.kind, "expected": "relight"},
        )
    if not has_model:
        raise InvalidInput(NO_MODEL, field=field)
    p = prepare_diffusion(env, p, inpainting=True)
    assert p.model is not None
    family = env.catalog.get(p.model, field="params.model").family
    if family != "sd15" or spec.family not in ("sd15", "unknown"):
        raise InvalidInput(
            f"relighting model {p.relight_model!r} works with an SD 1.5 model; {p.model!r} is {family}",
            field="params.model",
            code="model_wrong_family",
            ctx={"name": p.model, "family": family, "expected": "sd15"},
        )
    return p


def output_size(p: SubjectSwapParams, scene: Image.Image | None, native: int) -> tuple[int, int]:
    """Both given: those. Else the scene's size (its aspect when one side is given), else a native square."""
    base = scene.size if scene is not None else (native, native)
    if p.width and p.height:
        return p.width, p.height
    if p.width:
        return p.width, max(64, round(p.width * base[1] / base[0]))
    if p.height:
        return max(64, round(p.height * base[0] / base[1])), p.height
    s = min(1.0, MAX_CANVAS / max(base))
    return max(64, round(base[0] * s)), max(64, round(base[1] * s))


def place_product(
    rgb: Image.Image,
    alpha: Image.Image,
    canvas: tuple[int, int],
    pl: Placement,
    scene: Image.Image | None = None,
    surface: Surface | None = None,
) -> tuple[Image.Image, np.ndarray, Box, str]:
    """The product sized and placed for the canvas: (pixels, alpha, box in the canvas, what placed it).

    Its foot goes to the user's spot (x/y), else (anchor auto) onto the detected support (none found: bottom
    centre), else to the anchor; its size is the user's scale, else fitted to the room above its foot.
    RGB and alpha are resized separately (Pillow resizes RGBA premultiplied, which would change opaque pixels'
    neighbours differently from the plain photo). Semi-transparent edge pixels get backdrop-free colours
    (alpha.composite's foreground estimation), so the old background does not fringe the product; pixels 1 px
    or more inside the silhouette keep the resized photo's own values.
    """
    from zhike.backends.alpha import composite

    (bw, bh), (cw, ch) = rgb.size, canvas
    spot, placed_on = None, "anchor"
    if pl.x is not None or pl.y is not None:
        fx = pl.x if pl.x is not None else 0.5
        spot, placed_on = (fx, pl.y if pl.y is not None else (foot_on(surface, fx) if surface else 0.9)), "position"
    elif pl.anchor == "auto" and surface is not None:
        spot, placed_on = free_spot(scene, surface, (bw, bh), canvas, pl.scale), "surface"
    elif pl.anchor == "auto":  # no support found: bottom centre, sized for the room above (not 0.6 of the canvas)
        spot = (0.5, 1.0 - pl.margin * min(canvas) / canvas[1])
    if spot is None:
        k = min((pl.scale or 0.6) * min(canvas) / max(bw, bh), cw / bw, ch / bh)
        size = (max(1, round(bw * k)), max(1, round(bh * k)))
        margin = round(pl.margin * min(canvas))
        x, y = anchor_origin(canvas, size, pl.anchor, margin_px=margin, offset=(pl.offset_x, pl.offset_y))
    else:
        foot = ((spot[0] + pl.offset_x) * cw, min(1.0, max(0.02, spot[1] + pl.offset_y)) * ch)
        k = foot_scale((bw, bh), canvas, foot[1], pl.scale)
        size = (max(1, round(bw * k)), max(1, round(bh * k)))
        x = min(max(0, round(foot[0] - size[0] / 2)), max(0, cw - size[0]))
        y = min(max(0, round(foot[1]) - size[1]), max(0, ch - size[1]))
    photo, a_img = resized(rgb, size), resized(alpha, size)
    a = np.asarray(a_img, dtype=np.uint8)
    clean = np.asarray(composite(photo, a_img, background=None))[..., :3].copy()
    core = solid_core(a)
    clean[core] = np.asarray(photo)[core]
    return Image.fromarray(clean), a, (x, y, x + size[0], y + size[1]), placed_on


def solid_core(a: np.ndarray) -> np.ndarray:
    """Pixels 1 px or more inside the silhouette (alpha >= 128): the product, opaque and exact."""
    hard = Image.fromarray((a >= 128).astype(np.uint8) * 255)
    return np.asarray(hard.filter(ImageFilter.MinFilter(3))) > 0


def full_alpha(a: np.ndarray, box: Box, canvas: tuple[int, int]) -> np.ndarray:
    out = np.zeros((canvas[1], canvas[0]), np.uint8)
    out[box[1] : box[3], box[0] : box[2]] = a
    return out


def harmonize_rim(
    fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, factor: float, band: int
) -> tuple[np.ndarray, np.ndarray]:
    """Move the product's rim toward the scene's colours (LAB mean/std transfer blended by `factor`).

    Full effect at the silhouette, none from `band` + 1 px inside: the seam reads as lit by the scene while the
    product's core keeps its exact colours. Returns (new fg, changed mask); HxWx3 / HxW uint8 arrays.
    """
    from zhike.backends.opencv import dilate_square, distance_inside, lab_to_rgb, rgb_to_lab

    hard = alpha >= 128
    ring = dilate_square(hard, 1, iterations=max(4, band * 2))
    ring &= alpha == 0  # the scene right around the product: the light it would pick up
    if factor <= 0 or not hard.any() or not ring.any():
        return fg, np.zeros_like(hard)
    lab_fg = rgb_to_lab(fg.astype(np.float32) / 255)
    lab_bg = rgb_to_lab(bg.astype(np.float32) / 255)
    mu_p, sd_p = lab_fg[hard].mean(0), lab_fg[hard].std(0) + 1e-3
    mu_s, sd_s = lab_bg[ring].mean(0), lab_bg[ring].std(0) + 1e-3
    moved = (lab_fg - mu_p) * (1 + factor * (sd_s / sd_p - 1)) + mu_p + factor * (mu_s - mu_p)
    depth = distance_inside(hard)  # 1 = edge pixel
    weight = np.clip(1.0 - (depth - 1) / band, 0.0, 1.0)
    weight[alpha == 0] = 0.0
    changed = weight > 0
    lab = lab_fg + (moved - lab_fg) * weight[..., None]
    rgb = np.clip(lab_to_rgb(lab) * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.where(changed[..., None], rgb, fg), changed


@dataclass(frozen=True)
class Look:
    """What the scene asks of the product: its light, the support's rows (canvas px) and the light it was shot in."""

    light: Light
    ground: tuple[float, float] | None
    reference: tuple[float, np.ndarray]


def finish(
    bg: Image.Image, product: Image.Image, a: np.ndarray, box: Box, p: SubjectSwapParams, look: Look
) -> tuple[Image.Image, list[float]]:
    """Shadows on the scene, product relit and rim harmonised, product layered on. With light_match 0 the
    product's core is pasted exactly. Returns (image, light shift applied).

    Works on a window around the product (shadows and rim reach only a little past it): cost follows the
    product's size, not the canvas's.
    """
    cw, ch = bg.size
    band = rim_band(box)
    tall = max(box[2] - box[0], box[3] - box[1])
    reach = 1.0 if p.shadow and look.light.strength > 0.05 else 0.2  # a cast shadow reaches about the height
    pad = max(2 * band + 4, round(reach * tall) + 4)
    win = (max(0, box[0] - pad), max(0, box[1] - pad), min(cw, box[2] + pad), min(ch, box[3] + pad))
    at = (box[0] - win[0], box[1] - win[1], box[2] - win[0], box[3] - win[1])
    size = (win[2] - win[0], win[3] - win[1])
    alpha = full_alpha(a, at, size)
    out_full = np.asarray(bg.convert("RGB")).copy()
    scene = out_full[win[1] : win[3], win[0] : win[2]].astype(np.float32)
    around = out_full[win[1] : win[3], win[0] : win[2]][alpha == 0]
    lit, shift = match_light(np.asarray(product), a, around, look.reference, look.light, p.light_match)
    fg = np.zeros((size[1], size[0], 3), np.uint8)
    fg[at[1] : at[3], at[0] : at[2]] = lit
    if p.shadow:
        ground = None if look.ground is None else (look.ground[0] - win[1], look.ground[1] - win[1])
        cast = cast_shadow(alpha, look.light, p.shadow_opacity, ground)
        contact = contact_shadow(alpha, p.shadow_opacity)  # imaging/product_photo: the one contact shadow
        scene *= ((1.0 - cast) * (1.0 - contact))[..., None]
    fg_h, _ = harmonize_rim(fg, alpha, np.clip(scene + 0.5, 0, 255).astype(np.uint8), p.harmonize, band)
    core = solid_core(alpha)  # opaque: no scene may show through a soft spot of the matte inside the product
    w = np.where(core, 255, alpha).astype(np.float32)[..., None] / 255
    out = np.clip(scene + (fg_h.astype(np.float32) - scene) * w + 0.5, 0, 255).astype(np.uint8)
    out[core] = fg_h[core]
    out_full[win[1] : win[3], win[0] : win[2]] = out
    return Image.fromarray(out_full), shift


def rim_band(box: Box) -> int:
    return max(2, round(0.03 * min(box[2] - box[0], box[3] - box[1])))


@operation(
    "subject_swap",
    lane="gpu",
    # A composite onto a scene photo (no model pinned by prepare) is a cutout and some pixel work: seconds.
    lane_for=lambda p: "gpu" if p.model is not None or p.relight_model is not None else "quick",
    version=1,
    params=SubjectSwapParams,
    result=SubjectSwapResult,
    prepare=prepare_subject_swap,
    title={"en": "Product in scene", "zh": "主体迁移"},
    tags=("image", "edit", "commerce"),
    studio=Studio(
        tool=True,
        order=4,
        help=(
            "把商品放进新场景（场景图或文字描述），商品本身保持不变。",
            "Put a product into a new scene (a photo or a description); the product itself is kept.",
        ),
    ),
    cli=Cli(aliases=("swap",)),
)
def subject_swap(ctx: RunContext, p: SubjectSwapParams) -> SubjectSwapResult:
    """Put a product into a new scene (a photo or a prompt), standing on its support, relit, with its shadow."""
    t0 = time.perf_counter()
    generate = bool(p.prompt.strip())
    edge = not generate and p.model is not None and p.edge_blend > 0
    relit = not generate and p.relight_model is not None
    total = p.steps if generate else 2 + edge + relit
    ctx.progress(0, total)
    product_photo = ctx.load_image(p.image, field="params.image")
    rgb, alpha, source_box = cutout(ctx.models, product_photo, model=p.matting_model, field="params.image")
    scene = ctx.load_image(p.scene_image, field="params.scene_image").convert("RGB") if p.scene_image else None
    native = 512
    if generate or edge or relit:
        assert p.model is not None
        native = native_side(ctx.models.catalog.get(p.model, field="params.model").family)
    size = output_size(p, scene, native)
    backdrop_scene = cover(scene, size) if scene is not None else None
    surface = scene_surface(backdrop_scene) if backdrop_scene is not None else None
    product, a, box, placed_on = place_product(rgb, alpha, size, p.placement, backdrop_scene, surface)
    timings = {"cutout": round(time.perf_counter() - t0, 4)}
    if not generate:
        if backdrop_scene is None:  # prepare refuses this; a preset that expanded to no prompt could still get here
            raise InvalidInput("give the scene: a prompt or params.scene_image", field="params.prompt")
        ctx.progress(1, total)
        generated, seeds = [backdrop_scene], [None]
        result = SubjectSwapResult(images=[], method="composite", product_box=[], source_box=[], kept_inset_px=0)
    else:
        base, generated = generate_scene(ctx, p, scene, product, a, box, size, native)
        generated = [g.resize(size, Image.LANCZOS) for g in generated]
        seeds = [p.seed + i if p.seed is not None else None for i in range(len(generated))]
        result = SubjectSwapResult(
            **base.model_dump(), method=f"diffusion:{p.model}", product_box=[], source_box=[], kept_inset_px=0
        )
        timings |= base.timings
    t = time.perf_counter()
    light = scene_light(generated[0])
    ground = None
    if surface is not None:
        mid = (box[0] + box[2]) / 2 / size[0]
        ground = (surface.y_at(mid) * size[1], surface.front * size[1])
    look = Look(light, ground, photo_reference(product_photo))
    finished = [finish(g, product, a, box, p, look) for g in generated]
    outs = [f[0] for f in finished]
    timings["compose"] = round(time.perf_counter() - t, 4)
    if relit:
        assert backdrop_scene is not None
        t = time.perf_counter()
        outs = [relight_product(ctx, p, outs[0], backdrop_scene, a, box)]
        result.relight_model, result.model, seeds = p.relight_model, p.model, [p.seed]
        timings["relight"] = round(time.perf_counter() - t, 4)
    if edge:
        t = time.perf_counter()
        ctx.progress(2, total)
        outs, result.edge_band_px, result.model = [blend_edges(ctx, p, outs[0], a, box)], edge_band(box), p.model
        seeds = [p.seed]
        timings["edge_blend"] = round(time.perf_counter() - t, 4)
    result.product_box, result.source_box = list(box), list(source_box)
    result.kept_inset_px = rim_band(box) + 1 if p.harmonize > 0 else 1
    result.placed_on, result.light, result.light_shift = placed_on, light.as_list(), finished[0][1]
    if surface is not None:
        result.surface = [round(surface.y_left, 4), round(surface.y_right, 4), round(surface.front, 4)]
    save_outputs(ctx, result, outs, seeds, p, parent_id=p.image, tags=["subject_swap"])
    result.timings = timings
    if not generate:
        ctx.progress(total, total)
    return result


def generate_scene(
    ctx: RunContext,
    p: SubjectSwapParams,
    scene: Image.Image | None,
    product: Image.Image,
    a: np.ndarray,
    box: Box,
    size: tuple[int, int],
    native: int,
) -> tuple[ImagesResult, list[Image.Image]]:
    """Inpaint everything around the product at the model's working size (a scene image is the start)."""
    work = fit_to(*size, min(native, max(size), MAX_SIDE))
    init = cover(scene, size) if scene is not None else Image.new("RGB", size, (128, 128, 128))
    init.paste(product, box[:2], Image.fromarray(a))
    # The scene reaches `mask_grow` px under the product's edge; the product's soft edge then blends over it.
    keep = Image.fromarray(full_alpha(a, box, size)).point(lambda v: 255 if v >= 128 else 0)
    if p.mask_grow:
        keep = keep.filter(ImageFilter.MinFilter(2 * p.mask_grow + 1))
    gen_mask = keep.point(lambda v: 255 - v)
    return run_diffusion(
        ctx,
        p,
        mode="inpaint",
        init_image=init.resize(work, Image.LANCZOS),
        mask=gen_mask.resize(work, Image.NEAREST),
        strength=p.scene_strength if scene is not None else 1.0,
        width=work[0],
        height=work[1],
        save=False,
    )
