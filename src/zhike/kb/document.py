"""What a knowledge-base document becomes: sections with their place (for citations), then chunks, then hits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DocKind = Literal["txt", "markdown", "pdf", "docx", "xlsx", "csv"]
SectionKind = Literal["text", "faq", "row"]


@dataclass(frozen=True)
class Section:
    """A run of text from one place of a document. `where` is shown in citations ("第3页", "## 售后政策",
    "FAQ 第5行"); `kind` "faq" (a question + its answer) and "row" (one product row) are never split."""

    text: str
    where: str
    kind: SectionKind = "text"


@dataclass
class ParsedDocument:
    title: str  # the first top heading, else the file name without its suffix
    kind: DocKind
    pages: int  # PDF pages; 1 for the other kinds (ingest pages/s counts these)
    sections: list[Section] = field(default_factory=list)
    encoding: str | None = None  # text files: utf-8 | utf-8-sig | utf-16 | gb18030

    @property
    def chars(self) -> int:
        return sum(len(s.text) for s in self.sections)


@dataclass(frozen=True)
class Chunk:
    """A passage to index and to cite. `ordinal` is its place in the document (0-based)."""

    text: str
    where: str
    ordinal: int
    title: str = ""  # the document's title, for citations and the indexed text

    @property
    def search_text(self) -> str:
        """What is indexed (BM25 and vectors): the passage under its document title and place, so a passage that
        says "保温 12 小时" is still found by "保温杯能保温多久"."""
        head = " · ".join(p for p in (self.title, self.where) if p)
        return f"{head}\n{self.text}" if head else self.text


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: `chunk_id` is the id the Retriever was given for it; `index` its position there.
    `score` is the fused score (higher is better); `bm25` / `cosine` and their ranks (1-based; 0: not ranked)
    say why; `support` is the best cosine between the question and one sentence of the chunk (0 when not
    measured): what `answerable` judges by."""

    chunk_id: object
    index: int
    score: float
    bm25: float
    cosine: float
    bm25_rank: int
    vector_rank: int
    support: float = 0.0
