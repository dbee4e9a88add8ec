"""The worker's progress writer: the thread that writes step progress, previews and words to the database.

The thread that runs an operation (on a GPU: the sampling loop) only hands its latest step over (`post`) and reads
three flags the writer keeps current on the job's RunContext: lost, cancel_requested and watched. So progress never
waits for SQLite or PostgreSQL, a preview's copy off the device is waited for here, not in the loop, and fast steps
are written in batches: at most one write per `interval`, always the newest step (the one before is superseded).
Words ops hand their text piece by piece (`post_text`); each write stores the whole text so far.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from zhike.core.context import RunContext
from zhike.services.images import to_jpeg
from zhike.services.jobs.queue import JobQueue

log = logging.getLogger("zhike.worker")


@dataclass
class _Pending:
    step: int | None  # None: only the job's words changed
    total: int
    preview: Callable[[], Image.Image] | None  # kept until written, even when newer steps arrive
    preview_step: int | None  # the step the preview shows
    text: bool = False  # the job's words grew since the last write


class ProgressWriter:
    def __init__(self, queue: JobQueue, worker_id: str, *, interval: float = 0.2) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.interval = interval
        self._pending: dict[str, _Pending] = {}
        self._contexts: dict[str, RunContext] = {}
        self._texts: dict[str, list[str]] = {}  # each job's words so far, as handed over (joined when written)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._writing = 0
        self._stop = False
        self._thread: threading.Thread | None = None  # started with the first post

    def follow(self, ctx: RunContext) -> None:
        """Keep `ctx`'s flags current from what each write reads back."""
        with self._lock:
            self._contexts[ctx.job_id] = ctx

    def post(self, job_id: str, step: int, total: int, preview: Callable[[], Image.Image] | None) -> None:
        """The newest progress of a job (cheap; never blocks on the database)."""
        with self._lock:
            old = self._pending.get(job_id)
            text = old is not None and old.text
            if preview is not None or old is None:
                self._pending[job_id] = _Pending(step, total, preview, step if preview is not None else None, text)
            else:
                self._pending[job_id] = _Pending(step, total, old.preview, old.preview_step, text)
            self._start()

    def post_text(self, job_id: str, piece: str) -> None:
        """More words of a job (cheap; never blocks on the database): written with its next batch."""
        with self._lock:
            self._texts.setdefault(job_id, []).append(piece)
            old = self._pending.get(job_id)
            if old is None:
                self._pending[job_id] = _Pending(None, 0, None, None, True)
            else:
                old.text = True
            self._start()

    def _start(self) -> None:
        """Called holding the lock: wake the writer (started with the first post)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"progress-{self.worker_id}", daemon=True)
            self._thread.start()
        self._wake.notify()

    def done(self, job_id: str) -> None:
        """The job's run is over: its last progress is written now, on the caller's thread (no batching wait), after
        any older write of it the writer has in hand; then the job is no longer followed."""
        with self._lock:
            while self._writing:  # an older step of this job may be landing: ours must come after it
                self._idle.wait(1.0)
            item = self._pending.pop(job_id, None)
            self._contexts.pop(job_id, None)
        if item is not None:
            self._write(job_id, item)
        with self._lock:
            self._texts.pop(job_id, None)

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        last = 0.0
        while True:
            with self._lock:
                while not self._pending and not self._stop:
                    self._wake.wait()
                if self._stop and not self._pending:
                    return
                # Batch: at most one write per interval; newer steps replace older ones meanwhile.
                while not self._stop and (pause := last + self.interval - time.monotonic()) > 0:
                    self._wake.wait(pause)
                batch, self._pending = self._pending, {}
                self._writing += 1
            try:
                for job_id, item in batch.items():
                    self._write(job_id, item)
            finally:
                last = time.monotonic()
                with self._lock:
                    self._writing -= 1
                    self._idle.notify_all()

    def _write(self, job_id: str, item: _Pending) -> None:
        try:
            data = to_jpeg(item.preview(), quality=70) if item.preview is not None else None
        except Exception:  # a preview is a nicety: never fail the job over one
            log.exception("job %s: preview failed", job_id)
            data = None
        text = None
        if item.text:
            with self._lock:  # joined here, on this thread: the op's thread only appends
                pieces = self._texts.get(job_id)
                text = "".join(pieces) if pieces else None
                if pieces and len(pieces) > 1:
                    self._texts[job_id] = [text]
        try:
            owned, cancel, watched = self.queue.report_progress(
                job_id,
                self.worker_id,
                step=item.step,
                total=item.total,
                preview=data,
                preview_step=item.preview_step,
                partial_text=text,
            )
        except Exception:  # a database hiccup: the next write tries again
            log.exception("job %s: progress not written", job_id)
            return
        with self._lock:
            ctx = self._contexts.get(job_id)
        if ctx is not None:
            # `lost` and `cancel_requested` never go back: a write that read the job before the worker was stopped
            # (Worker.interrupt sets `lost`) or before the user cancelled must not clear them.
            ctx.lost = ctx.lost or not owned
            ctx.cancel_requested = ctx.cancel_requested or cancel
            ctx.watched = watched
