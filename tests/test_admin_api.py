"""Job retry and model administration over the HTTP API (in-process app with its embedded worker, tiny model)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.helpers.server import wait_job
from zhike.api.app import create_app
from zhike.services.users import owner_id

SMALL = {"prompt": "a paper lantern", "width": 64, "height": 64, "steps": 2}


class Env:
    def __init__(self, app: Any, clients: dict[str, TestClient], models_dir: Path) -> None:
        self.app = app
        self.zhike = app.state.zhike
        self.clients = clients
        self.models_dir = models_dir

    def __getitem__(self, name: str) -> TestClient:
        return self.clients[name]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("admin-api")
    app = create_app(make_settings(root / "home"), start_worker=True)
    z = app.state.zhike
    z.catalog.add(str(tiny_sd15), name="tiny")
    clients: dict[str, TestClient] = {}
    for name, role in (("root", "admin"), ("alice", "user"), ("bob", "user")):
        user = z.users.create_user(name, "correct horse battery", role)
        _, key = z.keys.create(f"{name}-key", owner_id=owner_id(user))
        clients[name] = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    with TestClient(app):  # runs the lifespan: database and the embedded worker
        yield Env(app, clients, root / "models")
    z.engine.dispose()


def submit(client: httpx.Client, params: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v1/jobs", json={"op": "txt2img", "params": params})
    assert r.status_code == 201, r.text
    return r.json()


def error_of(r: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"], err
    assert err.get("field") == field, err
    return err


# -- retry -----------------------------------------------------------------------------------------------
def test_a_failed_job_is_retried_as_a_new_job_with_the_same_params(env: Env, tiny_sd15: Path) -> None:
    alice = env["alice"]
    flaky = env.models_dir / "flaky"
    shutil.copytree(tiny_sd15, flaky)
    assert env["root"].post("/api/v1/models", json={"source": str(flaky)}).status_code == 201
    away = flaky.with_name("flaky-away")
    flaky.rename(away)  # registered, but its files are gone: loading fails in the worker
    first = wait_job(alice, submit(alice, {**SMALL, "model": "flaky"})["id"])
    assert first["state"] == "failed", first
    assert first["error"]["code"] and first["error"]["message"], first["error"]
    listed = {j["id"]: j for j in alice.get("/api/v1/jobs", params={"state": "failed"}).json()["jobs"]}
    assert listed[first["id"]]["error"] == first["error"]

    away.rename(flaky)  # the files are back: the retry can succeed
    r = alice.post(f"/api/v1/jobs/{first['id']}/retry")
    assert r.status_code == 201, r.text
    again = r.json()
    assert again["id"] != first["id"] and again["retry_of"] == first["id"]
    assert r.headers["location"] == f"/api/v1/jobs/{again['id']}"
    assert again["op"] == "txt2img" and again["params"] == first["params"]  # seed and model as resolved before
    done = wait_job(alice, again["id"])
    assert done["state"] == "succeeded", done
    assert len(done["outputs"]) == 1
    newest = alice.get("/api/v1/jobs", params={"limit": 1}).json()["jobs"][0]
    assert newest["id"] == again["id"]
    assert alice.get(f"/api/v1/jobs/{first['id']}").json()["state"] == "failed"  # the original stays as it was


def test_a_cancelled_job_can_be_retried(env: Env) -> None:
    alice = env["alice"]
    job = submit(alice, {**SMALL, "steps": 40})  # long enough that the cancel lands before the last step
    alice.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert wait_job(alice, job["id"])["state"] == "cancelled"
    r = alice.post(f"/api/v1/jobs/{job['id']}/retry")
    assert r.status_code == 201, r.text
    assert r.json()["retry_of"] == job["id"] and r.json()["state"] == "queued"
    assert wait_job(alice, r.json()["id"])["state"] == "succeeded"


def test_only_ended_badly_own_jobs_can_be_retried(env: Env) -> None:
    alice, bob = env["alice"], env["bob"]
    ok = wait_job(alice, submit(alice, SMALL)["id"])
    assert ok["state"] == "succeeded"
    err = error_of(alice.post(f"/api/v1/jobs/{ok['id']}/retry"), 409, "job_id")
    assert ok["id"] in err["message"] and "succeeded" in err["message"]

    long = submit(alice, {**SMALL, "steps": 60})
    deadline = time.monotonic() + 60
    while alice.get(f"/api/v1/jobs/{long['id']}").json()["state"] != "running":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    err = error_of(alice.post(f"/api/v1/jobs/{long['id']}/retry"), 409, "job_id")
    assert "running" in err["message"]
    alice.post(f"/api/v1/jobs/{long['id']}/cancel")
    assert wait_job(alice, long["id"])["state"] == "cancelled"

    error_of(bob.post(f"/api/v1/jobs/{long['id']}/retry"), 404, "job_id")  # not bob's: as if it did not exist
    before = len(alice.get("/api/v1/jobs").json()["jobs"])
    error_of(alice.post("/api/v1/jobs/nope/retry"), 404, "job_id")
    assert len(alice.get("/api/v1/jobs").json()["jobs"]) == before


# -- models ----------------------------------------------------------------------------------------------
def names(client: httpx.Client) -> dict[str, dict[str, Any]]:
    r = client.get("/api/v1/models")
    assert r.status_code == 200, r.text
    return {m["name"]: m for m in r.json()["models"]}


def test_admin_adds_lists_and_removes_a_model_by_path(env: Env, tiny_sd15: Path) -> None:
    root, alice = env["root"], env["alice"]
    r = root.post("/api/v1/models", json={"source": str(tiny_sd15), "name": "tiny-copy"})
    assert r.status_code == 201, r.text
    added = r.json()
    assert (added["name"], added["family"], added["kind"]) == ("tiny-copy", "sd15", "checkpoint")
    assert added["embedded"] is False
    assert added["size_bytes"] > 0 and "path" not in added

    seen = names(alice)["tiny-copy"]
    assert seen["family"] == "sd15" and seen["size_bytes"] == added["size_bytes"] and seen["loaded"] is False
    assert seen["source"] is None  # a server path is shown to admins only
    assert names(root)["tiny-copy"]["source"] == str(tiny_sd15)

    error_of(root.post("/api/v1/models", json={"source": str(tiny_sd15), "name": "tiny-copy"}), 409, "name")
    error_of(alice.post("/api/v1/models", json={"source": str(tiny_sd15), "name": "x"}), 403, "role")
    error_of(alice.delete("/api/v1/models/tiny-copy"), 403, "role")
    assert "tiny-copy" in names(alice)

    r = root.delete("/api/v1/models/tiny-copy")
    assert r.status_code == 200 and r.json() == {"name": "tiny-copy", "removed": True}
    assert "tiny-copy" not in names(alice) and "tiny" in names(alice)
    assert tiny_sd15.is_dir()  # unregistering leaves the files
    error_of(root.delete("/api/v1/models/tiny-copy"), 404, "name")


def test_bad_sources_are_refused_naming_source(env: Env, tmp_path: Path) -> None:
    root = env["root"]
    err = error_of(root.post("/api/v1/models", json={"source": str(tmp_path / "missing")}), 422, "source")
    assert "missing" in err["message"]
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    error_of(root.post("/api/v1/models", json={"source": str(junk)}), 422, "source")
    err = error_of(root.post("/api/v1/models", json={"source": "some-org/some-model"}), 422, "source")
    assert "offline" in err["message"] and "some-org/some-model" in err["message"]
    error_of(root.post("/api/v1/models", json={}), 422, "source")
    assert set(names(root)) >= {"tiny"} and not {"missing", "junk", "some-model"} & set(names(root))


def test_embedded_models_cannot_be_removed(env: Env) -> None:
    listed = names(env["root"])
    if "isnet-small" not in listed:
        pytest.skip("embedded weights are absent (run `make embedded`)")
    assert listed["isnet-small"]["embedded"] is True and listed["isnet-small"]["kind"] == "matting"
    err = error_of(env["root"].delete("/api/v1/models/isnet-small"), 422, "name")
    assert "embedded" in err["message"]
    assert "isnet-small" in names(env["root"])
