"""The A1111 (Stable Diffusion web UI) API's request and answer bodies, as its clients send and read them.

Requests declare the fields Zhike maps (routes/sdapi.py says how); any other field A1111 knows is accepted and
ignored, as A1111 ignores fields it does not know. Limits are not repeated here: the operation's own Params model
checks every value, and its errors are renamed to these fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zhike.api.schemas.common import ErrorBody, Open, Out

MAX_N_ITER = 32  # batches in one call: each is one job, and every image comes back in the one answer


class GenerationRequest(BaseModel):
    """What txt2img and img2img share. Left out: the operation's default (steps 25, CFG 7, DPM++ 2M Karras)."""

    model_config = ConfigDict(extra="allow")  # styles, subseed, restore_faces, alwayson_scripts...: ignored
    prompt: str = Field("", description="A1111 syntax, LoRAs as <lora:name:weight>")
    negative_prompt: str = ""
    seed: int = Field(-1, description="-1: random (the seed drawn is in `info`)")
    sampler_name: str | None = Field(None, description="A1111 sampler (GET /sdapi/v1/samplers)")
    sampler_index: str | None = Field(None, description="Older name of sampler_name")
    scheduler: str | None = Field(None, description="automatic, karras or normal (GET /sdapi/v1/schedulers)")
    batch_size: int = 1
    n_iter: int = Field(1, ge=1, le=MAX_N_ITER, description="Batches, one after the other (seeds continue)")
    steps: int | None = None
    cfg_scale: float | None = None
    width: int = 512
    height: int = 512
    denoising_strength: float | None = None
    override_settings: dict[str, Any] = Field(
        default_factory=dict, description="sd_model_checkpoint and CLIP_stop_at_last_layers are used"
    )
    send_images: bool = True


class Txt2ImgRequest(GenerationRequest):
    enable_hr: bool = Field(False, description="Hires. fix: Zhike's hires operation")
    hr_scale: float = 2.0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_upscaler: str | None = Field(None, description="Latent*, Lanczos, Nearest: lanczos; R-ESRGAN 4x+; a model")
    hr_second_pass_steps: int = 0


class Img2ImgRequest(GenerationRequest):
    init_images: list[str] = Field(..., min_length=1, description="Base64 images (data: URLs too); the first is used")
    mask: str | None = Field(None, description="Base64 mask, white = repaint: Zhike's inpaint operation")
    denoising_strength: float | None = 0.75
    mask_blur: int | None = None
    inpainting_mask_invert: int = 0
    inpaint_full_res: bool = Field(True, description="Repaint a crop around the mask at full size")
    inpaint_full_res_padding: int = 0
    include_init_images: bool = False


class GenerationResponse(Out):
    images: list[str] = Field(description="Base64 PNGs, labelled like every export (parameters text included)")
    parameters: dict[str, Any] = Field(description="The request as understood")
    info: str = Field(description="JSON text: seeds, prompts, sampler, model, `infotexts` (each PNG's parameters)")


class ModelInfo(Out):
    title: str = Field(description="`name [hash]`: what sd_model_checkpoint takes")
    model_name: str
    hash: str | None
    sha256: str | None
    filename: str = Field(description="The registered name (server paths are not shown)")
    config: None = None


class Options(Open):
    """The options clients read; POST sets sd_model_checkpoint (per API caller)."""

    sd_model_checkpoint: str | None
    sd_checkpoint_hash: str | None
    CLIP_stop_at_last_layers: int
    samples_format: str


class SamplerInfo(Out):
    name: str
    aliases: list[str]
    options: dict[str, str]


class SchedulerInfo(Out):
    name: str
    label: str
    aliases: list[str] | None
    default_rho: float
    need_inner_model: bool


class LoraInfo(Out):
    name: str
    alias: str
    path: str = Field(description="The registered name (server paths are not shown)")
    metadata: dict[str, Any]


class ProgressState(Out):
    skipped: bool
    interrupted: bool
    job: str
    job_count: int
    job_timestamp: str
    job_no: int
    sampling_step: int
    sampling_steps: int


class Progress(Out):
    progress: float
    eta_relative: float
    state: ProgressState
    current_image: str | None = Field(description="Base64 JPEG of the current step, when the worker made one")
    textinfo: str | None


class Interrupted(Out):
    interrupted: list[str] = Field(description="The jobs asked to stop")


class PngInfoRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    image: str = Field(..., min_length=1, description="Base64 image (a data: URL too)")


class PngInfoResponse(Out):
    info: str = Field(description="The `parameters` text")
    items: dict[str, str] = Field(description="The file's other text chunks")
    parameters: dict[str, Any] = Field(description="`info` read as A1111 reads it: Prompt, Steps, Seed, Size-1...")


class A1111FieldError(Out):
    loc: list[str | int]
    msg: str
    type: str


class SdapiValidationError(ErrorBody):
    """422: A1111's `detail` list beside Zhike's `error` (code, field...)."""

    detail: list[A1111FieldError]
