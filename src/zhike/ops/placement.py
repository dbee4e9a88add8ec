"""Where a subject is and where it goes: cut-outs, subject boxes (matte, then saliency), anchors and fills.

Shared by subject_swap (a product placed in a scene) and resize_design (marketplace sizes that keep the subject).
OpenCV's parts are backends.opencv's, imported inside the functions: importing an op module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageFilter

from zhike.core.errors import InvalidInput, ModelError
from zhike.models.embedded import PREFERRED_MATTING

if TYPE_CHECKING:
    from zhike.core.specs import Catalog
    from zhike.models.manager import ModelManager

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive)
Anchor = Literal[
    "auto",
    "center",
    "bottom-center",
    "top-center",
    "left",
    "right",
    "bottom-left",
    "bottom-right",
    "top-left",
    "top-right",
]


def with_alpha(image: Image.Image) -> Image.Image:
    """Palette images with a transparent colour as RGBA, so their transparency reads like any other."""
    return image.convert("RGBA") if image.mode == "P" and "transparency" in image.info else image


def has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA") and int(np.asarray(image.getchannel("A")).min()) < 255


def flatten(image: Image.Image, color: str) -> Image.Image:
    """RGB; transparent areas become `color` (not whatever hidden colour the file stored there)."""
    image = with_alpha(image)
    if not has_transparency(image):
        return image.convert("RGB")
    base = Image.new("RGBA", image.size, color)
    return Image.alpha_composite(base, image.convert("RGBA")).convert("RGB")


def clean_alpha(alpha: Image.Image | np.ndarray, min_part: float = 0.05, level: int = 128) -> np.ndarray:
    """The matte without specks: parts (alpha >= level) of at least `min_part` of the largest, with their soft rim.

    Matting models leave faint haze and small blobs far from the subject; they would inflate its box.
    """
    from zhike.backends.opencv import connected_parts, dilate_square

    a = np.asarray(alpha.convert("L") if isinstance(alpha, Image.Image) else alpha, dtype=np.uint8)
    labels, areas = connected_parts(a >= level)
    if len(areas) == 0:
        return np.zeros_like(a)
    keep = np.isin(labels, 1 + np.nonzero(areas >= areas.max() * min_part)[0])
    near = dilate_square(keep, max(2, round(0.01 * max(a.shape))))
    return np.where(near, a, 0).astype(np.uint8)


def box_of(mask: np.ndarray) -> Box | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def pick_matting(catalog: Catalog, requested: str | None, *, field: str) -> str | None:
    """The matting model to pin at submission: the one asked for (checked), else the best installed, else None."""
    if requested:
        spec = catalog.get(requested, field=field)
        if spec.kind != "matting":
            raise InvalidInput(
                f"{requested!r} is a {spec.kind} model, not a matting model",
                field=field,
                code="model_wrong_kind",
                ctx={"name": requested, "kind": spec.kind, "expected": "matting"},
            )
        return requested
    installed = {s.name for s in catalog.list() if s.kind == "matting"}
    return next((n for n in PREFERRED_MATTING if n in installed), min(installed, default=None))


NO_MATTING = (
    "no matting model is installed to cut the subject out: run `zhike models fetch-embedded` (ISNet), or upload a PNG "
    "with a transparent background"
)


def matte(
    models: ModelManager,
    image: Image.Image,
    mode: str,
    *,
    model: str | None,
    level: int = 128,
    min_part: float = 0.05,
    refine: bool = True,
) -> np.ndarray:
    """Cleaned alpha (uint8, 255 = subject): the image's own transparency if it has any, else the matting model.

    Raises ModelError when a matte is needed and `model` is None (none installed)."""
    image = with_alpha(image)
    if has_transparency(image):
        alpha: Image.Image = image.getchannel("A")
    else:
        if model is None:
            raise ModelError(NO_MATTING, code="no_matting_model", field="params.matting_model")
        from zhike.backends.matting import alpha_matte

        alpha = alpha_matte(models, image.convert("RGB"), mode=mode, model=model, refine=refine)
    return clean_alpha(alpha, min_part=min_part, level=level)


def cutout(
    models: ModelManager, image: Image.Image, *, model: str | None, field: str
) -> tuple[Image.Image, Image.Image, Box]:
    """(RGB crop, alpha crop, box in the photo) of the product: a PNG's own alpha, else the product matte.

    No guided-filter refinement: products have firm edges, and on a textured backdrop (wood, fabric) the filter
    pulls the backdrop's grain into the edge as streaks; the net's smooth edge looks cleaner in a new scene.
    """
    alpha = matte(models, image, "product", model=model, refine=False)
    box = box_of(alpha > 0)
    if box is None or (box[2] - box[0]) * (box[3] - box[1]) < 16:
        raise InvalidInput(
            "no product found in the photo: use a photo with one clear product, or a PNG with a transparent background",
            field=field,
        )
    return image.convert("RGB").crop(box), Image.fromarray(alpha).crop(box), box


def saliency_box(image: Image.Image) -> Box:
    """The most salient region (OpenCV spectral residual), for when the matte finds nothing."""
    from zhike.backends.opencv import salient_mask

    w, h = image.size
    k = 256 / max(w, h)
    small = np.asarray(image.convert("RGB").resize((max(8, round(w * k)), max(8, round(h * k))), Image.BILINEAR))
    hard = salient_mask(small)
    box = box_of(clean_alpha(hard, min_part=0.2) >= 128) if hard is not None else None
    if box is None:  # nothing stands out: the central half
        return w // 4, h // 4, w - w // 4, h - h // 4
    sx, sy = w / small.shape[1], h / small.shape[0]
    x0, y0, x1, y1 = box
    return int(x0 * sx), int(y0 * sy), min(w, int(np.ceil(x1 * sx))), min(h, int(np.ceil(y1 * sy)))


def find_subject(models: ModelManager, image: Image.Image, model: str | None) -> tuple[Box, str]:
    """The subject's box and what found it: "matte" (ISNet) or "saliency" when no matte or an empty one."""
    w, h = image.size
    k = min(1.0, 1024 / max(w, h))  # the net sees 1024 px anyway; a box needs no full-resolution edge refinement
    small = image if k == 1 else with_alpha(image).resize((max(1, round(w * k)), max(1, round(h * k))), Image.BILINEAR)
    try:
        # Only confident parts: on plain or gradient backdrops ISNet leaves a haze (mostly 0.3-0.5, with blobs
        # up to 1) that would stretch the box across the backdrop. Parts under 15 % of the largest are haze.
        box = box_of(matte(models, small, "auto", model=model, level=192, min_part=0.15, refine=False) >= 192)
    except (ModelError, InvalidInput):  # matting weights not installed: saliency still frames something sensible
        box = None
    if box is not None and k != 1:
        sx, sy = w / small.width, h / small.height
        box = int(box[0] * sx), int(box[1] * sy), min(w, int(np.ceil(box[2] * sx))), min(h, int(np.ceil(box[3] * sy)))
    if box is not None and (box[2] - box[0]) * (box[3] - box[1]) >= 0.002 * w * h:
        return box, "matte"
    return saliency_box(image), "saliency"


def resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Lanczos resize; the same image when the size already matches (so 1:1 placements are bit-exact)."""
    return image if image.size == size else image.resize(size, Image.LANCZOS)


def cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to cover `size` and crop the centre."""
    w, h = image.size
    s = max(size[0] / w, size[1] / h)
    sw, sh = max(size[0], round(w * s)), max(size[1], round(h * s))
    x, y = (sw - size[0]) // 2, (sh - size[1]) // 2
    return resized(image.convert("RGB"), (sw, sh)).crop((x, y, x + size[0], y + size[1]))


def backdrop(image: Image.Image, size: tuple[int, int], kind: str, color: str) -> Image.Image:
    """What shows where the image does not reach: its own blurred cover, or a flat colour."""
    if kind == "color":
        return Image.new("RGB", size, color)
    # Blur at 1/8 scale: the same look as a large blur at full size, for a fraction of the time.
    small = (max(8, size[0] // 8), max(8, size[1] // 8))
    blurred = cover(image, small).filter(ImageFilter.GaussianBlur(max(2.0, min(small) / 12)))
    return blurred.resize(size, Image.BICUBIC)


def anchor_origin(
    canvas: tuple[int, int],
    obj: tuple[int, int],
    anchor: str,
    *,
    margin_px: int,
    offset: tuple[float, float] = (0.0, 0.0),
) -> tuple[int, int]:
    """Top-left corner of an `obj`-sized box at `anchor` (margin from the anchored edges), shifted by `offset`
    (a share of the canvas) and kept inside the canvas. "auto" (a spot the caller did not find) is bottom-center."""
    (cw, ch), (ow, oh) = canvas, obj
    anchor = "bottom-center" if anchor == "auto" else anchor
    x = margin_px if "left" in anchor else cw - ow - margin_px if "right" in anchor else (cw - ow) // 2
    top, bottom = anchor.startswith("top"), anchor.startswith("bottom")
    y = margin_px if top else ch - oh - margin_px if bottom else (ch - oh) // 2
    x += round(offset[0] * cw)
    y += round(offset[1] * ch)
    return min(max(0, x), max(0, cw - ow)), min(max(0, y), max(0, ch - oh))
