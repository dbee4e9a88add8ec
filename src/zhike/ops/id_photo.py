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
from zhike.core.types import AssetId, ImageOut, ImagesResult
from zhike.core.ui import Studio, ui

if TYPE_CHECKING:
    from PIL import Image

    from zhike.models.manager import ModelManager

MM_PER_INCH = 25.4
MAX_SIDE = 3000  # larger inputs are shrunk first: a head needs at most ~600 px and matting costs grow with size


@dataclass(frozen=True)
class IdStandard:
    """A photo standard. Fractions are of the photo's height; `head` is crown (top of hair) to chin."""

    title: str
    width_mm: float
    height_mm: float
    head: tuple[float, float]  # allowed head height (min, max)
    head_target: float
    top: tuple[float, float]  # allowed gap crown -> top edge (min, max)
    top_target: float
    eyes: tuple[float, float] | None = None  # allowed eye line, measured from the bottom edge
    source: str = ""

    def size_px(self, dpi: int) -> tuple[int, int]:
        return round(self.width_mm * dpi / MM_PER_INCH), round(self.height_mm * dpi / MM_PER_INCH)


# The Chinese 寸 sizes have no official head rule; "头部约占照片 2/3" is the folk rule (the ID card standard
# GA 461-2004 and the driving-licence rule say so), studios and tools (e.g. HivisionIDPhotos' 10-12 % top gap)
# frame a little looser. We use 0.55-0.65 (target 0.60) with a 10 % top gap for them.
_COMMON = "common studio framing (head ~0.55-0.65 of the height, ~10 % above the hair); no official rule"
STANDARDS: dict[str, IdStandard] = {
    "1inch": IdStandard("1寸 25×35 mm", 25, 35, (0.55, 0.65), 0.60, (0.07, 0.13), 0.10, source=_COMMON),
    "2inch": IdStandard("2寸 35×49 mm", 35, 49, (0.55, 0.65), 0.60, (0.07, 0.13), 0.10, source=_COMMON),
    "small1inch": IdStandard(
        "小一寸 22×32 mm",
        22,
        32,
        (0.58, 0.70),
        0.64,
        (0.06, 0.12),
        0.09,
        source="driving-licence photo (22×32 mm): head about 2/3 of the height (公安部 驾驶证 相片要求)",
    ),
    "big1inch": IdStandard("大一寸 33×48 mm", 33, 48, (0.55, 0.65), 0.60, (0.07, 0.13), 0.10, source=_COMMON),
    "passport_cn": IdStandard(
        "中国护照 33×48 mm",
        33,
        48,
        (28 / 48, 33 / 48),  # head 28-33 mm
        30.5 / 48,
        (3 / 48, 5 / 48),  # crown 3-5 mm below the top edge
        4 / 48,
        source="《出入境证件相片照相指引》 (exit-entry photo guide): 33×48 mm, head 28-33 mm (chin to crown), "
        "head width 15-22 mm, crown 3-5 mm from the top, chin at least 7 mm above the bottom",
    ),
    "visa_us": IdStandard(
        "US visa 2×2 in",
        50.8,
        50.8,
        (0.50, 0.69),  # head 1 - 1 3/8 in
        0.60,
        (0.05, 0.12),
        0.08,
        eyes=(0.56, 0.69),  # eyes 1 1/8 - 1 3/8 in from the bottom
        source="travel.state.gov photo requirements: 2×2 in, head 1-1 3/8 in (50-69 %) chin to top of hair, "
        "eyes 1 1/8-1 3/8 in (56-69 %) from the bottom",
    ),
    "custom": IdStandard("custom", 0, 0, (0.55, 0.65), 0.60, (0.07, 0.13), 0.10, source=_COMMON),
}
BACKGROUNDS = {
    "white": "#FFFFFF",
    "blue": "#438EDB",  # the 证件照 blue of most studio tools, RGB 67,142,219
    "red": "#FF0000",  # the red usually quoted for 红底 (RGB 255,0,0)
}
SHEET_INCHES = (6, 4)  # 6-inch print (6×4 in, 152×102 mm)
SHEET_MARGIN_MM, SHEET_GAP_MM = 2.0, 1.0  # printers' safe border, room to cut between copies
CUT_LINE = (170, 170, 170)
UPSCALE_WARN = 1.5  # more than this many output pixels per input pixel looks soft in print

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


def hex_rgb(color: str) -> tuple[int, int, int]:
    h = BACKGROUNDS.get(color, color).lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


@dataclass(frozen=True)
class Placement:
    """Upright-frame geometry -> photo: x' = scale * x + tx, y' = scale * y + ty."""

    scale: float
    tx: float
    ty: float


def place_head(
    std: IdStandard, size: tuple[int, int], crown_y: float, chin_y: float, eye: tuple[float, float]
) -> Placement:
    """Scale the head to the target share of the height, put the crown at the target top margin and the eye
    midpoint at the centre; where the standard bounds the eye line, shift into it (keeping the top margin
    allowed if it can be)."""
    w, h = size
    s = std.head_target * h / max(chin_y - crown_y, 1.0)
    ty = std.top_target * h - s * crown_y
    if std.eyes is not None:
        eye_up = 1 - (s * eye[1] + ty) / h  # eye line from the bottom
        lo, hi = std.eyes
        want = min(max(eye_up, lo), hi)
        if want != eye_up:
            ty -= (want - eye_up) * h
    return Placement(scale=s, tx=w / 2 - s * eye[0], ty=ty)


def affine(rotation: np.ndarray, pl: Placement) -> np.ndarray:
    """2x3 matrix: input -> (rotation) upright frame -> (placement) photo."""
    r = np.vstack([rotation, [0, 0, 1]])
    p = np.array([[pl.scale, 0, pl.tx], [0, pl.scale, pl.ty], [0, 0, 1]])
    return (p @ r)[:2]


def render(
    rgb: np.ndarray, alpha: np.ndarray, m: np.ndarray, size: tuple[int, int], bg: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Composite the person over `bg` and warp it with `m` to `size`. Returns (photo RGB uint8, its matte 0..1,
    mask of photo pixels above the input's top edge, mask of those beyond its other edges)."""
    import cv2
    from PIL import Image

    from zhike.backends.matting import composite

    w, h = size
    # Only the part of the input that lands in the photo is composited (a big input costs no more).
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ inv.T
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 4
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 4
    x0, y0 = max(0, min(x0, rgb.shape[1] - 1)), max(0, min(y0, rgb.shape[0] - 1))
    x1, y1 = max(x0 + 1, min(x1, rgb.shape[1])), max(y0 + 1, min(y1, rgb.shape[0]))
    part, a_part = np.ascontiguousarray(rgb[y0:y1, x0:x1]), np.ascontiguousarray(alpha[y0:y1, x0:x1])
    # Flattened at the input's resolution: matting.composite keeps opaque pixels exact and takes the old
    # backdrop's colour out of the hair's semi-transparent edge.
    a8 = Image.fromarray(np.round(a_part * 255).astype(np.uint8), "L")
    flat = np.asarray(composite(Image.fromarray(part), a8, background=bg))
    mc = m @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
    if scale < 0.5:  # shrink with area averaging first: a single warp at a small scale aliases
        f = scale * 2
        small = (max(1, round(flat.shape[1] * f)), max(1, round(flat.shape[0] * f)))
        flat = cv2.resize(flat, small, interpolation=cv2.INTER_AREA)
        a_part = cv2.resize(a_part, small, interpolation=cv2.INTER_AREA)
        mc = mc @ np.array([[1 / f, 0, 0], [0, 1 / f, 0], [0, 0, 1]])
    interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_LINEAR
    # Replicated borders: where the input is too tight at the sides or bottom, clothes continue to the edge
    # instead of stopping in a straight line; above the input's top edge it is background.
    out = cv2.warpAffine(flat, mc, (w, h), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    a = np.clip(cv2.warpAffine(a_part, mc, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), 0, 1)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    above = sy < -0.5
    beyond = ~above & ((sx < -0.5) | (sx > rgb.shape[1] - 0.5) | (sy > rgb.shape[0] - 0.5))
    out[above] = bg
    a[above] = 0
    return out, a, above, beyond


def sheet_layout(photo: tuple[int, int], dpi: int) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """A 6-inch print holding as many copies as fit (either orientation; landscape on a tie): the sheet size and
    the top-left corner of every copy, the grid centred."""
    pw, ph = photo
    margin, gap = round(SHEET_MARGIN_MM * dpi / MM_PER_INCH), max(2, round(SHEET_GAP_MM * dpi / MM_PER_INCH))
    best: tuple[int, tuple[int, int], int, int] | None = None
    for sw, sh in ((SHEET_INCHES[0] * dpi, SHEET_INCHES[1] * dpi), (SHEET_INCHES[1] * dpi, SHEET_INCHES[0] * dpi)):
        cols = max(0, (sw - 2 * margin + gap) // (pw + gap))
        rows = max(0, (sh - 2 * margin + gap) // (ph + gap))
        if best is None or cols * rows > best[0]:
            best = (cols * rows, (sw, sh), cols, rows)
    assert best is not None
    _, (sw, sh), cols, rows = best
    x0 = (sw - (cols * (pw + gap) - gap)) // 2
    y0 = (sh - (rows * (ph + gap) - gap)) // 2
    spots = [(x0 + c * (pw + gap), y0 + r * (ph + gap)) for r in range(rows) for c in range(cols)]
    return (sw, sh), spots


def make_sheet(photo: np.ndarray, dpi: int) -> tuple[np.ndarray, int]:
    """The print: copies on white with 1-px grey cut lines just outside each copy."""
    import cv2

    ph, pw = photo.shape[:2]
    (sw, sh), spots = sheet_layout((pw, ph), dpi)
    sheet = np.full((sh, sw, 3), 255, np.uint8)
    for x, y in spots:
        sheet[y : y + ph, x : x + pw] = photo
        cv2.rectangle(sheet, (x - 1, y - 1), (x + pw, y + ph), CUT_LINE, 1)
    return sheet, len(spots)


def _warnings(
    std: IdStandard, head: float, top: float, eyes: float, scale: float, above: np.ndarray, beyond: np.ndarray,
    alpha: np.ndarray, crown_row: int, clipped: bool, crown_from: str,
) -> list[str]:  # fmt: skip
    out = []
    if scale > UPSCALE_WARN:
        out.append(
            f"the photo is small for this size: the face is enlarged {scale:.1f}x and may print soft; "
            "use a larger photo / 照片分辨率偏低"
        )
    if clipped:
        out.append("the top of the head is cut off in the photo; use one with room above the hair / 头顶被裁切")
    elif above[: max(crown_row, 0)].any():
        out.append(
            "the photo ends close above the head; the background was extended above it / 头顶上方空间不足，已补背景"
        )
    if beyond[alpha > 0.5].any():
        out.append(
            "the photo is cut too tight at the sides or bottom; the clothes were extended to the edge "
            "/ 画面不足，已延展"
        )
    if crown_from != "matte" and not clipped:
        out.append("the top of the head could not be found in the matte; it was estimated / 头顶位置为估计")
    lo, hi = std.head
    if not lo - 1e-3 <= head <= hi + 1e-3:
        out.append(f"head height {head:.2f} of the photo is outside the standard's {lo:.2f}-{hi:.2f}")
    if not std.top[0] - 1e-3 <= top <= std.top[1] + 1e-3:
        out.append(f"the gap above the head ({top:.2f}) is outside the standard's {std.top[0]:.2f}-{std.top[1]:.2f}")
    if std.eyes and not std.eyes[0] - 1e-3 <= eyes <= std.eyes[1] + 1e-3:
        out.append(f"the eye line ({eyes:.2f} from the bottom) is outside {std.eyes[0]:.2f}-{std.eyes[1]:.2f}")
    return out


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
    warnings: list[str]
    timings: dict[str, float]


def compose_id_photo(
    models: ModelManager, image: Image.Image, p: IdPhotoParams, *, alpha: np.ndarray | None = None
) -> IdPhoto:
    """Detect the face, level it, matte the person, place the head by the standard and composite.

    `alpha`: the person matte (0..1, the image's size) when the caller has it already (same photo, other size or
    colour); otherwise backends.matting makes it."""
    import cv2
    from PIL import Image, ImageOps

    from zhike.backends.face import crown_from_alpha, face_landmarks, person_alpha, use_face_mesh
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
            alpha = cv2.resize(alpha.astype(np.float32), source.size, interpolation=cv2.INTER_AREA)
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
    rot = cv2.getRotationMatrix2D(face.eye_mid, angle, 1.0)
    up = face.transformed(rot)
    if angle:
        w, h = image.size
        alpha_up = cv2.warpAffine(alpha, rot, (w, h), flags=cv2.INTER_LINEAR)
        valid = cv2.warpAffine(np.ones((h, w), np.float32), rot, (w, h), flags=cv2.INTER_NEAREST)
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
    warnings = _warnings(
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
        warnings=warnings,
        timings={
            "face": round(t_face - t0, 4),
            "matte": round(t_matte - t_face, 4),
            "layout": round(time.perf_counter() - t_matte, 4),
        },
    )


@operation(
    "id_photo",
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
    t_save = time.perf_counter()
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
        timings={**made.timings, "save": round(time.perf_counter() - t_save, 4)},
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
