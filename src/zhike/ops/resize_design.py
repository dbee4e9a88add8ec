"""resize_design (设计尺寸变换): one image to many marketplace sizes in one job, the subject kept whole.

Modes, per size:
- crop: scale to cover, then the crop window that keeps the subject box (with a margin) whole and as centred as
  possible. The frame is always filled (no bands): a subject too big for the frame at cover scale is centred and
  its edges cropped (use fit to see it whole).
- fit: the whole image, contained and centred, on a blurred or flat background.
- extend: the whole image contained, the missing area generated (outpaint: diffusion when a model is installed,
  else the classical mirror fill; the method is named per size). The image's pixels are pasted back exactly.

Each finished size is checkpointed (`ctx.work`, key `II-SIZE`): a retry after a crashed worker makes only the
sizes still missing (an outpainted size costs a diffusion run).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from PIL import Image
from pydantic import AfterValidator, BaseModel, Field

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.registry import operation
from zhike.core.types import AssetId, ImageOut, ImagesResult
from zhike.core.ui import Cli, Studio, ui
from zhike.ops.diffusion_common import (
    METHOD_CHOICES,
    DiffusionParams,
    fill_lane,
    native_side,
    prepare_fill,
    run_diffusion,
)
from zhike.ops.masking import fit_to
from zhike.ops.placement import Box, backdrop, find_subject, flatten, pick_matting

MAX_OUT = 4096
SIZE_RE = re.compile(r"^(\d{2,4})\s*[x×*]\s*(\d{2,4})$")


@dataclass(frozen=True)
class SizePreset:
    id: str
    width: int
    height: int
    zh: str
    en: str


SIZE_PRESETS: dict[str, SizePreset] = {
    s.id: s
    for s in (
        SizePreset("taobao", 800, 800, "淘宝主图", "Taobao main image"),
        SizePreset("douyin", 1080, 1920, "抖音/快手竖版", "Douyin / Kuaishou vertical"),
        SizePreset("xiaohongshu", 1242, 1660, "小红书", "Xiaohongshu post"),
        SizePreset("banner", 1200, 628, "横幅", "Web banner"),
        SizePreset("jd", 800, 800, "京东主图", "JD main image"),
        SizePreset("wechat_cover", 900, 383, "公众号封面", "WeChat article cover"),
    )
}
ALIASES = {"kuaishou": "douyin", "wechat": "wechat_cover", "xhs": "xiaohongshu", "tmall": "taobao"}


def normalize_size(raw: str) -> str:
    """A preset id (aliases and '-' accepted) or 'WxH' -> its canonical spelling; ValueError names the choices."""
    key = raw.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key in SIZE_PRESETS:
        return key
    m = SIZE_RE.match(key)
    if m:
        w, h = int(m[1]), int(m[2])
        if not (16 <= w <= MAX_OUT and 16 <= h <= MAX_OUT):
            raise ValueError(f"{raw!r}: each side must be 16..{MAX_OUT} px")
        return f"{w}x{h}"
    raise ValueError(f"{raw!r} is not a size: use WxH (e.g. 750x1000) or a preset: {', '.join(SIZE_PRESETS)}")


def size_of(size_id: str) -> tuple[int, int]:
    preset = SIZE_PRESETS.get(size_id)
    if preset is not None:
        return preset.width, preset.height
    w, h = size_id.split("x")
    return int(w), int(h)


# Validated one by one, so an error names the entry (params.sizes.2).
SizeId = Annotated[str, AfterValidator(normalize_size)]


class ResizeDesignParams(DiffusionParams):
    image: AssetId = Field(
        ...,
        description="The image or design to resize",
        json_schema_extra=ui("原图", "Image", canvas="image", cli_argument=True),
    )
    sizes: list[SizeId] = Field(
        ...,
        min_length=1,
        max_length=12,
        description="Preset ids (taobao, douyin, xiaohongshu, banner, jd, wechat_cover) or WxH; one output each",
        json_schema_extra=ui("目标尺寸", "Sizes", widget="sizes", cli_flag="--size"),
    )
    mode: Literal["crop", "fit", "extend"] = Field(
        "crop",
        description="crop: keep the subject whole; fit: the whole image; extend: outpaint",
        json_schema_extra=ui(
            "模式",
            "Mode",
            choices={"crop": ("主体裁切", "Crop"), "fit": ("完整放入", "Fit"), "extend": ("AI 补全", "AI extend")},
        ),
    )
    margin: float = Field(
        0.04,
        ge=0.0,
        le=0.25,
        description="crop: room around the subject, share of the short side",
        json_schema_extra=ui("边距", "Margin", widget="slider", step=0.01, group="more"),
    )
    fill: Literal["blur", "color", "mirror"] = Field(
        "blur",
        description="fit: what fills the rest of the frame",
        json_schema_extra=ui(
            "填充方式",
            "Fill",
            choices={"blur": ("模糊", "Blur"), "color": ("纯色", "Colour"), "mirror": ("镜像", "Mirror")},
        ),
    )
    fill_color: str = Field(
        "#ffffff",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="fill=color: the background; also under transparency",
        json_schema_extra=ui("填充颜色", "Fill colour", widget="colour"),
    )
    method: Literal["auto", "diffusion", "classical"] = Field(
        "auto",
        description="extend: diffusion (needs a model) or classical mirror fill; auto picks",
        json_schema_extra=ui("方法", "Method", group="more", choices=METHOD_CHOICES),
    )
    strength: float = Field(
        1.0,
        ge=0.01,
        le=1.0,
        description="extend with diffusion",
        json_schema_extra=ui("重绘幅度", "Strength", widget="slider", step=0.05, group="more"),
    )
    steps: int = Field(
        20,
        ge=1,
        le=150,
        description="Sampling steps",
        json_schema_extra=ui("步数", "Steps", widget="slider", group="more"),
    )
    batch_size: int = Field(
        1, ge=1, le=1, description="One output per size", json_schema_extra=ui("每批张数", "Batch size", read_only=True)
    )
    matting_model: str | None = Field(
        None,
        max_length=200,
        description="crop: finds the subject (kind matting); empty: isnet-medium if installed",
        json_schema_extra=ui("抠图模型", "Matting model", widget="model", model_kind="matting", group="more"),
    )
    width: int | None = Field(
        None,
        description="Not used: `sizes` sets the outputs",
        json_schema_extra=ui("宽度", "Width", read_only=True),
    )
    height: int | None = Field(
        None,
        description="Not used: `sizes` sets the outputs",
        json_schema_extra=ui("高度", "Height", read_only=True),
    )


class SizeOut(BaseModel):
    size: str = Field(..., description="Preset id or WxH")
    label: str
    width: int
    height: int
    method: str = Field(..., description="crop, fit-*, extend:classical-mirror, extend:diffusion:MODEL")
    subject_box: list[int] | None = Field(..., description="[x0, y0, x1, y1] of the subject in this output (crop)")
    placed_box: list[int] = Field(..., description="Where the whole scaled input lies in this output (may overhang)")
    asset_id: str
    seconds: float


class ResizeDesignResult(ImagesResult):
    outputs: list[SizeOut]
    subject_box: list[int] | None = Field(..., description="[x0, y0, x1, y1] of the subject in the input (crop)")
    subject_source: str = Field(
        ..., description="crop: matte (ISNet) or saliency (OpenCV, when no matte); fit/extend: none (not needed)"
    )


def prepare_resize_design(env: PrepareEnv, p: ResizeDesignParams) -> ResizeDesignParams:
    env.assets.get(p.image, owner_id=env.owner_id, field="params.image")
    if p.mode == "crop":  # pinned now, so the job row alone re-makes the framing; none installed: saliency
        p = p.model_copy(
            update={"matting_model": pick_matting(env.catalog, p.matting_model, field="params.matting_model")}
        )
    if p.mode == "extend":
        return prepare_fill(env, p)
    return p.model_copy(update={"seed": p.seed if p.seed is not None else 0})  # no model involved


@dataclass(frozen=True)
class Framing:
    """The input scaled to `scaled` with its top-left at `origin` in the output (negative: cropped off)."""

    scaled: tuple[int, int]
    origin: tuple[int, int]

    def placed_box(self) -> Box:
        return self.origin[0], self.origin[1], self.origin[0] + self.scaled[0], self.origin[1] + self.scaled[1]

    def covers(self, size: tuple[int, int]) -> bool:
        x0, y0, x1, y1 = self.placed_box()
        return x0 <= 0 and y0 <= 0 and x1 >= size[0] and y1 >= size[1]

    def map_box(self, box: Box, src: tuple[int, int]) -> Box:
        sx, sy = self.scaled[0] / src[0], self.scaled[1] / src[1]
        ox, oy = self.origin
        eps = 1e-6  # 1500 * (383 / 1500) is 383.00000000000006: not a pixel more
        return (
            ox + math.floor(box[0] * sx + eps),
            oy + math.floor(box[1] * sy + eps),
            ox + math.ceil(box[2] * sx - eps),
            oy + math.ceil(box[3] * sy - eps),
        )


def _window(n: int, size: int, lo: float, hi: float, centre: float) -> int:
    """Start of the output window on one axis of the scaled image (length n): [lo, hi] stays inside it, the
    centre as central as allowed; when the image is shorter than the output it stays wholly inside."""
    if n >= size:
        a, b = max(0, math.ceil(hi) - size), min(n - size, math.floor(lo))
        if math.ceil(hi) - math.floor(lo) > size + 1:  # the subject is larger than the frame: centre on it
            a, b = 0, n - size
        elif a > b:  # rounding ate the slack: stay inside the image
            a = b = min(max(0, a), n - size)
    else:
        a, b = n - size, 0
    return int(min(max(round(centre - size / 2), a), b))


def frame_subject(src: tuple[int, int], size: tuple[int, int], subject: Box, margin: float) -> Framing:
    """Crop framing: cover scale (the frame is always filled), the window keeping the subject plus margin whole
    where it fits and centred on the subject where it does not."""
    (w, h), (tw, th) = src, size
    m = margin * min(tw, th)
    s = max(tw / w, th / h)
    sw, sh = max(tw, round(w * s)), max(th, round(h * s))
    sx, sy = sw / w, sh / h
    # Subject +- margin in scaled px, clipped to the image: no margin is owed beyond the photo's edge.
    x0, x1 = max(0.0, subject[0] * sx - m), min(float(sw), subject[2] * sx + m)
    y0, y1 = max(0.0, subject[1] * sy - m), min(float(sh), subject[3] * sy + m)
    ox = _window(sw, tw, x0, x1, (subject[0] + subject[2]) / 2 * sx)
    oy = _window(sh, th, y0, y1, (subject[1] + subject[3]) / 2 * sy)
    return Framing((sw, sh), (-ox, -oy))


def frame_fit(src: tuple[int, int], size: tuple[int, int]) -> Framing:
    s = min(size[0] / src[0], size[1] / src[1])
    sw, sh = min(size[0], max(1, round(src[0] * s))), min(size[1], max(1, round(src[1] * s)))
    return Framing((sw, sh), ((size[0] - sw) // 2, (size[1] - sh) // 2))


def scaled_view(image: Image.Image, f: Framing, size: tuple[int, int]) -> tuple[Image.Image, tuple[int, int]]:
    """The visible part of the scaled input and where it goes. Resamples only that part (2-3x faster for tall
    crops): Pillow's box resize keeps the whole image's filter support, so it matches scaling the whole image and
    cropping up to rounding (a level or two on ~0.01% of pixels)."""
    x0, y0, x1, y1 = f.placed_box()
    vx0, vy0, vx1, vy1 = max(0, x0), max(0, y0), min(size[0], x1), min(size[1], y1)
    if (vx0, vy0, vx1, vy1) == (x0, y0, x1, y1) and f.scaled == image.size:
        return image, (x0, y0)
    sx, sy = image.width / f.scaled[0], image.height / f.scaled[1]
    src_box = ((vx0 - x0) * sx, (vy0 - y0) * sy, (vx1 - x0) * sx, (vy1 - y0) * sy)
    return image.resize((vx1 - vx0, vy1 - vy0), Image.LANCZOS, box=src_box), (vx0, vy0)


def with_fill(image: Image.Image, f: Framing, size: tuple[int, int], fill: str, color: str) -> Image.Image:
    """The framed input over a backdrop for whatever it does not cover (blur, colour or classical mirror)."""
    view, at = scaled_view(image, f, size)
    if f.covers(size):
        return view
    if fill == "mirror":
        from zhike.backends.classical import mirror_fill

        canvas = Image.new("RGB", size)
        canvas.paste(view, at)
        known = Image.new("L", size, 0)
        known.paste(255, (*at, at[0] + view.width, at[1] + view.height))
        canvas = mirror_fill(canvas, known)
    else:
        canvas = backdrop(image, size, fill, color)
    canvas.paste(view, at)  # the input's pixels, exactly, over their own place
    return canvas


def extend(
    ctx: RunContext,
    p: ResizeDesignParams,
    image: Image.Image,
    f: Framing,
    size: tuple[int, int],
    step0: int,
    total: int,
) -> tuple[Image.Image, str]:
    """Outpaint around the contained input (the outpaint op's machinery), then paste the input back exactly."""
    from zhike.backends.classical import mirror_fill

    view, at = scaled_view(image, f, size)
    if f.covers(size):
        return view, "resize"
    canvas = Image.new("RGB", size)
    canvas.paste(view, at)
    known = Image.new("L", size, 0)
    known.paste(255, (*at, at[0] + view.width, at[1] + view.height))
    prefill = mirror_fill(canvas, known)
    if p.method == "classical":
        out, method = prefill, "extend:classical-mirror"
    else:
        assert p.model is not None
        native = native_side(ctx.models.catalog.get(p.model, field="params.model").family)
        work = fit_to(*size, min(native, max(size)))
        _, generated = run_diffusion(
            ctx,
            p,
            mode="inpaint",
            init_image=prefill.resize(work, Image.LANCZOS),
            mask=known.point(lambda v: 255 - v).resize(work, Image.NEAREST),
            strength=p.strength,
            width=work[0],
            height=work[1],
            step_offset=step0,
            total_override=total,
            save=False,
        )
        out, method = generated[0].resize(size, Image.LANCZOS), f"extend:diffusion:{p.model}"
    out.paste(view, at)
    return out, method


@operation(
    "resize_design",
    lane="cpu",
    lane_for=fill_lane("cpu"),  # an extend with a diffusion fill: gpu
    version=1,
    params=ResizeDesignParams,
    result=ResizeDesignResult,
    prepare=prepare_resize_design,
    title={"en": "Resize for marketplaces", "zh": "设计尺寸变换"},
    tags=("image", "edit", "commerce"),
    studio=Studio(
        tool=True,
        order=5,
        help=(
            "一键生成淘宝、抖音、小红书等平台尺寸，主体保持完整。",
            "Make Taobao, Douyin, Xiaohongshu... sizes in one go, keeping the subject whole.",
        ),
    ),
    cli=Cli(aliases=("resize",)),
)
def resize_design(ctx: RunContext, p: ResizeDesignParams) -> ResizeDesignResult:
    """Make marketplace sizes (Taobao, Douyin, Xiaohongshu...) of one image, keeping the subject whole."""
    t0 = time.perf_counter()
    per_size = p.steps if p.mode == "extend" and p.method == "diffusion" else 1
    total = len(p.sizes) * per_size
    ctx.progress(0, total)
    loaded = ctx.load_image(p.image, field="params.image")
    # Only crop frames by the subject: fit and extend show the whole image, so they skip the matting net (~2 s).
    subject: Box | None = None
    found_by = "none"
    if p.mode == "crop":
        # A design's own transparency is its subject; without a matting model, OpenCV saliency.
        subject, found_by = find_subject(ctx.models, loaded, p.matting_model)
    image = flatten(loaded, p.fill_color)
    result = ResizeDesignResult(
        images=[],
        model=p.model if per_size > 1 else None,
        outputs=[],
        subject_box=list(subject) if subject else None,
        subject_source=found_by,
        timings={"subject": round(time.perf_counter() - t0, 4)},
    )
    params = p.model_dump(mode="json", exclude={"seed"})
    for i, size_id in enumerate(p.sizes):
        key = f"{i:02d}-{size_id}"
        resumed = ctx.restage(key)  # made by an earlier attempt of this job
        if resumed is not None:
            ctx.staged.append(resumed[0])
            result.images.append(ImageOut.model_validate(resumed[1]["image"]))
            result.outputs.append(SizeOut.model_validate(resumed[1]["output"]))
            ctx.progress((i + 1) * per_size, total)
            continue
        t = time.perf_counter()
        size = size_of(size_id)
        seed = None
        if subject is not None:
            f = frame_subject(image.size, size, subject, p.margin)
            out, method = scaled_view(image, f, size)[0], "crop"  # cover scale: the view is the whole frame
        elif p.mode == "fit":
            f = frame_fit(image.size, size)
            out = with_fill(image, f, size, p.fill, p.fill_color)
            method = "resize" if f.covers(size) else f"fit-{p.fill}"
        else:
            f = frame_fit(image.size, size)
            out, method = extend(ctx, p, image, f, size, i * per_size, total)
            seed = p.seed if method.startswith("extend:diffusion") else None
        aid = ctx.save_image(
            out,
            params=params,
            seed=seed,
            model=p.model if seed is not None else None,
            parent_id=p.image,
            tags=["resize_design", size_id],
        )
        result.images.append(ImageOut(asset_id=aid, seed=seed, width=size[0], height=size[1]))
        preset = SIZE_PRESETS.get(size_id)
        result.outputs.append(
            SizeOut(
                size=size_id,
                label=f"{preset.zh} {preset.en}" if preset else size_id,
                width=size[0],
                height=size[1],
                method=method,
                subject_box=list(f.map_box(subject, image.size)) if subject else None,
                placed_box=list(f.placed_box()),
                asset_id=aid,
                seconds=round(time.perf_counter() - t, 4),
            )
        )
        ctx.record_staged(  # a checkpoint names a stored file: wait for this one's
            key,
            ctx.staged_output(aid),
            image=result.images[-1].model_dump(mode="json"),
            output=result.outputs[-1].model_dump(mode="json"),
        )
        ctx.progress((i + 1) * per_size, total)
    result.timings["total"] = round(time.perf_counter() - t0, 4)
    return result
