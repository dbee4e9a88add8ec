"""product_photos (批量主图): up to 200 product photos -> cutout -> a new background (white, a colour, a gradient, a
scene image or a generated scene) -> a soft contact shadow -> marketplace sizes, the product centred by its alpha
box with a margin. One asset per photo and size, named after the photo (the ZIP: /api/v1/jobs/{id}/archive).

A photo that cannot be used (damaged, too small, nothing found by the cutout) is listed in `problems` with a code
and a zh/en sentence; the others go on. Each finished output is staged at once and checkpointed in the job's work
folder under `pNNN-SIZE` (a problem under `pNNN`): a retry after a crashed worker redoes only what is missing. A
generated scene is made once per job (kept in the work folder). `made.log` there gets one line per photo actually
processed (append-only), to show nothing ran twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from typing import Annotated, Any, Literal

from PIL import Image
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput, JobCancelled, NotFound, ZhikeError
from zhike.core.registry import operation
from zhike.core.rows import StagedAsset
from zhike.core.types import AssetId, ImageOut, ImagesResult, note
from zhike.core.ui import Cli, ui
from zhike.ops.placement import NO_MATTING, pick_matting
from zhike.ops.resize_design import normalize_size, size_of

log = logging.getLogger("zhike.product_photos")

MAX_PHOTOS = 200
MIN_PHOTO_SIDE = 64  # px: below this a marketplace image would be a blur
MIN_PRODUCT_SIDE = 16  # px of the cut-out product on its short side
WORK_SIDE = 2048  # photos are cut out at most this large: every preset is smaller, and 12 MP mattes are slow
HEX = r"^#[0-9a-fA-F]{6}$"

# code -> (zh, en): a problem with one photo, shown in the user's language.
PROBLEMS: dict[str, tuple[str, str]] = {
    "photo_missing": ("图片不存在或已删除", "the photo is not in your library (deleted?)"),
    "photo_damaged": ("图片已损坏，无法读取", "the photo is damaged and cannot be read"),
    "photo_too_small": (
        f"图片太小（短边至少 {MIN_PHOTO_SIDE} 像素）",
        f"the photo is too small (at least {MIN_PHOTO_SIDE} px on its short side)",
    ),
    "photo_no_product": (
        "没有找到商品主体：请用主体清晰的照片",
        "no product found: use a photo with one clear product",
    ),
    "photo_failed": ("处理失败（内部错误）", "processing failed (internal error)"),
}


class Unusable(Exception):
    """A photo that cannot be used; `code` is one of PROBLEMS."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


SizeId = Annotated[str, AfterValidator(normalize_size)]
Colour = Annotated[str, Field(pattern=HEX)]
Background = Literal["white", "color", "gradient", "image", "generate", "transparent"]


class ProductPhotosParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    photos: list[AssetId] = Field(
        ...,
        min_length=1,
        max_length=MAX_PHOTOS,
        description=f"Product photos (asset ids), up to {MAX_PHOTOS}; outputs and ZIP files are named after them",
        json_schema_extra=ui("商品图", "Product photos"),
    )
    sizes: list[SizeId] = Field(
        ["taobao"],  # a plain default (pydantic copies it): the schema shows it, so forms tick it
        min_length=1,
        max_length=8,
        description="Presets (taobao, jd, douyin, xiaohongshu, banner, wechat_cover) or WxH; one output each",
        json_schema_extra=ui("输出尺寸", "Sizes", widget="sizes", cli_flag="--size"),
    )
    background: Background = Field(
        "white",
        description="white; color (`color`); gradient (`gradient`, `gradient_angle`); image (`scene_image`, "
        "cover-cropped); generate (`scene_prompt`, needs an image model; made once per job); transparent (PNG)",
        json_schema_extra=ui(
            "背景",
            "Background",
            choices={
                "white": ("白底", "White"),
                "color": ("纯色", "Colour"),
                "gradient": ("渐变", "Gradient"),
                "image": ("场景图", "Scene image"),
                "generate": ("AI 生成场景", "Generated scene"),
                "transparent": ("透明", "Transparent"),
            },
        ),
    )
    color: Colour = Field(
        "#ffffff",
        description="background=color: the colour",
        json_schema_extra=ui("背景颜色", "Background colour", widget="colour"),
    )
    gradient: list[Colour] = Field(
        ["#ffffff", "#e6ecf3"],
        min_length=2,
        max_length=4,
        description="background=gradient: its colours, first to last",
        json_schema_extra=ui("渐变颜色", "Gradient colours"),
    )
    gradient_angle: int = Field(
        90,
        ge=0,
        le=360,
        description="background=gradient: direction in degrees (0: left to right, 90: top to bottom)",
        json_schema_extra=ui("渐变角度", "Gradient angle", widget="slider"),
    )
    scene_image: AssetId | None = Field(
        None,
        description="background=image: the scene behind the product (cover-cropped to each size)",
        json_schema_extra=ui("场景图", "Scene image"),
    )
    scene_prompt: str = Field(
        "",
        max_length=500,
        description="background=generate: what the scene shows",
        json_schema_extra=ui("场景描述", "Scene prompt", widget="textarea"),
    )
    margin: float = Field(
        0.08,
        ge=0.0,
        le=0.4,
        description="Room around the product, a share of the short side on every edge",
        json_schema_extra=ui("边距", "Margin", widget="slider", step=0.01),
    )
    shadow: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Contact shadow strength under the product; 0: none",
        json_schema_extra=ui("投影强度", "Shadow", widget="slider", step=0.05),
    )
    matting_model: str | None = Field(
        None,
        max_length=200,
        description="The matting model; empty: isnet-medium if installed",
        json_schema_extra=ui("抠图模型", "Matting model", widget="model", model_kind="matting", group="more"),
    )
    model: str | None = Field(
        None,
        max_length=200,
        description="background=generate: the checkpoint; default: the first installed",
        json_schema_extra=ui("模型", "Model", widget="model", model_kind="checkpoint", group="more"),
    )
    seed: int | None = Field(
        None,
        ge=-1,
        le=2**32 - 1,
        description="background=generate: the scene's seed",
        json_schema_extra=ui("随机种子", "Seed", widget="seed", group="more"),
    )
    steps: int = Field(
        20, ge=1, le=60, description="background=generate", json_schema_extra=ui("步数", "Steps", group="more")
    )

    @field_validator("seed")
    @classmethod
    def _random_is_none(cls, v: int | None) -> int | None:
        return None if v == -1 else v

    @field_validator("color", "gradient")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return [c.lower() for c in v] if isinstance(v, list) else v.lower()

    @model_validator(mode="after")
    def _check(self) -> ProductPhotosParams:
        if len(self.sizes) != len(set(self.sizes)):
            raise ValueError("sizes: each size once")
        return self


class PhotoOut(BaseModel):
    index: int = Field(..., description="0-based position in `photos`")
    photo: str = Field(..., description="The photo's asset id")
    name: str | None = Field(None, description="The photo's name (its file name without extension)")
    size: str
    width: int
    height: int
    asset_id: str


class PhotoProblem(BaseModel):
    index: int
    photo: str
    name: str | None = None
    code: str = Field(..., description=", ".join(PROBLEMS))
    message: dict[str, str] = Field(..., description="The problem in words: {zh, en}")


class ProductPhotosResult(ImagesResult):
    sizes: list[str]
    photos: int
    photos_ok: int
    photos_failed: int
    photos_resumed: int = Field(0, description="Photos an earlier attempt of this job had finished (reused)")
    outputs: list[PhotoOut]
    problems: list[PhotoProblem]


def problem(index: int, photo: str, name: str | None, code: str) -> PhotoProblem:
    zh, en = PROBLEMS.get(code, PROBLEMS["photo_failed"])
    return PhotoProblem(index=index, photo=photo, name=name, code=code, message={"zh": zh, "en": en})


def _missing(name: str, background: str) -> InvalidInput:
    """A field the chosen background needs, left empty: said like any required field ("场景图：必填")."""
    return InvalidInput(
        f"background {background!r} needs {name}", code="validation_failed", kind="missing", field=f"params.{name}"
    )


def prepare_product_photos(env: PrepareEnv, p: ProductPhotosParams) -> ProductPhotosParams:
    """Pin the matting model (and for a generated scene the image model and seed); check the scene image."""
    matting = pick_matting(env.catalog, p.matting_model, field="params.matting_model")
    if matting is None:
        raise InvalidInput(NO_MATTING, code="no_matting_model", field="params.matting_model")
    updates: dict[str, Any] = {"matting_model": matting}
    if p.background == "image":
        if p.scene_image is None:
            raise _missing("scene_image", "image")
        env.assets.get(p.scene_image, owner_id=env.owner_id, field="params.scene_image")
    if p.background == "generate":
        if not p.scene_prompt.strip():
            raise _missing("scene_prompt", "generate")
        if p.model:
            spec = env.catalog.get(p.model, field="params.model")
            if spec.kind != "checkpoint":
                raise InvalidInput(
                    f"{p.model!r} is a {spec.kind}, not an image model",
                    field="params.model",
                    code="model_wrong_kind",
                    ctx={"name": p.model, "kind": spec.kind, "expected": "checkpoint"},
                )
        else:  # none installed: 422 no_image_model, before anything is queued
            updates["model"] = env.catalog.default_checkpoint(field="params.model").name
        updates["seed"] = p.seed if p.seed is not None else secrets.randbelow(2**31)
    return p.model_copy(update=updates)


def _colour(hex_: str) -> tuple[int, int, int]:
    return int(hex_[1:3], 16), int(hex_[3:5], 16), int(hex_[5:7], 16)


class _Backgrounds:
    """The backdrop for each output size (None: transparent); a scene is loaded or generated once per job."""

    def __init__(self, ctx: RunContext, p: ProductPhotosParams) -> None:
        self.ctx, self.p = ctx, p
        self.scene: Image.Image | None = None

    def __call__(self, size: tuple[int, int]) -> Image.Image | None:
        from zhike.imaging.product_photo import cover_fit, gradient

        p = self.p
        if p.background == "transparent":
            return None
        if p.background in ("white", "color"):
            return Image.new("RGB", size, "#ffffff" if p.background == "white" else p.color)
        if p.background == "gradient":
            return gradient(size, [_colour(c) for c in p.gradient], p.gradient_angle)
        if self.scene is None:
            self.scene = self._scene(size)
        return cover_fit(self.scene, size)

    def _scene(self, size: tuple[int, int]) -> Image.Image:
        p, ctx = self.p, self.ctx
        if p.background == "image":
            assert p.scene_image is not None
            return ctx.load_image(p.scene_image, field="params.scene_image").convert("RGB")
        kept = ctx.work.dir / "scene.png"  # generated by an earlier attempt of this job: the same scene
        if kept.is_file():
            with Image.open(kept) as im:
                return im.convert("RGB")
        scene = self._generate(size)
        tmp = kept.with_name(".scene.png")
        scene.save(tmp, "PNG")
        os.replace(tmp, kept)
        return scene

    def _generate(self, size: tuple[int, int]) -> Image.Image:
        from zhike.backends import diffusion
        from zhike.ops.diffusion_common import generate, native_side
        from zhike.ops.masking import fit_to

        p, ctx = self.p, self.ctx
        assert p.model is not None and p.seed is not None  # pinned by prepare
        native = native_side(ctx.models.catalog.get(p.model, field="params.model").family)
        w, h = fit_to(*size, native)
        with ctx.models.use_named(p.model, kind="checkpoint") as loaded:
            req = diffusion.DiffusionRequest(
                mode="txt2img",
                prompt=p.scene_prompt,
                negative_prompt="product, object, text, watermark",  # an empty stage for the product
                width=w,
                height=h,
                steps=p.steps,
                guidance=7.0,
                seed=p.seed,
                scheduler="DPM++ 2M Karras",
                batch_size=1,
                clip_skip=1,
                on_step=lambda i, n, preview: ctx.progress(0, len(p.photos)),  # cancel stops the steps too
            )
            return generate(ctx, loaded, req).images[0]  # screened: a flagged scene fails the job


def _cut(ctx: RunContext, p: ProductPhotosParams, photo: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The photo cut out (RGBA, edge colours without the old backdrop) cropped to its alpha, and the solid box in
    it. Raises Unusable("photo_no_product") when the cutout finds nothing usable."""
    import numpy as np

    from zhike.backends.alpha import composite
    from zhike.imaging.product_photo import solid_box
    from zhike.ops.placement import box_of, matte

    alpha = matte(ctx.models, photo, "product", model=p.matting_model, refine=False)
    outer = box_of(alpha > 0)
    solid = solid_box(alpha)
    if outer is None or solid is None or min(solid[2] - solid[0], solid[3] - solid[1]) < MIN_PRODUCT_SIDE:
        raise Unusable("photo_no_product")
    x0, y0, x1, y1 = outer
    rgb, a = photo.convert("RGB").crop(outer), Image.fromarray(np.ascontiguousarray(alpha[y0:y1, x0:x1]))
    cut = composite(rgb, a, background=None)
    return cut, (solid[0] - x0, solid[1] - y0, solid[2] - x0, solid[3] - y0)


def _name(ctx: RunContext, photo: str) -> str | None:
    """The photo's name (its file name without extension), or None when it is gone."""
    try:
        return ctx.assets.get(photo, owner_id=ctx.owner_id).name
    except NotFound:
        return None


def _load(ctx: RunContext, photo: str) -> Image.Image:
    """The photo at most WORK_SIDE on its long side; Unusable(code) for a photo that cannot be used."""
    if not ctx.assets.exists(photo, owner_id=ctx.owner_id):
        raise Unusable("photo_missing")
    try:
        img = ctx.load_image(photo, field="params.photos")
        img.load()
    except ZhikeError as e:
        raise Unusable("photo_damaged") from e
    except (OSError, SyntaxError) as e:  # a truncated or garbled file in the store
        raise Unusable("photo_damaged") from e
    if min(img.size) < MIN_PHOTO_SIDE:
        raise Unusable("photo_too_small")
    k = WORK_SIDE / max(img.size)
    if k < 1:
        img = img.resize((round(img.width * k), round(img.height * k)), Image.Resampling.LANCZOS)
    return img


def _make(
    ctx: RunContext,
    p: ProductPhotosParams,
    i: int,
    photo: str,
    sizes: list[tuple[str, tuple[int, int]]],
    backgrounds: _Backgrounds,
    params: dict[str, Any],
) -> list[tuple[StagedAsset, PhotoOut, Image.Image]]:
    """One photo at every size, staged and checkpointed; Unusable(code) for a photo that cannot be used."""
    import numpy as np

    from zhike.imaging.product_photo import compose, contact_shadow, place

    cut, solid = _cut(ctx, p, _load(ctx, photo))
    made = []
    for size_id, size in sizes:
        layer, _ = place(cut, solid, size, p.margin)
        shadow = contact_shadow(np.asarray(layer.getchannel("A")), p.shadow) if p.shadow > 0 else None
        out = compose(backgrounds(size), layer, shadow)
        item = ctx.assets.stage_image(
            out,
            owner_id=ctx.owner_id,
            job_id=ctx.job_id,
            op=ctx.op,
            params={**params, "photo": photo, "size": size_id, "job": ctx.job_id},  # the job id: bytes of its own
            seed=p.seed if p.background == "generate" else None,
            model=p.model if p.background == "generate" else None,
            parent_id=photo,  # the output is named after the photo
            tags=["product_photos", size_id],
        )
        if ctx.prepare_export is not None:  # labelled now, while the pixels are here: the ZIP finds it ready
            ctx.prepare_export(item, out)
        item.data = None  # the bytes are in the blob store; 200 photos x sizes would fill the memory
        rec = PhotoOut(
            index=i, photo=photo, name=item.row.name, size=size_id, width=size[0], height=size[1], asset_id=item.row.id
        )
        ctx.record_staged(f"p{i:03d}-{size_id}", item, output=rec.model_dump(mode="json"))
        made.append((item, rec, out))
    return made


@operation(
    "product_photos",
    lane="cpu",  # a matting net per photo: minutes of CPU for a full batch
    version=1,
    params=ProductPhotosParams,
    result=ProductPhotosResult,
    prepare=prepare_product_photos,
    title={"en": "Batch product photos", "zh": "批量主图"},
    tags=("image", "commerce", "merchant"),
    cli=Cli(hidden=True),  # `zhike product-photos DIR` uploads a folder of photos and writes the ZIP
)
def product_photos(ctx: RunContext, p: ProductPhotosParams) -> ProductPhotosResult:
    """Main images from product photos: cutout, a new background, a contact shadow, marketplace sizes."""
    t0 = time.perf_counter()
    total = len(p.photos)
    sizes = [(s, size_of(s)) for s in p.sizes]
    result = ProductPhotosResult(
        images=[],
        model=p.model if p.background == "generate" else None,
        sizes=p.sizes,
        photos=total,
        photos_ok=0,
        photos_failed=0,
        outputs=[],
        problems=[],
    )
    backgrounds = _Backgrounds(ctx, p)
    made_log = ctx.work.dir / "made.log"
    staged: list[StagedAsset] = []
    params = p.model_dump(mode="json", exclude={"photos"})
    ctx.progress(0, total)
    for i, photo in enumerate(p.photos):
        key = f"p{i:03d}"
        name = _name(ctx, photo)
        resumed = [ctx.restage(f"{key}-{s}", keep_bytes=False) for s, _ in sizes]
        shown: Image.Image | None = None
        if all(r is not None for r in resumed):
            for r in resumed:
                assert r is not None
                staged.append(r[0])
                result.outputs.append(PhotoOut.model_validate(r[1]["output"]))
            result.photos_resumed += 1
        elif (code := ctx.work.error(key)) is not None:
            result.problems.append(problem(i, photo, name, code))
        else:
            try:
                made = _make(ctx, p, i, photo, sizes, backgrounds, params)
                for item, out, _ in made:
                    staged.append(item)
                    result.outputs.append(out)
                shown = made[0][2]
            except Unusable as e:
                ctx.work.failed(key, e.code)
                result.problems.append(problem(i, photo, name, e.code))
            except JobCancelled:
                raise
            except ZhikeError:
                raise  # a job-wide problem (the scene was withheld, no model): every photo would fail alike
            except Exception:  # one broken photo must not lose the others
                log.exception("job %s photo %d", ctx.job_id, i)
                ctx.work.failed(key, "photo_failed")
                result.problems.append(problem(i, photo, name, "photo_failed"))
            with made_log.open("a", encoding="utf-8") as f:
                f.write(f"{i} {os.getpid()}\n")
        ctx.progress(i + 1, total, (lambda im=shown: lambda: im) if shown is not None else None)
    result.outputs.sort(key=lambda o: (o.index, p.sizes.index(o.size)))
    result.images = [ImageOut(asset_id=o.asset_id, width=o.width, height=o.height) for o in result.outputs]
    result.problems.sort(key=lambda x: x.index)
    result.photos_failed = len(result.problems)
    result.photos_ok = total - result.photos_failed
    ctx.staged.extend(staged)  # committed with the job's success, in one transaction
    if result.photos_ok == 0:
        result.warn(note("no_photo_usable", "no photo could be used: see problems"))
    result.timings["total"] = round(time.perf_counter() - t0, 4)
    return result
