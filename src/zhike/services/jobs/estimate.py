"""Queue estimates: about how many seconds until a job starts and until it is done, from recent durations.

A job's duration is claim to commit (started_at to finished_at) of succeeded jobs that ran in one attempt; an op's
expected duration is the median of its last WINDOW such jobs (else its lane's, else unknown). A queued job starts
when the jobs ahead of it in its lane are done: its owner's own earlier jobs, and as many of each other owner's as
get a turn before it (owners take turns, queue.py), laid onto the lane's running jobs (their remainder, from their
progress when they report steps) as onto that many workers. Unknown durations make the answer None, never a guess.
"""

from __future__ import annotations

import heapq
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, select

from zhike.core.rows import JobRow
from zhike.services.db import jobs, utcnow

WINDOW = 20  # recent succeeded jobs of an op whose durations count
HISTORY = timedelta(days=30)  # older jobs say little about this machine now
HISTORY_ROWS = 2000  # the most recent succeeded jobs read at all
DURATIONS_SECONDS = 10.0  # durations are read again at most this often
LANE_SECONDS = 1.0  # a lane's queue is read again at most this often (a list of 100 jobs reads it once)
TRUST_PROGRESS = 0.1  # from this fraction of its steps on, a running job's own pace predicts its end


@dataclass(frozen=True)
class Estimate:
    start_seconds: float | None  # None: started already, or unknown
    done_seconds: float | None  # None: over already, or unknown


@dataclass(frozen=True)
class _Lane:
    running: list[tuple[str, str, float, float]]  # (owner, op, progress, seconds since it started)
    queued: list[tuple[str, str, str]]  # (id, owner, op), oldest first


class Estimator:
    def __init__(self, engine: Engine, served: Callable[[str, str], float]) -> None:
        self.engine = engine
        self.served = served  # (lane, owner) -> when the queue last gave the owner a turn there (0: never)
        self._lock = threading.Lock()
        self._durations: tuple[float, dict[str, float], dict[str, float]] = (-1e9, {}, {})
        self._lanes: dict[str, tuple[float, _Lane]] = {}

    def durations(self) -> tuple[dict[str, float], dict[str, float]]:
        """(op -> median seconds, lane -> median seconds) over recent succeeded single-attempt jobs."""
        now = time.monotonic()
        with self._lock:
            read_at, by_op, by_lane = self._durations
        if now - read_at < DURATIONS_SECONDS:
            return by_op, by_lane
        q = (
            select(jobs.c.op, jobs.c.lane, jobs.c.started_at, jobs.c.finished_at)
            .where(
                jobs.c.state == "succeeded",
                jobs.c.created_at > utcnow() - HISTORY,
                jobs.c.attempts == 1,
                jobs.c.started_at.is_not(None),
                jobs.c.finished_at.is_not(None),
            )
            .order_by(jobs.c.finished_at.desc())
            .limit(HISTORY_ROWS)
        )
        ops: dict[str, list[float]] = defaultdict(list)
        lanes: dict[str, list[float]] = defaultdict(list)
        with self.engine.connect() as conn:
            for op, lane, started, finished in conn.execute(q):
                seconds = max(0.0, (finished - started).total_seconds())
                if len(ops[op]) < WINDOW:
                    ops[op].append(seconds)
                if len(lanes[lane]) < WINDOW:
                    lanes[lane].append(seconds)
        by_op = {k: statistics.median(v) for k, v in ops.items()}
        by_lane = {k: statistics.median(v) for k, v in lanes.items()}
        with self._lock:
            self._durations = (now, by_op, by_lane)
        return by_op, by_lane

    def _lane(self, lane: str) -> _Lane:
        now = time.monotonic()
        with self._lock:
            cached = self._lanes.get(lane)
        if cached is not None and now - cached[0] < LANE_SECONDS:
            return cached[1]
        live = time.time()
        at = utcnow()
        with self.engine.connect() as conn:
            running = [
                (owner, op, progress, max(0.0, (at - started).total_seconds()) if started else 0.0)
                for owner, op, progress, started in conn.execute(
                    select(jobs.c.owner_id, jobs.c.op, jobs.c.progress, jobs.c.started_at).where(
                        jobs.c.lane == lane, jobs.c.state == "running", jobs.c.lease_expires_at >= live
                    )
                )
            ]
            queued = [
                (jid, owner, op)
                for jid, owner, op in conn.execute(
                    select(jobs.c.id, jobs.c.owner_id, jobs.c.op)
                    .where(jobs.c.lane == lane, jobs.c.state == "queued")
                    .order_by(jobs.c.created_at, jobs.c.id)
                )
            ]
        snapshot = _Lane(running, queued)
        with self._lock:
            self._lanes[lane] = (now, snapshot)
        return snapshot

    def estimate(self, job: JobRow) -> Estimate:
        if job.state not in ("queued", "running"):
            return Estimate(None, None)
        by_op, by_lane = self.durations()

        def expected(op: str) -> float | None:
            return by_op.get(op, by_lane.get(job.lane))

        if job.state == "running":
            elapsed = max(0.0, (utcnow() - job.started_at).total_seconds()) if job.started_at else 0.0
            return Estimate(None, _remainder(expected(job.op), job.progress, elapsed))
        lane = self._lane(job.lane)
        ahead = _ahead(lane, job, lambda owner: self.served(job.lane, owner))
        if ahead is None:  # it left the queue since the lane was read: the next read tells
            return Estimate(None, None)
        free = [_remainder(expected(op), progress, elapsed) for _, op, progress, elapsed in lane.running]
        durations = [expected(op) for op in ahead]
        if any(d is None for d in (*free, *durations)):
            return Estimate(None, None)
        slots = [f for f in free if f is not None] or [0.0]  # no job running: a worker takes it now
        heapq.heapify(slots)
        for d in durations:
            heapq.heappush(slots, heapq.heappop(slots) + (d or 0.0))
        start = slots[0]
        own = expected(job.op)
        return Estimate(round(start, 1), round(start + own, 1) if own is not None else None)


def _remainder(expected: float | None, progress: float, elapsed: float) -> float | None:
    """Seconds a running job has left: from its own pace once it reported enough steps, else from `expected`."""
    if progress >= TRUST_PROGRESS:
        return max(0.0, elapsed / progress - elapsed)
    return None if expected is None else max(0.0, expected - elapsed)


def _ahead(lane: _Lane, job: JobRow, served: Callable[[str], float]) -> list[str] | None:
    """The ops of the queued jobs that start before `job`: its owner's earlier ones (k of them), and of every other
    owner the first k (one per round of turns), plus one more if that owner has the turn before `job`'s owner in the
    last round (as queue.py `_in_turn` orders owners: fewer jobs running in the lane, served longer ago, older next
    job). None when `job` is not queued in the lane."""
    queued = lane.queued
    running: dict[str, int] = defaultdict(int)
    for owner, *_ in lane.running:
        running[owner] += 1
    ids = [jid for jid, _, _ in queued]
    if job.id not in ids:
        return None
    me = ids.index(job.id)
    mine = [op for jid, owner, op in queued[:me] if owner == job.owner_id]
    k = len(mine)
    others: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for i, (_, owner, op) in enumerate(queued):
        if owner != job.owner_id:
            others[owner].append((i, op))
    ahead: list[str] = list(mine)
    for owner, theirs in others.items():
        ahead += [op for _, op in theirs[:k]]
        turn = (running[owner], served(owner), theirs[k][0]) if len(theirs) > k else None
        if turn is not None and turn < (running[job.owner_id], served(job.owner_id), me):
            ahead.append(theirs[k][1])
    return ahead
