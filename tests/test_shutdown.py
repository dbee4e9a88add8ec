"""Stopping a real `zhike serve` with SIGTERM while a job runs and an event stream and long polls follow it: the
process is gone within 5 s, the followers get an answer (not a reset), and the interrupted job runs once more after a
restart on the same home and completes exactly once (one set of outputs)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.server import (
    _start_on_free_port,
    create_key,
    run_cli_inprocess,
    serve_process,
    start_worker,
    wait_job,
)
from tests.test_jobs import wait_for
from zhike.services.container import Zhike
from zhike.settings import Settings

STOP_SECONDS = 5.0
SLOW = {"prompt": "a lamp", "width": 64, "height": 64, "steps": 150, "seed": 7, "model": "tiny"}
LONG_POLLS = 5


def stop_with_sigterm(proc: subprocess.Popen[bytes]) -> float:
    """Seconds from SIGTERM to the process's exit (killed after 30 s, and then inf)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return float("inf")
    return time.monotonic() - started


class Followers:
    """An event stream and long polls on one job, each on its own thread, recording how they ended."""

    def __init__(self, base_url: str, key: str, job_id: str) -> None:
        self.headers = {"Authorization": f"Bearer {key}"}
        self.url = f"{base_url}/api/v1/jobs/{job_id}"
        self.streaming = threading.Event()  # the stream sent its first event
        self.events: list[str] = []
        self.polls: list[dict[str, Any] | str] = []  # the job as answered, or the error
        self.threads = [threading.Thread(target=self._stream, daemon=True)]
        self.threads += [threading.Thread(target=self._poll, daemon=True) for _ in range(LONG_POLLS)]
        for t in self.threads:
            t.start()

    def _stream(self) -> None:
        try:
            with httpx.stream("GET", f"{self.url}/events", headers=self.headers, timeout=60) as r:
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        self.events.append(line.split(":", 1)[1].strip())
                        self.streaming.set()
        except httpx.HTTPError as e:
            self.events.append(repr(e))

    def _poll(self) -> None:
        try:
            r = httpx.get(self.url, params={"wait": 60}, headers=self.headers, timeout=60)
            self.polls.append(r.json() if r.status_code == 200 else f"{r.status_code} {r.text}")
        except httpx.HTTPError as e:
            self.polls.append(repr(e))

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))


def test_sigterm_ends_followers_and_the_interrupted_job_completes_once_after_restart(
    tmp_path: Path, tiny_sd15: Path
) -> None:
    home = tmp_path / "home"
    run_cli_inprocess(home, "models", "add", str(tiny_sd15), "--name", "tiny")
    key = create_key(home, "a")
    proc, port = _start_on_free_port(home, {}, 90)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            job_id = client.post("/api/v1/jobs", json={"op": "txt2img", "params": SLOW}).json()["id"]
            wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}").json()["step"] >= 1, timeout=120)
            followers = Followers(base, key, job_id)
            assert followers.streaming.wait(30), "the event stream did not start"
            time.sleep(1.0)  # the long polls reach the server and wait
            before = client.get(f"/api/v1/jobs/{job_id}").json()
            assert before["state"] == "running" and before["step"] < SLOW["steps"], before

    finally:
        stopped_in = stop_with_sigterm(proc)
    assert stopped_in < STOP_SECONDS, f"zhike serve took {stopped_in:.1f} s to stop"

    followers.join(5)
    assert "done" not in followers.events, "the stream ended before the job did: no `done`"
    assert len(followers.polls) == LONG_POLLS
    # Each long poll was answered with the job as it stood, instead of holding the server up or being cut off.
    assert all(isinstance(p, dict) and p["state"] in ("running", "queued") for p in followers.polls), followers.polls

    z = Zhike(Settings(home=home, device="cpu"))
    handed_back = z.jobs.get(job_id)
    assert handed_back.state == "queued" and handed_back.attempts == 0 and handed_back.lease_owner is None
    assert z.assets.by_job(job_id) == []

    with (
        serve_process(home) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c,
    ):
        done = wait_job(c, job_id, timeout=300)
    assert done["state"] == "succeeded", done
    row = z.jobs.get(job_id)
    assert row.attempts == 1, "the interrupted attempt is not counted; the one after the restart is"
    outputs = z.assets.by_job(job_id)
    assert [a.id for a in outputs] == [img["asset_id"] for img in row.result["images"]]
    assert len(outputs) == 1, "one set of outputs"
    z.engine.dispose()


def test_sigterm_on_a_worker_process_hands_its_job_back_at_once(tmp_path: Path, tiny_sd15: Path) -> None:
    """`zhike worker` under systemd or `docker stop`: the job goes back to the queue now, not after its lease."""
    home = tmp_path / "home"
    run_cli_inprocess(home, "models", "add", str(tiny_sd15), "--name", "tiny")
    z = Zhike(Settings(home=home, device="cpu"))
    job, _ = z.submit("txt2img", SLOW, "local")
    worker = start_worker(home, tmp_path / "worker.log", lease_seconds=300)  # a lease that would keep it for 5 min
    try:
        wait_for(lambda: z.jobs.get(job.id).step >= 1, timeout=120)
    finally:
        stopped_in = stop_with_sigterm(worker)
    assert stopped_in < STOP_SECONDS, f"zhike worker took {stopped_in:.1f} s to stop"
    row = z.jobs.get(job.id)
    assert row.state == "queued" and row.lease_owner is None and row.attempts == 0, row
    assert z.assets.by_job(job.id) == []
    z.engine.dispose()
