"""Scheduler lanes: quick jobs never wait behind slow ones (services/jobs).

A cutout submitted while a generation runs finishes while it still runs (a real `zhike serve` with its per-lane
worker threads); owners take turns inside each lane; a worker of several lanes takes the quick one first; the queue
estimate comes from recent durations; `zhike worker --lane quick` claims quick jobs only; old rows get lanes when the
database is upgraded."""

from __future__ import annotations

import io
import signal
import statistics
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw
from sqlalchemy import create_engine, text

from tests.helpers.server import ZHIKE, running_server, wait_job, zhike_env
from zhike.core.registry import get_op
from zhike.core.rows import JobRow
from zhike.services.container import Zhike
from zhike.services.jobs.estimate import LANE_SECONDS
from zhike.services.jobs.wakeups import Wakeups
from zhike.services.jobs.worker import Worker
from zhike.services.migrations import config

FAST = {"prompt": "a lamp", "width": 64, "height": 64, "steps": 1, "seed": 3, "model": "tiny"}
# Long enough to still run while a cutout is submitted and done (about 0.3-1 s a step here); cancelled once seen.
LONG = {**FAST, "width": 128, "height": 128, "steps": 150}
CLAIM = {"lease_seconds": 30, "max_attempts": 3}


def logo_png() -> bytes:
    """A flat-background logo: the cutout's `logo` mode takes it in well under a second."""
    im = Image.new("RGB", (240, 120), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.ellipse((10, 20, 90, 100), fill=(200, 30, 40))
    d.rectangle((120, 40, 220, 80), fill=(20, 40, 120))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def cutout_params(z: Zhike, owner: str) -> dict[str, str]:
    asset = z.assets.upload(logo_png(), owner_id=owner, name="logo.png")
    return {"image": asset.id, "mode": "logo"}


def seconds(job: JobRow) -> float:
    assert job.started_at is not None and job.finished_at is not None
    return (job.finished_at - job.started_at).total_seconds()


# -- the server: a cutout beside a generation --------------------------------------------------------------------
def test_a_cutout_finishes_while_a_long_generation_runs(tmp_path: Path, tiny_sd15: Path) -> None:
    with running_server(tiny_sd15, tmp_path) as srv:
        c = httpx.Client(base_url=srv.base_url, headers={"Authorization": f"Bearer {srv.key_a}"}, timeout=60)
        with c:
            gen = c.post("/api/v1/jobs", json={"op": "txt2img", "params": LONG}).json()
            assert gen["lane"] == "gpu"
            deadline = time.monotonic() + 180
            while (g := c.get(f"/api/v1/jobs/{gen['id']}").json())["step"] < 16:  # a tenth of its steps done
                assert time.monotonic() < deadline and g["state"] in ("queued", "running"), g
                time.sleep(0.2)
            # No txt2img ran here before: its end is estimated from its own pace.
            assert 0 < g["eta_done_seconds"] < 20 * LONG["steps"], g
            up = c.post("/api/v1/assets", files={"file": ("logo.png", logo_png(), "image/png")})
            assert up.status_code == 201, up.text
            cut = c.post("/api/v1/jobs", json={"op": "cutout", "params": {"image": up.json()["id"], "mode": "logo"}})
            assert cut.status_code == 201 and cut.json()["lane"] == "quick", cut.text
            done = wait_job(c, cut.json()["id"])
            g = c.get(f"/api/v1/jobs/{gen['id']}").json()
            assert done["state"] == "succeeded", done
            assert g["state"] == "running" and g["step"] < LONG["steps"], "the generation is still running"
            assert done["timings"]["queue"] < 5, "the cutout did not wait for the generation"
            c.post(f"/api/v1/jobs/{gen['id']}/cancel")
            assert wait_job(c, gen["id"])["state"] == "cancelled"


# -- claims -----------------------------------------------------------------------------------------------------
def test_owners_take_turns_inside_a_lane_and_lanes_do_not_mix(zhike: Zhike) -> None:
    q = zhike.jobs
    gen_a = zhike.submit("txt2img", FAST, "a")[0].id
    quick = {
        o: [zhike.submit("cutout", cutout_params(zhike, o), o)[0].id for _ in range(n)] for o, n in (("a", 3), ("b", 2))
    }
    assert q.get(gen_a).lane == "gpu" and {q.get(j).lane for js in quick.values() for j in js} == {"quick"}
    # a's generation runs in the gpu lane: that costs a no turn in the quick lane (a's cutout is the oldest there)
    assert q.claim("gpu-worker", lanes=["gpu"], **CLAIM).id == gen_a
    assert q.claim("gpu-worker-2", lanes=["gpu"], **CLAIM) is None, "the cutouts are not the gpu lane's"
    claimed = []
    while (job := q.claim("quick-worker", lanes=["quick"], **CLAIM)) is not None:
        claimed.append(job.id)
        assert q.finish(job.id, "quick-worker", state="failed")
    a, b = quick["a"], quick["b"]
    assert claimed == [a[0], b[0], a[1], b[1], a[2]]
    assert q.get(gen_a).state == "running"


def test_a_worker_of_several_lanes_takes_the_quick_job_first(zhike: Zhike) -> None:
    gen = zhike.submit("txt2img", FAST, "a")[0].id
    resize = zhike.submit("resize_design", {**cutout_params(zhike, "a"), "sizes": ["64x64"], "mode": "fit"}, "a")[0].id
    cut = zhike.submit("cutout", cutout_params(zhike, "a"), "a")[0].id
    q = zhike.jobs
    order = [q.claim("w", lanes=["gpu", "quick", "cpu"], **CLAIM).id for _ in range(3)]
    assert order == [cut, resize, gen]


def test_a_jobs_lane_follows_what_it_will_run(zhike: Zhike) -> None:
    """Ops that may or may not diffuse take the lane of what the job does: a classical erase, a classical extend
    and a composite-only product swap are quick work even with a model installed; with a diffusion fill, gpu."""
    image = cutout_params(zhike, "a")["image"]
    mask = Image.new("L", (240, 120), 0)
    mask.paste(255, (100, 30, 140, 90))
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    mask_id = zhike.assets.upload(buf.getvalue(), owner_id="a").id
    scene = zhike.assets.upload(logo_png(), owner_id="a").id

    def lane(op: str, params: dict) -> str:
        return zhike.submit(op, params, "a")[0].lane

    edit = {"image": image, "mask": mask_id}
    assert lane("erase", {**edit, "method": "classical"}) == "quick"
    assert lane("erase", edit) == "gpu"  # auto, with a checkpoint installed: the diffusion fill
    assert lane("outpaint", {"image": image, "aspect": "1:1", "method": "classical"}) == "quick"
    assert lane("resize_design", {"image": image, "sizes": ["64x64"], "mode": "fit"}) == "cpu"
    extend = {"image": image, "sizes": ["240x240"], "mode": "extend", "method": "diffusion", "prompt": "a wall"}
    assert lane("resize_design", extend) == "gpu"
    swap = {"image": image, "scene_image": scene, "edge_blend": 0}
    assert lane("subject_swap", swap) == "quick"
    assert lane("subject_swap", {**swap, "edge_blend": 0.3}) == "gpu"  # the edge pass runs the model


def test_a_job_wakes_only_the_workers_of_its_lane() -> None:
    wakeups = Wakeups()
    gpu, quick, both = threading.Event(), threading.Event(), threading.Event()
    wakeups.subscribe(["gpu"], gpu)
    wakeups.subscribe(["quick"], quick)
    wakeups.subscribe(["gpu", "quick"], both)
    wakeups.notify("quick")
    assert (gpu.is_set(), quick.is_set(), both.is_set()) == (False, True, True)
    wakeups.unsubscribe(quick)
    quick.clear()
    wakeups.notify(None)  # stopping: everyone still subscribed
    assert gpu.is_set() and both.is_set() and not quick.is_set()


# -- the estimate --------------------------------------------------------------------------------------------------
def test_the_estimate_comes_from_recent_durations_of_the_op(zhike: Zhike) -> None:
    q = zhike.jobs
    params = cutout_params(zhike, "a")
    worker = Worker(zhike, lanes=["quick"])
    history = [zhike.submit("cutout", params, "a")[0].id for _ in range(3)]
    while worker.run_one():
        pass
    worker.close()
    d = statistics.median(seconds(q.get(j)) for j in history)
    assert d > 0
    a = [zhike.submit("cutout", params, "a")[0] for _ in range(3)]
    b = [zhike.submit("cutout", cutout_params(zhike, "b"), "b")[0] for _ in range(2)]
    est = {j.id: q.estimate(q.get(j.id)) for j in [*a, *b]}
    # Nothing runs, and b was never served while a just was: turns b0, a0, b1, a1, a2 (as the claims give them).
    starts = [est[j.id].start_seconds for j in [b[0], a[0], b[1], a[1], a[2]]]
    assert starts == pytest.approx([0, d, 2 * d, 3 * d, 4 * d], abs=0.15)
    assert all(e.done_seconds == pytest.approx(e.start_seconds + d, abs=0.15) for e in est.values())

    running = q.claim("w", lanes=["quick"], **CLAIM)
    assert running is not None and running.id == b[0].id
    time.sleep(LANE_SECONDS + 0.1)  # the lane's queue as read a moment ago is out of date now
    left = q.estimate(q.get(running.id)).done_seconds
    assert q.estimate(q.get(running.id)).start_seconds is None and 0 <= left <= d + 0.05
    # b has a job running now: a's turn comes first.
    starts = [q.estimate(q.get(j.id)).start_seconds for j in [a[0], b[1], a[1], a[2]]]
    assert starts == pytest.approx([left, left + d, left + 2 * d, left + 3 * d], abs=0.15)
    assert [q.claim("w", lanes=["quick"], **CLAIM).id for _ in range(2)] == [a[0].id, b[1].id]

    # An op that never ran here: its first job starts now (nothing ahead in its lane), how long it takes is unknown;
    # the job behind it cannot be estimated either.
    g1, g2 = (zhike.submit("txt2img", {**FAST, "seed": i}, "a")[0] for i in range(2))
    first, second = q.estimate(q.get(g1.id)), q.estimate(q.get(g2.id))
    assert (first.start_seconds, first.done_seconds) == (0, None)
    assert (second.start_seconds, second.done_seconds) == (None, None)
    assert q.estimate(q.get(history[0])).start_seconds is None  # over: nothing to estimate


# -- `zhike worker --lane` ---------------------------------------------------------------------------------------
def test_a_quick_lane_worker_process_claims_only_quick_jobs(zhike: Zhike) -> None:
    home = zhike.settings.home
    gen = zhike.submit("txt2img", FAST, "a")[0].id  # queued first, and of another lane
    resize = zhike.submit("resize_design", {**cutout_params(zhike, "a"), "sizes": ["64x64"], "mode": "fit"}, "a")[0].id
    cut = zhike.submit("cutout", cutout_params(zhike, "a"), "a")[0].id
    log = home.parent / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen([ZHIKE, "worker", "--lane", "quick"], env=zhike_env(home), stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 120
        while not zhike.jobs.get(cut).done:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert zhike.jobs.get(cut).state == "succeeded"
        time.sleep(1.5)  # three polls more: it still leaves the other lanes' jobs alone
        assert [zhike.jobs.get(j).state for j in (gen, resize)] == ["queued", "queued"]
        assert "lanes: quick" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


# -- migration ---------------------------------------------------------------------------------------------------
def test_old_jobs_get_their_ops_lane_when_the_database_is_upgraded(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(config(conn), "0003")
        for i, op in enumerate(("txt2img", "cutout", "batch_design", "inpaint", "id_photo", "some_plugin_op")):
            conn.execute(
                text(
                    "INSERT INTO jobs (id, owner_id, op, op_version, params, state, progress, step, total_steps, "
                    "cancel_requested, attempts, created_at, updated_at) "
                    "VALUES (:id, 'a', :op, 1, '{}', 'queued', 0, 0, 0, 0, 0, :at, 0)"
                ),
                {"id": f"j{i}", "op": op, "at": datetime(2026, 1, 1)},
            )
    with engine.begin() as conn:
        command.upgrade(config(conn), "0004")
    with engine.connect() as conn:
        lanes = dict(conn.execute(text("SELECT op, lane FROM jobs")).all())
    engine.dispose()
    assert lanes == {
        "txt2img": "gpu",
        "cutout": "quick",
        "batch_design": "cpu",
        "inpaint": "gpu",
        "id_photo": "quick",
        "some_plugin_op": "cpu",  # not a built-in op: the default lane
    }
    assert all(lanes[op] == get_op(op).lane for op in lanes if op != "some_plugin_op")
