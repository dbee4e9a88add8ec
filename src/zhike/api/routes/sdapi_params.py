"""A1111's names and request fields as Zhike's: samplers and schedule types, checkpoint names, the txt2img and
img2img bodies as operation params (and which A1111 field each param came from, for errors), base64 inputs as
assets, and Zhike's parameters text as A1111's png-info reads it."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from PIL import ImageOps

from zhike.api.schemas.sdapi import GenerationRequest, Img2ImgRequest, Txt2ImgRequest
from zhike.core.errors import InvalidInput
from zhike.core.infotext import parse_infotext
from zhike.core.samplers import SCHEDULERS
from zhike.core.specs import ModelSpec
from zhike.ops.diffusion_common import DiffusionParams
from zhike.services.catalog import LOADABLE
from zhike.services.container import Zhike
from zhike.services.images import decode_image, encode_png

# -- samplers: A1111 names -> Zhike's schedulers (core/samplers.py) ----------------------------------------------

# A1111 sampler -> (Zhike's scheduler without " Karras", other names clients send, A1111's "automatic" schedule).
# DPM++ 2M SDE: A1111's automatic is exponential, which diffusers' solver lacks; Karras is the nearest Zhike has.
SAMPLERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "DPM++ 2M": ("DPM++ 2M", ("k_dpmpp_2m",), "karras"),
    "DPM++ 2M SDE": ("DPM++ 2M SDE", ("k_dpmpp_2m_sde",), "karras"),
    "Euler a": ("Euler a", ("k_euler_a",), "normal"),
    "Euler": ("Euler", ("k_euler",), "normal"),
    "LMS": ("LMS", ("k_lms",), "normal"),
    "Heun": ("Heun", ("k_heun",), "normal"),
    "DDIM": ("DDIM", ("ddim",), "normal"),
    "PLMS": ("PNDM", ("plms", "PNDM"), "normal"),
    "UniPC": ("UniPC", ("unipc",), "normal"),
    "DDPM": ("DDPM", ("ddpm",), "normal"),
}
SCHEDULE_TYPES = {"automatic": "Automatic", "karras": "Karras", "normal": "Normal"}
_SAMPLER_NAMES = {n.lower(): a for a, (_, aliases, _) in SAMPLERS.items() for n in (a, *aliases)}
_A1111_NAME = {base: a1111 for a1111, (base, _, _) in SAMPLERS.items()}
KARRAS = " Karras"
DEFAULT_SCHEDULER: str = DiffusionParams.model_fields["scheduler"].default


def _not_one_of(field: str, message: str, name: str) -> InvalidInput:
    return InvalidInput(message, code="validation_failed", field=field, kind="enum", ctx={"name": name})


def zhike_scheduler(sampler: str | None, schedule: str | None) -> str:
    """A1111's sampler and schedule type (or an older name with the schedule in it: "DPM++ 2M Karras")."""
    name = (sampler or DEFAULT_SCHEDULER).strip()
    kind = (schedule or "automatic").strip().lower()
    if kind not in SCHEDULE_TYPES:
        raise _not_one_of(
            "scheduler",
            f"scheduler: {schedule!r} is not one Zhike has; use one of {', '.join(SCHEDULE_TYPES)}",
            schedule or "",
        )
    if name.lower().endswith(KARRAS.lower()) and name.lower() not in _SAMPLER_NAMES:
        name = name[: -len(KARRAS)]
        kind = "karras" if kind == "automatic" else kind
    a1111 = _SAMPLER_NAMES.get(name.lower())
    if a1111 is None:
        raise _not_one_of(
            "sampler_name",
            f"sampler_name: unknown sampler {name!r}; Zhike has {', '.join(SAMPLERS)} (GET /sdapi/v1/samplers)",
            name,
        )
    base, _, automatic = SAMPLERS[a1111]
    kind = automatic if kind == "automatic" else kind
    scheduler = base + KARRAS if kind == "karras" else base
    if scheduler not in SCHEDULERS:
        raise _not_one_of(
            "scheduler", f"scheduler: {a1111} has no Karras schedule in Zhike; use automatic or normal", schedule or ""
        )
    return scheduler


def a1111_sampler(scheduler: str) -> tuple[str, str]:
    """Zhike's scheduler as A1111's (sampler, schedule type label)."""
    karras = scheduler.endswith(KARRAS)
    base = scheduler.removesuffix(KARRAS)
    return _A1111_NAME.get(base, base), "Karras" if karras else "Normal"


# -- models ------------------------------------------------------------------------------------------------------


def checkpoints(app: Zhike) -> list[ModelSpec]:
    return [s for s in app.catalog.list() if (s.kind, s.family) in LOADABLE]


def title(spec: ModelSpec) -> str:
    """A1111's checkpoint title, `name [hash]` (the hash: the file's SHA-256, first 10 digits)."""
    return f"{spec.name} [{spec.short_hash}]" if spec.short_hash else spec.name


_HASH_SUFFIX = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]$")
_EXTENSION = re.compile(r"\.(safetensors|ckpt|pt|bin)$", re.I)


def resolve_checkpoint(app: Zhike, value: Any, field_name: str) -> str:
    """A checkpoint as A1111 clients name one (title, name, file name, hash) -> the registered name."""
    specs = checkpoints(app)
    if isinstance(value, str) and value.strip():
        v = value.strip()
        plain = _EXTENSION.sub("", _HASH_SUFFIX.sub("", v).replace("\\", "/").rsplit("/", 1)[-1])
        for spec in specs:
            if v in (spec.name, title(spec), spec.short_hash, spec.sha256) or plain == spec.name:
                return spec.name
    known = ", ".join(title(s) for s in specs) or "none installed"
    raise InvalidInput(
        f"{field_name}: unknown checkpoint {value!r}; available: {known} (GET /sdapi/v1/sd-models)",
        code="model_not_installed",
        field=field_name,
        ctx={"name": str(value)},
    )


# -- requests -> Zhike params ------------------------------------------------------------------------------------

# Zhike's fields as the A1111 request names them (errors name the client's field); others drop `params.`.
FIELD_NAMES = {
    "params.guidance": "cfg_scale",
    "params.scheduler": "sampler_name",
    "params.model": "override_settings.sd_model_checkpoint",
    "params.clip_skip": "override_settings.CLIP_stop_at_last_layers",
    "params.loras": "prompt",  # <lora:name:weight> tags
    "params.strength": "denoising_strength",
    "params.init_image": "init_images.0",
    "params.image": "init_images.0",
    "params.padding": "inpaint_full_res_padding",
    "params.hires_scale": "hr_scale",
    "params.hires_strength": "denoising_strength",
    "params.hires_steps": "hr_second_pass_steps",
    "params.upscaler": "hr_upscaler",
}
# A1111's upscalers for hires fix. Latent upscaling has no Zhike counterpart: Lanczos is used instead (also for
# Nearest and None).
UPSCALERS = {"R-ESRGAN 4x+": "realesrgan-x4plus", "R-ESRGAN 4x+ Anime6B": "realesrgan-x4plus-anime"}
_PLAIN_UPSCALERS = ("none", "lanczos", "nearest", "latent")


def common_params(app: Zhike, body: GenerationRequest, chosen: str | None) -> dict[str, Any]:
    """What txt2img and img2img share; `chosen`: the model the caller set with POST /options, if any."""
    params: dict[str, Any] = {
        "prompt": body.prompt,
        "negative_prompt": body.negative_prompt,
        "width": body.width,
        "height": body.height,
        "batch_size": body.batch_size,
        "seed": body.seed,  # -1: random, drawn when the job is submitted
    }
    if body.steps is not None:
        params["steps"] = body.steps
    if body.cfg_scale is not None:
        params["guidance"] = body.cfg_scale
    sampler = body.sampler_name or body.sampler_index
    if sampler or body.scheduler:
        params["scheduler"] = zhike_scheduler(sampler, body.scheduler)
    overrides = body.override_settings
    if overrides.get("sd_model_checkpoint") is not None:
        field_name = "override_settings.sd_model_checkpoint"
        params["model"] = resolve_checkpoint(app, overrides["sd_model_checkpoint"], field_name)
    elif chosen is not None:
        params["model"] = chosen
    if overrides.get("CLIP_stop_at_last_layers") is not None:
        params["clip_skip"] = overrides["CLIP_stop_at_last_layers"]
    return params


def txt2img_params(body: Txt2ImgRequest, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if not body.enable_hr:
        return "txt2img", params
    scale = body.hr_scale
    if body.hr_resize_x > 0 or body.hr_resize_y > 0:  # a target size: the scale that reaches it
        scale = max(body.hr_resize_x / max(body.width, 1), body.hr_resize_y / max(body.height, 1))
    upscaler = body.hr_upscaler or "Latent"
    if upscaler.lower().startswith(_PLAIN_UPSCALERS):
        upscaler = "lanczos"
    hires: dict[str, Any] = {"hires_scale": scale, "upscaler": UPSCALERS.get(upscaler, upscaler)}
    if body.denoising_strength is not None:
        hires["hires_strength"] = body.denoising_strength
    if body.hr_second_pass_steps > 0:
        hires["hires_steps"] = body.hr_second_pass_steps
    return "hires", {**params, **hires}


def decode_b64(value: str, field_name: str) -> bytes:
    """Base64 as A1111 clients send it: plain, or a data: URL."""
    text = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode("".join(text.split()), validate=True)  # some clients wrap lines
    except binascii.Error as e:
        raise InvalidInput(
            f"{field_name}: not base64 image data ({e})", code="validation_failed", field=field_name, kind="base64"
        ) from e


def upload_b64(app: Zhike, owner: str, value: str, field_name: str, *, invert: bool = False) -> str:
    """Store a base64 input as the caller's asset (inputs to operations are assets); the upload checks apply."""
    data = decode_b64(value, field_name)
    if invert:  # inpainting_mask_invert: white keeps, black repaints
        img, _ = decode_image(
            data, field=field_name, max_bytes=app.assets.max_upload_bytes, max_pixels=app.assets.max_pixels
        )
        data = encode_png(ImageOps.invert(img.convert("L")), {})
    return app.assets.upload(data, owner_id=owner, field=field_name, tags=["sdapi"]).id


def img2img_params(app: Zhike, owner: str, body: Img2ImgRequest, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """img2img, or inpaint with a mask (the area outside it stays exact)."""
    image = upload_b64(app, owner, body.init_images[0], "init_images.0")
    strength = {} if body.denoising_strength is None else {"strength": body.denoising_strength}
    if body.mask is None:
        return "img2img", {**params, **strength, "init_image": image}
    mask = upload_b64(app, owner, body.mask, "mask", invert=bool(body.inpainting_mask_invert))
    inpaint = {
        "image": image,
        "mask": mask,
        "area": "masked" if body.inpaint_full_res else "whole",
        "padding": body.inpaint_full_res_padding,
    }
    if body.mask_blur is not None:
        inpaint["mask_blur"] = body.mask_blur
    return "inpaint", {**params, **strength, **inpaint}


def a1111_parameters(text: str) -> dict[str, Any]:
    """Parameters text as A1111's png-info reads it: Prompt, Negative prompt, Steps, Sampler, Size-1, Size-2..."""
    p = parse_infotext(text)
    out: dict[str, Any] = {"Prompt": p["prompt"], "Negative prompt": p.get("negative_prompt", "")}
    names = {
        "steps": "Steps",
        "guidance": "CFG scale",
        "seed": "Seed",
        "clip_skip": "Clip skip",
        "model": "Model",
        "strength": "Denoising strength",
        "width": "Size-1",
        "height": "Size-2",
    }
    out |= {a1111: p[name] for name, a1111 in names.items() if name in p}
    if "scheduler" in p:
        out["Sampler"], schedule = a1111_sampler(p["scheduler"])
        if schedule == "Karras":  # the only schedule type the text names (see core/infotext.py)
            out["Schedule type"] = schedule
    return out | p.get("extra", {})
