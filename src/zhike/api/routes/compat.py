"""Shared by the compatible APIs (OpenAI images, A1111 `/sdapi/v1`), whose clients expect the image in the answer:
submit an operation through the same jobs as everything else, wait for it, and read its labelled files.

Errors name the client's own fields (`size`, `cfg_scale`), not Zhike's (`params.width`, `params.guidance`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from zhike.api.routes.jobs import take_follower_slot
from zhike.core.errors import ZhikeError
from zhike.core.rows import JobRow
from zhike.services.container import Zhike

WAIT_SECONDS = 900.0  # the longest a compatible call waits for its job before answering with where to follow it


class JobFailed(ZhikeError):
    status = 500
    code = "generation_failed"


def client_field(field: str, names: Mapping[str, str]) -> str:
    """Zhike's name of a field (`params.guidance`, `params.loras.0.name`) as the client calls it: the mapping's
    entry for it or for its nearest parent, else the field without `params.`."""
    parts = field.split(".")
    for end in range(len(parts), 0, -1):
        name = names.get(".".join(parts[:end]))
        if name is not None:
            return name
    return field.removeprefix("params.")


async def submit(app: Zhike, op: str, params: dict[str, Any], owner: str, names: Mapping[str, str]) -> JobRow:
    """Queue `op` like POST /api/v1/jobs does (validation, prepare, safety screening), off the event loop."""
    try:
        row, _ = await run_in_threadpool(app.submit, op, params, owner)
    except ZhikeError as e:
        if e.field:
            field = client_field(e.field, names)
            e.message = e.message.replace(e.field, field, 1)
            e.field = field
        raise
    return row


async def wait_done(request: Request, app: Zhike, job_id: str, owner: str, timeout: float = WAIT_SECONDS) -> JobRow:
    """The job once it ended (succeeded, failed or cancelled); a timeout is an error naming the job to follow. The
    wait holds no thread and one of the owner's follower slots, like `?wait=` (429 when all are taken)."""
    give_back = take_follower_slot(request, app, owner)
    try:
        gone = request.is_disconnected
        row = await app.jobs.wait_async(job_id, owner, timeout=timeout, terminal_only=True, gone=gone)
    finally:
        give_back()
    if not row.done:
        raise JobFailed(
            f"job {job_id} did not finish in {timeout:.0f} s (or the server is stopping); "
            f"follow it at /api/v1/jobs/{job_id}",
            code="generation_timeout",
            ctx={"id": job_id},
        )
    return row


def failure(job: JobRow) -> JobFailed:
    err = job.error or {"message": job.message or job.state}
    return JobFailed(f"generation {job.state}: {err.get('message')}")


def labelled_files(app: Zhike, job: JobRow, owner: str) -> list[bytes]:
    """The job's images as they leave Zhike (labelled exports), in order. Blocking: call it in a thread."""
    return [
        app.exports.file(app.assets.get(img["asset_id"], owner_id=owner)).data for img in (job.result or {})["images"]
    ]
