"""The durable queue: idempotency, leases, cancel, a worker process killed mid-job and a worker stopped mid-job
(exactly once either way)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import update

from tests.helpers.server import start_worker
from zhike.core.context import RunContext
from zhike.core.errors import Conflict
from zhike.core.registry import OperationDef
from zhike.services.container import Zhike
from zhike.services.db import jobs
from zhike.services.jobs.executor import InProcessExecutor
from zhike.services.jobs.worker import Worker

PARAMS = {"prompt": "a lamp", "width": 64, "height": 64, "steps": 3, "seed": 5, "model": "tiny"}


def wait_for(pred, timeout: float = 60.0, every: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def test_idempotency_key_returns_the_first_job(zhike: Zhike) -> None:
    a, created_a = zhike.submit("txt2img", PARAMS, "u1", idempotency_key="k1")
    b, created_b = zhike.submit("txt2img", PARAMS, "u1", idempotency_key="k1")
    assert created_a and not created_b and a.id == b.id
    with pytest.raises(Conflict):
        zhike.submit("txt2img", {**PARAMS, "seed": 6}, "u1", idempotency_key="k1")
    c, created_c = zhike.submit("txt2img", PARAMS, "u2", idempotency_key="k1")  # keys are per owner
    assert created_c and c.id != a.id


def test_a_job_is_claimed_by_one_worker_only(zhike: Zhike) -> None:
    job, _ = zhike.submit("txt2img", PARAMS, "u1")
    q = zhike.jobs
    first = q.claim("w1", lease_seconds=30, max_attempts=3)
    second = q.claim("w2", lease_seconds=30, max_attempts=3)
    assert first is not None and first.id == job.id and second is None


def test_lost_lease_discards_the_late_result(zhike: Zhike) -> None:
    job, _ = zhike.submit("txt2img", PARAMS, "u1")
    q = zhike.jobs
    assert q.claim("slow", lease_seconds=30, max_attempts=3)
    with zhike.engine.begin() as conn:  # the slow worker stops renewing: its lease runs out
        conn.execute(update(jobs).where(jobs.c.id == job.id).values(lease_expires_at=time.time() - 1))
    assert Worker(zhike, worker_id="fresh").run_one()
    staged = zhike.assets.stage_image(
        __import__("PIL.Image", fromlist=["Image"]).new("RGB", (8, 8)),
        owner_id="u1",
        job_id=job.id,
        op="txt2img",
        params={},
        seed=1,
        model="tiny",
    )
    assert q.complete(job.id, "slow", {"images": []}, [staged]) is False
    row = q.get(job.id)
    assert row.state == "succeeded" and row.attempts == 2
    assert len(zhike.assets.by_job(job.id)) == 1


def test_jobs_whose_workers_keep_dying_fail_with_a_reason(zhike: Zhike) -> None:
    job, _ = zhike.submit("txt2img", PARAMS, "u1")
    q = zhike.jobs
    for i in range(3):
        assert q.claim(f"w{i}", lease_seconds=0.01, max_attempts=3)
        time.sleep(0.02)
    assert q.claim("w9", lease_seconds=30, max_attempts=3) is None
    row = q.get(job.id)
    assert row.state == "failed" and row.error["code"] == "worker_lost"


def test_cancel_queued_and_running(zhike: Zhike) -> None:
    queued, _ = zhike.submit("txt2img", PARAMS, "u1")
    assert zhike.jobs.cancel(queued.id, "u1").state == "cancelled"
    assert Worker(zhike).run_one() is False  # nothing left to run

    long, _ = zhike.submit("txt2img", {**PARAMS, "steps": 150}, "u1")
    t = threading.Thread(target=Worker(zhike).run_one, args=(long.id,))
    t.start()
    wait_for(lambda: zhike.jobs.get(long.id).step >= 2)
    zhike.jobs.cancel(long.id, "u1")
    t.join(timeout=60)
    row = zhike.jobs.get(long.id)
    assert row.state == "cancelled" and row.step < 150
    assert zhike.assets.by_job(long.id) == []


def test_killed_worker_process_job_completes_exactly_once(zhike: Zhike, tmp_path: Path) -> None:
    z = zhike
    z.settings.lease_seconds = 2.0
    z.settings.heartbeat_seconds = 0.3
    job, _ = z.submit("txt2img", {**PARAMS, "steps": 150, "seed": 11}, "u1")
    proc = start_worker(z.settings.home, tmp_path / "worker.log", lease_seconds=2, heartbeat_seconds=0.3)
    try:
        wait_for(lambda: z.jobs.get(job.id).step >= 5, timeout=120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    dead = z.jobs.get(job.id)
    assert dead.state == "running" and dead.attempts == 1 and dead.step < 150
    # A new worker cannot take the job while the dead worker's lease is still valid, then it can.
    survivor = Worker(z, worker_id="survivor")
    wait_for(lambda: survivor.run_one(), timeout=30, every=0.2)
    row = z.jobs.get(job.id)
    assert row.state == "succeeded" and row.attempts == 2
    outputs = z.assets.by_job(job.id)
    assert len(outputs) == 1 and outputs[0].id == row.result["images"][0]["asset_id"]
    assert survivor.run_one() is False


def test_a_stopped_worker_hands_its_job_back_and_it_completes_once(zhike: Zhike) -> None:
    job, _ = zhike.submit("txt2img", {**PARAMS, "steps": 150}, "u1")
    worker = Worker(zhike, worker_id="stopping")
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    wait_for(lambda: zhike.jobs.get(job.id).step >= 2)
    worker.shutdown(timeout=30)
    assert not thread.is_alive()
    row = zhike.jobs.get(job.id)
    assert row.state == "queued" and row.lease_owner is None and row.step < 150
    assert row.attempts == 0, "an attempt interrupted on purpose is not counted against max_attempts"
    assert zhike.assets.by_job(job.id) == []
    assert Worker(zhike, worker_id="next").run_one()
    row = zhike.jobs.get(job.id)
    assert row.state == "succeeded" and row.attempts == 1 and row.message is None
    assert len(zhike.assets.by_job(job.id)) == 1


class Stuck(InProcessExecutor):
    """An op in a phase without steps (loading a model): it does not see the stop until `leave` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.leave = threading.Event()

    def execute(self, op: OperationDef, ctx: RunContext, params: BaseModel) -> BaseModel:
        self.entered.set()
        self.leave.wait(60)
        return super().execute(op, ctx, params)


def test_a_job_still_running_when_the_stop_time_is_up_is_handed_back_and_its_late_end_discarded(
    zhike: Zhike,
) -> None:
    job, _ = zhike.submit("txt2img", PARAMS, "u1")
    stuck = Stuck()
    worker = Worker(zhike, executor=stuck, worker_id="stuck")
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    assert stuck.entered.wait(60)
    started = time.monotonic()
    worker.shutdown(timeout=0.5)
    assert time.monotonic() - started < 2
    assert zhike.jobs.get(job.id).state == "queued"
    stuck.leave.set()  # the op goes on, finds it was stopped, and leaves the job alone
    thread.join(60)
    row = zhike.jobs.get(job.id)
    assert row.state == "queued" and row.attempts == 0 and zhike.assets.by_job(job.id) == []
    assert Worker(zhike, worker_id="next").run_one()
    row = zhike.jobs.get(job.id)
    assert row.state == "succeeded" and row.attempts == 1 and len(zhike.assets.by_job(job.id)) == 1


def test_waits_answer_at_once_when_the_queue_closes(zhike: Zhike) -> None:
    job, _ = zhike.submit("txt2img", PARAMS, "u1")
    threading.Timer(0.3, zhike.jobs.close).start()
    started = time.monotonic()
    row = zhike.jobs.wait(job.id, "u1", timeout=30, terminal_only=True)
    assert row.state == "queued" and time.monotonic() - started < 5
