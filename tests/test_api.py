"""The HTTP API end to end, against a real `zhike serve` process (tiny SD 1.5 model, 64x64, few steps)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from PIL import Image, ImageFilter

from tests.helpers.server import Server, server_fixture, wait_job

SMALL = {"width": 64, "height": 64, "steps": 3}


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path
) -> Iterator[Server]:
    yield from server_fixture(request, tmp_path_factory.mktemp("api"), tiny_sd15)


def _client(server: Server, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def a(server: Server) -> Iterator[httpx.Client]:
    with _client(server, server.key_a) as c:
        yield c


@pytest.fixture(scope="module")
def b(server: Server) -> Iterator[httpx.Client]:
    with _client(server, server.key_b) as c:
        yield c


@pytest.fixture(scope="module")
def anon(server: Server) -> Iterator[httpx.Client]:
    with _client(server, None) as c:
        yield c


def submit(client: httpx.Client, op: str, params: dict[str, Any], **headers: str) -> httpx.Response:
    return client.post("/api/v1/jobs", json={"op": op, "params": params}, headers=headers)


def run_job(client: httpx.Client, op: str, params: dict[str, Any]) -> dict[str, Any]:
    r = submit(client, op, params)
    assert r.status_code == 201, r.text
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "succeeded", job
    return job


def read_events(client: httpx.Client, job_id: str, timeout: float = 60) -> list[tuple[str, dict[str, Any]]]:
    """Follow /events until the stream ends; returns [(event, data)]."""
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events", timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        event, data = None, []
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line.split(":", 1)[1].strip())
            elif line == "" and event is not None:
                events.append((event, json.loads("\n".join(data))))
                event, data = None, []
    return events


def png_bytes(size: int = 64, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def assert_error(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    err = r.json()["error"]
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    if field is not None:
        assert err.get("field") == field, err
    return err


@pytest.fixture(scope="module")
def followed(a: httpx.Client) -> dict[str, Any]:
    """A txt2img job followed over server-sent events from right after its submission."""
    params = {"prompt": "a red fox in snow", **SMALL, "seed": 1234}
    r = submit(a, "txt2img", params)
    assert r.status_code == 201, r.text
    job = r.json()
    assert r.headers["location"] == f"/api/v1/jobs/{job['id']}"
    events = read_events(a, job["id"])
    return {"params": params, "job_id": job["id"], "events": events}


# -- docs and auth ---------------------------------------------------------------------------------------
def test_openapi_and_docs_load(anon: httpx.Client) -> None:
    r = anon.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    for path in ("/api/v1/jobs", "/api/v1/assets", "/api/v1/ops", "/v1/images/generations"):
        assert path in spec["paths"]
    r = anon.get("/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "openapi.json" in r.text
    assert anon.get("/").status_code == 200
    assert anon.get("/api/v1/health").json()["status"] == "ok"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer zk_not_a_real_key", "Basic dXNlcjpwYXNz", "zk_no_scheme"],
)
def test_no_or_bad_key_is_401_json(anon: httpx.Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in (("GET", "/api/v1/jobs"), ("GET", "/api/v1/assets"), ("POST", "/api/v1/jobs")):
        r = anon.request(method, path, headers=headers, json={"op": "txt2img", "params": {"prompt": "x"}})
        err = assert_error(r, 401, "Authorization")
        assert err["type"] == "unauthorized"
        assert err["code"] == ("not_authenticated" if authorization is None else "api_key_invalid")
        assert r.headers.get("www-authenticate") == "Bearer"


# -- txt2img, events, results, assets --------------------------------------------------------------------
def test_events_stream_progress_then_done(followed: dict[str, Any]) -> None:
    events = followed["events"]
    names = [e for e, _ in events]
    assert names.count("done") == 1 and names[-1] == "done", names
    progress = [d for e, d in events if e == "progress"]
    assert progress, names
    for d in progress:
        assert d["id"] == followed["job_id"]
        assert isinstance(d["step"], int) and isinstance(d["total_steps"], int)
        assert d["state"] in ("queued", "running")
    steps = [d["step"] for d in progress]
    assert steps == sorted(steps)
    done = events[-1][1]
    assert done["state"] == "succeeded"
    assert done["step"] == done["total_steps"] == 3 and done["progress"] == 1.0
    assert len(done["outputs"]) == 1


def test_an_open_event_stream_gets_step_previews(a: httpx.Client) -> None:
    """Following a job over SSE is watching it: its worker makes step previews (none are made for nobody)."""
    r = submit(a, "txt2img", {"prompt": "a slow fox", "width": 64, "height": 64, "steps": 150, "seed": 3})
    job_id = r.json()["id"]
    seen: dict[str, Any] = {}
    with a.stream("GET", f"/api/v1/jobs/{job_id}/events", timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                data = json.loads(line[5:])
                if data.get("has_preview"):
                    seen = data
                    break
    assert seen["state"] == "running" and 0 < seen["preview_step"] < 150
    preview = a.get(seen["preview_url"])
    assert preview.status_code == 200 and Image.open(io.BytesIO(preview.content)).size == (16, 16)
    a.post(f"/api/v1/jobs/{job_id}/cancel")
    assert wait_job(a, job_id, timeout=30)["state"] == "cancelled"


def test_job_result(a: httpx.Client, followed: dict[str, Any]) -> None:
    job = a.get(f"/api/v1/jobs/{followed['job_id']}").json()
    assert job["state"] == "succeeded" and job["error"] is None
    assert job["params"]["seed"] == 1234 and job["params"]["model"] == "tiny"
    (img,) = job["result"]["images"]
    assert img["seed"] == 1234 and (img["width"], img["height"]) == (64, 64)
    assert job["result"]["model"] == "tiny"
    base = f"/api/v1/assets/{img['asset_id']}"
    assert job["outputs"] == [{"asset_id": img["asset_id"], "url": f"{base}/file", "thumb_url": f"{base}/thumb"}]
    assert followed["job_id"] in [j["id"] for j in a.get("/api/v1/jobs").json()["jobs"]]


def test_asset_record_and_png_metadata(a: httpx.Client, followed: dict[str, Any]) -> None:
    job = a.get(f"/api/v1/jobs/{followed['job_id']}").json()
    asset_id = job["result"]["images"][0]["asset_id"]
    asset = a.get(f"/api/v1/assets/{asset_id}").json()
    assert asset["id"] == asset_id and asset["origin"] == "generated" and asset["op"] == "txt2img"
    assert asset["model"] == "tiny" and asset["seed"] == 1234 and asset["zhike_version"]
    assert asset["params"]["prompt"] == followed["params"]["prompt"] and asset["params"]["steps"] == 3
    assert asset["job_id"] == followed["job_id"] and asset["parent_id"] is None
    assert (asset["width"], asset["height"], asset["mime"]) == (64, 64, "image/png")

    r = a.get(f"/api/v1/assets/{asset_id}/file")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    # The export is the stored file plus its provenance labels (tests/test_provenance*.py check them in depth).
    assert len(r.content) > asset["size_bytes"] and b"http://www.tc260.org.cn/ns/AIGC/1.0/" in r.content
    img = Image.open(io.BytesIO(r.content))
    assert img.format == "PNG" and img.size == (64, 64)
    parameters = img.text["parameters"]
    assert parameters.startswith(followed["params"]["prompt"])
    assert "Seed: 1234" in parameters and "Steps: 3" in parameters and "Model: tiny" in parameters
    assert json.loads(img.text["zhike"])["params"]["seed"] == 1234
    assert asset_id in [x["id"] for x in a.get("/api/v1/assets").json()["assets"]]


def test_same_seed_gives_identical_bytes(a: httpx.Client, followed: dict[str, Any]) -> None:
    first = a.get(f"/api/v1/jobs/{followed['job_id']}").json()["outputs"][0]["url"]
    again = run_job(a, "txt2img", followed["params"])["outputs"][0]["url"]
    other = run_job(a, "txt2img", {**followed["params"], "seed": 1235})["outputs"][0]["url"]
    # Same pixels (exports differ only in their labels, which name each asset); the stored files are identical.
    assert pixels_of(a.get(first).content) == pixels_of(a.get(again).content)
    assert pixels_of(a.get(first).content) != pixels_of(a.get(other).content)
    sha = [a.get(u.removesuffix("/file")).json()["sha256"] for u in (first, again, other)]
    assert sha[0] == sha[1] != sha[2]


def pixels_of(png: bytes) -> bytes:
    return Image.open(io.BytesIO(png)).convert("RGB").tobytes()


# -- idempotency -----------------------------------------------------------------------------------------
def test_idempotency_key(a: httpx.Client, b: httpx.Client) -> None:
    params = {"prompt": "idempotent", **SMALL, "seed": 7}
    r1 = submit(a, "txt2img", params, **{"Idempotency-Key": "order-1"})
    r2 = submit(a, "txt2img", params, **{"Idempotency-Key": "order-1"})
    assert r1.status_code == 201 and r2.status_code == 200, (r1.text, r2.text)
    assert r1.json()["id"] == r2.json()["id"]
    assert r2.json()["idempotency_key"] == "order-1"

    r3 = submit(a, "txt2img", {**params, "prompt": "something else"}, **{"Idempotency-Key": "order-1"})
    assert_error(r3, 409, "Idempotency-Key")
    r4 = submit(a, "img2img", {**params, "init_image": "nosuchasset"}, **{"Idempotency-Key": "order-1"})
    assert r4.status_code in (404, 409), r4.text  # never a new job under a used key

    # Keys are per owner: B's identical key makes B's own job.
    rb = submit(b, "txt2img", params, **{"Idempotency-Key": "order-1"})
    assert rb.status_code == 201 and rb.json()["id"] != r1.json()["id"]
    wait_job(a, r1.json()["id"])
    wait_job(b, rb.json()["id"])


def test_idempotency_key_retry_without_seed(a: httpx.Client) -> None:
    """A retried request that leaves the seed (and model) to the server is the same request, not a conflict."""
    params = {"prompt": "retry me", **SMALL}
    r1 = submit(a, "txt2img", params, **{"Idempotency-Key": "retry-no-seed"})
    r2 = submit(a, "txt2img", params, **{"Idempotency-Key": "retry-no-seed"})
    r3 = submit(a, "txt2img", {**params, "seed": -1}, **{"Idempotency-Key": "retry-no-seed"})
    assert r1.status_code == 201, r1.text
    assert r2.status_code == 200 and r3.status_code == 200, (r2.text, r3.text)
    assert r1.json()["id"] == r2.json()["id"] == r3.json()["id"]
    assert_error(submit(a, "txt2img", {**params, "steps": 4}, **{"Idempotency-Key": "retry-no-seed"}), 409)
    wait_job(a, r1.json()["id"])


# -- upload and img2img ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def upload_a(a: httpx.Client) -> dict[str, Any]:
    data = png_bytes(64, seed=3)
    r = a.post("/api/v1/assets", files={"file": ("input.png", data, "image/png")}, data={"tags": "in, test"})
    assert r.status_code == 201, r.text
    return {**r.json(), "bytes": data}


def test_upload_then_img2img(a: httpx.Client, upload_a: dict[str, Any]) -> None:
    assert upload_a["origin"] == "upload" and upload_a["mime"] == "image/png"
    assert (upload_a["width"], upload_a["height"]) == (64, 64) and upload_a["tags"] == ["in", "test"]
    assert a.get(f"/api/v1/assets/{upload_a['id']}/file").content == upload_a["bytes"]

    job = run_job(
        a, "img2img", {"prompt": "repaint", "init_image": upload_a["id"], "steps": 4, "strength": 0.5, "seed": 9}
    )
    assert (job["params"]["width"], job["params"]["height"]) == (64, 64)  # taken from the input
    out = a.get(f"/api/v1/assets/{job['outputs'][0]['asset_id']}").json()
    assert out["parent_id"] == upload_a["id"] and out["op"] == "img2img" and out["seed"] == 9
    assert (out["width"], out["height"]) == (64, 64)
    assert [x["id"] for x in a.get("/api/v1/assets", params={"tag": "in"}).json()["assets"]] == [upload_a["id"]]


# -- isolation between keys ------------------------------------------------------------------------------
def test_cross_key_isolation(a: httpx.Client, b: httpx.Client, followed: dict[str, Any], upload_a: dict) -> None:
    job_id = followed["job_id"]
    asset_id = a.get(f"/api/v1/jobs/{job_id}").json()["outputs"][0]["asset_id"]
    assert_error(b.get(f"/api/v1/jobs/{job_id}"), 404, "job_id")
    assert_error(b.get(f"/api/v1/jobs/{job_id}/events"), 404, "job_id")
    assert_error(b.get(f"/api/v1/jobs/{job_id}/preview"), 404, "job_id")
    assert_error(b.post(f"/api/v1/jobs/{job_id}/cancel"), 404, "job_id")
    for aid in (asset_id, upload_a["id"]):
        assert_error(b.get(f"/api/v1/assets/{aid}"), 404)
        assert_error(b.get(f"/api/v1/assets/{aid}/file"), 404)
    # Another owner's asset looks exactly like a missing one.
    mine = b.get(f"/api/v1/assets/{asset_id}").json()["error"]["message"].replace(asset_id, "ID")
    missing = b.get("/api/v1/assets/doesnotexist1").json()["error"]["message"].replace("doesnotexist1", "ID")
    assert mine == missing

    a_assets = {x["id"] for x in a.get("/api/v1/assets", params={"limit": 500}).json()["assets"]}
    b_assets = {x["id"] for x in b.get("/api/v1/assets", params={"limit": 500}).json()["assets"]}
    assert {asset_id, upload_a["id"]} <= a_assets and not (a_assets & b_assets)
    a_jobs = {x["id"] for x in a.get("/api/v1/jobs", params={"limit": 500}).json()["jobs"]}
    b_jobs = {x["id"] for x in b.get("/api/v1/jobs", params={"limit": 500}).json()["jobs"]}
    assert job_id in a_jobs and not (a_jobs & b_jobs)
    assert_error(b.get("/api/v1/assets", params={"before": asset_id}), 404, "before")


# -- cancel ----------------------------------------------------------------------------------------------
def test_cancel_running_job(a: httpx.Client) -> None:
    r = submit(a, "txt2img", {"prompt": "a long one", "width": 64, "height": 64, "steps": 150, "seed": 1})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 60
    while (job := a.get(f"/api/v1/jobs/{job_id}").json())["step"] < 6:
        assert job["state"] in ("queued", "running"), job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    # Nobody watched yet: no previews were made. Asking for one counts as watching; previews follow.
    assert_error(a.get(f"/api/v1/jobs/{job_id}/preview"), 404, "job_id")
    while not (job := a.get(f"/api/v1/jobs/{job_id}").json())["has_preview"]:
        assert job["state"] == "running" and time.monotonic() < deadline, job
        time.sleep(0.05)
    preview = a.get(f"/api/v1/jobs/{job_id}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(preview.content)).format == "JPEG"

    t0 = time.monotonic()
    r = a.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200 and r.json()["state"] in ("running", "cancelled")
    job = wait_job(a, job_id, timeout=30)
    assert job["state"] == "cancelled", job
    assert job["step"] < 150 and job["result"] is None and job["outputs"] == []
    assert time.monotonic() - t0 < 10
    # Cancelling a finished job changes nothing.
    assert a.post(f"/api/v1/jobs/{job_id}/cancel").json()["state"] == "cancelled"


def test_cancel_queued_job(a: httpx.Client) -> None:
    long = submit(a, "txt2img", {"prompt": "blocker", "width": 64, "height": 64, "steps": 150, "seed": 2}).json()
    queued = submit(a, "txt2img", {"prompt": "waiting", **SMALL, "seed": 3}).json()
    r = a.post(f"/api/v1/jobs/{queued['id']}/cancel")
    assert r.status_code == 200
    a.post(f"/api/v1/jobs/{long['id']}/cancel")
    assert wait_job(a, queued["id"])["state"] == "cancelled"
    assert wait_job(a, long["id"])["state"] == "cancelled"


def test_many_followers_do_not_starve_the_api(server: Server, a: httpx.Client) -> None:
    """45 SSE followers of a queued job (more than FastAPI's 40 worker threads) leave the API responsive."""
    blocker = submit(a, "txt2img", {"prompt": "blocker", "width": 64, "height": 64, "steps": 150, "seed": 4}).json()
    queued = submit(a, "txt2img", {"prompt": "waiting", **SMALL, "seed": 5}).json()
    headers = {"Authorization": f"Bearer {server.key_a}"}

    async def main() -> float:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60, limits=limits) as c:
            started = asyncio.Queue[None]()

            async def follow() -> None:
                async with c.stream("GET", f"/api/v1/jobs/{queued['id']}/events") as r:
                    async for line in r.aiter_lines():
                        if line.startswith("event:"):
                            started.put_nowait(None)

            tasks = [asyncio.create_task(follow()) for _ in range(45)]
            for _ in range(40):
                await asyncio.wait_for(started.get(), 30)  # the followers are connected and waiting
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            r = await c.get("/api/v1/jobs", params={"limit": 1})
            elapsed = time.monotonic() - t0
            assert r.status_code == 200
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return elapsed

    try:
        elapsed = asyncio.run(main())
    finally:
        a.post(f"/api/v1/jobs/{queued['id']}/cancel")
        a.post(f"/api/v1/jobs/{blocker['id']}/cancel")
    assert elapsed < 2, f"GET /api/v1/jobs took {elapsed:.1f} s with 45 followers"
    assert wait_job(a, blocker["id"])["state"] in ("cancelled", "succeeded")


# -- discovery -------------------------------------------------------------------------------------------
def test_ops_list_schemas(a: httpx.Client, anon: httpx.Client) -> None:
    ops = {op["name"]: op for op in a.get("/api/v1/ops").json()["ops"]}
    assert {"txt2img", "img2img"} <= set(ops)
    for op in ops.values():
        assert op["params_schema"]["type"] == "object" and op["params_schema"]["properties"]
        assert op["result_schema"]["type"] == "object" and op["title"]["zh"] and op["title"]["en"]
    for name in ("txt2img", "hires"):  # drawing from the prompt alone needs one; edits do not
        assert "prompt" in ops[name]["params_schema"]["required"]
    assert "prompt" not in ops["erase"]["params_schema"].get("required", [])
    assert "init_image" in ops["img2img"]["params_schema"]["required"]
    assert a.get("/api/v1/ops/txt2img").json()["name"] == "txt2img"
    assert_error(a.get("/api/v1/ops/nope"), 404, "name")
    assert_error(anon.get("/api/v1/ops"), 401)


def test_models_list(a: httpx.Client) -> None:
    models = a.get("/api/v1/models").json()["models"]
    tiny = next(m for m in models if m["name"] == "tiny")
    assert tiny["family"] == "sd15" and tiny["kind"] == "checkpoint"
    assert "path" not in tiny and "config_dir" not in tiny  # server paths stay on the server


# -- OpenAI compatibility --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def oai(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.key_a, max_retries=0, timeout=120)


def test_openai_b64_json(oai: openai.OpenAI) -> None:
    r = oai.images.generate(
        prompt="a lighthouse", size="64x64", n=2, response_format="b64_json", extra_body={"steps": 3}
    )
    assert len(r.data) == 2
    images = [base64.b64decode(d.b64_json) for d in r.data]
    for data in images:
        img = Image.open(io.BytesIO(data))
        img.load()
        assert img.format == "PNG" and img.size == (64, 64)
        assert img.text["parameters"].startswith("a lighthouse")
        assert b"http://www.tc260.org.cn/ns/AIGC/1.0/" in data  # b64 answers carry the provenance labels too
    assert images[0] != images[1]  # seeds seed and seed+1


def test_openai_url_is_signed_and_needs_no_key(oai: openai.OpenAI, server: Server) -> None:
    r = oai.images.generate(
        prompt="a boat", size="64x64", n=1, response_format="url", model="dall-e-3", extra_body={"steps": 3}
    )
    url = r.data[0].url
    assert url.startswith(server.base_url + "/api/v1/assets/") and "sig=" in url and "expires=" in url
    got = httpx.get(url)  # no Authorization header
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(got.content)).size == (64, 64)
    assert_error(httpx.get(url.replace("sig=", "sig=0")), 404, "sig")
    expired = url.split("expires=")[0] + "expires=1000&sig=" + url.split("sig=")[1]
    assert_error(httpx.get(expired), 404, "sig")
    without_sig = url.split("?")[0]
    assert_error(httpx.get(without_sig), 401)


@pytest.mark.parametrize("size", ["abc", "64", "65x64", "64x65", "8x8", "99999x64"])
def test_openai_invalid_size_names_size(oai: openai.OpenAI, size: str) -> None:
    with pytest.raises((openai.BadRequestError, openai.UnprocessableEntityError)) as info:
        oai.images.generate(prompt="x", size=size, n=1)  # type: ignore[arg-type]
    assert "size" in info.value.message
    assert isinstance(info.value.body, dict) and info.value.body.get("field") == "size"


def test_openai_bad_key_and_bad_n(server: Server, oai: openai.OpenAI) -> None:
    bad = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="zk_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.images.generate(prompt="x", size="64x64")
    with pytest.raises((openai.BadRequestError, openai.UnprocessableEntityError)) as info:
        oai.images.generate(prompt="x", size="64x64", n=9)
    assert info.value.body.get("field") == "n"


# -- create and edit (issue 3) ---------------------------------------------------------------------------
def test_presets_and_edit_ops_over_http(a: httpx.Client) -> None:
    presets = {p["id"]: p for p in a.get("/api/v1/presets").json()["presets"]}
    assert presets["guofeng"]["name"]["zh"] == "国风" and "{prompt}" in presets["guofeng"]["prompt"]
    ops = {o["name"]: o for o in a.get("/api/v1/ops").json()["ops"]}
    for name in ("preprocess", "control", "inpaint", "erase", "outpaint", "hires", "material_swap", "restyle"):
        assert "properties" in ops[name]["params_schema"], name
    assert ops["erase"]["title"]["zh"] == "智能消除"
    img = a.post("/api/v1/assets", files={"file": ("p.png", png_bytes(64, seed=9), "image/png")}).json()["id"]
    m = Image.new("L", (64, 64))
    m.paste(255, (16, 16, 40, 40))
    buf = io.BytesIO()
    m.save(buf, "PNG")
    mask = a.post("/api/v1/assets", files={"file": ("m.png", buf.getvalue(), "image/png")}).json()["id"]
    r = submit(a, "erase", {"image": img, "mask": mask, "steps": 2, "seed": 1})
    assert r.status_code == 201, r.text
    job = wait_job(a, r.json()["id"])
    assert job["state"] == "succeeded", job
    assert job["result"]["method"].startswith("diffusion")
    out = np.asarray(Image.open(io.BytesIO(a.get(job["outputs"][0]["url"]).content)).convert("RGB"))
    src = np.asarray(Image.open(io.BytesIO(png_bytes(64, seed=9))).convert("RGB"))
    keep = np.asarray(m.filter(ImageFilter.MaxFilter(13))) == 0
    assert np.array_equal(out[keep], src[keep])
    assert_error(submit(a, "erase", {"image": img, "mask": "nope12345"}), 404, "params.mask")
    assert_error(submit(a, "txt2img", {"prompt": "x", "preset": "nope"}), 422, "params.preset")


def test_asset_files_revalidate_so_access_is_checked_every_view(
    a: httpx.Client, b: httpx.Client, upload_a: dict
) -> None:
    url = f"/api/v1/assets/{upload_a['id']}/file"
    first = a.get(url)
    assert first.status_code == 200 and first.headers["cache-control"] == "private, no-cache"
    etag = first.headers["etag"]
    again = a.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""  # unchanged: nothing re-sent
    # Revalidation still authorises: another owner with the same ETag gets 404, not a 304.
    assert_error(b.get(url, headers={"If-None-Match": etag}), 404)
