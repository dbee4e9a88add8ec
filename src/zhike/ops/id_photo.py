"""id_photo (证件照): a portrait -> a standard ID photo of an exact pixel size, the face centred and scaled by its
landmarks to the standard's proportions, on a plain background; optionally a printable 6-inch sheet of copies.

Geometry: the eye line is levelled (optional), the head (crown to chin) is scaled to the standard's share of the
height, the crown is put at the standard's top margin and the eye midpoint at the horizontal centre. Rotation,
scale and shift are one affine warp, so the photo is resampled once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.registry import operation
from zhike.core.types import AssetId, ImageOut, ImagesResult, Note
from zhike.core.ui import Studio, ui
from zhike.imaging.id_photo import (
    STANDARDS,
    affine,
    hex_rgb,
    invert_affine,
    layout_warnings,
    make_sheet,
    place_head,
    rotation_about,
)

if TYPE_CHECKING:
    from PIL import Image

    from zhike.models.manager import ModelManager
MAX_SIDE = 3000  # larger inputs are shrunk first: a head needs at most ~600 px and matting costs grow with size


Size = Literal["1inch", "2inch", "small1inch", "big1inch", "passport_cn", "visa_us", "custom"]
HexColor = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]


class IdPhotoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: AssetId = Field(
        ...,
        description="A portrait of one person facing the camera",
        json_schema_extra=ui("照片", "Photo", help_zh="单人正面照", canvas="image", cli_argument=True),
    )
    size: Size = Field(
        "1inch",
        description="The photo standard (custom: width × height pixels)",
        json_schema_extra=ui(
            "尺寸",
            "Size",
            choices={
                "1inch": ("一寸 25×35 mm", "1 inch 25×35 mm"),
                "2inch": ("二寸 35×49 mm", "2 inch 35×49 mm"),
                "small1inch": ("小一寸 22×32 mm", "Small 1 inch 22×32 mm"),
                "big1inch": ("大一寸 33×48 mm", "Large 1 inch 33×48 mm"),
                "passport_cn": ("中国护照 33×48 mm", "China passport 33×48 mm"),
                "visa_us": ("美国签证 2×2 英寸", "US visa 2×2 in"),
                "custom": ("自定义", "Custom"),
            },
        ),
    )
    width: int | None = Field(
        None,
        ge=64,
        le=4096,
        description="custom: width in pixels",
        json_schema_extra=ui("自定义宽度", "Custom width", group="size"),
    )
    height: int | None = Field(
        None,
        ge=64,
        le=4096,
        description="custom: height in pixels",
        json_schema_extra=ui("自定义高度", "Custom height", group="size"),
    )
    background: Literal["white", "blue", "red"] | HexColor = Field(
        "white",
        description="white, blue (#438EDB), red (#FF0000) or #RRGGBB",
        json_schema_extra=ui(
            "背景色",
            "Background",
            widget="colour",
            choices={"white": ("白色", "White"), "blue": ("蓝色", "Blue"), "red": ("红色", "Red")},
        ),
    )
    straighten: bool = Field(
        True, description="Rotate so the eyes are level", json_schema_extra=ui("自动摆正", "Straighten", group="more")
    )
    sheet: Literal["none", "6inch"] = Field(
        "none",
        description="6inch: also a 6-inch print of copies",
        json_schema_extra=ui(
            "排版冲印", "Print sheet", choices={"none": ("不排版", "None"), "6inch": ("6 寸相纸", "6-inch print sheet")}
        ),
    )
    dpi: int = Field(
        300,
        ge=72,
        le=1200,
        description="Print resolution; sets the pixel size of mm standards",
        json_schema_extra=ui("分辨率 (DPI)", "DPI", group="more"),
    )

    @model_validator(mode="after")
    def _custom_size(self) -> IdPhotoParams:
        if self.size == "custom" and (self.width is None or self.height is None):
            raise ValueError("size=custom needs width and height")
        if self.size != "custom" and (self.width is not None or self.height is not None):
            raise ValueError("width and height apply only to size=custom")
        return self


class IdPhotoResult(ImagesResult):
    size: str
    size_px: tuple[int, int] = Field(..., description="(width, height) of the photo")
    dpi: int
    background: str = Field(..., description="#RRGGBB")
    head_ratio: float = Field(..., description="crown to chin / photo height")
    head_range: tuple[float, float]
    top_margin: float = Field(..., description="top edge to crown / photo height")
    eye_line: float = Field(..., description="eye line above the bottom edge / photo height")
    eye_mid: tuple[float, float] = Field(..., description="eye midpoint in the photo, pixels")
    roll: float = Field(..., description="eye-line tilt found in the input, degrees")
    rotated: float = Field(..., description="degrees the photo was turned to level the eyes")
    crown_from: str = Field(..., description="matte: top of the hair from the person matte; estimate")
    scale: float = Field(..., description="photo pixels per input pixel")
    sheet_copies: int = 0
    sheet_px: tuple[int, int] | None = None


def prepare_id_photo(env: PrepareEnv, p: IdPhotoParams) -> IdPhotoParams:
    env.assets.get(p.image, owner_id=env.owner_id, field="params.image")  # fail at submission, not in the worker
    return p


def render(
    rgb: np.ndarray, alpha: np.ndarray, m: np.ndarray, size: tuple[int, int], bg: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Composite the person over `bg` and warp it with `m` to `size`. Returns (photo RGB uint8, its matte 0..1,
    mask of photo pixels above the input's top edge, mask of those beyond its other edges)."""
    from PIL import Image

    from zhike.backends.alpha import composite
    from zhike.backends.opencv import shrink_area, warp_affine

    w, h = size
    # Only the part of the input that lands in the photo is composited (a big input costs no more).
    inv = invert_affine(m)
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ inv.T
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 4
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 4
    x0, y0 = max(0, min(x0, rgb.shape[1] - 1)), max(0, min(y0, rgb.shape[0] - 1))
    x1, y1 = max(x0 + 1, min(x1, rgb.shape[1])), max(y0 + 1, min(y1, rgb.shape[0]))
    part, a_part = np.ascontiguousarray(rgb[y0:y1, x0:x1]), np.ascontiguousarray(alpha[y0:y1, x0:x1])
    # Flattened at the input's resolution: alpha.composite keeps opaque pixels exact and takes the old
    # backdrop's colour out of the hair's semi-transparent edge.
    a8 = Image.fromarray(np.round(a_part * 255).astype(np.uint8), "L")
    flat = np.asarray(composite(Image.fromarray(part), a8, background=bg))
    mc = m @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
    if scale < 0.5:  # shrink with area averaging first: a single warp at a small scale aliases
        f = scale * 2
        small = (max(1, round(flat.shape[1] * f)), max(1, round(flat.shape[0] * f)))
        flat = shrink_area(flat, small)
        a_part = shrink_area(a_part, small)
        mc = mc @ np.array([[1 / f, 0, 0], [0, 1 / f, 0], [0, 0, 1]])
    interp = "cubic" if scale > 1 else "linear"
    # Replicated borders: where the input is too tight at the sides or bottom, clothes continue to the edge
    # instead of stopping in a straight line; above the input's top edge it is background.
    out = warp_affine(flat, mc, (w, h), interp=interp, replicate=True)
    a = np.clip(warp_affine(a_part, mc, (w, h), interp="linear", replicate=True), 0, 1)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    above = sy < -0.5
    beyond = ~above & ((sx < -0.5) | (sx > rgb.shape[1] - 0.5) | (sy > rgb.shape[0] - 0.5))
    out[above] = bg
    a[above] = 0
    return out, a, above, beyond


@dataclass
class IdPhoto:
    """A composed ID photo and how it was laid out (what the result reports)."""

    photo: np.ndarray  # RGB uint8, the exact size
    size_px: tuple[int, int]
    head_ratio: float
    top_margin: float
    eye_line: float
    eye_mid: tuple[float, float]
    roll: float
    rotated: float
    crown_from: str
    scale: float
    warnings: list[str]  # English, for API and CLI users
    notes: list[Note]  # the same warnings, coded: the studio says them in its language
    timings: dict[str, float]


def compose_id_photo(
    models: ModelManager, image: Image.Image, p: IdPhotoParams, *, alpha: np.ndarray | None = None
) -> IdPhoto:
    """Detect the face, level it, matte the person, place the head by the standard and composite.

    `alpha`: the person matte (0..1, the image's size) when the caller has it already (same photo, other size or
    colour); otherwise backends.matting makes it."""
    from PIL import Image, ImageOps

    from zhike.backends.face import crown_from_alpha, face_landmarks, person_alpha, use_face_mesh
    from zhike.backends.opencv import shrink_area, warp_affine
    from zhike.ops.preprocess import fit_long_side

    t0 = time.perf_counter()
    if alpha is not None and alpha.shape != (image.height, image.width):
        raise ValueError(f"alpha is {alpha.shape}, the image {image.size}")
    # Phone photos are stored sideways with an EXIF rotation; a cut-out (transparent) input keeps its alpha
    # for the matte and is seen on grey by the face detector, as backends.matting does.
    source = ImageOps.exif_transpose(image) if alpha is None else image
    if max(source.size) > MAX_SIDE:
        source = fit_long_side(source, MAX_SIDE)
        if alpha is not None:
            alpha = shrink_area(alpha.astype(np.float32), source.size)
    if source.mode in ("RGBA", "LA", "PA") or "transparency" in source.info:
        rgba = source.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (128, 128, 128, 255)), rgba).convert("RGB")
    else:
        image = source.convert("RGB")
    with use_face_mesh(models) as mesh:
        face = face_landmarks(mesh, image)
    t_face = time.perf_counter()
    if alpha is None:
        alpha = person_alpha(models, source)
    alpha = np.asarray(alpha, np.float32)
    t_matte = time.perf_counter()

    # Upright frame: rotate about the eye midpoint so the eyes are level; find the crown there.
    angle = face.roll if p.straighten else 0.0
    rot = rotation_about(face.eye_mid, angle)
    up = face.transformed(rot)
    if angle:
        w, h = image.size
        alpha_up = warp_affine(alpha, rot, (w, h), interp="linear")
        valid = warp_affine(np.ones((h, w), np.float32), rot, (w, h), interp="nearest")
        up = crown_from_alpha(up, alpha_up, valid)
    else:
        up = crown_from_alpha(up, alpha)

    std = STANDARDS[p.size]
    size = (p.width, p.height) if p.size == "custom" and p.width and p.height else std.size_px(p.dpi)
    pl = place_head(std, size, up.crown[1], up.chin[1], up.eye_mid)
    photo, a, above, beyond = render(np.asarray(image), alpha, affine(rot, pl), size, hex_rgb(p.background))

    w, h = size
    head = pl.scale * (up.chin[1] - up.crown[1]) / h
    top = (pl.scale * up.crown[1] + pl.ty) / h
    eye_x, eye_y = pl.scale * up.eye_mid[0] + pl.tx, pl.scale * up.eye_mid[1] + pl.ty
    eyes = 1 - eye_y / h
    notes = layout_warnings(
        std, head, top, eyes, pl.scale, above, beyond, a, int(top * h), up.crown_clipped, up.crown_from
    )
    return IdPhoto(
        photo=photo,
        size_px=(w, h),
        head_ratio=round(head, 4),
        top_margin=round(top, 4),
        eye_line=round(eyes, 4),
        eye_mid=(round(eye_x, 1), round(eye_y, 1)),
        roll=round(face.roll, 2),
        rotated=round(angle, 2),
        crown_from=up.crown_from,
        scale=round(pl.scale, 4),
        warnings=[n.message for n in notes],
        notes=notes,
        timings={
            "face": round(t_face - t0, 4),
            "matte": round(t_matte - t_face, 4),
            "layout": round(time.perf_counter() - t_matte, 4),
        },
    )


@operation(
    "id_photo",
    lane="quick",
    version=1,
    params=IdPhotoParams,
    result=IdPhotoResult,
    prepare=prepare_id_photo,
    title={"en": "ID photo", "zh": "证件照"},
    tags=("image", "portrait"),
    studio=Studio(
        tool=True,
        order=2,
        help=(
            "用单人正面照生成标准证件照（尺寸、底色可选）。",
            "A standard ID photo from a front-facing portrait (size and background colour to choose).",
        ),
    ),
)
def id_photo(ctx: RunContext, p: IdPhotoParams) -> IdPhotoResult:
    """Make a standard ID photo (exact size, face centred and scaled, plain background) from a portrait."""
    from PIL import Image

    ctx.progress(0, 2)
    made = compose_id_photo(ctx.models, ctx.load_image(p.image, field="params.image"), p)
    ctx.progress(1, 2)
    params = p.model_dump(mode="json")

    def save(img: np.ndarray, tags: list[str]) -> ImageOut:
        aid = ctx.save_image(
            Image.fromarray(img), params=params, seed=None, model=None, parent_id=p.image, tags=tags, dpi=p.dpi
        )
        return ImageOut(asset_id=aid, width=img.shape[1], height=img.shape[0])

    images = [save(made.photo, ["id_photo", p.size])]
    copies, sheet_px = 0, None
    if p.sheet == "6inch":
        sheet, copies = make_sheet(made.photo, p.dpi)
        sheet_px = (sheet.shape[1], sheet.shape[0])
        images.append(save(sheet, ["id_photo", p.size, "sheet"]))
    ctx.progress(2, 2)
    std = STANDARDS[p.size]
    return IdPhotoResult(
        images=images,
        warnings=made.warnings,
        notes=made.notes,
        timings=made.timings,  # storing is the worker's (the job's timings: store)
        size=p.size,
        size_px=made.size_px,
        dpi=p.dpi,
        background="#{:02X}{:02X}{:02X}".format(*hex_rgb(p.background)),
        head_ratio=made.head_ratio,
        head_range=std.head,
        top_margin=made.top_margin,
        eye_line=made.eye_line,
        eye_mid=made.eye_mid,
        roll=made.roll,
        rotated=made.rotated,
        crown_from=made.crown_from,
        scale=made.scale,
        sheet_copies=copies,
        sheet_px=sheet_px,
    )
