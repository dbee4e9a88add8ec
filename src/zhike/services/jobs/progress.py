"""The worker's progress writer: the thread that writes step progress and previews to the database.

The thread that runs an operation (on a GPU: the sampling loop) only hands its latest step over (`post`) and reads
three flags the writer keeps current on the job's RunContext: lost, cancel_requested and watched. So progress never
waits for SQLite or PostgreSQL, a preview's copy off the device is waited for here, not in the loop, and fast steps
are written in batches: at most one write per `interval`, always the newest step (the one before is superseded).
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
    step: int
    total: int
    preview: Callable[[], Image.Image] | None  # kept until written, even when newer steps arrive
    preview_step: int | None  # the step the preview shows


class ProgressWriter:
    def __init__(self, queue: JobQueue, worker_id: str, *, interval: float = 0.2) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.interval = interval
        self._pending: dict[str, _Pending] = {}
        self._contexts: dict[str, RunContext] = {}
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
            if preview is not None or old is None:
                self._pending[job_id] = _Pending(step, total, preview, step if preview is not None else None)
            else:
                self._pending[job_id] = _Pending(step, total, old.preview, old.preview_step)
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
        try:
            owned, cancel, watched = self.queue.report_progress(
                job_id, self.worker_id, step=item.step, total=item.total, preview=data, preview_step=item.preview_step
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
