"""Jobs: what GET/POST /api/v1/jobs... answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from zhike.api.schemas.common import Open, Out

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobError(Open):
    """Why a job failed, as the API's error bodies say it (code, message, field...)."""

    code: str
    type: str | None = None  # the error's class (absent in jobs that failed before it was recorded)
    message: str
    field: str | None = None
    fields: list[str] | None = None
    limit: Any = None
    kind: str | None = None
    ctx: dict[str, Any] | None = None


class JobOutput(Out):
    asset_id: str
    url: str
    thumb_url: str


class JobPublic(Out):
    id: str
    op: str
    op_version: int
    params: dict[str, Any] = Field(description="The operation's parameters as resolved at submission")
    state: JobState
    progress: float
    step: int
    total_steps: int
    message: str | None
    result: dict[str, Any] | None = Field(description="The operation's result (GET /api/v1/ops: result schema)")
    error: JobError | None
    attempts: int
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    idempotency_key: str | None
    has_preview: bool
    preview_step: int | None
    position: int | None = Field(description="Jobs ahead of it in the queue (queued jobs only)")
    preview_url: str | None
    outputs: list[JobOutput]
    retry_of: str | None = Field(None, description="Only in the answer to /retry: the job it repeats")


class JobList(Out):
    jobs: list[JobPublic]
