"""A product that looks placed in a scene photo, not pasted: where it stands, how large, how it is lit, its shadow.

subject_swap's classical half (no image model): the spot comes from the scene's support (backends.scene finds the
table edge or floor line) or from the user; the scale from the room above the spot; the product's colour
temperature and brightness follow the light around the spot (a bounded LAB shift: the product stays
recognisable); its shadow falls on the ground away from the scene's light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFilter

if TYPE_CHECKING:
    from zhike.backends.scene import Surface
    from zhike.core.context import RunContext
    from zhike.ops.subject_swap import SubjectSwapParams

FOOT_DEPTH = 0.4  # where on the support the product stands: this share of the way from its back to its front edge
ROOM_SHARE = 0.45  # the product's auto height: this share of the room above its foot...
MAX_HEIGHT = 0.4  # ... at most this share of the scene's height
MAX_WIDTH = 0.45  # ... and at most this share of its width
MAX_AB_SHIFT = 10.0  # the most the colour temperature may move a product (at strength 1), in a*/b* units
GAIN_RANGE = (0.8, 1.12)  # the most the brightness may change, as a factor on L*
MAX_SHADE = 6.0  # L* units the side facing the light gains (and the far side loses) at full strength


@dataclass(frozen=True)
class Light:
    dx: float  # unit direction towards the light in the image (x right, y down)
    dy: float
    strength: float  # 0 flat .. 1 strongly one-sided

    def as_list(self) -> list[float]:
        return [round(self.dx, 3), round(self.dy, 3), round(self.strength, 3)]


def scene_light(scene: Image.Image) -> Light:
    from zhike.backends.scene import light_direction

    return Light(*light_direction(np.asarray(scene.convert("RGB"))))


def scene_surface(scene: Image.Image) -> Surface | None:
    from zhike.backends.scene import find_surface

    return find_surface(np.asarray(scene.convert("RGB")))


def foot_on(surface: Surface, x: float) -> float:
    """Where on the support (image fraction) the product's foot goes, at horizontal position x."""
    back = surface.y_at(x)
    return back + FOOT_DEPTH * max(0.0, surface.front - back)


def foot_scale(product: tuple[int, int], canvas: tuple[int, int], foot_y: float, scale: float | None) -> float:
    """The resize factor for a product standing at row `foot_y` (px): the user's `scale` (longer side / the
    canvas's shorter side), else a share of the room above the foot; always fitting above the foot."""
    (bw, bh), (cw, ch) = product, canvas
    auto = min(ROOM_SHARE * foot_y / bh, MAX_HEIGHT * ch / bh, MAX_WIDTH * cw / bw)
    k = scale * min(canvas) / max(bw, bh) if scale is not None else auto
    return max(1 / max(bw, bh), min(k, foot_y / bh, cw / bw))


def free_spot(
    scene: Image.Image | None, surface: Surface, product: tuple[int, int], canvas: tuple[int, int], scale: float | None
) -> tuple[float, float]:
    """(x, y) fractions of the product's foot on the support: the free stretch of it (least detail where the
    product would stand), at FOOT_DEPTH between its back and front edge."""
    from zhike.backends.scene import quiet_x

    foot_y = foot_on(surface, 0.5)
    if scene is None:
        return 0.5, foot_y
    k = foot_scale(product, canvas, foot_y * canvas[1], scale)
    box = (product[0] * k / canvas[0], product[1] * k / canvas[1])
    x = quiet_x(np.asarray(scene.convert("RGB")), box, foot_y, (surface.y_at(0.5), surface.front))
    return x, foot_on(surface, x)


def light_stats(rgb: np.ndarray, weight_bright: bool) -> tuple[float, np.ndarray]:
    """(mean L*, the light's a*b*) of some pixels (N x 3 uint8): the light's tint is read from the brighter
    pixels (white-patch-like; a red wall's mean is not its light), the brightness from all."""
    from zhike.backends.opencv import rgb_to_lab

    lab = rgb_to_lab(rgb.reshape(-1, 1, 3).astype(np.float32) / 255).reshape(-1, 3)
    if weight_bright and len(lab) > 20:
        bright = lab[lab[:, 0] >= np.percentile(lab[:, 0], 60)]
        return float(lab[:, 0].mean()), bright[:, 1:].mean(0)
    return float(lab[:, 0].mean()), lab[:, 1:].mean(0)


def match_light(
    fg: np.ndarray,
    alpha: np.ndarray,
    around: np.ndarray,
    reference: tuple[float, np.ndarray],
    light: Light,
    strength: float,
) -> tuple[np.ndarray, list[float]]:
    """The product (HxWx3 uint8) relit for the scene: its colour temperature moved by the difference between the
    light around the spot (`around`, the scene's pixels there) and the light it was shot in (`reference`:
    light_stats of its own photo), its brightness scaled toward the spot's, its light-facing side a little
    brighter. Every change is bounded (MAX_AB_SHIFT, GAIN_RANGE, MAX_SHADE) and scaled by `strength`, so the
    product keeps its own colours. Returns (pixels, [L* gain, a* shift, b* shift])."""
    from zhike.backends.opencv import lab_to_rgb, rgb_to_lab

    if strength <= 0 or not (alpha > 0).any():
        return fg, [1.0, 0.0, 0.0]
    scene_l, scene_ab = light_stats(around, weight_bright=True)
    ref_l, ref_ab = reference
    bound = MAX_AB_SHIFT * strength
    shift = np.clip(strength * 0.7 * (scene_ab - ref_ab), -bound, bound)
    gain = float(np.clip((max(scene_l, 5.0) / max(ref_l, 5.0)) ** (0.5 * strength), *GAIN_RANGE))
    lab = rgb_to_lab(fg.astype(np.float32) / 255)
    h, w = alpha.shape
    yy, xx = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
    shade = strength * light.strength * MAX_SHADE * np.clip(light.dx * xx + light.dy * yy, -1, 1)
    lab[..., 0] = np.clip(lab[..., 0] * gain + shade, 0, 100)
    lab[..., 1:] += shift
    out = np.clip(lab_to_rgb(lab) * 255 + 0.5, 0, 255).astype(np.uint8)
    return out, [round(gain, 3), round(float(shift[0]), 2), round(float(shift[1]), 2)]


def photo_reference(photo: Image.Image) -> tuple[float, np.ndarray]:
    """The light a product was shot in: its photo's (backdrop included), or for a cut-out PNG (nothing around it)
    a neutral studio light at the product's own brightness."""
    small = photo.convert("RGB").copy()
    small.thumbnail((128, 128))
    rgb = np.asarray(small)
    if photo.mode in ("RGBA", "LA", "PA") and int(np.asarray(photo.getchannel("A")).min()) < 255:
        opaque = np.asarray(photo.convert("RGBA").resize(small.size))[..., 3] >= 128
        level, _ = light_stats(rgb[opaque] if opaque.any() else rgb.reshape(-1, 3), weight_bright=False)
        return level, np.zeros(2)
    return light_stats(rgb.reshape(-1, 3), weight_bright=True)


def cast_shadow(alpha: np.ndarray, light: Light, opacity: float, ground: tuple[float, float] | None) -> np.ndarray:
    """Darkness (0..1) of the product's shadow laid on the ground away from the light: the silhouette projected
    (sheared sideways against the light's horizontal direction, squashed onto the ground, forward when the light
    is above/behind and back when it is below/in front), sharper near the foot, softer and fainter away from it.
    `ground`: the rows (window px) the support spans; the shadow stays on it."""
    from zhike.backends.scene import blur, project_shadow

    hard = alpha >= 128
    rows = np.nonzero(hard.any(axis=1))[0]
    if len(rows) == 0 or opacity <= 0 or light.strength <= 0.05:
        return np.zeros(alpha.shape, np.float32)
    top, foot = int(rows[0]), int(rows[-1])
    tall = max(4, foot - top)
    shear = -light.dx * 0.9
    squash = 0.3 * float(np.clip(light.dy, -1, 1)) if abs(light.dy) > 0.2 else 0.06
    cast = project_shadow(np.where(hard, 255, 0).astype(np.uint8), float(foot), shear, squash)
    near, far = blur(cast, 0.015 * tall), blur(cast, 0.08 * tall)
    h, w = alpha.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cols = np.nonzero(hard[foot])[0]
    fx = float(cols.mean()) if len(cols) else w / 2
    t = np.clip(np.hypot(xx - fx, (yy - foot) * 2) / (tall * max(0.3, abs(shear) + abs(squash))), 0, 1)
    dark = (near * (1 - t) + far * t) * (1 - 0.7 * t)
    if ground is not None:  # on the support only: not up the wall behind it
        dark[: max(0, int(ground[0]))] = 0
        dark[int(ground[1]) + 1 :] *= 0.3
    return dark * opacity * (0.35 + 0.45 * light.strength)


EDGE_PROMPT = "a product photo, natural light, seamless, realistic shadows"


def edge_band(box: tuple[int, int, int, int]) -> int:
    """How far (px) either side of the product's edge the edge pass may change pixels."""
    return max(3, round(0.04 * min(box[2] - box[0], box[3] - box[1])))


def blend_edges(
    ctx: RunContext, p: SubjectSwapParams, image: Image.Image, a: np.ndarray, box: tuple[int, int, int, int]
) -> Image.Image:
    """A low-strength masked diffusion pass over a thin band around the product's edge (model p.model, through
    the screened gate in diffusion_common): the seam takes the scene's light and grain. Pixels farther than
    edge_band(box) from the edge are left exactly as they were."""
    from zhike.backends.opencv import dilate_square
    from zhike.ops.diffusion_common import native_side, run_diffusion
    from zhike.ops.masking import fit_to

    assert p.model is not None
    r = edge_band(box)
    cw, ch = image.size
    pad = 4 * r + 8
    win = (max(0, box[0] - pad), max(0, box[1] - pad), min(cw, box[2] + pad), min(ch, box[3] + pad))
    size = (win[2] - win[0], win[3] - win[1])
    hard = np.zeros((size[1], size[0]), bool)
    hard[box[1] - win[1] : box[3] - win[1], box[0] - win[0] : box[2] - win[0]] = a >= 128
    band = dilate_square(hard, r) & dilate_square(~hard, r)
    # Soft inside the band, exactly 0 outside it: the seam blends, nothing beyond it moves.
    soft = np.asarray(Image.fromarray(band.astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(r / 2)))
    soft = np.where(band, soft.astype(np.float32) / 255, 0.0)[..., None]
    crop = image.crop(win)
    work = fit_to(*size, native_side(ctx.models.catalog.get(p.model, field="params.model").family))
    q = p.model_copy(
        update={
            "prompt": EDGE_PROMPT,
            "batch_size": 1,
            "steps": max(p.steps, int(np.ceil(1 / p.edge_blend))),  # at least one denoising step at this strength
        }
    )
    _, gens = run_diffusion(
        ctx,
        q,
        mode="inpaint",
        init_image=crop.resize(work, Image.LANCZOS),
        mask=Image.fromarray(band.astype(np.uint8) * 255).resize(work, Image.NEAREST),
        strength=p.edge_blend,
        width=work[0],
        height=work[1],
        save=False,
    )
    gen = np.asarray(gens[0].convert("RGB").resize(size, Image.LANCZOS), np.float32)
    old = np.asarray(crop, np.float32)
    blended = np.clip(old + (gen - old) * soft + 0.5, 0, 255).astype(np.uint8)
    out = image.copy()
    out.paste(Image.fromarray(np.where(band[..., None], blended, np.asarray(crop))), win[:2])
    return out


RELIGHT_PROMPT = "product in the scene, natural lighting, soft shadows, realistic"
RELIGHT_STRENGTH = 0.5  # IC-Light's own second-pass denoise: relit, yet the product's shape and label stay


def relight_product(
    ctx: RunContext,
    p: SubjectSwapParams,
    image: Image.Image,
    scene: Image.Image,
    a: np.ndarray,
    box: tuple[int, int, int, int],
) -> Image.Image:
    """Relight the placed product with the user's IC-Light-style model (p.relight_model) on p.model's text encoder
    and VAE, through the screened gate. Only the product and a 2 px rim take the relit pixels: the scene around
    it stays exactly as composed."""
    from zhike.backends.diffusion import DiffusionRequest
    from zhike.ops.diffusion_common import generate
    from zhike.ops.masking import fit_to

    assert p.model is not None and p.relight_model is not None and p.seed is not None
    cw, ch = image.size
    pad = round(0.25 * max(box[2] - box[0], box[3] - box[1]))
    win = (max(0, box[0] - pad), max(0, box[1] - pad), min(cw, box[2] + pad), min(ch, box[3] + pad))
    size = (win[2] - win[0], win[3] - win[1])
    alpha = Image.new("L", size, 0)
    alpha.paste(Image.fromarray(a), (box[0] - win[0], box[1] - win[1]))
    crop = image.crop(win)
    fg = Image.composite(crop, Image.new("RGB", size, (127, 127, 127)), alpha)
    work = fit_to(*size, 512)
    req = DiffusionRequest(
        mode="relight",
        prompt=p.prompt.strip() or RELIGHT_PROMPT,
        negative_prompt=p.negative_prompt,
        width=work[0],
        height=work[1],
        steps=p.steps,
        guidance=p.guidance,
        seed=p.seed,
        scheduler=p.scheduler,
        init_image=crop.resize(work, Image.LANCZOS),
        strength=RELIGHT_STRENGTH,
        relight_fg=fg.resize(work, Image.LANCZOS),
        relight_bg=scene.crop(win).resize(work, Image.LANCZOS),
    )
    with (
        ctx.models.use_named(p.model, kind="checkpoint", field="params.model") as loaded,
        ctx.models.use_named(p.relight_model, kind="relight", field="params.relight_model") as relighter,
    ):
        req.relight = relighter
        gen = generate(ctx, loaded, req)
    relit = gen.images[0].convert("RGB").resize(size, Image.LANCZOS)
    mask = alpha.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.GaussianBlur(1))
    mask = Image.fromarray(np.minimum(np.asarray(mask), np.asarray(alpha.filter(ImageFilter.MaxFilter(5)))))
    out = image.copy()
    out.paste(Image.composite(relit, crop, mask), win[:2])
    return out
