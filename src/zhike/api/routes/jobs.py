"""/api/v1/jobs: submit, read, follow (server-sent events, long polls), cancel, retry.

Following holds no thread: event streams and `?wait=` long polls wait on the event loop (`JobQueue.wait_async`),
each owner may hold `max_followers_per_owner` of them open at once, and all of them end when the server stops.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Receive, Scope, Send

from zhike.api.deps import AppDep, Forbidden, IdentityDep, OwnerDep
from zhike.api.schemas import JobList, JobPublic
from zhike.core.errors import Conflict, NotFound, TooManyRequests
from zhike.core.rows import JobRow
from zhike.services.container import Zhike

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
    return JobPublic.from_row(row, position=app.jobs.position(row), estimate=app.jobs.estimate(row))


def take_follower_slot(request: Request, app: Zhike, owner: str) -> Callable[[], None]:
    """Take one of the owner's follower slots (an event stream or a long poll) and return what gives it back; 429
    when all are taken. Counted on the event loop's thread only, so no lock."""
    state = request.app.state
    held: dict[str, int] | None = getattr(state, "followers", None)
    if held is None:
        held = state.followers = {}
    limit = app.settings.max_followers_per_owner
    if held.get(owner, 0) >= limit:
        raise TooManyRequests(
            f"at most {limit} event streams and long polls (?wait=) open at once per user: close some first",
            code="too_many_followers",
            field="wait",
            limit=limit,
        )
    held[owner] = held.get(owner, 0) + 1
    given_back = False

    def give_back() -> None:
        nonlocal given_back
        if not given_back:
            given_back = True
            held[owner] -= 1
            if not held[owner]:
                del held[owner]

    return give_back


class _Followed(StreamingResponse):
    """An event stream that gives its follower slot back however it ends (finished, client gone, server stopping),
    even when its body was never started."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


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
async def get_job(
    job_id: str,
    request: Request,
    app: AppDep,
    owner: OwnerDep,
    wait: Annotated[float, Query(ge=0, le=60, description="Long-poll: wait up to this many seconds for the end")] = 0,
) -> JobPublic:
    """With `wait`, the answer comes as soon as the job ends, or when the wait runs out or the server stops (the job
    as it is then). A user may hold `max_followers_per_owner` waits and event streams open at once (429 beyond)."""
    if wait <= 0:
        return await run_in_threadpool(lambda: job_view(app, app.jobs.get(job_id, owner)))
    give_back = take_follower_slot(request, app, owner)
    try:
        row = await app.jobs.wait_async(job_id, owner, timeout=wait, terminal_only=True, gone=request.is_disconnected)
        return await app.jobs.in_thread(job_view, app, row)
    finally:
        give_back()


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
    """`event: progress` on every change (state, step, preview, the words a words op wrote: `partial_text`), then
    one `event: done` with the final job.
    While the stream is open the job counts as followed, so its worker makes step previews. When the server stops,
    the stream ends without `done` (follow the job again, or long-poll it, once the server is back)."""
    await app.jobs.in_thread(app.jobs.get, job_id, owner)  # 404 before the stream starts
    give_back = take_follower_slot(request, app, owner)  # 429 before the stream starts; the response gives it back

    async def stream() -> AsyncIterator[str]:
        last: tuple[Any, ...] | None = None
        since = 0.0  # the first wait answers at once with the current state (None would wait for the end)
        watched = 0.0
        while not await request.is_disconnected() and not app.jobs.closing.is_set():
            if time.monotonic() - watched >= WATCH_RENEW:
                await app.jobs.in_thread(app.jobs.watch, job_id)
                watched = time.monotonic()
            # Wakes at once on changes by this process's worker; a keep-alive comment after a silence.
            row = await app.jobs.wait_async(job_id, owner, timeout=WATCH_RENEW, since=since)
            since = row.updated_at
            # The same JSON as GET /api/v1/jobs/{id} answers (exclude_unset: no `retry_of`).
            view = (await app.jobs.in_thread(job_view, app, row)).model_dump(mode="json", exclude_unset=True)
            key = (row.state, row.step, row.preview_step, row.attempts, row.message, len(row.partial_text or ""))
            if row.done:
                yield f"event: done\ndata: {json.dumps(view, default=str)}\n\n"
                return
            if key != last:
                last = key
                yield f"event: progress\ndata: {json.dumps(view, default=str)}\n\n"
            elif not app.jobs.closing.is_set():
                yield ": keep-alive\n\n"

    return _Followed(
        stream(),
        give_back,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
