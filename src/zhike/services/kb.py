"""Product knowledge bases (商品知识库): a user's documents, read, chunked and embedded, and searched when a shopper
asks (answers: services/kb_ask.py).

A knowledge base belongs to one owner, like assets: another owner's is a 404, never a 403. A document keeps its
original file so it can be downloaded and indexed again.

An upload is read and cut into passages at once, so a bad file is refused in its request (4xx naming `file`), then
stored with status `queued`; embedding, the slow part (minutes for a 100-page PDF on 2 cores), runs in the background
(services/kb_indexer.py: durable, resumed after a restart) with its progress on the document: queued -> indexing
(chunks embedded of the total) -> ready, or failed with the error. Chunks are written only when a document is ready,
so questions search ready documents only. A file uploaded under a name the knowledge base has already waits beside
the indexed version (`pending_data`) and replaces its chunks in one transaction once its own are ready: a failure
leaves the old file and chunks answering.
"""

from __future__ import annotations

import hashlib
import mimetypes
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from zhike.core.errors import Conflict, InvalidInput, NotFound, TooLarge, TooManyRequests
from zhike.kb import Chunk, DocumentLimits, Retriever, chunk_document, parse_document
from zhike.services.db import kb_chunks, kb_conversations, kb_documents, kbs, utcnow
from zhike.services.kb_indexer import Indexer, IndexingStopped
from zhike.settings import Settings

EMBED_BATCH = 32  # passages embedded at once: progress, the deadline and stopping are checked between batches
INDEX_CACHE = 8  # knowledge bases whose search index is kept in memory
NAME_CHARS = 100
DOC_NAME_CHARS = 200

Progress = Callable[[str, int, int], None]  # (stage: read | embed | store, done, total)
STATUSES = ("queued", "indexing", "ready", "failed")


def _iso(t: datetime) -> str:
    return t.isoformat() + "Z"


@dataclass(frozen=True)
class Kb:
    id: str
    name: str
    revision: int
    created_at: datetime
    updated_at: datetime
    documents: int = 0
    chunks: int = 0

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "documents": self.documents,
            "chunks": self.chunks,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True)
class Document:
    id: str
    kb_id: str
    name: str
    sha256: str
    mime: str
    kind: str
    title: str | None
    size_bytes: int
    pages: int
    chunk_count: int
    embedder: str
    ingest_seconds: float | None
    created_at: datetime
    updated_at: datetime
    status: str = "ready"
    progress_done: int = 0
    progress_total: int = 0
    error: dict[str, Any] | None = None
    pending_sha256: str | None = None

    @property
    def replacing(self) -> bool:
        """A newer upload of this document is being indexed while the indexed version keeps answering."""
        return self.pending_sha256 is not None

    @classmethod
    def from_row(cls, r: Any) -> Document:
        return cls(**{f: r[f] for f in cls.__dataclass_fields__})

    def view(self) -> dict[str, Any]:
        secs = self.ingest_seconds
        return {
            "id": self.id,
            "kb_id": self.kb_id,
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "mime": self.mime,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "pages": self.pages,
            "chunks": self.chunk_count,
            "ingest_seconds": round(secs, 3) if secs is not None else None,
            "pages_per_second": round(self.pages / secs, 2) if secs else None,
            "status": self.status,
            "progress": {"done": self.progress_done, "total": self.progress_total},
            "error": self.error,
            "replacing": self.replacing,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True)
class Ingested:
    document: Document
    replaced: bool  # a document of that name was there: its chunks are (or, once indexed, will be) replaced
    unchanged: bool  # the same bytes were there already: nothing was read again


@dataclass(frozen=True)
class Passage:
    """A chunk as the search index and the answers see it."""

    id: int
    document_id: str
    document: str
    where: str
    text: str

    def view(self, n: int, *, cited: bool) -> dict[str, Any]:
        """As an answer lists it: `n` is its number in the prompt ([n] in the answer)."""
        return {
            "n": n,
            "document_id": self.document_id,
            "document": self.document,
            "where": self.where,
            "text": self.text,
            "cited": cited,
        }


@dataclass
class Index:
    revision: int
    retriever: Retriever
    passages: dict[int, Passage]


def _doc_columns() -> list[Any]:
    return [c for c in kb_documents.c if c.name not in ("data", "pending_data")]  # listings never read the files


def kb_name(name: Any, *, field: str = "name") -> str:
    text = " ".join(str(name or "").split())
    if not text or len(text) > NAME_CHARS:
        raise InvalidInput(
            f"{field}: a knowledge base name is 1-{NAME_CHARS} characters",
            code="validation_failed",
            field=field,
            kind="string_length",
            limit=NAME_CHARS,
        )
    return text


def document_name(filename: str | None) -> str:
    """The stored name of an upload: its last path part, trimmed (re-uploading that name replaces the document)."""
    name = PurePath((filename or "").replace("\\", "/")).name.strip()
    if not name.strip(". ") or len(name) > DOC_NAME_CHARS or any(ord(c) < 32 for c in name):
        raise InvalidInput(
            f"file: a file name of 1-{DOC_NAME_CHARS} characters is needed",
            code="validation_failed",
            field="file",
            limit=DOC_NAME_CHARS,
        )
    return name


class OwnerSlots:
    """At most `limit` calls per owner at once (questions being answered, uploads being indexed); more: 429."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit, self.what = limit, what
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, owner: str) -> None:
        with self._lock:
            if self._held[owner] >= self.limit:
                e = TooManyRequests(
                    f"you already have {self.limit} {self.what} in progress: wait for them to finish",
                    code="kb_busy",
                    field=None,
                    limit=self.limit,
                    ctx={"what": self.what},
                )
                e.headers = {"Retry-After": "2"}  # type: ignore[attr-defined]  # read by api/errors.py
                raise e
            self._held[owner] += 1

    def release(self, owner: str) -> None:
        with self._lock:
            self._held[owner] -= 1
            if self._held[owner] <= 0:
                del self._held[owner]

    @contextmanager
    def hold(self, owner: str) -> Iterator[None]:
        self.acquire(owner)
        try:
            yield
        finally:
            self.release(owner)


def _kb_missing(kb_id: str) -> NotFound:
    return NotFound(f"knowledge base {kb_id!r} not found", code="kb_not_found", field="kb_id", ctx={"id": kb_id})


def _doc_missing(doc_id: str) -> NotFound:
    return NotFound(
        f"document {doc_id!r} not found", code="kb_document_not_found", field="document_id", ctx={"id": doc_id}
    )


class KnowledgeBases:
    """Knowledge bases, their documents and search indexes. `embedder()` opens the embedding model (cached by the
    model manager), so building this costs nothing."""

    def __init__(self, engine: Engine, settings: Settings, embedder: Callable[[], AbstractContextManager[Any]]) -> None:
        self.engine = engine
        self.settings = settings
        self._embedder = embedder
        self.asks = OwnerSlots(settings.kb_asks_per_owner, "questions")
        self.ingests = OwnerSlots(settings.kb_ingests_per_owner, "uploads")
        self.embed_batch = EMBED_BATCH
        self.background = True  # uploads wake the indexer thread (False: they wait for `indexer.run_one`/a restart)
        self.indexer = Indexer(self)
        self._indexes: OrderedDict[str, Index] = OrderedDict()
        self._index_lock = threading.Lock()

    def embedder(self) -> AbstractContextManager[Any]:
        """The e5 embedder while in use (`passages(texts)`, `query(text)`: normalised float32)."""
        return self._embedder()

    # -- knowledge bases --------------------------------------------------------------------------------------
    def list(self, owner_id: str) -> list[Kb]:
        docs = (
            select(kb_documents.c.kb_id, func.count().label("n"), func.sum(kb_documents.c.chunk_count).label("c"))
            .join(kbs, kbs.c.id == kb_documents.c.kb_id)
            .where(kbs.c.owner_id == owner_id)
            .group_by(kb_documents.c.kb_id)
        )
        q = select(kbs).where(kbs.c.owner_id == owner_id).order_by(kbs.c.name)
        with self.engine.connect() as conn:
            counts = {r.kb_id: (r.n, r.c or 0) for r in conn.execute(docs)}
            rows = conn.execute(q).mappings().all()
        return [self._kb(r, *counts.get(r["id"], (0, 0))) for r in rows]

    @staticmethod
    def _kb(r: Any, documents: int = 0, chunks: int = 0) -> Kb:
        return Kb(r["id"], r["name"], r["revision"], r["created_at"], r["updated_at"], documents, chunks)

    def get(self, owner_id: str, kb_id: str, *, conn: Connection | None = None) -> Kb:
        """The owner's knowledge base with its counts; another owner's is not found (404)."""
        q = select(kbs).where(kbs.c.id == kb_id, kbs.c.owner_id == owner_id)
        counts = select(func.count(), func.coalesce(func.sum(kb_documents.c.chunk_count), 0)).where(
            kb_documents.c.kb_id == kb_id
        )
        with self._conn(conn) as c:
            row = c.execute(q).mappings().first()
            if row is None:
                raise _kb_missing(kb_id)
            n, chunks = c.execute(counts).one()
        return self._kb(row, n, chunks)

    def find(self, owner_id: str, ref: str) -> Kb:
        """A knowledge base by id or by name (the CLI's way of naming one)."""
        q = select(kbs.c.id).where(kbs.c.owner_id == owner_id, (kbs.c.id == ref) | (kbs.c.name == ref))
        with self.engine.connect() as conn:
            found = conn.execute(q).scalars().all()
        return self.get(owner_id, ref if ref in found or not found else found[0])

    @contextmanager
    def _conn(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.engine.connect() as c:
                yield c

    def create(self, owner_id: str, name: Any) -> Kb:
        text = kb_name(name)
        limit = self.settings.kb_max_kbs
        with self.engine.begin() as conn:
            if conn.execute(select(func.count()).where(kbs.c.owner_id == owner_id)).scalar_one() >= limit:
                raise TooLarge(f"at most {limit} knowledge bases each", code="too_many_kbs", field="name", limit=limit)
            now = utcnow()
            kb_id = f"kb{secrets.token_hex(8)}"
            row = {"id": kb_id, "owner_id": owner_id, "name": text, "revision": 0, "created_at": now, "updated_at": now}
            self._write(conn, insert(kbs).values(**row), text)
        return Kb(kb_id, text, 0, now, now)

    def rename(self, owner_id: str, kb_id: str, name: Any) -> Kb:
        text = kb_name(name)
        with self.engine.begin() as conn:
            self.get(owner_id, kb_id, conn=conn)
            self._write(conn, update(kbs).where(kbs.c.id == kb_id).values(name=text, updated_at=utcnow()), text)
        return self.get(owner_id, kb_id)

    def delete(self, owner_id: str, kb_id: str) -> None:
        """The knowledge base with its documents, chunks and conversations (foreign keys cascade)."""
        with self.engine.begin() as conn:
            self.get(owner_id, kb_id, conn=conn)
            conn.execute(delete(kbs).where(kbs.c.id == kb_id))
        with self._index_lock:
            self._indexes.pop(kb_id, None)

    @staticmethod
    def _write(conn: Connection, stmt: Any, name: str) -> None:
        try:
            with conn.begin_nested():
                conn.execute(stmt)
        except IntegrityError:
            raise Conflict(
                f"you have a knowledge base called {name!r} already",
                code="kb_name_taken",
                field="name",
                ctx={"name": name},
            ) from None

    # -- documents --------------------------------------------------------------------------------------------
    def documents(self, owner_id: str, kb_id: str) -> list[Document]:
        self.get(owner_id, kb_id)
        q = select(*_doc_columns()).where(kb_documents.c.kb_id == kb_id).order_by(kb_documents.c.name)
        with self.engine.connect() as conn:
            return [Document.from_row(r) for r in conn.execute(q).mappings()]

    def document(self, owner_id: str, kb_id: str, doc_id: str) -> Document:
        self.get(owner_id, kb_id)
        q = select(*_doc_columns()).where(kb_documents.c.kb_id == kb_id, kb_documents.c.id == doc_id)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        if row is None:
            raise _doc_missing(doc_id)
        return Document.from_row(row)

    def chunks(self, owner_id: str, kb_id: str, doc_id: str) -> list[dict[str, Any]]:
        """The document's passages in order: what search finds and answers cite."""
        self.document(owner_id, kb_id, doc_id)
        q = (
            select(kb_chunks.c.ordinal, kb_chunks.c.text, kb_chunks.c.location)
            .where(kb_chunks.c.document_id == doc_id)
            .order_by(kb_chunks.c.ordinal)
        )
        with self.engine.connect() as conn:
            return [{"ordinal": r.ordinal, "where": r.location, "text": r.text} for r in conn.execute(q)]

    def document_file(self, owner_id: str, kb_id: str, doc_id: str) -> tuple[Document, bytes]:
        """The original file as it was uploaded."""
        doc = self.document(owner_id, kb_id, doc_id)
        with self.engine.connect() as conn:
            data = conn.execute(select(kb_documents.c.data).where(kb_documents.c.id == doc_id)).scalar_one()
        return doc, data

    def delete_document(self, owner_id: str, kb_id: str, doc_id: str) -> None:
        with self.engine.begin() as conn:
            self.get(owner_id, kb_id, conn=conn)
            gone = conn.execute(
                delete(kb_documents).where(kb_documents.c.kb_id == kb_id, kb_documents.c.id == doc_id)
            ).rowcount
            if not gone:
                raise _doc_missing(doc_id)
            self._bump(conn, kb_id)

    @staticmethod
    def _bump(conn: Connection, kb_id: str) -> None:
        conn.execute(update(kbs).where(kbs.c.id == kb_id).values(revision=kbs.c.revision + 1, updated_at=utcnow()))

    def upload_document(
        self, owner_id: str, kb_id: str, filename: str | None, data: bytes, *, start: bool = True
    ) -> Ingested:
        """Read and chunk a file (bad files raise a 4xx naming field `file` before anything is written), store it
        with status `queued` and wake the background indexer (`indexer.kick`; with `start` False the caller
        indexes it: `indexer.wait`). A new version of a document waits beside the indexed one, which keeps
        answering."""
        name = document_name(filename)
        self.get(owner_id, kb_id)
        sha = hashlib.sha256(data).hexdigest()
        existing = self._by_name(kb_id, name)
        if existing is not None and existing.status != "failed":
            waiting = existing.pending_sha256 or (existing.sha256 if existing.status != "ready" else None)
            if (waiting or existing.sha256) == sha:  # already indexed, or already on its way: nothing to read again
                return Ingested(existing, replaced=False, unchanged=True)
        if existing is None:
            self._check_room(kb_id)  # before the reading, not only at the end
        parsed = parse_document(name, data, DocumentLimits.from_settings(self.settings))
        total = len(chunk_document(parsed))
        now = utcnow()
        queued = {
            "status": "queued",
            "progress_done": 0,
            "progress_total": total,
            "error": None,
            "ingest_id": secrets.token_hex(8),
            "lease_owner": None,
            "lease_until": None,
            "attempts": 0,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            self.get(owner_id, kb_id, conn=conn)  # deleted meanwhile: 404, nothing written
            row = conn.execute(
                select(kb_documents.c.id, kb_documents.c.chunk_count).where(
                    kb_documents.c.kb_id == kb_id, kb_documents.c.name == name
                )
            ).first()
            if row is None or not row.chunk_count:  # nothing indexed to keep: the row describes the new file
                described = {
                    "sha256": sha,
                    "mime": mimetypes.guess_type(name)[0] or "application/octet-stream",
                    "kind": parsed.kind,
                    "title": parsed.title[:200] or None,
                    "size_bytes": len(data),
                    "pages": parsed.pages,
                    "data": data,
                    "pending_data": None,
                    "pending_sha256": None,
                }
                if row is None:
                    self._check_room(kb_id, conn)
                    doc_id = f"d{secrets.token_hex(8)}"
                    conn.execute(
                        insert(kb_documents).values(
                            id=doc_id,
                            kb_id=kb_id,
                            name=name,
                            chunk_count=0,
                            embedder="",
                            created_at=now,
                            **described,
                            **queued,
                        )
                    )
                else:
                    doc_id = row.id
                    conn.execute(update(kb_documents).where(kb_documents.c.id == doc_id).values(**described, **queued))
            else:  # the indexed version answers until this one's chunks replace its own
                doc_id = row.id
                conn.execute(
                    update(kb_documents)
                    .where(kb_documents.c.id == doc_id)
                    .values(pending_data=data, pending_sha256=sha, **queued)
                )
        if start and self.background:
            self.indexer.kick()
        return Ingested(self.document(owner_id, kb_id, doc_id), replaced=existing is not None, unchanged=False)

    def add_document(
        self, owner_id: str, kb_id: str, filename: str | None, data: bytes, *, progress: Progress | None = None
    ) -> Ingested:
        """Upload and index a file in the caller's thread (the CLI, benchmarks): returns once it is ready; an
        indexing failure raises its error, the document then showing status `failed`."""
        up = self.upload_document(owner_id, kb_id, filename, data, start=False)
        if up.unchanged and up.document.status == "ready":
            return up
        self.indexer.wait(up.document.id, progress=progress)
        doc = self.document(owner_id, kb_id, up.document.id)
        return Ingested(doc, replaced=up.replaced, unchanged=up.unchanged)

    def index_claimed(
        self, doc_id: str, *, progress: Progress, still_ours: Callable[[], bool]
    ) -> Callable[[Connection, Any], bool]:
        """Read, chunk and embed a claimed document's file (the pending upload if there is one); returns the write
        that stores it as ready, which the indexer runs in a transaction that checks the claim still holds (a
        document deleted or uploaded again meanwhile writes nothing). Raises IndexingStopped when `still_ours()`
        turns false, and the document's ZhikeError (document_timeout...) when it cannot be indexed."""
        with self.engine.connect() as conn:
            row = conn.execute(select(kb_documents).where(kb_documents.c.id == doc_id)).mappings().first()
        if row is None:
            raise IndexingStopped(doc_id)
        data = row["pending_data"] if row["pending_data"] is not None else row["data"]
        name, kb_id = row["name"], row["kb_id"]
        with self.embedder() as embedder:
            start = time.monotonic()  # timed once the model is loaded: pages/s measures reading and indexing
            deadline = start + self.settings.kb_ingest_seconds
            progress("read", 0, 1)
            parsed = parse_document(name, data, DocumentLimits.from_settings(self.settings))
            chunks = chunk_document(parsed)
            progress("read", 1, 1)
            texts = [c.search_text for c in chunks]
            vectors = self._embed(texts, embedder, name, deadline, progress, still_ours)
            embedder_name = embedder.name
        values = {
            "sha256": row["pending_sha256"] or row["sha256"],
            "mime": mimetypes.guess_type(name)[0] or "application/octet-stream",
            "kind": parsed.kind,
            "title": parsed.title[:200] or None,
            "size_bytes": len(data),
            "pages": parsed.pages,
            "chunk_count": len(chunks),
            "embedder": embedder_name,
            "ingest_seconds": time.monotonic() - start,
            "data": data,
            "pending_data": None,
            "pending_sha256": None,
            "status": "ready",
            "progress_done": len(chunks),
            "progress_total": len(chunks),
            "error": None,
            "ingest_id": None,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": utcnow(),
        }
        rows = [
            {
                "document_id": doc_id,
                "kb_id": kb_id,
                "ordinal": i,
                "text": c.text,
                "location": (c.where or "")[:200],
                "vector": np.ascontiguousarray(v, dtype=np.float32).tobytes(),
            }
            for i, (c, v) in enumerate(zip(chunks, vectors, strict=True))
        ]

        def store(conn: Connection, claim: Any) -> bool:
            if conn.execute(update(kb_documents).where(claim).values(**values)).rowcount != 1:
                return False
            conn.execute(delete(kb_chunks).where(kb_chunks.c.document_id == doc_id))
            if rows:
                conn.execute(insert(kb_chunks), rows)
            self._bump(conn, kb_id)
            return True

        return store

    def _check_room(self, kb_id: str, conn: Connection | None = None) -> None:
        limit = self.settings.kb_max_documents
        with self._conn(conn) as c:
            n = c.execute(select(func.count()).where(kb_documents.c.kb_id == kb_id)).scalar_one()
        if n >= limit:
            raise TooLarge(
                f"a knowledge base holds at most {limit} documents",
                code="too_many_kb_documents",
                field="file",
                limit=limit,
            )

    def _by_name(self, kb_id: str, name: str) -> Document | None:
        q = select(*_doc_columns()).where(kb_documents.c.kb_id == kb_id, kb_documents.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return Document.from_row(row) if row is not None else None

    def _embed(
        self,
        texts: list[str],
        embedder: Any,
        name: str,
        deadline: float,
        tick: Progress,
        still_ours: Callable[[], bool],
    ) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for i in range(0, len(texts), self.embed_batch):
            tick("embed", i, len(texts))  # also renews the claim: a document deleted meanwhile stops here
            if not still_ours():
                raise IndexingStopped(name)
            if time.monotonic() > deadline:
                seconds = round(self.settings.kb_ingest_seconds)
                raise TooLarge(
                    f"file: reading and indexing {name} took longer than {seconds} s: split it into smaller files",
                    code="document_timeout",
                    field="file",
                    limit=seconds,
                    ctx={"name": name, "seconds": seconds},
                )
            out.extend(np.asarray(embedder.passages(texts[i : i + self.embed_batch]), dtype=np.float32))
        tick("embed", len(texts), len(texts))
        return out

    # -- search ---------------------------------------------------------------------------------------------
    def index(self, kb: Kb) -> Index:
        """The knowledge base's search index, built from its stored chunks and kept while its revision holds."""
        with self._index_lock:
            cached = self._indexes.get(kb.id)
            if cached is not None and cached.revision == kb.revision:
                self._indexes.move_to_end(kb.id)
                return cached
        q = (
            select(kb_chunks, kb_documents.c.name.label("doc_name"), kb_documents.c.title.label("doc_title"))
            .join(kb_documents, kb_documents.c.id == kb_chunks.c.document_id)
            .where(kb_chunks.c.kb_id == kb.id)
            .order_by(kb_chunks.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        passages = {r["id"]: Passage(r["id"], r["document_id"], r["doc_name"], r["location"], r["text"]) for r in rows}
        # Indexed as it was embedded: the passage under its document title and place (zhike.kb Chunk.search_text).
        texts = [Chunk(r["text"], r["location"], r["ordinal"], r["doc_title"] or "").search_text for r in rows]
        vectors = np.stack([np.frombuffer(r["vector"], dtype=np.float32) for r in rows]) if rows else None
        retriever = Retriever(list(passages), texts, vectors, [p.text for p in passages.values()])
        index = Index(kb.revision, retriever, passages)
        with self._index_lock:
            self._indexes[kb.id] = index
            self._indexes.move_to_end(kb.id)
            while len(self._indexes) > INDEX_CACHE:
                self._indexes.popitem(last=False)
        return index

    # -- conversations ----------------------------------------------------------------------------------------
    def conversation_row(self, owner_id: str, kb_id: str, conversation_id: str) -> Any:
        q = select(kb_conversations).where(
            kb_conversations.c.id == conversation_id,
            kb_conversations.c.kb_id == kb_id,
            kb_conversations.c.owner_id == owner_id,
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        if row is None:
            raise NotFound(
                f"conversation {conversation_id!r} not found",
                code="kb_conversation_not_found",
                field="conversation_id",
                ctx={"id": conversation_id},
            )
        return row
