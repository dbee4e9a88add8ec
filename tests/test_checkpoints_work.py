"""A job's work folder (core/work.py, `ctx.work`): checkpoints round-trip across attempts, writes are atomic, keys are
safe file names, the worker removes the folder when the job succeeds or is cancelled (and keeps it when it failed or
another worker holds the job), old folders are swept, and a staged output restages from its record.

(tests/test_checkpoints.py is about model checkpoint files.)"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import BaseModel
from sqlalchemy import update

from tests.conftest import make_settings
from tests.helpers.images import upload
from zhike.core import files
from zhike.core.context import RunContext
from zhike.core.errors import InvalidInput, JobCancelled
from zhike.core.registry import OperationDef
from zhike.core.work import JobWork, sweep
from zhike.services.container import Zhike
from zhike.services.db import jobs
from zhike.services.jobs.worker import Worker

CARD = {
    "id": "tiny_card",
    "name": {"zh": "卡", "en": "Card"},
    "width": 64,
    "height": 64,
    "layers": [{"type": "text", "text": "{{name}}", "box": [0, 0, 64, 64], "font_size": 12}],
}


@pytest.fixture
def z(tmp_path: Path) -> Iterator[Zhike]:
    app = Zhike(make_settings(tmp_path / "home"))
    yield app
    app.engine.dispose()


# -- the store -----------------------------------------------------------------------------------------------------


def test_records_and_failures_round_trip_into_a_later_attempt(tmp_path: Path) -> None:
    work = JobWork(tmp_path / "work", "job1")
    assert not work.path.exists()  # nothing on disk until the op uses it
    assert work.done("a") is None and work.error("a") is None and work.keys() == []
    assert not work.path.exists()
    work.record("00002-taobao", {"asset": {"id": "x1", "n": 2}, "text": "青花瓷"})
    work.record("00001-taobao", {"asset": {"id": "x0"}})
    work.failed("00003-taobao", "required value is empty / 必填")
    assert work.dir == tmp_path / "work" / "job1" and work.dir.is_dir()

    again = JobWork(tmp_path / "work", "job1")  # the next attempt, in another process
    assert again.done("00002-taobao") == {"asset": {"id": "x1", "n": 2}, "text": "青花瓷"}
    assert again.done("00003-taobao") is None and again.error("00003-taobao") == "required value is empty / 必填"
    assert again.error("00001-taobao") is None
    assert again.keys() == ["00001-taobao", "00002-taobao"] and again.failed_keys() == ["00003-taobao"]
    again.record("00003-taobao", {"ok": True})  # done at last: the failure no longer counts
    assert work.error("00003-taobao") is None and work.done("00003-taobao") == {"ok": True}
    assert work.failed_keys() == []
    assert JobWork(tmp_path / "work", "job2").keys() == []  # folders are per job
    with pytest.raises(TypeError):
        work.record("k", ["not", "an", "object"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key", ["../x", "..", "a/b", "a\\b", "", ".hidden", "-x", "x.err", "x.json", "名字", "a b", "k" * 129, "x\0"]
)
def test_keys_must_be_safe_file_names(tmp_path: Path, key: str) -> None:
    work = JobWork(tmp_path / "work", "job1")
    for call in (lambda: work.record(key, {}), lambda: work.failed(key, "e"), lambda: work.done(key)):
        with pytest.raises(ValueError, match="bad work key"):
            call()
    assert not (tmp_path / "x").exists() and not (tmp_path / "work").exists()
    with pytest.raises(ValueError, match="bad job id"):
        JobWork(tmp_path / "work", key)


def test_a_half_written_record_is_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = JobWork(tmp_path / "work", "job1")
    work.record("k", {"v": 1})
    # A writer that dies after writing part of the temporary file and before the rename:
    real_replace = os.replace

    def crash(src: str, dst: Path) -> None:
        Path(src).write_bytes(b'{"v": 2, "asset": {"id": "hal')
        raise KeyboardInterrupt  # like a kill: not an error anyone handles

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        work.record("k", {"v": 2})
    with pytest.raises(KeyboardInterrupt):
        work.record("new", {"v": 3})
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert work.done("k") == {"v": 1} and work.done("new") is None and work.keys() == ["k"]
    # A SIGKILL leaves its temporary file behind: it is never taken for a record.
    (work.dir / ".tmp-abc123").write_bytes(b'{"v": 9')
    (work.dir / ".tmp-def.json").write_bytes(b'{"v": 9}')
    assert work.keys() == ["k"] and work.failed_keys() == [] and work.done("k") == {"v": 1}
    # A record damaged outside Zhike (a disk fault) counts as not done: the op makes it again.
    (work.dir / "bad.json").write_bytes(b"\x00\x00")
    (work.dir / "list.json").write_text("[1, 2]")
    assert work.done("bad") is None and work.done("list") is None


def test_removed_folder_stays_removed(tmp_path: Path) -> None:
    work = JobWork(tmp_path / "work", "job1")
    work.record("k", {"v": 1})
    work.remove()
    assert not work.path.exists()
    work.record("late", {"v": 2})  # a straggling thread of the finished job
    work.failed("late2", "x")
    assert not work.path.exists() and work.keys() == []


def test_old_folders_are_swept_when_a_job_opens_its_own(tmp_path: Path) -> None:
    root = tmp_path / "work"
    old, fresh = JobWork(root, "old", keep_seconds=3600), JobWork(root, "fresh", keep_seconds=3600)
    old.record("k", {"v": 1})
    fresh.record("k", {"v": 1})
    resumed = JobWork(root, "resumed", keep_seconds=3600)
    resumed.record("k", {"v": 1})
    week_ago = time.time() - 7 * 24 * 3600
    for d in (old.path, resumed.path):
        os.utime(d, (week_ago, week_ago))
    (root / "stray-file").write_text("not a job folder")
    os.utime(root / "stray-file", (week_ago, week_ago))

    # The old job is retried after a week: opening its folder makes it fresh, so it is not swept...
    retry = JobWork(root, "resumed", keep_seconds=3600)
    assert retry.done("k") == {"v": 1}  # reading alone does not open (nor sweep)
    assert retry.dir.is_dir() and retry.done("k") == {"v": 1}
    assert not old.path.exists()  # ...while the untouched one went
    assert fresh.done("k") == {"v": 1} and (root / "stray-file").exists()
    assert sweep(root, 3600) == 0  # everything left is fresh
    assert sweep(root, 1e-9, keep="fresh") == 1 and fresh.path.exists() and not retry.path.exists()
    assert sweep(tmp_path / "nowhere", 1) == 0


# -- the worker: who removes the folder ----------------------------------------------------------------------------


class Done(BaseModel):
    ok: bool = True


End = Callable[[Zhike, RunContext], BaseModel]


class Scripted:
    """An executor that records a checkpoint, then ends the way the test says."""

    def __init__(self, z: Zhike, end: End) -> None:
        self.z, self.end = z, end
        self.work: JobWork | None = None

    def execute(self, op: OperationDef, ctx: RunContext, params: BaseModel) -> BaseModel:
        self.work = ctx.work
        ctx.work.record("step-1", {"v": 1})
        return self.end(self.z, ctx)


def submit(z: Zhike) -> str:
    job, _ = z.submit("batch_design", {"template_json": CARD, "rows": [{"name": "a"}]}, "u1")
    return job.id


def raise_(e: BaseException) -> Any:
    raise e


def steal(z: Zhike, ctx: RunContext) -> BaseModel:
    with z.engine.begin() as conn:  # another worker took the job over (this one's lease had run out)
        conn.execute(update(jobs).where(jobs.c.id == ctx.job_id).values(lease_owner="other-worker"))
    return Done()


@pytest.mark.parametrize(
    ("end", "state", "kept"),
    [
        (lambda z, ctx: Done(), "succeeded", False),
        (lambda z, ctx: raise_(JobCancelled("cancelled by the user")), "cancelled", False),
        (lambda z, ctx: raise_(InvalidInput("bad row", field="params.rows")), "failed", True),
        (lambda z, ctx: raise_(RuntimeError("boom")), "failed", True),
        (steal, "running", True),
    ],
    ids=["succeeded", "cancelled", "failed", "crashed", "lease-lost"],
)
def test_the_worker_removes_the_folder_only_when_the_job_is_over_and_ours(
    z: Zhike, end: End, state: str, kept: bool, caplog: pytest.LogCaptureFixture
) -> None:
    jid = submit(z)
    ex = Scripted(z, end)
    assert Worker(z, executor=ex).run_one(jid)
    assert z.jobs.get(jid).state == state
    if end is steal:
        assert "lease lost before completion" in caplog.text
    assert ex.work is not None and ex.work.path == z.settings.work_dir / jid
    assert ex.work.path.is_dir() is kept
    if kept:  # a failed job's checkpoints stay to look into, until the sweep; a taken-over job's are the new owner's
        assert JobWork(z.settings.work_dir, jid).done("step-1") == {"v": 1}


def test_keep_work_keeps_the_folder_of_a_succeeded_job(z: Zhike) -> None:
    z.settings.keep_work = True
    jid = submit(z)
    assert Worker(z, executor=Scripted(z, lambda z, ctx: Done())).run_one(jid)
    assert z.jobs.get(jid).state == "succeeded"
    assert JobWork(z.settings.work_dir, jid).keys() == ["step-1"]


def test_the_worker_sweeps_with_the_configured_retention(z: Zhike) -> None:
    z.settings.work_keep_seconds = 60
    stale = JobWork(z.settings.work_dir, "stale")
    stale.record("k", {"v": 1})
    os.utime(stale.path, (time.time() - 120, time.time() - 120))
    jid = submit(z)
    assert Worker(z, executor=Scripted(z, lambda z, ctx: raise_(RuntimeError("boom")))).run_one(jid)
    assert not stale.path.exists() and (z.settings.work_dir / jid).is_dir()


# -- staged outputs ------------------------------------------------------------------------------------------------


def test_a_staged_output_restages_from_its_record(z: Zhike) -> None:
    jid = submit(z)
    ctx = RunContext(
        job_id=jid,
        owner_id="u1",
        op="batch_design",
        params={},
        settings=z.settings,
        models=z.models,
        assets=z.assets,
        sink=lambda step, total, preview: (True, False),
        work=JobWork(z.settings.work_dir, jid),
    )
    staged = z.assets.stage_image(
        Image.new("RGB", (32, 24), "teal"),
        owner_id="u1",
        job_id=jid,
        op="batch_design",
        params={"row": 1},
        seed=None,
        model=None,
    )
    ctx.record_staged("00001-template", staged, width=32, note="第一行")
    assert ctx.restage("nothing") is None
    # A later attempt, in another process: a fresh context over the same folder.
    later = dataclasses.replace(ctx, work=JobWork(z.settings.work_dir, jid), staged=[])
    restored = later.restage("00001-template")
    assert restored is not None
    item, data = restored
    assert item.row == staged.row and data == {"width": 32, "note": "第一行"}
    # held in memory like a fresh output (the commit can put the file back); batch_design's are its own: not held
    assert item.data == staged.data and later.restage("00001-template", keep_bytes=False)[0].data is None  # type: ignore[index]
    # Its row commits like a fresh one: the job's output appears once.
    later.staged.append(item)
    assert z.jobs.complete(jid, "nobody", {}, later.staged) is False  # not claimed: nothing is written
    claimed = z.jobs.claim("w", lease_seconds=30, max_attempts=3, job_id=jid)
    assert claimed is not None and z.jobs.complete(jid, "w", {}, later.staged)
    assert [a.id for a in z.assets.by_job(jid)] == [staged.row.id]
    # Without its file in the blob store there is nothing to restage: the op makes it again.
    z.assets.blobs.path_for(staged.row.sha256, staged.row.mime).unlink()
    assert later.restage("00001-template") is None


# -- an op that resumes: resize_design, size by size ---------------------------------------------------------------


class Killed(BaseException):
    """The worker process dies (nothing catches it)."""


class DiesAtStep:
    def __init__(self, step: int) -> None:
        self.step = step

    def execute(self, op: OperationDef, ctx: RunContext, params: BaseModel) -> BaseModel:
        sink = ctx.sink

        def dying(step: int, total: int, preview: Image.Image | None) -> tuple[bool, bool]:
            if step >= self.step:
                raise Killed
            return sink(step, total, preview)

        ctx.sink, ctx.min_interval = dying, 0.0
        return op.run(ctx, params)


def test_resize_design_retried_after_a_crash_makes_only_the_missing_sizes(
    z: Zhike, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_id = upload(z, Image.new("RGB", (80, 60), "orange"), owner="u1")
    sizes = ["96x128", "160x72", "taobao", "96x128"]  # a size may repeat: keys are by position
    job, _ = z.submit("resize_design", {"image": image_id, "sizes": sizes, "mode": "fit"}, "u1")
    jid = job.id
    with pytest.raises(Killed):
        Worker(z, executor=DiesAtStep(2), worker_id="first").run_one(jid)
    work = JobWork(z.settings.work_dir, jid)
    done = ["00-96x128", "01-160x72"]
    assert work.keys() == done
    made_before = [work.done(k)["asset"]["id"] for k in done]  # type: ignore[index]
    with z.engine.begin() as conn:  # its lease runs out
        conn.execute(update(jobs).where(jobs.c.id == jid).values(lease_expires_at=0))

    made = []
    stage = z.assets.stage_image
    monkeypatch.setattr(z.assets, "stage_image", lambda image, **kw: made.append(image.size) or stage(image, **kw))
    assert Worker(z, worker_id="second").run_one(jid)
    row = z.jobs.get(jid)
    assert row.state == "succeeded" and row.attempts == 2, row.error
    assert made == [(800, 800), (96, 128)]  # only the two sizes the first attempt had not made
    outs = row.result["outputs"]
    assert [o["size"] for o in outs] == sizes and [o["asset_id"] for o in outs][:2] == made_before
    assets = {a.id: a for a in z.assets.by_job(jid)}
    assert set(assets) == {o["asset_id"] for o in outs} and len(assets) == 4  # each size once
    for o in outs:
        assert (assets[o["asset_id"]].width, assets[o["asset_id"]].height) == (o["width"], o["height"])
    assert not work.path.exists()
