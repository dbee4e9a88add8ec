"""OpenAI-compatible image generation, so the official `openai` client works against Zhike.

POST /v1/images/generations {prompt, n, size, response_format, model} runs txt2img through the job queue
and answers when the job is done.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from zhike.api.deps import AppDep, OwnerDep
from zhike.api.routes.compat import failure, labelled_files, submit, wait_done
from zhike.api.schemas import ImagesResponse
from zhike.api.signing import base_url, signed_path
from zhike.core.errors import InvalidInput

router = APIRouter(tags=["openai"])

SIZE_RE = re.compile(r"^(\d{2,4})x(\d{2,4})$")
# OpenAI model names clients send by default; they map to this deployment's default checkpoint.
OPENAI_MODEL_NAMES = {"dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini"}


class ImageGenerationRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # quality, style, user... are accepted and ignored
    prompt: str = Field(..., min_length=1, max_length=4000)
    n: int = Field(1, ge=1, le=8)
    size: str = Field("512x512", description="WIDTHxHEIGHT, multiples of 8, e.g. 512x512 or 1024x1024")
    response_format: Literal["b64_json", "url"] = "url"
    model: str | None = None
    negative_prompt: str = Field("", max_length=4000)
    seed: int | None = None
    steps: int | None = Field(None, ge=1, le=150)


# OpenAI's names for the fields the params are made from
FIELD_NAMES = {"params.width": "size", "params.height": "size", "params.batch_size": "n"}


# Each image has `url` or `b64_json`, never both (as OpenAI answers): exclude_unset leaves the other out.
@router.post(
    "/v1/images/generations",
    summary="OpenAI-compatible image generation",
    response_model=ImagesResponse,
    response_model_exclude_unset=True,
)
async def generations(body: ImageGenerationRequest, request: Request, app: AppDep, owner: OwnerDep) -> dict[str, Any]:
    m = SIZE_RE.match(body.size)
    if not m:
        raise InvalidInput(
            "size must be WIDTHxHEIGHT, e.g. 512x512",
            code="validation_failed",
            field="size",
            kind="string_pattern_mismatch",
        )
    params: dict[str, Any] = {
        "prompt": body.prompt,
        "negative_prompt": body.negative_prompt,
        "width": int(m[1]),
        "height": int(m[2]),
        "batch_size": body.n,
    }
    if body.model and body.model not in OPENAI_MODEL_NAMES:
        params["model"] = body.model
    if body.seed is not None:
        params["seed"] = body.seed
    if body.steps is not None:
        params["steps"] = body.steps
    row = await submit(app, "txt2img", params, owner, FIELD_NAMES)
    job = await wait_done(request, app, row.id, owner)
    if job.state != "succeeded":
        raise failure(job)
    base = base_url(request, app.settings.public_url)  # never the Host header (anyone can send any)
    if body.response_format == "b64_json":
        files = await run_in_threadpool(labelled_files, app, job, owner)
        data = [{"b64_json": base64.b64encode(f).decode(), "revised_prompt": None} for f in files]
    else:
        data = [
            {"url": base + signed_path(app.secret, img["asset_id"]), "revised_prompt": None}
            for img in (job.result or {})["images"]
        ]
    return {"created": int(time.time()), "data": data}
