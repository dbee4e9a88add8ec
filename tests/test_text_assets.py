"""Text assets: what words ops store (ctx.save_text), how the library lists and shows them, what a text asset does
where an image is needed, the words of a running job (partial_text) over the job's event stream, output screening,
and ops/text_common.generate with the tiny random Qwen2 (tests/helpers/tiny_llm.py)."""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import Field

from tests.conftest import make_settings
from zhike.core.context import RunContext
from zhike.core.errors import JobCancelled
from zhike.core.registry import _REGISTRY, operation
from zhike.core.types import AssetId, TextResult
from zhike.core.ui import ui
from zhike.ops.text_common import LlmParams, save_text_result
from zhike.provenance.xmp import read_label
from zhike.services.assets.service import AssetService
from zhike.services.container import Zhike

OWNER = "owner-a"
PROBE = "text_probe_test"


class ProbeParams(LlmParams):
    """A words op for these tests: streams `pieces` (pausing until someone follows the job when `wait_follower`),
    then stores them; `image`: the asset it was made from."""

    pieces: list[str] = Field(
        default_factory=list, description="Words to stream", json_schema_extra=ui("片段", "Pieces")
    )
    image: AssetId | None = Field(None, description="Made from", json_schema_extra=ui("图片", "Image"))
    wait_follower: bool = Field(False, description="Wait for a follower", json_schema_extra=ui("等待", "Wait"))
    as_json: bool = Field(False, description="Store JSON", json_schema_extra=ui("存为 JSON", "As JSON"))


def _follow(ctx: RunContext, seconds: float) -> None:
    """Post steps (each write reads `watched` back) until someone follows the job, then for `seconds` more."""
    deadline, step = time.monotonic() + 20, 0
    while not ctx.watched and time.monotonic() < deadline:
        step += 1
        ctx.progress(step, 1000)
        time.sleep(0.05)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        step += 1
        ctx.progress(step, 1000)
        time.sleep(0.05)


def run_probe(ctx: RunContext, p: ProbeParams) -> TextResult:
    for i, piece in enumerate(p.pieces):
        ctx.stream_text(piece)
        if p.wait_follower and i == 0:
            _follow(ctx, 0.0)
    if p.wait_follower:
        _follow(ctx, 1.0)  # the stream sees the running job with its words before it ends
    text = ctx.partial_text
    if p.as_json:
        return save_text_result(
            ctx, json.dumps({"title": text, "n": 1}, ensure_ascii=False), params=p, llm=None, mime="application/json"
        )
    return save_text_result(ctx, text, params=p, llm=p.llm, data={"pieces": len(p.pieces)}, parent_id=p.image)


@pytest.fixture(scope="module")
def probe_op() -> Iterator[str]:
    """Registered for this module only (other modules list every op)."""
    operation(PROBE, params=ProbeParams, result=TextResult, title={"zh": "测试文字", "en": "Text probe"})(run_probe)
    yield PROBE
    _REGISTRY.pop(PROBE, None)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, probe_op: str) -> Iterator[tuple[TestClient, Zhike, dict[str, str]]]:
    from zhike.api.app import create_app

    home = tmp_path_factory.mktemp("text") / "home"
    settings = make_settings(home, workers_gpu=0, workers_quick=0, workers_cpu=1)
    application = create_app(settings, start_worker=True)
    with TestClient(application) as client:
        z = application.state.zhike
        _, key = z.keys.create("a", owner_id=OWNER)
        yield client, z, {"Authorization": f"Bearer {key}"}


def submit(client: TestClient, auth: dict[str, str], params: dict[str, Any], op: str = PROBE) -> Any:
    return client.post("/api/v1/jobs", json={"op": op, "params": params}, headers=auth)


def finished(client: TestClient, auth: dict[str, str], job_id: str) -> dict[str, Any]:
    job = client.get(f"/api/v1/jobs/{job_id}?wait=30", headers=auth).json()
    assert job["state"] in ("succeeded", "failed", "cancelled"), job
    return job


def image_asset(z: Zhike, name: str) -> str:
    img = Image.new("RGB", (64, 48), (200, 40, 40))
    staged = z.assets.stage_image(
        img, owner_id=OWNER, job_id="j0", op="cutout", params={}, seed=None, model=None, name=name
    )
    with z.engine.begin() as conn:
        AssetService.commit_staged(conn, [staged])
    return staged.row.id


def test_a_words_output_is_a_text_asset_listed_filtered_and_with_lineage(api) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    photo = image_asset(z, "咖啡杯")
    r = submit(client, auth, {"pieces": ["# 保温杯文案\n", "316 不锈钢，", "保温 12 小时"], "image": photo})
    assert r.status_code == 201, r.text
    job = finished(client, auth, r.json()["id"])
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert result["text"] == "# 保温杯文案\n316 不锈钢，保温 12 小时" and result["data"] == {"pieces": 3}
    assert job["partial_text"] is None  # the result has the whole text
    assert [o["asset_id"] for o in job["outputs"]] == [result["asset_id"]]

    asset = client.get(f"/api/v1/assets/{result['asset_id']}", headers=auth).json()
    assert asset["mime"] == "text/markdown" and asset["width"] is None and asset["height"] is None
    assert asset["op"] == PROBE and asset["params"]["pieces"][0] == "# 保温杯文案\n"
    assert asset["name"] == "咖啡杯"  # an output is named like what it was made from
    assert asset["parent_id"] == photo and asset["parent"] == {"id": photo, "exists": True}
    assert asset["size_bytes"] == len(result["text"].encode("utf-8"))

    texts = client.get("/api/v1/assets?kind=text", headers=auth).json()["assets"]
    images = client.get("/api/v1/assets?kind=image", headers=auth).json()["assets"]
    assert [a["id"] for a in texts] == [result["asset_id"]]
    assert photo in [a["id"] for a in images] and result["asset_id"] not in [a["id"] for a in images]
    children = client.get(f"/api/v1/assets?parent={photo}", headers=auth).json()["assets"]
    assert [a["id"] for a in children] == [result["asset_id"]]
    assert client.get("/api/v1/assets?kind=film", headers=auth).status_code == 422

    # The default export is the Markdown itself, with the notice and the front matter (tests/test_text_labels.py)
    md = client.get(f"/api/v1/assets/{result['asset_id']}/file", headers=auth)
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "316 不锈钢，保温 12 小时" in md.content.decode("utf-8")


def test_names_come_from_the_text_or_a_json_title(api) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    job = finished(client, auth, submit(client, auth, {"pieces": ["## **春季新品** 连衣裙\n", "正文"]}).json()["id"])
    row = z.assets.get(job["result"]["asset_id"], owner_id=OWNER)
    assert row.name == "春季新品 连衣裙"  # the first line without Markdown's marks
    job = finished(client, auth, submit(client, auth, {"pieces": ["夏日清凉 T 恤"], "as_json": True}).json()["id"])
    row = z.assets.get(job["result"]["asset_id"], owner_id=OWNER)
    assert row.mime == "application/json" and row.name == "夏日清凉 T 恤"
    assert json.loads(z.assets.read_text(row)) == {"title": "夏日清凉 T 恤", "n": 1}


def test_a_text_thumbnail_is_a_card_with_its_words_drawn(api) -> None:  # type: ignore[no-untyped-def]
    client, _, auth = api
    han = finished(client, auth, submit(client, auth, {"pieces": ["中文标题\n", "第一行文字"]}).json()["id"])
    blank = finished(client, auth, submit(client, auth, {"pieces": [" "]}).json()["id"])
    cards = []
    for job in (han, blank):
        r = client.get(f"/api/v1/assets/{job['result']['asset_id']}/thumb?size=256", headers=auth)
        assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
        img = Image.open(io.BytesIO(r.content))
        assert img.size == (256, 256)
        label = read_label(r.content)  # a picture of AI words is labelled like an image thumbnail
        assert label is not None and label["fields"]["ProduceID"] == job["result"]["asset_id"]
        cards.append(np.asarray(img.convert("L")))
    # Chinese-only words leave ink on the card (no font for them would leave it blank, as the blank text does)
    ink = [int((c[20:] < 100).sum()) for c in cards]
    assert ink[0] > 300 and ink[1] == 0, ink
    again = client.get(f"/api/v1/assets/{han['result']['asset_id']}/thumb?size=256", headers=auth)
    assert (
        again.content == client.get(f"/api/v1/assets/{han['result']['asset_id']}/thumb?size=256", headers=auth).content
    )


def test_a_text_asset_where_an_image_is_needed_is_a_clear_422(api) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    text_id = finished(client, auth, submit(client, auth, {"pieces": ["文案"]}).json()["id"])["result"]["asset_id"]
    photo = image_asset(z, "杯子")
    for op, params, field in [
        ("upscale", {"image": text_id}, "params.image"),
        ("cutout", {"image": text_id}, "params.image"),
        (
            "control",
            {"prompt": "a cup", "controls": [{"image": photo, "model": "cn"}], "init_image": text_id},
            "params.init_image",
        ),
        (
            "control",
            {"prompt": "a cup", "controls": [{"image": photo, "model": "cn"}, {"image": text_id, "model": "cn"}]},
            "params.controls.1.image",
        ),
    ]:
        r = submit(client, auth, params, op=op)
        assert r.status_code == 422, (op, r.text)
        body = r.json()["error"]
        assert (body["code"], body["field"]) == ("asset_not_image", field), body
    # Downloads: sizes are for images; image formats are not text formats and the other way round
    r = client.get(f"/api/v1/assets/{text_id}/file?size=800x800", headers=auth)
    assert r.status_code == 422 and (r.json()["error"]["code"], r.json()["error"]["field"]) == (
        "asset_not_image",
        "size",
    )
    r = client.get(f"/api/v1/assets/{text_id}/file?format=png", headers=auth)
    assert (
        r.status_code == 422
        and r.json()["error"]["code"] == "format_invalid"
        and "docx" in r.json()["error"]["message"]
    )
    r = client.get(f"/api/v1/assets/{photo}/file?format=pdf", headers=auth)
    assert (
        r.status_code == 422
        and r.json()["error"]["code"] == "format_invalid"
        and "webp" in r.json()["error"]["message"]
    )
    r = client.get(f"/api/v1/assets/{text_id}/file?format=docx&notice=middle", headers=auth)
    assert r.status_code == 422
    r = client.put("/api/v1/brand", json={"name": "杯子铺", "logo": text_id}, headers=auth)
    assert r.status_code == 422 and (r.json()["error"]["code"], r.json()["error"]["field"]) == (
        "asset_not_image",
        "logo",
    )
    with pytest.raises(Exception, match="asset_not_image|text; an image is needed"):
        z.assets.open_image(text_id, owner_id=OWNER, field="params.image")


def test_the_words_of_a_running_job_come_over_its_event_stream(api) -> None:  # type: ignore[no-untyped-def]
    client, _, auth = api
    pieces = ["第一段：", "保温杯", "，第二段"]
    job_id = submit(client, auth, {"pieces": pieces, "wait_follower": True}).json()["id"]
    events = []
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=auth) as r:
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
                if kind == "done":
                    break
    running = [e for k, e in events if k == "progress" and e["state"] == "running" and e["partial_text"]]
    assert running, events
    whole = "".join(pieces)
    assert all(whole.startswith(e["partial_text"]) for e in running)  # what was written so far, in order
    assert running[-1]["partial_text"] == whole
    kind, done = events[-1]
    assert kind == "done" and done["state"] == "succeeded"
    assert done["partial_text"] is None and done["result"]["text"] == whole


def test_generated_words_under_a_content_policy_fail_the_job_and_are_audited(api) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    before = len(z.assets.list(owner_id=OWNER, kind="text", limit=500))
    job = finished(client, auth, submit(client, auth, {"pieces": ["办证：", "fake passport", " 加微信"]}).json()["id"])
    assert job["state"] == "failed"
    err = job["error"]
    assert err["code"] == "content_refused" and err["limit"] == "fraud" and err["field"] == "text"
    assert (
        err["ctx"]["policy_zh"] == "伪造证件与诈骗" and "passport" not in err["message"]
    )  # the policy, never the term
    assert len(z.assets.list(owner_id=OWNER, kind="text", limit=500)) == before  # nothing stored
    audit = z.safety.audit(5)[0]
    assert (audit["op"], audit["field"], audit["policy"], audit["term"]) == (
        PROBE,
        "output.text",
        "fraud",
        "fake passport",
    )


def test_partial_text_is_kept_when_a_job_is_cancelled(api) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    job_id = submit(client, auth, {"pieces": ["写到一半", "后面的不会写"], "wait_follower": True}).json()["id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = z.jobs.get(job_id, OWNER)
        if row.partial_text:
            break
        time.sleep(0.05)
    assert client.post(f"/api/v1/jobs/{job_id}/cancel", headers=auth).status_code == 200
    job = finished(client, auth, job_id)
    assert job["state"] == "cancelled" and job["partial_text"] == "写到一半"


# -- generate() with the tiny random Qwen2 ---------------------------------------------------------------------
@pytest.fixture
def tiny_llm_zhike(tiny_llm_app: Zhike) -> tuple[Zhike, str]:
    return tiny_llm_app, "tiny-qwen"


def _ctx(z: Zhike, **kw: Any) -> RunContext:
    from zhike.core.work import JobWork

    return RunContext(
        job_id="job-gen",
        owner_id=OWNER,
        op=PROBE,
        params={},
        settings=z.settings,
        models=z.models,
        assets=z.assets,
        sink=lambda *a: None,
        work=JobWork(z.settings.work_dir, "job-gen", keep_seconds=60),
        **kw,
    )


def test_generate_streams_each_piece_and_returns_the_whole_answer(tiny_llm_zhike) -> None:  # type: ignore[no-untyped-def]
    from zhike.backends.llm.base import ChatMessage, GenerateOptions
    from zhike.ops.text_common import generate

    z, name = tiny_llm_zhike
    pieces: list[str] = []
    screened: list[tuple[str, str]] = []
    ctx = _ctx(z, text_sink=pieces.append, text_screen=lambda text, field: screened.append((text, field)))
    done = generate(
        ctx, [ChatMessage("user", "写一句保温杯文案")], GenerateOptions(max_tokens=12, seed=1), llm=name, field="copy"
    )
    assert done.completion_tokens > 0 and done.text
    assert "".join(pieces) == done.text == ctx.partial_text and len(pieces) > 1
    assert screened == [(done.text, "copy")]  # the whole answer, once, under the op's field
    assert ctx.timings["generate"] > 0


def test_generate_stops_between_tokens_when_the_job_is_cancelled(tiny_llm_zhike) -> None:  # type: ignore[no-untyped-def]
    from zhike.backends.llm.base import ChatMessage, GenerateOptions
    from zhike.ops.text_common import generate

    z, name = tiny_llm_zhike
    pieces: list[str] = []
    ctx = _ctx(z)

    def sink(piece: str) -> None:  # the user cancels as the first words arrive
        pieces.append(piece)
        ctx.cancel_requested = True

    ctx.text_sink = sink
    with pytest.raises(JobCancelled, match="cancelled by the user"):
        generate(ctx, [ChatMessage("user", "你好")], GenerateOptions(max_tokens=64, seed=1), llm=name)
    assert 1 <= len(pieces) < 64


def test_unknown_llm_is_refused_at_submission_naming_the_field(api) -> None:  # type: ignore[no-untyped-def]
    client, _, auth = api
    from zhike.ops.text_common import prepare_llm

    _REGISTRY[PROBE] = dataclasses.replace(_REGISTRY[PROBE], prepare=prepare_llm)
    try:
        r = submit(client, auth, {"pieces": ["x"], "llm": "no-such-model"})
    finally:
        _REGISTRY[PROBE] = dataclasses.replace(_REGISTRY[PROBE], prepare=None)
    assert r.status_code == 422 and (r.json()["error"]["code"], r.json()["error"]["field"]) == (
        "model_not_found",
        "params.llm",
    )
