"""One user cannot starve the others (red-team findings of issue 13):
- long polls (`?wait=`) hold no request thread: 60 of them leave /health answering at once, and each user may hold
  only `max_followers_per_owner` waits and event streams open (429 `too_many_followers` beyond);
- each user may have only `max_queued_per_owner` jobs queued or running (429 `too_many_jobs`), even when the
  submissions race;
- claims serve owners in turn, so another user's job runs before one user's backlog is done;
- a job's `position` counts only its owner's own jobs ahead: another user's backlog neither shows nor changes it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.server import Server, server_fixture, wait_job
from zhike.core.errors import TooManyRequests
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker

FAST = {"prompt": "a lamp", "width": 64, "height": 64, "steps": 1, "seed": 3, "model": "tiny"}
SLOW = {**FAST, "steps": 150}
FOLLOWERS = 32  # the server's max_followers_per_owner (the default)
QUEUED = 5  # the server's max_queued_per_owner


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path
) -> Iterator[Server]:
    yield from server_fixture(
        request,
        tmp_path_factory.mktemp("fair"),
        tiny_sd15,
        max_followers_per_owner=FOLLOWERS,
        max_queued_per_owner=QUEUED,
    )


def client(server: Server, key: str, timeout: float = 90) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)


def submit(c: httpx.Client, params: dict[str, Any]) -> httpx.Response:
    return c.post("/api/v1/jobs", json={"op": "txt2img", "params": params})


def cancel(c: httpx.Client, *job_ids: str) -> None:
    """Cancel and wait until each job has ended: a running job counts against the cap until its worker stops it."""
    for job_id in job_ids:
        c.post(f"/api/v1/jobs/{job_id}/cancel")
    for job_id in job_ids:
        wait_job(c, job_id)


# -- long polls ------------------------------------------------------------------------------------------------------
def test_sixty_long_polls_leave_health_answering_and_each_owner_is_limited(server: Server) -> None:
    with client(server, server.key_a) as a, client(server, server.key_b) as b:
        job_a = submit(a, SLOW).json()["id"]  # runs for a while: nothing ends the waits early
        job_b = submit(b, SLOW).json()["id"]  # queued behind it
        answers: list[tuple[int, str]] = []

        def wait_on(key: str, job_id: str) -> None:
            with client(server, key) as c:
                # Refused only while the probe below holds one of a's slots for a moment: try again.
                while (r := c.get(f"/api/v1/jobs/{job_id}", params={"wait": 60})).status_code == 429:
                    time.sleep(0.05)
                answers.append((r.status_code, r.json().get("state", "")))

        waiters = [threading.Thread(target=wait_on, args=(server.key_a, job_a)) for _ in range(FOLLOWERS)]
        waiters += [threading.Thread(target=wait_on, args=(server.key_b, job_b)) for _ in range(60 - FOLLOWERS)]
        for t in waiters:
            t.start()
        try:
            # Once a's waits are all in, one more is refused at once, naming the limit.
            deadline = time.monotonic() + 60
            while (r := a.get(f"/api/v1/jobs/{job_a}", params={"wait": 0.05})).status_code != 429:
                assert time.monotonic() < deadline, "a's waits never filled its follower slots"
                time.sleep(0.1)
            err = r.json()["error"]
            assert (err["code"], err["type"], err["limit"], err["field"]) == (
                "too_many_followers",
                "too_many_requests",
                FOLLOWERS,
                "wait",
            )
            assert b.get(f"/api/v1/jobs/{job_b}", params={"wait": 0.1}).status_code == 200  # b has slots left
            time.sleep(0.5)  # b's waits are in too
            for _ in range(3):
                started = time.monotonic()
                assert httpx.get(f"{server.base_url}/api/v1/health", timeout=60).status_code == 200
                assert time.monotonic() - started < 1.0, "/health waited behind the long polls"
            assert answers == [], "a wait answered before its job ended"
        finally:
            cancel(a, job_a)
            cancel(b, job_b)
            for t in waiters:
                t.join(60)
    assert len(answers) == 60
    assert {status for status, _ in answers} == {200}
    assert {state for _, state in answers} == {"cancelled"}


def test_event_streams_hold_follower_slots_and_give_them_back(server: Server) -> None:
    with client(server, server.key_a) as a:
        job = submit(a, SLOW).json()["id"]
        try:
            for _ in range(2):  # the second round gets every slot back from the first round's closed streams
                with contextlib.ExitStack() as streams:
                    open_streams: list[Iterator[str]] = []
                    for _ in range(FOLLOWERS):
                        deadline = time.monotonic() + 10
                        # A 429 only while the server has not yet seen the last round's streams close.
                        while (
                            r := streams.enter_context(a.stream("GET", f"/api/v1/jobs/{job}/events"))
                        ).status_code != 200:
                            assert r.status_code == 429 and time.monotonic() < deadline, r.status_code
                            time.sleep(0.1)
                        lines = r.iter_lines()  # kept: an iterator dropped unfinished closes the connection
                        assert next(lines).startswith("event: progress")
                        open_streams.append(lines)
                    r = a.get(f"/api/v1/jobs/{job}", params={"wait": 5})
                    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_followers"
        finally:
            cancel(a, job)


# -- the cap -----------------------------------------------------------------------------------------------------------
def test_an_owner_at_the_job_cap_gets_429_naming_the_limit(server: Server) -> None:
    with client(server, server.key_a) as a, client(server, server.key_b) as b:
        ids: list[str] = []
        ids_b: list[str] = []
        try:
            for _ in range(QUEUED):  # the worker takes one at once: queued and running jobs count alike
                assert (r := submit(a, SLOW)).status_code == 201, r.text
                ids.append(r.json()["id"])
            r = submit(a, FAST)
            assert r.status_code == 429, r.text
            err = r.json()["error"]
            assert (err["code"], err["type"], err["limit"], err["field"]) == (
                "too_many_jobs",
                "too_many_requests",
                QUEUED,
                "op",
            )
            assert str(QUEUED) in err["message"]
            assert (r := submit(b, FAST)).status_code == 201, "another user is not held to a's cap"
            ids_b.append(r.json()["id"])
            cancel(a, ids.pop())  # queued: freed at once
            assert (r := submit(a, FAST)).status_code == 201, "a cancelled job frees its place"
            ids.append(r.json()["id"])
        finally:
            cancel(a, *ids)
            cancel(b, *ids_b)


def test_racing_submits_do_not_overshoot_the_cap(zhike: Zhike) -> None:
    zhike.settings.max_queued_per_owner = 5
    barrier = threading.Barrier(20)

    def one(i: int) -> str:
        barrier.wait()
        try:
            zhike.submit("txt2img", {**FAST, "seed": i}, "greedy")
            return "created"
        except TooManyRequests as e:
            assert e.code == "too_many_jobs" and e.status == 429 and e.limit == 5
            return "refused"

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(one, range(20)))
    assert outcomes.count("created") == 5 and outcomes.count("refused") == 15
    assert len(zhike.jobs.list("greedy")) == 5


# -- turns -------------------------------------------------------------------------------------------------------------
def test_another_users_job_runs_before_a_backlog_is_done(zhike: Zhike) -> None:
    backlog = [zhike.submit("txt2img", {**FAST, "seed": i}, "heavy")[0].id for i in range(6)]
    light, _ = zhike.submit("txt2img", FAST, "light")  # queued after the whole backlog
    worker = Worker(zhike)
    while worker.run_one():
        pass
    worker.close()
    ran = sorted(zhike.jobs.list("heavy") + zhike.jobs.list("light"), key=lambda r: r.started_at)
    assert [r.state for r in ran] == ["succeeded"] * 7
    order = [r.id for r in ran]
    assert order.index(light.id) == 1, "the light user's job runs right after the job that was first in line"
    assert [j for j in order if j != light.id] == backlog, "each owner's own jobs keep their order"


def test_owners_take_turns_in_the_claim_and_keep_their_own_order(zhike: Zhike) -> None:
    q = zhike.jobs
    jobs = {o: [zhike.submit("txt2img", {**FAST, "seed": i}, o)[0].id for i in range(3)] for o in ("a", "b")}
    c1 = zhike.submit("txt2img", FAST, "c")[0].id
    claimed = []
    while (job := q.claim("w", lease_seconds=30, max_attempts=3)) is not None:
        claimed.append(job.id)
        assert q.finish(job.id, "w", state="failed")  # settled: the owner has no job running any more
    a, b = jobs["a"], jobs["b"]
    assert claimed == [a[0], b[0], c1, a[1], b[1], a[2], b[2]]


def test_an_owner_with_a_running_job_waits_for_the_others_turn(zhike: Zhike) -> None:
    q = zhike.jobs
    a1, a2 = (zhike.submit("txt2img", {**FAST, "seed": i}, "a")[0].id for i in range(2))
    b1 = zhike.submit("txt2img", FAST, "b")[0].id
    assert q.claim("w1", lease_seconds=30, max_attempts=3).id == a1
    assert q.claim("w2", lease_seconds=30, max_attempts=3).id == b1, "a has a job running (in another worker)"
    assert q.claim("w3", lease_seconds=30, max_attempts=3).id == a2


# -- position ----------------------------------------------------------------------------------------------------------
def test_position_counts_only_the_owners_own_jobs(zhike: Zhike) -> None:
    q = zhike.jobs
    mine = [zhike.submit("txt2img", {**FAST, "seed": i}, "me")[0] for i in range(3)]
    assert [q.position(q.get(j.id)) for j in mine] == [0, 1, 2]
    for i in range(20):  # another user's backlog, queued after mine and before my next job
        zhike.submit("txt2img", {**FAST, "seed": i}, "other")
    late = zhike.submit("txt2img", FAST, "me")[0]
    assert [q.position(q.get(j.id)) for j in [*mine, late]] == [0, 1, 2, 3]
    first_other = q.list("other")[-1]
    assert q.position(first_other) == 0, "the other user sees no sign of my jobs either"
    q.cancel(mine[0].id, "me")
    assert q.position(q.get(late.id)) == 2
