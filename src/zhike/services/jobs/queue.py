"""The durable job queue: one row per job, claimed with a lease that the worker keeps renewing.

Crash safety: a worker that dies stops renewing; once its lease expires another worker claims the job
(attempts + 1). Every state change a worker makes is conditioned on still holding the lease, and a job's
assets are inserted in the same transaction that marks it succeeded, so a job completes exactly once.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from zhike.core.errors import Conflict, NotFound
from zhike.core.rows import JobRow, StagedAsset
from zhike.services.assets.service import AssetService
from zhike.services.db import jobs, utcnow

EXHAUSTED_CHECK_SECONDS = 2.0  # how often a claim also fails jobs whose workers died max_attempts times
WATCH_SECONDS = 20.0  # a follower's interest lasts this long unless renewed (event streams renew every 5 s)


class JobQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Wakes an in-process worker right away instead of waiting for its next poll.
        self.wakeup = threading.Event()
        # Notified on every change a worker of this process makes, so waiters need not poll hard.
        self.changed = threading.Condition()
        self._exhausted_checked = 0.0

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait(
        self,
        job_id: str,
        owner_id: str | None,
        *,
        timeout: float,
        since: float | None = None,
        terminal_only: bool = False,
        recheck: float = 0.25,
    ) -> JobRow:
        """Return the job once it changed after `since` (or reached a terminal state), or at the timeout.

        Changes by this process's workers wake the waiter at once; other processes' are seen within `recheck`.
        """
        deadline = time.monotonic() + timeout
        while True:
            row = self.get(job_id, owner_id)
            changed = since is not None and row.updated_at > since
            left = deadline - time.monotonic()
            if row.done or (changed and not terminal_only) or left <= 0:
                return row
            with self.changed:
                self.changed.wait(min(recheck, left))

    # -- clients ---------------------------------------------------------------------------------------
    def submit(
        self,
        *,
        op: str,
        op_version: int,
        params: dict[str, Any],
        owner_id: str,
        request_hash: str,
        idempotency_key: str | None = None,
    ) -> tuple[JobRow, bool]:
        """Queue a job. With an idempotency key, a repeat of the same request returns the first job.

        `request_hash` identifies the request as the client sent it (before seeds and defaults were resolved),
        so a retry that leaves the seed empty matches the first job instead of drawing a new seed.
        """
        if idempotency_key is not None:
            existing = self.by_idempotency(owner_id, idempotency_key)
            if existing is not None:
                return self.same_request(existing, request_hash), False
        row = {
            "id": secrets.token_hex(8),
            "owner_id": owner_id,
            "op": op,
            "op_version": op_version,
            "params": params,
            "state": "queued",
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "created_at": utcnow(),
            "updated_at": time.time(),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(jobs).values(**row))
        except IntegrityError:
            # A concurrent request with the same key won the race.
            existing = self.by_idempotency(owner_id, idempotency_key or "")
            if existing is None:
                raise
            return self.same_request(existing, request_hash), False
        queued = self.get(row["id"])  # read before waking a worker: the answer is the job as it was queued
        self.wakeup.set()
        return queued, True

    @staticmethod
    def same_request(existing: JobRow, request_hash: str) -> JobRow:
        """The existing job if it came from the same request; 409 if the key was used for another."""
        if existing.request_hash != request_hash:
            raise Conflict(
                "this Idempotency-Key was already used for a different request",
                code="idempotency_conflict",
                field="Idempotency-Key",
            )
        return existing

    def by_idempotency(self, owner_id: str, key: str) -> JobRow | None:
        with self.engine.connect() as conn:
            q = select(jobs).where(jobs.c.owner_id == owner_id, jobs.c.idempotency_key == key)
            row = conn.execute(q).mappings().first()
        return JobRow.from_row(row) if row else None

    def get(self, job_id: str, owner_id: str | None = None) -> JobRow:
        cond = jobs.c.id == job_id
        if owner_id is not None:
            cond = and_(cond, jobs.c.owner_id == owner_id)
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(cond)).mappings().first()
        if row is None:
            raise NotFound(f"job {job_id!r} not found", code="job_not_found", field="job_id", ctx={"id": job_id})
        return JobRow.from_row(row)

    def list(self, owner_id: str, *, state: str | None = None, limit: int = 50) -> list[JobRow]:
        q = select(jobs).where(jobs.c.owner_id == owner_id)
        if state:
            q = q.where(jobs.c.state == state)
        q = q.order_by(jobs.c.created_at.desc()).limit(max(1, min(limit, 500)))
        with self.engine.connect() as conn:
            return [JobRow.from_row(r) for r in conn.execute(q).mappings()]

    def position(self, job: JobRow) -> int | None:
        """How many queued jobs are ahead of this one (None once it left the queue)."""
        if job.state != "queued":
            return None
        with self.engine.connect() as conn:
            q = (
                select(func.count())
                .select_from(jobs)
                .where(jobs.c.state == "queued", jobs.c.created_at < job.created_at)
            )
            return int(conn.execute(q).scalar_one())

    def cancel(self, job_id: str, owner_id: str) -> JobRow:
        self.get(job_id, owner_id)  # 404 for another owner's job
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == "queued")
                .values(
                    state="cancelled",
                    finished_at=utcnow(),
                    updated_at=now,
                    message="cancelled before it started",
                )
            )
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == "running")
                .values(cancel_requested=True, updated_at=now)
            )
        self._notify()
        return self.get(job_id, owner_id)

    # -- workers ---------------------------------------------------------------------------------------
    def claim(
        self, worker_id: str, *, lease_seconds: float, max_attempts: int, job_id: str | None = None
    ) -> JobRow | None:
        """Take the oldest runnable job (queued, or running with an expired lease)."""
        now = time.time()
        runnable = or_(jobs.c.state == "queued", and_(jobs.c.state == "running", jobs.c.lease_expires_at < now))
        with self.engine.connect() as conn:
            q = select(jobs.c.id).where(runnable, jobs.c.attempts < max_attempts)
            if job_id is not None:
                q = q.where(jobs.c.id == job_id)
            candidates = [r[0] for r in conn.execute(q.order_by(jobs.c.created_at).limit(8))]
        # Failing jobs whose workers died max_attempts times is a write transaction: not before every claim, but
        # whenever the queue looks empty and every few seconds.
        if not candidates or now - self._exhausted_checked >= EXHAUSTED_CHECK_SECONDS:
            self._exhausted_checked = now
            self._fail_exhausted(now, max_attempts)
        for cid in candidates:
            # Optimistic claim: the WHERE repeats the runnable test, so only one worker's UPDATE matches.
            with self.engine.begin() as conn:
                res = conn.execute(
                    update(jobs)
                    .where(jobs.c.id == cid, runnable)
                    .values(
                        state="running",
                        lease_owner=worker_id,
                        lease_expires_at=now + lease_seconds,
                        attempts=jobs.c.attempts + 1,
                        started_at=func.coalesce(jobs.c.started_at, utcnow()),
                        updated_at=now,
                    )
                )
            if res.rowcount == 1:
                return self.get(cid)
        return None

    def _fail_exhausted(self, now: float, max_attempts: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(
                    jobs.c.state == "running",
                    jobs.c.lease_expires_at < now,
                    jobs.c.attempts >= max_attempts,
                )
                .values(
                    state="failed",
                    finished_at=utcnow(),
                    updated_at=now,
                    lease_owner=None,
                    error={
                        "code": "worker_lost",
                        "message": f"the worker running this job stopped {max_attempts} times; giving up",
                    },
                )
            )

    def _owned(self, job_id: str, worker_id: str) -> Any:
        return and_(jobs.c.id == job_id, jobs.c.lease_owner == worker_id, jobs.c.state == "running")

    def heartbeat(self, job_id: str, worker_id: str, lease_seconds: float) -> bool:
        """Renew the lease; False means another worker owns the job now (stop working on it)."""
        now = time.time()
        with self.engine.begin() as conn:
            res = conn.execute(
                update(jobs).where(self._owned(job_id, worker_id)).values(lease_expires_at=now + lease_seconds)
            )
        return res.rowcount == 1

    def report_progress(
        self,
        job_id: str,
        worker_id: str,
        *,
        step: int,
        total: int,
        preview: bytes | None = None,
        preview_step: int | None = None,
        message: str | None = None,
    ) -> tuple[bool, bool, bool]:
        """Store progress; returns (still_owned, cancel_requested, watched). Called from the worker's progress
        writer thread, never from the thread that runs the operation."""
        values: dict[str, Any] = {
            "step": step,
            "total_steps": total,
            "updated_at": time.time(),
            "progress": round(step / total, 4) if total else 0.0,
        }
        if preview is not None:
            values |= {"preview": preview, "preview_step": step if preview_step is None else preview_step}
        if message is not None:
            values["message"] = message
        with self.engine.begin() as conn:
            res = conn.execute(update(jobs).where(self._owned(job_id, worker_id)).values(**values))
            if res.rowcount != 1:
                return False, False, False
            q = select(jobs.c.cancel_requested, jobs.c.watched_until).where(jobs.c.id == job_id)
            cancel, watched_until = conn.execute(q).one()
        self._notify()
        return True, bool(cancel), watched_until is not None and watched_until > time.time()

    def watch(self, job_id: str, seconds: float = WATCH_SECONDS) -> None:
        """Someone follows this job (an event stream, preview polls): its worker makes step previews until
        `seconds` from now. Followers renew it while they stay."""
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(watched_until=time.time() + seconds))

    def complete(
        self,
        job_id: str,
        worker_id: str,
        result: dict[str, Any],
        staged: list[StagedAsset],
        timings: dict[str, float] | None = None,
    ) -> bool:
        """Mark succeeded and insert the outputs, atomically; False if the lease was lost meanwhile."""
        with self.engine.begin() as conn:
            res = conn.execute(
                update(jobs)
                .where(self._owned(job_id, worker_id))
                .values(
                    state="succeeded",
                    result=result,
                    progress=1.0,
                    finished_at=utcnow(),
                    updated_at=time.time(),
                    lease_owner=None,
                    message=None,
                    timings=timings,
                )
            )
            if res.rowcount != 1:
                return False
            AssetService.commit_staged(conn, staged)
        self._notify()
        return True

    def record_timings(self, job_id: str, timings: dict[str, float]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(timings=timings))

    def finish(
        self,
        job_id: str,
        worker_id: str,
        *,
        state: str,
        error: dict[str, Any] | None = None,
        message: str | None = None,
        timings: dict[str, float] | None = None,
    ) -> bool:
        assert state in ("failed", "cancelled")
        with self.engine.begin() as conn:
            res = conn.execute(
                update(jobs)
                .where(self._owned(job_id, worker_id))
                .values(
                    state=state,
                    error=error,
                    message=message,
                    finished_at=utcnow(),
                    updated_at=time.time(),
                    lease_owner=None,
                    timings=timings,
                )
            )
        self._notify()
        return res.rowcount == 1
