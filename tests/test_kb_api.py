"""Product knowledge bases over the API, as a customer-service bot uses them (an API key): the five fixture documents
of tests/fixtures/kb read with the real e5 embedder, questions answered by the tiny random Qwen2 (its words mean
nothing: the tests assert what was searched, cited and stored), "不知道" without any LLM, conversations, re-ingest,
owners, server-sent events, per-owner limits; every bad input the issue names; and the `zhike kb` CLI.
Uploads answer at once and are indexed in the background (services/kb_indexer.py): status, progress, questions
searching ready documents only, a failed indexing keeping the old version, a restart resuming.

The deployment's default LLM is a remote server that is down: a question that reaches it fails, so a question
answered "不知道" with 200 provably ran no model.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from tests.conftest import make_settings
from zhike.api.app import create_app
from zhike.services.container import Zhike
from zhike.settings import get_settings

FIXTURES = Path(__file__).parent / "fixtures" / "kb"
DOCS = ["thermos_spec.pdf", "earbuds_manual.docx", "dress_guide.md", "after_sales_policy.txt", "faq.xlsx"]
QUESTIONS = json.loads((FIXTURES / "questions.json").read_text(encoding="utf-8"))
IDK_ZH = "不知道，请咨询人工客服"
IDK_EN = "I don't know — please ask our customer service staff"
TINY = {"llm": "tiny-qwen", "max_tokens": 8}  # the tiny model, a few tokens: answers in well under a second
# Questions the fixture documents do not answer, well below answerable()'s bar (two from questions.json).
OFF_TOPIC = [
    "你们卖汽车轮胎吗",
    "火星上的天气怎么样",
    "会员积分怎么兑换",
    "你们店是哪一年开的",
]


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class Shop:
    client: TestClient
    zhike: Zhike
    owner: str
    kb: str
    docs: dict[str, str]  # file name -> document id

    def ask(self, question: str, status: int = 200, **body: Any) -> dict[str, Any]:
        r = self.client.post(f"/api/v1/kb/{self.kb}/ask", json={"question": question, **body})
        assert r.status_code == status, r.text
        return r.json()

    def upload(self, name: str, data: bytes, status: int = 201, *, ready: bool = True) -> dict[str, Any]:
        """Upload; with `ready`, wait until the background indexing made it ready (the body's document then is
        the ready one)."""
        r = self.client.post(
            f"/api/v1/kb/{self.kb}/documents", files={"file": (name, data, "application/octet-stream")}
        )
        assert r.status_code == status, r.text
        body = r.json()
        if status == 201 and ready:
            body["document"] = wait_ready(self.client, self.kb, body["document"]["id"])
        return body

    def document(self, doc_id: str) -> dict[str, Any]:
        listed = self.client.get(f"/api/v1/kb/{self.kb}/documents").json()["documents"]
        return next(d for d in listed if d["id"] == doc_id)

    def answerable(self, doc: str) -> dict[str, str] | None:
        """The first of the document's questions (questions.json) that search judges the KB answers (answerable()
        is zhike.kb's, tuned and tested in test_kb_retrieval.py: these tests take its word for it)."""
        for q in QUESTIONS["answerable"]:
            if q["doc"] == doc and self.zhike.kb_answers.prepare(self.owner, self.kb, q["q"]).found:
                return q
        return None

    def passages(self, doc_id: str) -> list[dict[str, Any]]:
        r = self.client.get(f"/api/v1/kb/{self.kb}/documents/{doc_id}")
        assert r.status_code == 200, r.text
        return r.json()["passages"]


def wait_ready(client: TestClient, kb: str, doc_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """The document once its indexing is over (ready or failed), as the document list shows it."""
    deadline = time.monotonic() + timeout
    while True:
        listed = client.get(f"/api/v1/kb/{kb}/documents").json()["documents"]
        doc = next(d for d in listed if d["id"] == doc_id)
        if doc["status"] in ("ready", "failed") or time.monotonic() > deadline:
            assert doc["status"] == "ready", doc
            return doc
        time.sleep(0.05)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, tiny_llm: Path) -> Iterator[Shop]:
    from tests.helpers.tiny_llm import register_tiny_llm

    settings = make_settings(
        tmp_path_factory.mktemp("kb") / "home",
        llm_default="remote",  # down: port 9 (discard) refuses connections at once
        llm_remote_url="http://127.0.0.1:9/v1",
        llm_remote_model="down",
        llm_retries=0,
        llm_timeout_seconds=2,
        kb_max_document_mb=1,
        kb_max_inflated_mb=20,
        kb_asks_per_owner=2,
    )
    app = create_app(settings, start_worker=False)
    z: Zhike = app.state.zhike
    register_tiny_llm(z.catalog, tiny_llm, name="tiny-qwen")
    row, key = z.keys.create("shop-bot")  # a customer-service bot's key
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        r = client.post("/api/v1/kb", json={"name": "暖途旗舰店"})
        assert r.status_code == 201, r.text
        s = Shop(client, z, row.owner_id, r.json()["id"], {})
        for name in DOCS:  # all queued at once, indexed one after another in the background
            body = s.upload(name, (FIXTURES / name).read_bytes(), ready=False)
            assert (body["replaced"], body["unchanged"]) == (False, False)
            s.docs[name] = body["document"]["id"]
        for doc_id in s.docs.values():
            wait_ready(client, s.kb, doc_id)
        yield s


def test_uploaded_documents_are_listed_with_pages_passages_and_their_files(shop: Shop) -> None:
    listed = shop.client.get(f"/api/v1/kb/{shop.kb}/documents").json()["documents"]
    by_name = {d["name"]: d for d in listed}
    assert sorted(by_name) == sorted(DOCS)
    assert {n: d["kind"] for n, d in by_name.items()} == {
        "thermos_spec.pdf": "pdf",
        "earbuds_manual.docx": "docx",
        "dress_guide.md": "markdown",
        "after_sales_policy.txt": "txt",
        "faq.xlsx": "xlsx",
    }
    assert by_name["thermos_spec.pdf"]["pages"] == 3
    assert all(d["chunks"] > 0 and d["pages_per_second"] > 0 for d in listed)
    kb = shop.client.get(f"/api/v1/kb/{shop.kb}").json()
    assert kb["documents"] == 5 and kb["chunks"] == sum(d["chunks"] for d in listed)
    # The passages keep where they came from; the GBK text file reads as Chinese.
    thermos = shop.passages(shop.docs["thermos_spec.pdf"])
    assert any("316 医用级不锈钢" in p["text"] and p["where"].startswith("第1页") for p in thermos)
    assert any("满 99 元包邮" in p["text"] for p in shop.passages(shop.docs["after_sales_policy.txt"]))
    # The original file, byte for byte.
    r = shop.client.get(f"/api/v1/kb/{shop.kb}/documents/{shop.docs['faq.xlsx']}/file")
    assert r.status_code == 200 and r.content == (FIXTURES / "faq.xlsx").read_bytes()
    assert "faq.xlsx" in r.headers["content-disposition"]


def test_an_answerable_question_goes_to_the_llm_with_passages_from_the_right_document(shop: Shop) -> None:
    picked = [q for q in (shop.answerable(doc) for doc in DOCS) if q is not None]
    assert len(picked) >= 4, picked  # (search quality itself: test_kb_retrieval.py)
    for q in picked:
        a = shop.ask(q["q"], **TINY)
        assert a["llm"] == "tiny-qwen" and a["language"] == "zh", a
        assert a["timings"]["retrieval_ms"] > 0 and a["timings"]["generation_ms"] > 0
        assert a["history_turns"] == 0 and a["conversation_id"]
        # The model was given numbered passages, the one that answers among them.
        assert [p["n"] for p in a["passages"]] == list(range(1, len(a["passages"]) + 1))
        assert any(p["document"] == q["doc"] and q["passage"] in p["text"] for p in a["passages"]), (q, a["passages"])
        assert all(p["document_id"] == shop.docs[p["document"]] for p in a["passages"])
        # Citations are some of those passages; an answer always shows its sources, "不知道" shows none.
        given = {p["n"]: p for p in a["passages"]}
        assert all({**c, "cited": given[c["n"]]["cited"]} == given[c["n"]] for c in a["citations"])
        assert bool(a["citations"]) == a["answered"]
        if not a["answered"]:  # the tiny random model writes no words: that is "does not know"
            assert a["answer"] == IDK_ZH or "不知道" in a["answer"]


def test_an_unanswerable_question_is_answered_i_dont_know_without_any_llm(shop: Shop) -> None:
    for q in OFF_TOPIC:
        a = shop.ask(q)  # the default LLM is down: any call to it would fail
        assert (a["answer"], a["answered"], a["llm"], a["citations"]) == (IDK_ZH, False, None, [])
        assert all(not p["cited"] for p in a["passages"])  # the nearest passages, which do not answer
        assert "generation_ms" not in a["timings"] and a["timings"]["retrieval_ms"] > 0
    english = shop.ask("Do you sell car tyres?")
    assert (english["answer"], english["language"], english["llm"]) == (IDK_EN, "en", None)
    # The same default LLM for a question the documents answer: it is called, and its failure is reported.
    q = shop.answerable("earbuds_manual.docx") or shop.answerable("dress_guide.md")
    assert q is not None
    r = shop.client.post(f"/api/v1/kb/{shop.kb}/ask", json={"question": q["q"]})
    assert r.status_code == 502 and r.json()["error"]["code"] == "llm_unreachable", r.text


def test_a_follow_up_question_is_searched_and_answered_with_the_conversation(shop: Shop) -> None:
    first = shop.ask("暖途保温杯的内胆是什么材质的？", **TINY)
    assert first["llm"] == "tiny-qwen"
    follow = shop.ask("那它多少钱？", conversation_id=first["conversation_id"], **TINY)
    assert follow["conversation_id"] == first["conversation_id"]
    # Searched with the previous question: the thermos spec's price, which "那它多少钱？" alone does not name.
    assert follow["history_turns"] == (1 if follow["llm"] else 0), follow
    docs = [p["document"] for p in follow["passages"]]
    assert docs.count("thermos_spec.pdf") > len(docs) / 2, follow["passages"]
    convo = shop.client.get(f"/api/v1/kb/{shop.kb}/conversations/{first['conversation_id']}").json()
    assert [(m["role"], m["content"]) for m in convo["messages"][::2]] == [
        ("user", "暖途保温杯的内胆是什么材质的？"),
        ("user", "那它多少钱？"),
    ]
    assert [m["content"] for m in convo["messages"][1::2]] == [first["answer"], follow["answer"]]
    assert convo["messages"][3]["citations"] == follow["citations"]
    err = shop.ask("那它多少钱？", 404, conversation_id="cnope")["error"]
    assert (err["code"], err["field"]) == ("kb_conversation_not_found", "conversation_id")


def test_re_uploading_a_document_replaces_its_passages_and_a_failed_one_keeps_them(shop: Shop) -> None:
    v1, v2 = PROMO_V1, PROMO_V2
    first = shop.upload("promo.md", v1)
    doc = first["document"]["id"]
    assert any("99 元" in p["text"] for p in shop.passages(doc))
    chunks = shop.client.get(f"/api/v1/kb/{shop.kb}").json()["chunks"]
    second = shop.upload("promo.md", v2)
    assert (second["document"]["id"], second["replaced"], second["unchanged"]) == (doc, True, False)
    texts = [p["text"] for p in shop.passages(doc)]
    assert any("109 元" in t for t in texts) and not any("99 元" in t or "杯套" in t for t in texts)
    assert shop.client.get(f"/api/v1/kb/{shop.kb}").json()["chunks"] == chunks  # replaced, not added
    a = shop.ask("双十二保温杯到手价多少钱", **TINY)
    promo = [p for p in a["passages"] if p["document"] == "promo.md"]
    assert promo and all("109 元" in p["text"] for p in promo)
    # The same bytes again: nothing read again. Unreadable bytes under its name: refused, the passages stay.
    assert shop.upload("promo.md", v2)["unchanged"] is True
    err = shop.upload("promo.md", b"\x00\x01binary\xff" * 100, 422)["error"]
    assert (err["code"], err["field"]) == ("document_not_text", "file")
    assert [p["text"] for p in shop.passages(doc)] == texts
    assert shop.client.delete(f"/api/v1/kb/{shop.kb}/documents/{doc}").status_code == 200
    gone = shop.client.get(f"/api/v1/kb/{shop.kb}/documents/{doc}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "kb_document_not_found"
    assert shop.client.get(f"/api/v1/kb/{shop.kb}").json()["documents"] == 5


# -- background indexing ---------------------------------------------------------------------------------------
PROMO_V1 = "# 双十二活动\n暖途保温杯双十二到手价 99 元，下单送杯套。".encode()
PROMO_V2 = "# 双十二活动\n暖途保温杯双十二到手价 109 元，下单送茶漏。".encode()
# Eight FAQ rows: eight passages, embedded two at a time below, so the indexing reports several steps.
SLIPPERS = "\n".join(
    ["问题,答案"]
    + [
        f"云朵拖鞋{q}？,云朵拖鞋{a}。"
        for q, a in [
            ("是什么材质", "采用 EVA 发泡鞋底和珊瑚绒鞋面"),
            ("能机洗吗", "可以放进洗衣机轻柔模式清洗"),
            ("有哪些尺码", "有 36 到 45 码五个尺码段"),
            ("防滑吗", "鞋底有波浪防滑纹路"),
            ("多少钱", "到手价 39 元两双"),
            ("发什么快递", "默认发中通快递"),
            ("冬天穿冷吗", "鞋面加绒，零下五度室内也不冷"),
            ("有几种颜色", "有奶白、雾蓝、樱粉三种颜色"),
        ]
    ]
).encode()


def test_an_upload_answers_at_once_and_is_indexed_in_the_background_with_progress(shop: Shop) -> None:
    kb = shop.zhike.kb
    kb.background, kb.embed_batch = False, 2  # indexed below, in this thread, so each step can be looked at
    try:
        up = shop.upload("slippers.csv", SLIPPERS, ready=False)
    finally:
        kb.background = True
    doc = up["document"]
    total = doc["progress"]["total"]
    assert (doc["status"], doc["chunks"], doc["progress"]["done"], doc["error"]) == ("queued", 0, 0, None), doc
    assert total >= 4 and doc["pages"] >= 1 and doc["kind"] == "csv"
    seen: list[tuple[str, int, int]] = []
    asked: list[dict[str, Any]] = []

    def step(stage: str, done: int, n: int) -> None:
        if stage != "embed":
            return
        listed = shop.document(doc["id"])  # what the studio's page reads while it indexes
        seen.append((listed["status"], listed["progress"]["done"], listed["progress"]["total"]))
        if not asked:  # a question now searches the ready documents only
            asked.append(shop.ask("云朵拖鞋能机洗吗", **TINY))

    try:
        assert kb.indexer.run_one(doc["id"], progress=step)
    finally:
        kb.embed_batch = 32
    assert seen[0] == ("indexing", 0, total) and seen[-1] == ("indexing", total, total), seen
    assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen) and len({d for _, d, _ in seen}) >= 3, seen
    assert all(p["document"] != "slippers.csv" for p in asked[0]["passages"])
    ready = shop.document(doc["id"])
    assert (ready["status"], ready["chunks"], ready["progress"]) == ("ready", total, {"done": total, "total": total})
    assert ready["ingest_seconds"] > 0
    after = shop.ask("云朵拖鞋能机洗吗", **TINY)
    assert any(p["document"] == "slippers.csv" and "洗衣机" in p["text"] for p in after["passages"]), after
    assert shop.client.delete(f"/api/v1/kb/{shop.kb}/documents/{doc['id']}").status_code == 200


def test_a_knowledge_base_whose_documents_are_not_indexed_yet_says_so(shop: Shop) -> None:
    kb_id = shop.client.post("/api/v1/kb", json={"name": "新店"}).json()["id"]
    fresh = Shop(shop.client, shop.zhike, shop.owner, kb_id, {})
    assert fresh.ask("云朵拖鞋能机洗吗", status=422)["error"]["code"] == "kb_empty"  # nothing uploaded: upload first
    shop.zhike.kb.background = False  # left queued: not one passage is searchable yet
    try:
        doc = fresh.upload("slippers.csv", SLIPPERS, ready=False)["document"]
    finally:
        shop.zhike.kb.background = True
    refused = fresh.ask("云朵拖鞋能机洗吗", status=409)["error"]
    assert (refused["code"], refused["field"]) == ("kb_not_ready", "kb_id"), refused
    assert shop.client.delete(f"/api/v1/kb/{kb_id}/documents/{doc['id']}").status_code == 200
    assert shop.client.delete(f"/api/v1/kb/{kb_id}").status_code == 200


def test_a_failed_indexing_keeps_the_indexed_version_answering(shop: Shop) -> None:
    from zhike.services.kb import KnowledgeBases

    z = shop.zhike
    doc = shop.upload("promo.md", PROMO_V1)["document"]
    v1 = shop.passages(doc["id"])
    # The same deployment with no time to index: the new version's indexing fails (document_timeout).
    hurried = KnowledgeBases(z.engine, z.settings.model_copy(update={"kb_ingest_seconds": 1e-9}), z.kb.embedder)
    hurried.background = z.kb.background = False  # this server's indexer leaves it to `hurried`
    try:
        up = hurried.upload_document(shop.owner, shop.kb, "promo.md", PROMO_V2)
        assert up.replaced and up.document.replacing and up.document.status == "queued"
        assert up.document.chunk_count == len(v1)  # the indexed version still answers while the new one waits
        assert hurried.indexer.run_one(doc["id"])
    finally:
        z.kb.background = True
    failed = shop.document(doc["id"])
    assert (failed["status"], failed["error"]["code"], failed["replacing"]) == ("failed", "document_timeout", False)
    assert failed["error"]["ctx"]["name"] == "promo.md" and failed["chunks"] == len(v1)
    # Nothing stored was lost: the first version's file, passages and answers.
    assert failed["sha256"] == doc["sha256"] and shop.passages(doc["id"]) == v1
    r = shop.client.get(f"/api/v1/kb/{shop.kb}/documents/{doc['id']}/file")
    assert r.content == PROMO_V1
    a = shop.ask("双十二保温杯到手价多少钱", **TINY)
    assert any(p["document"] == "promo.md" and "99 元" in p["text"] for p in a["passages"]), a["passages"]
    # Uploaded again where indexing has time: replaced.
    again = shop.upload("promo.md", PROMO_V2)
    assert again["document"]["status"] == "ready" and again["document"]["error"] is None
    assert any("109 元" in p["text"] for p in shop.passages(doc["id"]))
    assert shop.client.delete(f"/api/v1/kb/{shop.kb}/documents/{doc['id']}").status_code == 200


def test_a_document_deleted_while_it_is_indexed_stops_and_leaves_nothing(shop: Shop) -> None:
    kb = shop.zhike.kb
    kb.background, kb.embed_batch = False, 2
    try:
        doc = shop.upload("slippers.csv", SLIPPERS, ready=False)["document"]
        steps: list[int] = []

        def step(stage: str, done: int, n: int) -> None:
            if stage == "embed":
                steps.append(done)
                if done == 2:  # deleted half-way: the indexing stops at its next batch
                    assert shop.client.delete(f"/api/v1/kb/{shop.kb}/documents/{doc['id']}").status_code == 200

        assert kb.indexer.run_one(doc["id"], progress=step)
    finally:
        kb.background, kb.embed_batch = True, 32
    assert steps == [0, 2], steps
    assert shop.client.get(f"/api/v1/kb/{shop.kb}/documents/{doc['id']}").status_code == 404
    with kb.engine.connect() as conn:
        from sqlalchemy import func, select

        from zhike.services.db import kb_chunks

        assert conn.execute(select(func.count()).where(kb_chunks.c.document_id == doc["id"])).scalar_one() == 0


def test_a_restarted_server_indexes_what_was_left_half_indexed(tmp_path: Path) -> None:
    """A server that died mid-indexing (its lease expired) and one that never started: the next server indexes
    both at start-up; a document whose indexing kept dying is marked failed instead of tried for ever."""
    from zhike.services.kb_indexer import MAX_ATTEMPTS, Indexer

    settings = make_settings(tmp_path / "home")
    first = create_app(settings, start_worker=False)
    z: Zhike = first.state.zhike
    _, key = z.keys.create("shop-bot")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(first, headers=auth) as client:
        kb_id = client.post("/api/v1/kb", json={"name": "店"}).json()["id"]
        z.kb.background = False  # this server dies before its indexer gets to them

        def upload(name: str, text: str) -> str:
            r = client.post(f"/api/v1/kb/{kb_id}/documents", files={"file": (name, text.encode(), "text/markdown")})
            assert r.status_code == 201 and r.json()["document"]["status"] == "queued", r.text
            return str(r.json()["document"]["id"])

        crashed = upload("crashed.md", "# 双十二活动\n暖途保温杯双十二到手价 99 元。")
        waiting = upload("waiting.md", "# 发货\n暖途保温杯下单后 48 小时内发货。")
        doomed = upload("doomed.md", "# 赠品\n买两件送杯刷。")
        dead = Indexer(z.kb, lease_seconds=-1)  # a process that claimed them and died: its leases have expired
        assert dead.claim(crashed) is not None
        for _ in range(MAX_ATTEMPTS):
            assert dead.claim(doomed) is not None
    restarted = create_app(settings, start_worker=False)  # the same home: the next server process
    with TestClient(restarted, headers=auth) as client:
        for doc in (crashed, waiting):
            assert wait_ready(client, kb_id, doc)["chunks"] > 0
        listed = {d["id"]: d for d in client.get(f"/api/v1/kb/{kb_id}/documents").json()["documents"]}
        assert (listed[doomed]["status"], listed[doomed]["error"]["code"]) == ("failed", "kb_index_interrupted")
        passages = client.get(f"/api/v1/kb/{kb_id}/documents/{waiting}").json()["passages"]
        assert any("48 小时内发货" in p["text"] for p in passages), passages


def test_another_owner_is_answered_404_for_everything(shop: Shop) -> None:
    _, key = shop.zhike.keys.create("another shop")
    other = TestClient(shop.client.app, headers={"Authorization": f"Bearer {key}"})
    kb, doc = f"/api/v1/kb/{shop.kb}", f"/api/v1/kb/{shop.kb}/documents/{shop.docs['faq.xlsx']}"
    convo = shop.ask(OFF_TOPIC[0])["conversation_id"]
    calls = [
        ("get", kb, {}),
        ("patch", kb, {"json": {"name": "mine now"}}),
        ("get", f"{kb}/documents", {}),
        ("post", f"{kb}/documents", {"files": {"file": ("x.md", b"# x\nhello there", "text/markdown")}}),
        ("post", f"{kb}/ask", {"json": {"question": "保温杯能保温多长时间？"}}),
        ("get", doc, {}),
        ("get", f"{doc}/file", {}),
        ("delete", doc, {}),
        ("get", f"{kb}/conversations/{convo}", {}),
        ("delete", kb, {}),
    ]
    for method, path, kw in calls:
        r = other.request(method.upper(), path, **kw)
        assert r.status_code == 404 and r.json()["error"]["code"] == "kb_not_found", (method, path, r.text)
    assert other.get("/api/v1/kb").json() == {"kbs": []}
    assert shop.client.get(kb).json()["documents"] == 5  # all still there


def events(text: str) -> list[tuple[str, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_streamed_answers_are_server_sent_events_ending_with_the_answer(shop: Shop) -> None:
    q = shop.answerable("dress_guide.md") or shop.answerable("after_sales_policy.txt")
    assert q is not None
    r = shop.client.post(f"/api/v1/kb/{shop.kb}/ask", json={"question": q["q"], "stream": True, **TINY})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    got = events(r.text)
    kinds = [k for k, _ in got]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"token"} and len(kinds) >= 2, kinds
    done = got[-1][1]
    assert done["llm"] == "tiny-qwen" and {"retrieval_ms", "generation_ms", "total_ms"} <= set(done["timings"])
    assert any(p["document"] == "dress_guide.md" for p in done["passages"])
    streamed = "".join(d["text"] for _, d in got[:-1])
    assert done["answer"] == (streamed.strip() if done["answered"] else done["answer"])
    # "不知道" streams too: one token, then the answer, no model.
    r = shop.client.post(f"/api/v1/kb/{shop.kb}/ask", json={"question": OFF_TOPIC[1], "stream": True})
    got = events(r.text)
    assert [(k, d.get("text")) for k, d in got[:-1]] == [("token", IDK_ZH)]
    assert got[-1][0] == "done" and got[-1][1]["llm"] is None
    # Refusals come before the stream, as JSON.
    r = shop.client.post(f"/api/v1/kb/{shop.kb}/ask", json={"question": "", "stream": True})
    assert r.status_code == 422 and r.json()["error"]["field"] == "question"


def test_a_question_under_a_content_policy_is_refused_naming_it(shop: Shop) -> None:
    safety = shop.zhike.safety
    safety.add_term("fraud", "代开发票", "exact", added_by="test")
    try:
        for stream in (False, True):
            r = shop.client.post(f"/api/v1/kb/{shop.kb}/ask", json={"question": "能帮我代开发票吗", "stream": stream})
            err = r.json()["error"]
            assert r.status_code == 422 and (err["code"], err["field"]) == ("content_refused", "question"), r.text
            assert err["ctx"]["policy_zh"] == "伪造证件与诈骗" and "代开发票" not in err["message"]  # never the term
        logged = safety.audit(5)[0]
        assert (logged["op"], logged["policy"], logged["owner_id"]) == ("kb_ask", "fraud", shop.owner)
    finally:
        safety.remove_term("fraud", "代开发票")


def test_questions_past_the_owners_share_are_refused_429(shop: Shop) -> None:
    slots = shop.zhike.kb.asks
    slots.acquire(shop.owner)
    slots.acquire(shop.owner)  # kb_asks_per_owner=2: both held (two answers streaming to this bot)
    try:
        r = shop.client.post(f"/api/v1/kb/{shop.kb}/ask", json={"question": OFF_TOPIC[2]})
        assert r.status_code == 429 and r.json()["error"]["code"] == "kb_busy" and r.headers["retry-after"]
    finally:
        slots.release(shop.owner)
        slots.release(shop.owner)
    shop.ask(OFF_TOPIC[2])  # given back: answered again


def test_knowledge_bases_are_created_renamed_and_deleted(shop: Shop) -> None:
    c = shop.client
    new = c.post("/api/v1/kb", json={"name": "  临时  库 "}).json()
    assert new["name"] == "临时 库" and new["documents"] == 0
    taken = c.post("/api/v1/kb", json={"name": "暖途旗舰店"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "kb_name_taken"
    assert c.post("/api/v1/kb", json={"name": " "}).json()["error"]["field"] == "name"
    renamed = c.patch(f"/api/v1/kb/{new['id']}", json={"name": "测试库"}).json()
    assert renamed["name"] == "测试库"
    empty = c.post(f"/api/v1/kb/{new['id']}/ask", json={"question": "有货吗"})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "kb_empty"
    assert {k["name"] for k in c.get("/api/v1/kb").json()["kbs"]} == {"暖途旗舰店", "测试库"}
    assert c.delete(f"/api/v1/kb/{new['id']}").status_code == 200
    assert c.get(f"/api/v1/kb/{new['id']}").status_code == 404


def test_the_real_embedded_llm_answers_from_the_passages_and_cites_them(shop: Shop, real_llm: Any) -> None:
    """One short answer by the embedded Qwen2.5 1.5B (greedy, 32 tokens: about 15 s on 2 cores)."""
    a = shop.ask("暖途保温杯的内胆是什么材质的？", llm=real_llm.name, max_tokens=32)
    assert a["llm"] == real_llm.name and a["answered"], a
    assert "316" in a["answer"], a["answer"]  # the steel grade, from the passage, not invented
    assert a["citations"] and {c["document"] for c in a["citations"]} >= {"thermos_spec.pdf"}, a["citations"]
    assert a["timings"]["generation_ms"] > 0 and a["timings"]["first_token_ms"] <= a["timings"]["generation_ms"]


# -- bad input ---------------------------------------------------------------------------------------------------
def pdf_bomb(inflated: int = 40_000_000) -> bytes:
    """A 40 KB PDF whose one page's content stream inflates to 40 MB (the test deployment allows 20 MB)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    w = PdfWriter()
    page = w.add_blank_page(200, 200)
    font = w._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
    )
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf ET\n" + b" " * inflated)
    page[NameObject("/Contents")] = w._add_object(stream.flate_encode(level=9))
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def locked_pdf() -> bytes:
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(200, 200)
    w.encrypt(user_password="secret-123", owner_password="owner-456")
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_bad_input_is_refused_naming_the_field_and_nothing_stored_is_lost(shop: Shop) -> None:
    def state() -> list[tuple[str, str, int]]:
        docs = shop.client.get(f"/api/v1/kb/{shop.kb}/documents").json()["documents"]
        return sorted((d["name"], d["sha256"], d["chunks"]) for d in docs)

    before, dress = state(), shop.passages(shop.docs["dress_guide.md"])
    bomb = pdf_bomb()
    assert len(bomb) < 100_000
    bad = [
        ("empty.txt", b"", 422, "document_empty"),
        ("huge.txt", "很长的文字。".encode() * 60_000, 413, "file_too_large"),  # 1.08 MB: the limit is 1 MB
        ("bomb.pdf", bomb, 422, "document_bomb"),
        ("locked.pdf", locked_pdf(), 422, "document_encrypted"),
        ("photo.txt", png_bytes(), 422, "document_not_text"),  # binary renamed .txt
        ("dress_guide.md", png_bytes(), 422, "document_not_text"),  # a bad re-upload of a stored document
        ("tool.exe", b"MZ\x90\x00", 422, "document_unsupported"),
    ]
    for name, data, status, code in bad:
        err = shop.upload(name, data, status)["error"]
        assert (err["code"], err["field"]) == (code, "file"), (name, err)
    r = shop.client.post(f"/api/v1/kb/{shop.kb}/documents")
    assert r.status_code == 422 and r.json()["error"]["field"] == "file"
    for question, kind in (("问" * 1_000_000, "string_too_long"), ("", "string_too_short")):
        err = shop.ask(question, 422)["error"]
        assert (err["code"], err["field"], err["kind"]) == ("validation_failed", "question", kind)
    # Nothing stored was lost: the same documents and passages, and they still answer.
    assert state() == before and shop.passages(shop.docs["dress_guide.md"]) == dress
    q = next(q for q in QUESTIONS["answerable"] if q["doc"] == "dress_guide.md")
    a = shop.ask(q["q"], **TINY)
    assert any(p["document"] == "dress_guide.md" and q["passage"] in p["text"] for p in a["passages"])


# -- the CLI -----------------------------------------------------------------------------------------------------
def flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines at the terminal's width


def test_the_cli_creates_adds_asks_lists_and_removes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZHIKE_DEVICE", "cpu")
    get_settings.cache_clear()
    runner = CliRunner()

    def zhike(*args: str, code: int = 0) -> Any:
        r = runner.invoke(__import__("zhike.cli.main", fromlist=["app"]).app, list(args), catch_exceptions=False)
        assert r.exit_code == code, (args, r.stdout, r.stderr)
        return r

    try:
        assert "created" in zhike("kb", "create", "店铺").stdout
        added = zhike("kb", "add", "店铺", str(FIXTURES / "dress_guide.md"), str(tmp_path / "missing.md"), code=1)
        assert "dress_guide.md: added" in added.stdout and "missing.md: no such file" in flat(added.stderr)
        (tmp_path / "bad.txt").write_bytes(png_bytes())
        refused = zhike("kb", "add", "店铺", str(tmp_path / "bad.txt"), code=1)
        assert "bad.txt" in refused.stderr and "not text" in flat(refused.stderr)
        listed = json.loads(zhike("kb", "list", "--json").stdout)
        assert [(k["name"], k["documents"]) for k in listed] == [("店铺", 1)]
        docs = json.loads(zhike("kb", "docs", "店铺", "--json").stdout)
        assert [d["name"] for d in docs] == ["dress_guide.md"] and docs[0]["chunks"] > 0
        # No LLM is installed in this home: a question the guide cannot answer still gets its answer.
        asked = zhike("kb", "ask", "店铺", OFF_TOPIC[1])
        assert IDK_ZH in asked.stdout and "retrieval" in asked.stderr
        answer = json.loads(zhike("kb", "ask", "店铺", OFF_TOPIC[1], "--json").stdout)
        assert answer["answer"] == IDK_ZH and answer["llm"] is None
        bad_q = zhike("kb", "ask", "店铺", "   ", code=2)
        assert "question" in flat(bad_q.stderr)
        assert "removed dress_guide.md" in zhike("kb", "rm", "店铺", "dress_guide.md").stdout
        assert "removed knowledge base" in zhike("kb", "rm", "店铺").stdout
        assert json.loads(zhike("kb", "list", "--json").stdout) == []
        assert "not found" in flat(zhike("kb", "docs", "店铺", code=2).stderr)
    finally:
        get_settings.cache_clear()
