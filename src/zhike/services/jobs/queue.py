"""The durable job queue: one row per job, claimed with a lease that the worker keeps renewing.

Crash safety: a worker that dies stops renewing; once its lease expires another worker claims the job
(attempts + 1). Every state change a worker makes is conditioned on still holding the lease, and a job's
assets are inserted in the same transaction that marks it succeeded, so a job completes exactly once. A worker that
stops on purpose (the server shutting down) hands its job back instead (`release`): queued again at once, and the
interrupted attempt is not counted against `max_attempts`.

Lanes: every job is in its op's lane (gpu, cpu, quick: core/registry.py) and a worker claims only from the lanes it
serves, so a seconds-long cutout never waits behind a minutes-long generation: each lane has its own worker(s).

Fairness, inside each lane: each owner may have at most `max_active_per_owner` jobs queued or running (all lanes
together), and a claim serves owners in turn (the owner with the fewest running jobs in the lane, then the one this
queue served longest ago in it), each owner's jobs oldest first, so one user's backlog never holds another's job back
for more than a job per owner ahead of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from zhike.core.errors import Conflict, NotFound, TooManyRequests
from zhike.core.registry import LANES, Lane
from zhike.core.rows import JobRow, StagedAsset
from zhike.services.assets.service import AssetService
from zhike.services.db import jobs, utcnow
from zhike.services.jobs.changes import Changes
from zhike.services.jobs.estimate import Estimate, Estimator
from zhike.services.jobs.wakeups import Wakeups

EXHAUSTED_CHECK_SECONDS = 2.0  # how often a claim also fails jobs whose workers died max_attempts times
WATCH_SECONDS = 20.0  # a follower's interest lasts this long unless renewed (event streams renew every 5 s)
ACTIVE = ("queued", "running")
# Asynchronous waiters read the job on this many threads (each read is one short query), however many wait.
READ_THREADS = 4
ASYNC_RECHECK = 0.5  # seconds: asynchronous waiters re-read this often (changes by other processes' workers)
FAIR_OWNERS = 4  # a claim tries the oldest job of this many owners, in turn order, before giving up
SERVED_MEMORY = 3600.0  # seconds an owner's last turn is remembered

T = TypeVar("T")


class JobQueue:
    def __init__(self, engine: Engine, *, max_active_per_owner: int | None = None) -> None:
        self.engine = engine
        self.max_active_per_owner = max_active_per_owner
        # Wakes the in-process workers of a job's lane right away instead of at their next poll.
        self.wakeups = Wakeups()
        # Told of every change this process makes to a job, so waiters need not poll hard.
        self.changes = Changes()
        # Set when the process shuts down: every wait answers at once, a worker takes no more jobs.
        self.closing = threading.Event()
        self._readers: ThreadPoolExecutor | None = None
        self._served: dict[tuple[str, str], float] = {}  # (lane, owner) -> when a claim here last gave them a turn
        self.estimator = Estimator(engine, lambda lane, owner: self._served.get((lane, owner), 0.0))
        self._exhausted_checked = 0.0

    def _notify(self, job_id: str) -> None:
        self.changes.notify(job_id)

    def close(self) -> None:
        """The process is shutting down: end every wait now (long polls, event streams) and stop the workers'
        polling. Callable from any thread (not from a signal handler: it takes a lock)."""
        self.closing.set()
        self.wakeups.notify(None)
        self.changes.notify(None)

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a short blocking call (one query) for an asynchronous caller on the queue's few threads, never on the
        shared request threads, however many callers wait."""
        if self._readers is None:
            self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="job-read")
        return await asyncio.get_running_loop().run_in_executor(self._readers, partial(fn, *args))

    async def wait_async(
        self,
        job_id: str,
        owner_id: str | None,
        *,
        timeout: float,
        since: float | None = None,
        terminal_only: bool = False,
        recheck: float = ASYNC_RECHECK,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> JobRow:
        """`wait` for the event loop: holds no thread while it waits (the job is read with `in_thread`). Also
        answers early when the process shuts down, or when `gone()` (an async callable: the client left) is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with self.changes.listen(job_id) as changed:
            while True:
                changed.clear()  # before the read: a change landing after it wakes the wait below
                row = await self.in_thread(self.get, job_id, owner_id)
                left = deadline - loop.time()
                if self._answer_now(row, since, terminal_only, left):
                    return row
                if gone is not None and await gone():
                    return row
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(recheck, left))

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
        Blocks the calling thread: request handlers use `wait_async`.
        """
        deadline = time.monotonic() + timeout
        while True:
            row = self.get(job_id, owner_id)
            left = deadline - time.monotonic()
            if self._answer_now(row, since, terminal_only, left):
                return row
            self.changes.wait(min(recheck, left))

    def _answer_now(self, row: JobRow, since: float | None, terminal_only: bool, left: float) -> bool:
        """A wait ends: the job is over, it changed since `since` (when any change counts), the time is up, or the
        queue is closing."""
        moved = since is not None and row.updated_at > since
        return row.done or (moved and not terminal_only) or left <= 0 or self.closing.is_set()

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
        lane: Lane = "cpu",
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
            "lane": lane,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "created_at": utcnow(),
            "updated_at": time.time(),
        }
        try:
            with self.engine.begin() as conn:
                if not self._insert_within_cap(conn, row):
                    raise self._too_many()
        except IntegrityError:
            # A concurrent request with the same key won the race.
            existing = self.by_idempotency(owner_id, idempotency_key or "")
            if existing is None:
                raise
            return self.same_request(existing, request_hash), False
        queued = self.get(row["id"])  # read before waking a worker: the answer is the job as it was queued
        self.wakeups.notify(lane)
        return queued, True

    def _insert_within_cap(self, conn: Any, row: dict[str, Any]) -> bool:
        """Insert the job unless its owner is at the cap; one statement, so concurrent submits cannot overshoot."""
        cap = self.max_active_per_owner
        if cap is None:
            conn.execute(insert(jobs).values(**row))
            return True
        active = (
            select(func.count())
            .select_from(jobs)
            .where(jobs.c.owner_id == row["owner_id"], jobs.c.state.in_(ACTIVE))
            .scalar_subquery()
        )
        values = select(*(literal(v, jobs.c[k].type).label(k) for k, v in row.items())).where(active < cap)
        return conn.execute(insert(jobs).from_select(list(row), values)).rowcount == 1

    def _too_many(self) -> TooManyRequests:
        cap = self.max_active_per_owner
        return TooManyRequests(
            f"you already have {cap} jobs queued or running: wait for some to finish (or cancel some) before "
            f"submitting more / 您已有 {cap} 个排队或运行中的任务，请等其中一些完成（或取消）后再提交",
            code="too_many_jobs",
            field="op",
            limit=cap,
        )

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
        """How many of its owner's own queued jobs are ahead of this one in its lane (None once it left the queue).

        Other owners' jobs are not counted: they are served in turn with this owner's (one job per owner with
        work, see `claim`), so they do not make the wait longer by their number, and their number is theirs."""
        if job.state != "queued":
            return None
        with self.engine.connect() as conn:
            q = (
                select(func.count())
                .select_from(jobs)
                .where(
                    jobs.c.owner_id == job.owner_id,
                    jobs.c.lane == job.lane,
                    jobs.c.state == "queued",
                    or_(
                        jobs.c.created_at < job.created_at,
                        and_(jobs.c.created_at == job.created_at, jobs.c.id < job.id),
                    ),
                )
            )
            return int(conn.execute(q).scalar_one())

    def estimate(self, job: JobRow) -> Estimate:
        """Seconds until the job starts and until it is done, from recent durations (None parts when unknown)."""
        return self.estimator.estimate(job)

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
        self._notify(job_id)
        return self.get(job_id, owner_id)

    # -- workers ---------------------------------------------------------------------------------------
    def claim(
        self,
        worker_id: str,
        *,
        lease_seconds: float,
        max_attempts: int,
        job_id: str | None = None,
        lanes: Iterable[str] | None = None,
    ) -> JobRow | None:
        """Take a runnable job (queued, or running with an expired lease) from `lanes` (default: all), the quicker
        lanes first; inside a lane owners in turn, each owner's oldest job first (`_in_turn`). With `job_id`, that
        job if it is runnable, whatever its lane (the CLI runs its own job)."""
        now = time.time()
        runnable = or_(jobs.c.state == "queued", and_(jobs.c.state == "running", jobs.c.lease_expires_at < now))
        with self.engine.connect() as conn:
            if job_id is not None:
                q = select(jobs.c.id, jobs.c.owner_id, jobs.c.lane).where(jobs.c.id == job_id, runnable)
                candidates = [tuple(r) for r in conn.execute(q.where(jobs.c.attempts < max_attempts))]
            else:
                served = set(LANES if lanes is None else lanes)
                candidates = []
                for lane in LANES:  # a worker of several lanes takes the shortest work first
                    if lane in served:
                        live = and_(runnable, jobs.c.attempts < max_attempts, jobs.c.lane == lane)
                        candidates += self._in_turn(conn, live, lane, now)
        # Failing jobs whose workers died max_attempts times is a write transaction: not before every claim, but
        # whenever the queue looks empty and every few seconds.
        if not candidates or now - self._exhausted_checked >= EXHAUSTED_CHECK_SECONDS:
            self._exhausted_checked = now
            self._fail_exhausted(now, max_attempts)
        for cid, owner, lane in candidates:
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
                        message=None,  # e.g. why an earlier attempt was handed back
                        partial_text=None,  # a new attempt writes its words anew
                    )
                )
            if res.rowcount == 1:
                self._took_turn(lane, owner, now)
                return self.get(cid)
        return None

    def _in_turn(self, conn: Any, runnable: Any, lane: str, now: float) -> list[tuple[str, str, str]]:
        """(job id, owner, lane) to try in `lane`, best first: the two oldest runnable jobs of each of the first
        FAIR_OWNERS owners in turn order. The turn goes to the owner with the fewest running jobs in the lane (in any
        process), then to the one this queue served longest ago in it (or never), then to the one whose oldest job
        waited longest."""
        rank = func.row_number().over(partition_by=jobs.c.owner_id, order_by=(jobs.c.created_at, jobs.c.id))
        oldest = select(jobs.c.id, jobs.c.owner_id, jobs.c.created_at, rank.label("rank")).where(runnable).subquery()
        rows = conn.execute(
            select(oldest.c.id, oldest.c.owner_id, oldest.c.created_at)
            .where(oldest.c.rank <= 2)
            .order_by(oldest.c.created_at, oldest.c.id)
        ).all()
        owners = list(dict.fromkeys(owner for _, owner, _ in rows))  # by their oldest job
        if len(owners) > 1:
            busy = select(jobs.c.owner_id, func.count()).where(
                jobs.c.state == "running", jobs.c.lease_expires_at >= now, jobs.c.lane == lane
            )
            running: dict[str, int] = {o: n for o, n in conn.execute(busy.group_by(jobs.c.owner_id))}
            owners.sort(key=lambda o: (running.get(o, 0), self._served.get((lane, o), 0.0)))  # stable: oldest last
        turn = {owner: i for i, owner in enumerate(owners[:FAIR_OWNERS])}
        picked = [(jid, owner, lane) for jid, owner, _ in rows if owner in turn]
        return sorted(picked, key=lambda c: turn[c[1]])  # stable: each owner's oldest first

    def _took_turn(self, lane: str, owner: str, now: float) -> None:
        self._served[(lane, owner)] = now
        if len(self._served) > 10_000:  # owners seen long ago need no memory: they are served as new ones
            self._served = {o: t for o, t in self._served.items() if now - t < SERVED_MEMORY}

    def release(self, job_id: str, worker_id: str) -> bool:
        """Hand a job this worker holds back to the queue (the worker is stopping): queued again at once, for any
        worker, and the attempt is not counted (it was interrupted on purpose, not lost). Its progress stays until
        the next attempt reports its own; its work folder (checkpoints) is kept for that attempt. False if the job
        was no longer this worker's (finished, or its lease lost)."""
        with self.engine.begin() as conn:
            res = conn.execute(
                update(jobs)
                .where(self._owned(job_id, worker_id))
                .values(
                    state="queued",
                    lease_owner=None,
                    lease_expires_at=None,
                    attempts=jobs.c.attempts - 1,
                    updated_at=time.time(),
                    message="interrupted: the server stopped; it runs again when a worker is back",
                )
            )
        self._notify(job_id)
        return res.rowcount == 1

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
        step: int | None,
        total: int,
        preview: bytes | None = None,
        preview_step: int | None = None,
        message: str | None = None,
        partial_text: str | None = None,
    ) -> tuple[bool, bool, bool]:
        """Store progress; returns (still_owned, cancel_requested, watched). Called from the worker's progress
        writer thread, never from the thread that runs the operation. `step` None: only the words written so far
        (`partial_text`, the whole text so far) changed."""
        values: dict[str, Any] = {"updated_at": time.time()}
        if step is not None:
            values |= {"step": step, "total_steps": total, "progress": round(step / total, 4) if total else 0.0}
        if partial_text is not None:
            values["partial_text"] = partial_text
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
        self._notify(job_id)
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
                    partial_text=None,  # the result holds the whole text
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
        self._notify(job_id)
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
        self._notify(job_id)
        return res.rowcount == 1
