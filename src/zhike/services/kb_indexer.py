"""The knowledge-base indexer: embeds uploaded documents in the background, one at a time per process (e5 on a
few CPU cores: two at once would each go at half speed), oldest upload first.

Durable like the job queue (services/jobs/queue.py), on the document rows themselves: a document to index is
`queued`; an indexer claims it with a lease (`indexing`, lease_owner, lease_until) that each progress write renews.
A server that stops hands its document back (`queued`, the attempt not counted); one that dies stops renewing, and
once the lease has expired the next indexer (the server after a restart, which looks at start-up) indexes it again
from its stored file. A document taken over MAX_ATTEMPTS times is marked failed (`kb_index_interrupted`) instead of
being tried for ever. Every write is conditioned on the claim (document, upload, lease owner): a document deleted or
uploaded again meanwhile stops its indexing at the next batch, and nothing of that indexing is written.

Not a job of the job queue: a job is an operation, and operations are public (the studio's pro mode, the API's op
list, the CLI) and sit below the services that own the knowledge base; uploads would also count against the owner's
job cap, and a long PDF would hold a CPU-lane worker that batches and resizes wait for.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, or_, select, update

from zhike.core.errors import ErrorCode, NotFound, ZhikeError, hide_paths
from zhike.services.db import kb_documents

if TYPE_CHECKING:
    from zhike.services.container import Zhike
    from zhike.services.kb import KnowledgeBases, Progress

log = logging.getLogger("zhike.kb")

LEASE_SECONDS = 120.0  # renewed by every progress write; reading a file is bounded by kb_max_parse_seconds (30 s)
POLL_SECONDS = 5.0  # an idle indexer looks again this often (documents whose indexer died come due later)
MAX_ATTEMPTS = 3
ACTIVE = ("queued", "indexing")
D = kb_documents.c


class IndexingStopped(Exception):
    """The indexing of a document stopped: the server is stopping, or the document was deleted or uploaded again."""


@dataclass(frozen=True)
class Claim:
    doc_id: str
    ingest_id: str
    owner: str  # lease_owner

    def held(self) -> ColumnElement[bool]:
        return and_(D.id == self.doc_id, D.ingest_id == self.ingest_id, D.lease_owner == self.owner)


def _runnable(now: float) -> ColumnElement[bool]:
    return or_(D.status == "queued", and_(D.status == "indexing", or_(D.lease_until.is_(None), D.lease_until < now)))


def _interrupted(attempts: int) -> dict[str, Any]:
    return ZhikeError(
        f"indexing was interrupted {attempts} times (the server stopped or ran out of memory): upload the document "
        "again, or split it into smaller files",
        code=ErrorCode.KB_INDEX_INTERRUPTED,
        field="file",
        limit=attempts,
    ).to_dict()


def document_error(error: dict[str, Any]) -> ZhikeError:
    """A failed document's stored error, raised again (the CLI reports it like a refused upload)."""
    return ZhikeError(
        error.get("message", "indexing failed"), code=error.get("code"), field="file", ctx=error.get("ctx")
    )


class Indexer:
    def __init__(self, kbs: KnowledgeBases, *, lease_seconds: float = LEASE_SECONDS) -> None:
        self.kbs = kbs
        self.engine = kbs.engine
        self.lease_seconds = lease_seconds
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._current: Claim | None = None  # what this indexer's thread indexes now

    # -- the background thread ---------------------------------------------------------------------------------
    def kick(self) -> None:
        """A document was queued: start the thread (first time) or wake it."""
        with self._lock:
            if self._stop.is_set():
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kb-indexer", daemon=True)
                self._thread.start()
        self._wake.set()

    def resume(self) -> bool:
        """At start-up: start indexing if documents were left queued or half indexed (a restart); True if so."""
        with self.engine.connect() as conn:
            left = conn.execute(select(D.id).where(D.status.in_(ACTIVE)).limit(1)).first()
        if left is not None:
            self.kick()
        return left is not None

    def stop(self, timeout: float = 0.0) -> None:
        """Stop: the document being indexed is handed back (queued) at its next batch. After `timeout` seconds it
        is handed back from here (its indexing's later writes then find the claim gone), so a restart need not
        wait for the lease to expire."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        current = self._current
        if timeout > 0 and current is not None:
            self._settle(current, status="queued", attempts=D.attempts - 1, lease_owner=None, lease_until=None)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the claim: an upload queued after its query wakes the wait below
            try:
                ran = self.kbs.background and self.run_one()  # background False: uploads wait (tests, the CLI)
            except Exception:  # a database hiccup must not end the thread
                log.exception("knowledge-base indexer error")
                ran = False
            if not ran:
                self._wake.wait(POLL_SECONDS)

    # -- one document ------------------------------------------------------------------------------------------
    def claim(self, doc_id: str | None = None) -> Claim | None:
        now = time.time()
        q = select(D.id, D.ingest_id, D.attempts).where(_runnable(now), D.ingest_id.is_not(None))
        if doc_id is not None:
            q = q.where(D.id == doc_id)
        with self.engine.begin() as conn:
            for r in conn.execute(q.order_by(D.updated_at).limit(8)).all():
                same = and_(D.id == r.id, D.ingest_id == r.ingest_id, _runnable(now))
                if r.attempts >= MAX_ATTEMPTS:
                    conn.execute(update(kb_documents).where(same).values(**self._failed(_interrupted(r.attempts))))
                    continue
                taken = update(kb_documents).where(same).values(
                    status="indexing", lease_owner=self.worker_id, lease_until=now + self.lease_seconds,
                    attempts=D.attempts + 1,
                )  # fmt: skip
                if conn.execute(taken).rowcount == 1:
                    return Claim(r.id, r.ingest_id, self.worker_id)
        return None

    def run_one(
        self, doc_id: str | None = None, *, progress: Progress | None = None, raise_errors: bool = False
    ) -> bool:
        """Claim a document (`doc_id`, or the oldest waiting) and index it in this thread; False if none was
        runnable. A failure is stored on the document (and raised with `raise_errors`)."""
        claim = self.claim(doc_id)
        if claim is None:
            return False
        self._current = claim
        try:
            self._index(claim, progress, raise_errors)
        finally:
            self._current = None
        return True

    def _index(self, claim: Claim, progress: Progress | None, raise_errors: bool) -> None:
        lost = False

        def still_ours() -> bool:
            return not lost and not self._stop.is_set()

        def tick(stage: str, done: int, total: int) -> None:
            nonlocal lost
            values: dict[str, Any] = {"lease_until": time.time() + self.lease_seconds}
            if stage == "embed":
                values |= {"progress_done": done, "progress_total": total}
            with self.engine.begin() as conn:
                lost = lost or conn.execute(update(kb_documents).where(claim.held()).values(**values)).rowcount != 1
            if progress is not None and not lost:
                progress(stage, done, total)

        try:
            store = self.kbs.index_claimed(claim.doc_id, progress=tick, still_ours=still_ours)
            tick("store", 0, 1)
            with self.engine.begin() as conn:
                stored = store(conn, claim.held())
            if stored and progress is not None:
                progress("store", 1, 1)
            if not stored:
                log.info("document %s: deleted or uploaded again while indexed; this indexing is dropped", claim.doc_id)
        except IndexingStopped:
            if self._stop.is_set() and not lost:
                self._settle(claim, status="queued", attempts=D.attempts - 1, lease_owner=None, lease_until=None)
        except ZhikeError as e:
            log.info("document %s not indexed: %s", claim.doc_id, e.message)
            self._settle(claim, **self._failed({**e.to_dict(), "message": hide_paths(e.message)}))
            if raise_errors:
                raise
        except Exception as e:
            log.exception("document %s: indexing failed", claim.doc_id)
            error = {
                "code": "internal_error",
                "type": "internal_error",
                "message": hide_paths(f"{type(e).__name__}: {e}"),
            }
            self._settle(claim, **self._failed(error))
            if raise_errors:
                raise
        except BaseException:  # Ctrl-C in the CLI: handed back now, not when the lease expires
            self._settle(claim, status="queued", attempts=D.attempts - 1, lease_owner=None, lease_until=None)
            raise

    @staticmethod
    def _failed(error: dict[str, Any]) -> dict[str, Any]:
        """A failed indexing's values: an upload that replaced an indexed version is dropped (that version, file
        and chunks, keeps answering); a new document keeps its file, to download or delete."""
        return {
            "status": "failed",
            "error": error,
            "pending_data": None,
            "pending_sha256": None,
            "ingest_id": None,
            "lease_owner": None,
            "lease_until": None,
        }

    def _settle(self, claim: Claim, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(kb_documents).where(claim.held()).values(**values))

    def wait(self, doc_id: str, *, progress: Progress | None = None, poll: float = 0.5) -> None:
        """Index the document in this thread, or, while another process's indexer has it, follow its progress;
        returns once it is ready, raises its error if it failed (404 `kb_document_not_found` if it was deleted)."""
        while True:
            self.run_one(doc_id, progress=progress, raise_errors=True)
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(D.status, D.progress_done, D.progress_total, D.error).where(D.id == doc_id)
                ).first()
            if row is None:  # deleted meanwhile
                raise NotFound(
                    f"document {doc_id!r} not found",
                    code="kb_document_not_found",
                    field="document_id",
                    ctx={"id": doc_id},
                )
            if row.status == "ready":
                return
            if row.status == "failed":
                raise document_error(row.error or {})
            if progress is not None and row.status == "indexing":
                progress("embed", row.progress_done, row.progress_total)
            time.sleep(poll)


def resume_indexing(app: Zhike) -> bool:
    """At server start-up: index the documents a stopped or crashed server left queued or half indexed. Builds the
    knowledge-base service (numpy, jieba) only when there are any."""
    with app.engine.connect() as conn:
        left = conn.execute(select(D.id).where(D.status.in_(ACTIVE)).limit(1)).first()
    return left is not None and app.kb.indexer.resume()
