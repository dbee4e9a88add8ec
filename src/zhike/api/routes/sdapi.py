"""The A1111-compatible API (`/sdapi/v1/...`), so the clients, bots and editor plugins made for the Stable Diffusion
web UI work with Zhike unchanged.

Every generation is a Zhike job (txt2img, hires, img2img or inpaint) run by the same queue, screening and labels
as everything else; the answer waits for it and carries the labelled PNGs as base64. Callers authenticate with an
API key: `Authorization: Bearer KEY`, or HTTP basic auth (what `--api-auth user:pass` clients send) with the key
as the password and any user name. Basic auth is read here only, not by the rest of the API: browsers resend basic
credentials by themselves, so they must not open the routes that need the session's CSRF token.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from PIL import Image

from zhike import __version__
from zhike.api.deps import AppDep, Unauthorized, authenticate
from zhike.api.routes.compat import failure, labelled_files, submit, wait_done
from zhike.api.routes.sdapi_params import (
    DEFAULT_SCHEDULER,
    FIELD_NAMES,
    SAMPLERS,
    SCHEDULE_TYPES,
    a1111_parameters,
    a1111_sampler,
    checkpoints,
    common_params,
    decode_b64,
    img2img_params,
    resolve_checkpoint,
    title,
    txt2img_params,
)
from zhike.api.schemas.sdapi import (
    GenerationRequest,
    GenerationResponse,
    Img2ImgRequest,
    Interrupted,
    LoraInfo,
    ModelInfo,
    Options,
    PngInfoRequest,
    PngInfoResponse,
    Progress,
    SamplerInfo,
    SchedulerInfo,
    SdapiValidationError,
    Txt2ImgRequest,
)
from zhike.core.errors import InvalidInput, ZhikeError
from zhike.core.rows import JobRow
from zhike.core.specs import ModelSpec
from zhike.ops.diffusion_common import DiffusionParams
from zhike.services.container import Zhike
from zhike.services.images import decode_image

# -- errors: A1111's `detail` list beside Zhike's `error` --------------------------------------------------------


def _loc(field_name: str) -> list[str | int]:
    return ["body", *(int(p) if p.isdigit() else p for p in field_name.split("."))]


async def _with_detail(request: Request, e: Exception, handled_as: type[Exception], detail: list[Any]) -> Response:
    """The app's own error answer for `e` (one error format), plus `detail` when it is a 422."""
    response = await request.app.exception_handlers[handled_as](request, e)
    if response.status_code != 422:
        return response
    body = json.loads(bytes(response.body))
    return JSONResponse({**body, "detail": detail}, status_code=422)


class A1111Route(APIRoute):
    """Validation errors also carry A1111's `detail: [{loc, msg, type}]`, which its clients print."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as e:
                detail = [{"loc": list(x["loc"]), "msg": x["msg"], "type": x["type"]} for x in e.errors()]
                return await _with_detail(request, e, RequestValidationError, detail)
            except ZhikeError as e:
                if e.status != 422:
                    raise
                detail = [{"loc": _loc(e.field or "body"), "msg": e.message, "type": e.kind or e.code}]
                return await _with_detail(request, e, ZhikeError, detail)

        return route


# -- auth: a key as Bearer, or as the password of HTTP basic auth -------------------------------------------------


def bearer_from_basic(authorization: str | None) -> str | None:
    """`Basic base64(user:KEY)` -> `Bearer KEY` (the user name is not checked: the key says who calls)."""
    if not authorization or authorization.partition(" ")[0].lower() != "basic":
        return authorization
    try:
        decoded = base64.b64decode(authorization.partition(" ")[2].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    _, colon, key = decoded.partition(":")
    if not colon or not key.strip():
        raise Unauthorized(
            "HTTP basic auth: any user name, and an API key as the password (create one: `zhike keys create`)",
            code="api_key_invalid",
            field="Authorization",
        )
    return f"Bearer {key.strip()}"


def sdapi_owner(request: Request, app: AppDep, authorization: Annotated[str | None, Header()] = None) -> str:
    return authenticate(request, app, bearer_from_basic(authorization)).owner_id


SdOwner = Annotated[str, Depends(sdapi_owner)]

router = APIRouter(
    prefix="/sdapi/v1",
    tags=["a1111"],
    route_class=A1111Route,
    dependencies=[Depends(sdapi_owner)],
    responses={422: {"model": SdapiValidationError, "description": "A value Zhike cannot take: `error.field`"}},
)

# -- per-caller state: the chosen model, and the calls in flight (for progress and interrupt) --------------------


@dataclass
class Call:
    """One txt2img/img2img call in flight: its batches run as jobs one after the other."""

    owner: str
    job_count: int
    started: float = field(default_factory=time.time)
    job_no: int = 0
    job_id: str | None = None
    interrupted: bool = False


class SdapiState:
    """Kept by this server process: the model each caller chose with POST /options (A1111 keeps one for everybody;
    here each key or user has their own), and the calls now waiting for their jobs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.models: dict[str, str] = {}
        self.calls: list[Call] = []

    @contextmanager
    def call(self, owner: str, job_count: int) -> Iterator[Call]:
        c = Call(owner, job_count)
        with self.lock:
            self.calls.append(c)
        try:
            yield c
        finally:
            with self.lock:
                self.calls.remove(c)

    def model_of(self, owner: str) -> str | None:
        with self.lock:
            return self.models.get(owner)

    def choose(self, owner: str, model: str) -> None:
        with self.lock:
            self.models[owner] = model

    def running(self, c: Call, job_no: int, job_id: str) -> bool:
        """Record the call's current job; False when an interrupt came first (the caller cancels the job)."""
        with self.lock:
            c.job_no, c.job_id = job_no, job_id
            return not c.interrupted

    def current(self, owner: str) -> Call | None:
        with self.lock:
            return next((c for c in self.calls if c.owner == owner and c.job_id), None)

    def interrupt(self, owner: str) -> list[str]:
        """Stop the owner's calls: no further batches; returns their current jobs (to cancel)."""
        with self.lock:
            mine = [c for c in self.calls if c.owner == owner]
            for c in mine:
                c.interrupted = True
            return [c.job_id for c in mine if c.job_id]


_STATE_LOCK = threading.Lock()


def sdapi_state(request: Request) -> SdapiState:
    with _STATE_LOCK:
        state = getattr(request.app.state, "sdapi", None)
        if state is None:
            state = request.app.state.sdapi = SdapiState()
        return state


StateDep = Annotated[SdapiState, Depends(sdapi_state)]


def chosen_model(app: Zhike, state: SdapiState, owner: str) -> ModelSpec | None:
    """The checkpoint the caller set with POST /options if it is still installed, else the deployment's default."""
    specs = {s.name: s for s in checkpoints(app)}
    name = state.model_of(owner)
    if name in specs:
        return specs[name]
    try:
        return app.catalog.default_checkpoint()
    except InvalidInput:
        return None  # none installed


def _spec(app: Zhike, name: str | None) -> ModelSpec | None:
    return next((s for s in app.catalog.list() if s.name == name), None)


# -- running a call ----------------------------------------------------------------------------------------------


async def run_batches(
    request: Request, app: Zhike, state: SdapiState, owner: str, op: str, params: dict[str, Any], n_iter: int
) -> tuple[list[JobRow], bool]:
    """Run `n_iter` jobs one after the other (seeds continue: batch k starts at seed + k * batch_size, as in
    A1111); returns the finished jobs and whether an interrupt stopped the call."""
    done: list[JobRow] = []
    with state.call(owner, n_iter) as call:
        for k in range(n_iter):
            if call.interrupted:
                break
            row = await submit(app, op, params, owner, FIELD_NAMES)
            # The next batch continues from the seeds this one drew (a random seed is drawn at submission).
            params = {**params, "seed": row.params["seed"] + row.params["batch_size"]}
            if not state.running(call, k, row.id):
                await run_in_threadpool(app.jobs.cancel, row.id, owner)
            job = await wait_done(request, app, row.id, owner)
            if job.state == "cancelled":
                return done, True
            if job.state != "succeeded":
                raise failure(job)
            done.append(job)
        return done, call.interrupted


def _infotext(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as img:
        text = getattr(img, "text", None) or {}
    return str(text.get("parameters", ""))


def answer(
    app: Zhike, owner: str, body: GenerationRequest, jobs: list[JobRow], interrupted: bool, started: float
) -> dict[str, Any]:
    """A1111's answer: base64 images, the request as `parameters`, and `info` (JSON text) with the real seeds and
    each image's parameters text as its PNG carries it. Blocking (reads files): call it in a thread."""
    files = [data for job in jobs for data in labelled_files(app, job, owner)]
    images = [img for job in jobs for img in (job.result or {})["images"]]
    first = jobs[0].params if jobs else {}
    scheduler = first.get("scheduler") or DEFAULT_SCHEDULER
    sampler, schedule = a1111_sampler(scheduler)
    model = (jobs[0].result or {}).get("model") if jobs else first.get("model")
    spec = _spec(app, model)
    n = len(images)
    info = {
        "prompt": body.prompt,
        "all_prompts": [body.prompt] * n,
        "negative_prompt": body.negative_prompt,
        "all_negative_prompts": [body.negative_prompt] * n,
        "seed": images[0]["seed"] if images else body.seed,
        "all_seeds": [img["seed"] for img in images],
        "subseed": -1,
        "all_subseeds": [-1] * n,
        "subseed_strength": 0,
        "width": first.get("width", body.width),
        "height": first.get("height", body.height),
        "sampler_name": sampler,
        "cfg_scale": first.get("guidance"),
        "steps": first.get("steps"),
        "batch_size": first.get("batch_size", body.batch_size),
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": model,
        "sd_model_hash": spec.short_hash if spec else None,
        "sd_vae_name": None,
        "sd_vae_hash": None,
        "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
        "denoising_strength": first.get("strength", first.get("hires_strength")),
        "extra_generation_params": {"Schedule type": schedule},
        "index_of_first_image": 0,
        "infotexts": [_infotext(data) for data in files],
        "styles": [],
        "job_timestamp": datetime.fromtimestamp(started).strftime("%Y%m%d%H%M%S"),
        "clip_skip": first.get("clip_skip"),
        "is_using_inpainting_conditioning": bool(
            jobs and jobs[0].op == "inpaint" and spec and spec.variant == "inpaint"
        ),
        "version": f"zhike-{__version__}",
        # Zhike's own: where the images live, and what A1111 would only show in its console.
        "interrupted": interrupted,
        "job_ids": [job.id for job in jobs],
        "asset_ids": [img["asset_id"] for img in images],
        "warnings": [w for job in jobs for w in (job.result or {}).get("warnings", [])],
    }
    echo = body.model_dump(mode="json")
    if isinstance(body, Img2ImgRequest) and not body.include_init_images:
        echo |= {"init_images": None, "mask": None}  # as A1111 answers: the inputs are not sent back
    send = [base64.b64encode(f).decode() for f in files] if body.send_images else []
    return {"images": send, "parameters": echo, "info": json.dumps(info, ensure_ascii=False)}


async def generate(
    request: Request,
    app: Zhike,
    state: SdapiState,
    owner: str,
    body: GenerationRequest,
    op: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    started = time.time()
    jobs, interrupted = await run_batches(request, app, state, owner, op, params, body.n_iter)
    return await run_in_threadpool(answer, app, owner, body, jobs, interrupted, started)


# -- routes ------------------------------------------------------------------------------------------------------


@router.post("/txt2img", summary="A1111: text to image (hires fix with enable_hr)", response_model=GenerationResponse)
async def txt2img(
    body: Txt2ImgRequest, request: Request, app: AppDep, owner: SdOwner, state: StateDep
) -> dict[str, Any]:
    op, params = txt2img_params(body, await run_in_threadpool(common_params, app, body, state.model_of(owner)))
    return await generate(request, app, state, owner, body, op, params)


@router.post("/img2img", summary="A1111: image to image (inpaint with a mask)", response_model=GenerationResponse)
async def img2img(
    body: Img2ImgRequest, request: Request, app: AppDep, owner: SdOwner, state: StateDep
) -> dict[str, Any]:
    params = await run_in_threadpool(common_params, app, body, state.model_of(owner))
    op, params = await run_in_threadpool(img2img_params, app, owner, body, params)
    return await generate(request, app, state, owner, body, op, params)


@router.get("/sd-models", summary="A1111: the checkpoints", response_model=list[ModelInfo])
def sd_models(app: AppDep) -> list[dict[str, Any]]:
    return [
        {
            "title": title(s),
            "model_name": s.name,
            "hash": s.short_hash,
            "sha256": s.sha256,
            "filename": s.name,
            "config": None,
        }
        for s in checkpoints(app)
    ]


def options_view(app: Zhike, state: SdapiState, owner: str) -> dict[str, Any]:
    spec = chosen_model(app, state, owner)
    return {
        "sd_model_checkpoint": title(spec) if spec else None,
        "sd_checkpoint_hash": spec.sha256 if spec else None,
        "CLIP_stop_at_last_layers": DiffusionParams.model_fields["clip_skip"].default,
        "samples_format": "png",
    }


@router.get("/options", summary="A1111: options (the model this caller generates with)", response_model=Options)
def get_options(app: AppDep, owner: SdOwner, state: StateDep) -> dict[str, Any]:
    return options_view(app, state, owner)


@router.post(
    "/options",
    summary="A1111: set options: sd_model_checkpoint (for this caller; other options are ignored)",
    response_model=Options,
)
def set_options(body: dict[str, Any], app: AppDep, owner: SdOwner, state: StateDep) -> dict[str, Any]:
    if body.get("sd_model_checkpoint") is not None:
        name = resolve_checkpoint(app, body["sd_model_checkpoint"], "sd_model_checkpoint")
        state.choose(owner, name)
    return options_view(app, state, owner)


@router.get("/samplers", summary="A1111: the samplers Zhike has", response_model=list[SamplerInfo])
def samplers() -> list[dict[str, Any]]:
    return [
        {"name": name, "aliases": list(aliases), "options": {"scheduler": automatic}}
        for name, (_, aliases, automatic) in SAMPLERS.items()
    ]


@router.get("/schedulers", summary="A1111: the schedule types Zhike has", response_model=list[SchedulerInfo])
def schedulers() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "label": label,
            "aliases": None,
            "default_rho": 7.0 if name == "karras" else -1.0,
            "need_inner_model": False,
        }
        for name, label in SCHEDULE_TYPES.items()
    ]


@router.get(
    "/loras", summary="A1111: the LoRAs (use them as <lora:name:weight> in the prompt)", response_model=list[LoraInfo]
)
def loras(app: AppDep) -> list[dict[str, Any]]:
    specs = [s for s in app.catalog.list() if s.kind == "lora"]
    return [{"name": s.name, "alias": s.name, "path": s.name, "metadata": {"family": s.family}} for s in specs]


@router.get("/progress", summary="A1111: progress of this caller's current job", response_model=Progress)
def progress(app: AppDep, owner: SdOwner, state: StateDep, skip_current_image: bool = False) -> dict[str, Any]:
    """The caller's call in flight here, else their running job (from the studio, the API, another process)."""
    call = state.current(owner)
    job_id = call.job_id if call else next((r.id for r in app.jobs.list(owner, state="running", limit=1)), None)
    if job_id is None:
        idle = {"job": "", "job_count": 0, "job_no": 0, "sampling_step": 0, "sampling_steps": 0}
        idle |= {"skipped": False, "interrupted": False, "job_timestamp": "0"}
        return {"progress": 0.0, "eta_relative": 0.0, "state": idle, "current_image": None, "textinfo": None}
    row = app.jobs.get(job_id, owner)
    if not skip_current_image and not row.done:
        app.jobs.watch(job_id)  # its worker makes step previews while someone looks
    count, no = (call.job_count, call.job_no) if call else (1, 0)
    started = call.started if call else (row.started_at or row.created_at).timestamp()
    done = (no + (1.0 if row.done else row.progress)) / count
    elapsed = max(0.0, time.time() - started)
    preview = row.preview if row.preview is not None and not skip_current_image else None
    return {
        "progress": round(done, 4),
        "eta_relative": round(elapsed / done - elapsed, 2) if done > 0 else 0.0,
        "state": {
            "skipped": False,
            "interrupted": bool(call and call.interrupted) or row.cancel_requested,
            "job": f"Batch {no + 1} out of {count}",
            "job_count": count,
            "job_timestamp": datetime.fromtimestamp(started).strftime("%Y%m%d%H%M%S"),
            "job_no": no,
            "sampling_step": row.step,
            "sampling_steps": row.total_steps,
        },
        "current_image": base64.b64encode(preview).decode() if preview else None,
        "textinfo": row.message or row.state,
    }


@router.post("/interrupt", summary="A1111: stop this caller's current generation", response_model=Interrupted)
def interrupt(app: AppDep, owner: SdOwner, state: StateDep) -> dict[str, Any]:
    """Cancels the jobs of the caller's calls in flight here (and runs no further batches of them); with none, the
    caller's running jobs."""
    ids = state.interrupt(owner) or [r.id for r in app.jobs.list(owner, state="running")]
    for job_id in ids:
        app.jobs.cancel(job_id, owner)
    return {"interrupted": ids}


@router.post("/png-info", summary="A1111: the parameters text a PNG carries", response_model=PngInfoResponse)
def png_info(body: PngInfoRequest, app: AppDep) -> dict[str, Any]:
    data = decode_b64(body.image, "image")
    img, _ = decode_image(data, field="image", max_bytes=app.assets.max_upload_bytes, max_pixels=app.assets.max_pixels)
    chunks = getattr(img, "text", None) or {k: v for k, v in img.info.items() if isinstance(v, str)}
    items = {str(k): str(v) for k, v in chunks.items() if k != "parameters"}
    text = str(chunks.get("parameters", ""))
    return {"info": text, "items": items, "parameters": a1111_parameters(text) if text else {}}
