"""/api/v1/jobs: submit, read, follow (server-sent events), cancel, retry."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from zhike.api.deps import AppDep, Forbidden, IdentityDep, OwnerDep, run_waiting
from zhike.api.schemas import JobList, JobPublic
from zhike.core.errors import Conflict, NotFound
from zhike.core.rows import JobRow

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
WATCH_RENEW = 5.0  # seconds: an open event stream renews its interest in the job (JobQueue.watch) this often
# Job answers leave out `retry_of` except after /retry: exclude_unset keeps each answer's keys as built.
JOB: dict[str, Any] = {"response_model": JobPublic, "response_model_exclude_unset": True}


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: str = Field(..., max_length=64, description="Operation name, see GET /api/v1/ops", examples=["txt2img"])
    params: dict[str, Any] = Field(default_factory=dict, description="The operation's parameters")
    safety_override: bool = Field(
        False, description="Admins only: run even if the prompt matches a content policy (written to the audit log)"
    )


def job_view(app: Any, row: JobRow) -> JobPublic:
    return JobPublic.from_row(row, position=app.jobs.position(row))


@router.post(
    "",
    status_code=201,
    summary="Submit a job",
    responses={200: {"model": JobPublic, "description": "The earlier job with this Idempotency-Key"}},
    **JOB,
)
def create_job(
    body: JobCreate,
    app: AppDep,
    identity: IdentityDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JobPublic:
    """Queue an operation. Repeating a request with the same `Idempotency-Key` returns the first job."""
    owner = identity.owner_id
    if body.safety_override and not (identity.user and identity.user.is_admin):
        raise Forbidden("only admins can override the content policy", code="admin_only", field="safety_override")
    row, created = app.submit(body.op, body.params, owner, idempotency_key, safety_override=body.safety_override)
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/jobs/{row.id}"
    return job_view(app, row)


@router.get("", summary="List your jobs", response_model=JobList, response_model_exclude_unset=True)
def list_jobs(
    app: AppDep, owner: OwnerDep, state: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> JobList:
    return JobList(jobs=[job_view(app, r) for r in app.jobs.list(owner, state=state, limit=limit)])


@router.get("/{job_id}", summary="A job's state, progress and result", **JOB)
def get_job(
    job_id: str,
    app: AppDep,
    owner: OwnerDep,
    wait: Annotated[float, Query(ge=0, le=60, description="Long-poll: wait up to this many seconds for the end")] = 0,
) -> JobPublic:
    """With `wait`, the answer comes as soon as the job ends (or when the wait runs out)."""
    if wait > 0:
        return job_view(app, app.jobs.wait(job_id, owner, timeout=wait, terminal_only=True))
    return job_view(app, app.jobs.get(job_id, owner))


@router.post("/{job_id}/cancel", summary="Cancel a queued or running job", **JOB)
def cancel_job(job_id: str, app: AppDep, owner: OwnerDep) -> JobPublic:
    return job_view(app, app.jobs.cancel(job_id, owner))


@router.post("/{job_id}/retry", status_code=201, summary="Run a failed or cancelled job again, as a new job", **JOB)
def retry_job(job_id: str, app: AppDep, owner: OwnerDep, response: Response) -> JobPublic:
    """Submits the job's operation with its stored parameters (seed and model as resolved the first time)
    through the same validation as `POST /api/v1/jobs`. The answer is the new job, with `retry_of` naming this one."""
    old = app.jobs.get(job_id, owner)  # another owner's job is 404, as everywhere
    if old.state not in ("failed", "cancelled"):
        raise Conflict(
            f"job {job_id!r} is {old.state}: only failed or cancelled jobs can be retried",
            code="job_not_retryable",
            field="job_id",
            ctx={"id": job_id, "state": old.state},
        )
    row, _ = app.submit(old.op, old.params, owner)
    response.headers["Location"] = f"/api/v1/jobs/{row.id}"
    return job_view(app, row).model_copy(update={"retry_of": job_id})


@router.get(
    "/{job_id}/preview",
    summary="The latest step preview (JPEG)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "JPEG"}},
)
def job_preview(job_id: str, app: AppDep, owner: OwnerDep) -> Response:
    """Polling this counts as following the job: its worker makes previews while someone looks."""
    row = app.jobs.get(job_id, owner)
    if not row.done:
        app.jobs.watch(job_id)
    if row.preview is None:
        raise NotFound("this job has no preview yet", code="job_no_preview", field="job_id")
    return Response(row.preview, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get(
    "/{job_id}/events",
    summary="Follow a job: server-sent events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "`event: progress` ... `event: done`"}},
)
async def job_events(job_id: str, request: Request, app: AppDep, owner: OwnerDep) -> StreamingResponse:
    """`event: progress` on every change (state, step, preview), then one `event: done` with the final job.
    While the stream is open the job counts as followed, so its worker makes step previews."""
    await run_in_threadpool(app.jobs.get, job_id, owner)  # 404 before the stream starts

    async def stream() -> AsyncIterator[str]:
        last: tuple[Any, ...] | None = None
        since = 0.0  # the first wait answers at once with the current state (None would wait for the end)
        watched = 0.0
        while not await request.is_disconnected():
            if time.monotonic() - watched >= WATCH_RENEW:
                await run_in_threadpool(app.jobs.watch, job_id)
                watched = time.monotonic()
            # Wakes at once on changes by this process's worker; a keep-alive comment after a silence.
            row = await run_waiting(request, app.jobs.wait, job_id, owner, timeout=WATCH_RENEW, since=since)
            since = row.updated_at
            # The same JSON as GET /api/v1/jobs/{id} answers (exclude_unset: no `retry_of`).
            view = job_view(app, row).model_dump(mode="json", exclude_unset=True)
            key = (row.state, row.step, row.preview_step, row.attempts, row.message)
            if row.done:
                yield f"event: done\ndata: {json.dumps(view, default=str)}\n\n"
                return
            if key != last:
                last = key
                yield f"event: progress\ndata: {json.dumps(view, default=str)}\n\n"
            else:
                yield ": keep-alive\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
