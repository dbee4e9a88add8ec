"""Jobs: what GET/POST /api/v1/jobs... answer."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from zhike.api.schemas.common import ErrorInfo, Out, iso_utc
from zhike.core.rows import JobRow, JobState
from zhike.services.jobs.estimate import Estimate


class JobOutput(Out):
    asset_id: str
    url: str
    thumb_url: str

    @classmethod
    def of(cls, asset_id: str) -> JobOutput:
        return cls(
            asset_id=asset_id, url=f"/api/v1/assets/{asset_id}/file", thumb_url=f"/api/v1/assets/{asset_id}/thumb"
        )


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
    error: ErrorInfo | None
    attempts: int
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    idempotency_key: str | None
    has_preview: bool
    preview_step: int | None
    lane: str = Field(description="Which workers run it: gpu (diffusion), cpu (heavy CPU work), quick (seconds-long)")
    position: int | None = Field(description="Its owner's own jobs ahead of it in its lane (queued jobs only)")
    eta_start_seconds: float | None = Field(
        description="About how many seconds until it starts, from recent durations (queued jobs; None: unknown)"
    )
    eta_done_seconds: float | None = Field(
        description="About how many seconds until it is done (queued and running jobs; None: unknown)"
    )
    preview_url: str | None
    outputs: list[JobOutput]
    timings: dict[str, float] | None = Field(
        description="Seconds per stage once the job ended: queue, run, the op's phases (load, encode_prompt, "
        "denoise, decode...), store (encode, write and label the outputs; label alone too), outputs_wait, commit"
    )
    partial_text: str | None = Field(
        None,
        description="Words ops: the text written so far while the job runs (the result has the whole text once it "
        "succeeded; a cancelled or failed job keeps what was written)",
    )
    retry_of: str | None = Field(None, description="Only in the answer to /retry: the job it repeats")

    @classmethod
    def from_row(cls, row: JobRow, *, position: int | None, estimate: Estimate) -> JobPublic:
        """The job as the API shows it (`position`: JobQueue.position, `estimate`: JobQueue.estimate). `retry_of`
        stays unset: answers are sent with exclude_unset, so it appears only where a route sets it."""
        images = (row.result or {}).get("images") or []
        if not images and isinstance((row.result or {}).get("asset_id"), str):  # a TextResult or MediaResult
            extra = (row.result or {}).get("extra_asset_ids") or []  # a video's SRT, its voice track...
            images = [{"asset_id": a} for a in [row.result["asset_id"], *extra] if isinstance(a, str)]  # type: ignore[index]
        return cls(
            id=row.id,
            op=row.op,
            op_version=row.op_version,
            params=row.params,
            state=row.state,
            progress=row.progress,
            step=row.step,
            total_steps=row.total_steps,
            message=row.message,
            result=row.result,
            error=row.error,  # type: ignore[arg-type]  # validated into an ErrorInfo
            attempts=row.attempts,
            created_at=iso_utc(row.created_at),
            started_at=iso_utc(row.started_at),
            finished_at=iso_utc(row.finished_at),
            idempotency_key=row.idempotency_key,
            has_preview=row.preview is not None,
            preview_step=row.preview_step,
            lane=row.lane,
            position=position,
            eta_start_seconds=estimate.start_seconds,
            eta_done_seconds=estimate.done_seconds,
            preview_url=f"/api/v1/jobs/{row.id}/preview" if row.preview is not None else None,
            outputs=[JobOutput.of(i["asset_id"]) for i in images],
            timings=row.timings,
            partial_text=row.partial_text,
        )


class JobList(Out):
    jobs: list[JobPublic]
