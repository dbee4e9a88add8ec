"""live_script on the real job path with a tiny random Qwen2 (real tokenizer, real transformers backend): the
script's structure, its timed segments and JSON twin, resuming after a crash, cancel, and a 10,000-character run.
The tiny model's words are noise: tests assert structure and bookkeeping, never wording."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import update

from tests.helpers.jobs import run
from zhike.core.context import RunContext
from zhike.core.registry import OperationDef
from zhike.core.rows import JobRow
from zhike.core.work import JobWork
from zhike.ops.live_script import (
    PRODUCT_KINDS,
    SCHEMA,
    SPEECH_RATE,
    LiveScriptParams,
    markdown,
    plan,
    spoken_chars,
    tidy,
    to_segments,
)
from zhike.services.container import Zhike
from zhike.services.db import jobs
from zhike.services.jobs.worker import Worker

PRODUCTS = [
    {"name": "桂花乌龙茶", "price": "原价 89，直播间 59 元", "selling_points": ["高山茶园", "冷泡更香"], "stock": 300},
    {"name": "紫砂茶杯", "price": "39 元", "offer": "满 99 减 20", "stock": 50},
    {"name": "竹制茶盘", "price": "129 元", "selling_points": ["整竹打造"]},
]


@pytest.fixture
def z(tiny_llm_app: Zhike) -> Zhike:
    return tiny_llm_app


# -- model-free ---------------------------------------------------------------------------------------------------
def test_plan_is_opening_products_fillers_faq_closing_and_later_rounds_loop_the_products() -> None:
    p = LiveScriptParams.model_validate({"products": PRODUCTS})
    first = plan(p, 0)
    assert first[0] == ("opening", None) and first[-2:] == [("faq", None), ("closing", None)]
    for i in range(3):
        assert [k for k, j in first if j == i and k != "filler"] == list(PRODUCT_KINDS)
    assert [j for k, j in first if k == "filler"] == [0, 1]  # between products, not after the last
    again = plan(p, 1)
    assert {k for k, _ in again} == {*PRODUCT_KINDS, "filler"} and len(again) == 3 * 6


def test_filler_lines_and_questions_become_their_own_timed_segments() -> None:
    faq = to_segments(
        "faq", None, 0, "问：多久发货？\n答：48 小时内发货。\n**问：** 能退吗？\n**答：** 七天无理由。", 4.0
    )
    assert [(s["question"], s["text"]) for s in faq] == [
        ("多久发货？", "48 小时内发货。"),
        ("能退吗？", "七天无理由。"),
    ]
    fill = to_segments("filler", 1, 0, "- 欢迎新来的朋友！\n\n2. 点点关注不迷路", 4.0)
    assert [s["text"] for s in fill] == ["欢迎新来的朋友！", "点点关注不迷路"]
    one = to_segments("price", 2, 0, "## 价格\n今天只要 **59 元**！", 4.0)
    assert one == [
        {
            "kind": "price",
            "product_index": 2,
            "round": 0,
            "text": "今天只要 59 元！",
            "pause_after_ms": 1200,
            "est_seconds": round(spoken_chars("今天只要59元！") / 4.0, 1),
        }
    ]


def test_markdown_has_a_section_per_product_and_the_pauses() -> None:
    p = LiveScriptParams.model_validate({"products": PRODUCTS[:2], "host": "小美"})
    segs = [s for k, i in plan(p, 0) for s in to_segments(k, i, 0, f"{k} 的口播", 4.5)]
    md = markdown(p, {"segments": segs, "total_chars": 100, "est_seconds": 125})
    assert md.startswith("# 直播脚本：桂花乌龙茶、紫砂茶杯")
    assert "## 商品 1: 桂花乌龙茶 — 原价 89，直播间 59 元" in md and "## 商品 2: 紫砂茶杯 — 39 元" in md
    assert md.index("## 开场") < md.index("## 商品 1") < md.index("## 商品 2") < md.index("## 常见问题")
    assert "_（停顿 1.2s）_" in md and "预计时长: 2:05" in md


# -- the op on the tiny model -------------------------------------------------------------------------------------
def check_structure(z: Zhike, row: JobRow) -> dict[str, Any]:
    r = row.result
    doc = r["data"]
    assert doc["schema"] == SCHEMA and doc["version"] == 1
    segs = doc["segments"]
    kinds = [s["kind"] for s in segs]
    assert kinds[0] == "opening" and kinds[-1] == "closing" and "faq" in kinds
    for i in range(len(row.params["products"])):
        mine = [s["kind"] for s in segs if s["product_index"] == i and s["round"] == 0 and s["kind"] != "filler"]
        assert mine == list(PRODUCT_KINDS)
    rate = doc["speech_rate_cps"]
    for s in segs:
        assert s["text"].strip() and s["est_seconds"] == round(spoken_chars(s["text"]) / rate, 1)
    assert [s["id"] for s in segs] == [f"s{i:04d}" for i in range(1, len(segs) + 1)]
    assert doc["total_chars"] == sum(spoken_chars(s["text"]) for s in segs)
    # The Markdown asset and its JSON twin (child of the Markdown), both with the job's params.
    md = z.assets.get(r["asset_id"], owner_id="u1")
    js = z.assets.get(r["json_asset_id"], owner_id="u1")
    assert md.mime == "text/markdown" and js.mime == "application/json"
    assert js.parent_id == md.id and js.params["products"] == row.params["products"]
    stored = json.loads(z.assets.read_bytes(js))
    assert stored["segments"] == segs and "parts" not in stored
    assert z.assets.read_bytes(md).decode() == r["text"]
    return doc


def test_script_structure_segments_and_json_asset(z: Zhike) -> None:
    row = run(z, "live_script", {"products": PRODUCTS[:2], "host": "小美", "target_chars": 600, "max_tokens": 16})
    doc = check_structure(z, row)
    assert doc["speech_rate_cps"] == SPEECH_RATE["zh"] and row.params["llm"] == "tiny-qwen"
    assert row.result["llm"] == "tiny-qwen" and row.step == row.total_steps
    assert doc["parts"]["resumed"] == 0 and doc["parts"]["generated"] == len(plan(LiveScriptParams(**row.params), 0))


def test_ten_thousand_characters(z: Zhike) -> None:
    t0 = time.perf_counter()
    # one product: 8 parts; max_tokens caps the first part, before the model's characters per token are known
    row = run(z, "live_script", {"products": PRODUCTS[:1], "target_chars": 10000, "max_tokens": 150})
    doc = check_structure(z, row)
    assert doc["total_chars"] >= 9000, doc["total_chars"]
    assert doc["est_seconds"] > 10000 / SPEECH_RATE["zh"] * 0.9
    print(f"10k script: {doc['total_chars']} chars in {time.perf_counter() - t0:.1f}s, {len(doc['segments'])} segs")


class Killed(BaseException):
    """The worker process dies (nothing catches it)."""


class DiesAtStep:
    def __init__(self, step: int) -> None:
        self.step = step

    def execute(self, op: OperationDef, ctx: RunContext, params: BaseModel) -> BaseModel:
        sink = ctx.sink

        def dying(step: int, total: int, preview: Callable[[], Any] | None) -> None:
            if step >= self.step:
                raise Killed
            sink(step, total, preview)

        ctx.sink = dying
        return op.run(ctx, params)


def test_a_retried_job_resumes_from_the_finished_parts(z: Zhike) -> None:
    params = {"products": PRODUCTS[:1], "target_chars": 400, "max_tokens": 16}
    job, _ = z.submit("live_script", params, "u1")
    with pytest.raises(Killed):
        Worker(z, executor=DiesAtStep(4), worker_id="first").run_one(job.id)
    work = JobWork(z.settings.work_dir, job.id)
    assert work.keys() == [f"part-r0-{k:03d}" for k in range(4)]
    before = [work.done(f"part-r0-{k:03d}")["text"] for k in range(4)]  # type: ignore[index]
    with z.engine.begin() as conn:  # its lease runs out
        conn.execute(update(jobs).where(jobs.c.id == job.id).values(lease_expires_at=0))
    assert Worker(z, worker_id="second").run_one(job.id)
    row = z.jobs.get(job.id)
    assert row.state == "succeeded" and row.attempts == 2, row.error
    doc = check_structure(z, row)
    assert doc["parts"]["resumed"] == 4 and doc["parts"]["generated"] == len(plan(LiveScriptParams(**params), 0)) - 4
    # the first four parts are the first attempt's words, not new ones
    assert [s["text"] for s in doc["segments"][:4]] == [tidy(b) for b in before]
    assert not work.path.exists()  # removed once the job succeeded


def test_cancel_stops_between_tokens_and_keeps_nothing(z: Zhike) -> None:
    job, _ = z.submit("live_script", {"products": PRODUCTS, "target_chars": 20000}, "u1")
    t = threading.Thread(target=Worker(z).run_one, args=(job.id,))
    t.start()
    deadline = time.monotonic() + 60
    while not z.jobs.get(job.id).partial_text and time.monotonic() < deadline:
        time.sleep(0.05)
    z.jobs.cancel(job.id, "u1")
    t.join(timeout=60)
    row = z.jobs.get(job.id)
    assert row.state == "cancelled" and row.step < row.total_steps
    assert z.assets.by_job(job.id) == []
