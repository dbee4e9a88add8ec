"""Product knowledge base, model-free: parse documents (with limits), chunk them, BM25 over jieba, fuse with vectors.

    doc = parse_document(filename, data, DocumentLimits.from_settings(settings))  # 4xx codes document_*
    chunks = chunk_document(doc)                      # Chunk(text, where, ordinal, title); index .search_text
    with open_embedder(models) as e:                  # zhike.backends.embeddings (e5, normalised float32)
        vectors = e.passages([c.search_text for c in chunks])
        retriever = Retriever(ids, [c.search_text for c in chunks], vectors, [c.text for c in chunks])
        hits = retriever.search(question, e.query(question), k=3, embed=e.passages)
    if not answerable(hits): say "不知道，请咨询人工客服"   # e5 alone; with an LLM to confirm: verdict(hits)

Pass `embed` (and the passages): `answerable` then judges each hit by its best sentence (`Hit.support`), which is
what was tuned; without it, it falls back to the chunks' cosine, a weaker test (see kb/search.py).
"""

from zhike.kb.chunk import chunk_document
from zhike.kb.document import Chunk, Hit, ParsedDocument, Section
from zhike.kb.limits import DocumentLimits
from zhike.kb.parse import ACCEPTED, parse_document
from zhike.kb.search import Retriever, Verdict, answerable, by_support, verdict

__all__ = [
    "ACCEPTED",
    "Chunk",
    "DocumentLimits",
    "Hit",
    "ParsedDocument",
    "Retriever",
    "Section",
    "Verdict",
    "answerable",
    "by_support",
    "chunk_document",
    "parse_document",
    "verdict",
]
