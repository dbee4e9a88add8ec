"""The job path around the model: progress off the op's thread, outputs stored and labelled while the next job runs,
labelled exports ready at completion, the job's own timings, and no wasted text-encoder pass. Tiny SD models."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel

from tests.test_generate import BASE, first, pixels, run
from zhike.core.context import RunContext
from zhike.core.registry import OperationDef
from zhike.services.container import Zhike
from zhike.services.jobs.executor import InProcessExecutor
from zhike.services.jobs.worker import Worker


class Watching(InProcessExecutor):
    """Records, per job, the thread the op ran on, when it started, and whether it is running now."""

    def __init__(self) -> None:
        self.thread: dict[str, threading.Thread] = {}
        self.started: dict[str, float] = {}
        self.running = False

    def execute(self, op: OperationDef, ctx: RunContext, params: BaseModel) -> BaseModel:
        self.thread[ctx.job_id] = threading.current_thread()
        self.started[ctx.job_id] = time.monotonic()
        self.running = True
        try:
            return super().execute(op, ctx, params)
        finally:
            self.running = False


def test_progress_is_written_off_the_ops_thread_in_batches(zhike: Zhike) -> None:
    ex = Watching()
    writes: list[tuple[threading.Thread, bool, int]] = []
    orig = zhike.jobs.report_progress

    def spy(*a: Any, **kw: Any) -> Any:
        writes.append((threading.current_thread(), ex.running, kw["step"]))
        return orig(*a, **kw)

    zhike.jobs.report_progress = spy  # type: ignore[method-assign]
    job, _ = zhike.submit("txt2img", {**BASE, "steps": 12}, "local")
    assert Worker(zhike, executor=ex).run_one(job.id)
    row = zhike.jobs.get(job.id)
    assert row.state == "succeeded" and row.step == row.total_steps == 12, "the last step is written"
    during = [thread for thread, running, _ in writes if running]
    assert during and ex.thread[job.id] not in during, "while the op runs, progress is written by another thread"
    assert len(writes) < 13, "fast steps are written in batches, not one write per step"


def test_the_next_job_runs_while_the_last_ones_outputs_are_stored(zhike: Zhike) -> None:
    """With a slow disk (0.4 s per output), job 2's sampling starts before job 1 is committed, and every job
    still commits its outputs exactly once, with the same pixels as when run alone."""
    alone = [pixels(zhike, first(run(zhike, "txt2img", {**BASE, "seed": s}))) for s in (1, 2, 3)]
    slow_put = zhike.assets.stage_image

    def slow(*a: Any, **kw: Any) -> Any:
        time.sleep(0.4)
        return slow_put(*a, **kw)

    zhike.assets.stage_image = slow  # type: ignore[method-assign]
    committed: dict[str, float] = {}
    orig = zhike.jobs.complete

    def complete(job_id: str, *a: Any, **kw: Any) -> bool:
        ok = orig(job_id, *a, **kw)
        committed[job_id] = time.monotonic()
        return ok

    zhike.jobs.complete = complete  # type: ignore[method-assign]
    jobs = [zhike.submit("txt2img", {**BASE, "seed": s}, "local")[0].id for s in (1, 2, 3)]
    ex = Watching()
    worker = Worker(zhike, executor=ex)
    t = threading.Thread(target=worker.run_forever, kwargs={"poll_seconds": 0.05})
    t.start()
    try:
        deadline = time.monotonic() + 60
        while len(committed) < 3:
            assert time.monotonic() < deadline, committed
            time.sleep(0.05)
    finally:
        worker.interrupt()
        t.join(timeout=30)
    assert ex.started[jobs[1]] < committed[jobs[0]], "job 2 started before job 1's output was stored"
    for jid, expected in zip(jobs, alone, strict=True):
        row = zhike.jobs.get(jid)
        assert row.state == "succeeded" and len(zhike.assets.by_job(jid)) == 1
        assert np.array_equal(pixels(zhike, first(row)), expected), "the same seed gives the same pixels"


def test_a_failed_store_fails_the_job_with_its_error(zhike: Zhike) -> None:
    def broken(*a: Any, **kw: Any) -> Any:
        raise OSError("disk full")

    zhike.assets.stage_image = broken  # type: ignore[method-assign]
    job, _ = zhike.submit("txt2img", BASE, "local")
    assert Worker(zhike).run_one(job.id)
    row = zhike.jobs.get(job.id)
    assert row.state == "failed" and "disk full" in row.error["message"]
    assert zhike.assets.by_job(job.id) == []


def test_the_job_records_its_stages_and_its_export_is_labelled_by_then(zhike: Zhike) -> None:
    row = run(zhike, "txt2img", {**BASE, "width": 256, "height": 256})
    t = row.timings or {}
    for stage in ("queue", "run", "load", "encode_prompt", "denoise", "decode", "store", "label", "commit"):
        assert stage in t and t[stage] >= 0, (stage, t)
    assert t["denoise"] > 0 and t["store"] >= t["label"] > 0
    # The labelled file was made on the output pool from the pixels: exporting it labels nothing more.
    asset = zhike.assets.get(first(row), owner_id=None)
    calls: list[str] = []
    orig = zhike.labels.label_image
    zhike.labels.label_image = lambda *a, **kw: calls.append("label") or orig(*a, **kw)  # type: ignore[method-assign]
    export = zhike.exports.file(asset)
    assert calls == []
    report = zhike.labels.verify(export.data, "image/png")
    assert report["implicit"]["status"] == "valid" and report["c2pa"]["status"] == "trusted"
    assert report["watermark"]["status"] == "valid"
    stored = np.asarray(Image.open(io.BytesIO(zhike.assets.read_bytes(asset))).convert("RGB"), np.int16)
    shown = np.asarray(Image.open(io.BytesIO(export.data)).convert("RGB"), np.int16)
    assert 0 < np.abs(stored - shown).mean() < 2, "the export carries the watermark; the stored pixels do not"


def test_the_same_prompt_is_encoded_once(zhike: Zhike, monkeypatch: pytest.MonkeyPatch) -> None:
    from zhike.backends import diffusion

    calls: list[str] = []
    real = diffusion.encode_prompts

    def counting(*a: Any, **kw: Any) -> Any:
        calls.append(a[2])
        return real(*a, **kw)

    monkeypatch.setattr(diffusion, "encode_prompts", counting)
    a = run(zhike, "txt2img", BASE)
    b = run(zhike, "txt2img", {**BASE, "seed": 5})
    run(zhike, "txt2img", {**BASE, "prompt": "a green pear"})
    assert calls == [BASE["prompt"], "a green pear"]
    assert not np.array_equal(pixels(zhike, first(a)), pixels(zhike, first(b)))
