"""The worker: claims jobs, runs them through an executor, keeps the lease alive, records the outcome.

Three kinds of threads keep the thread that runs an operation (on a GPU: the sampling loop) doing nothing else:
- the progress writer (progress.py) writes steps and previews to the database in batches;
- the output pool encodes, stores and labels each output image while the op goes on with the next image or job;
- the completer waits for a finished job's outputs and commits it (outputs and success in one transaction),
  while this worker has already claimed the next job. At most `max_finishing` jobs wait there: a slow disk holds
  the worker back instead of filling the memory.

Lanes: a worker claims only jobs of the lanes it serves (core/registry.py: gpu, cpu, quick). The server runs one
worker thread per lane by default (`start_background_workers`, settings `workers_gpu`...), so a cutout runs beside a
generation instead of after it; `zhike worker --lane gpu` runs one in a process of its own.

Stopping (`interrupt`, then `shutdown`): the worker takes no more jobs, the running op stops at its next step and its
job is handed back to the queue (`JobQueue.release`) for the next worker (after a restart: this process's) to run
once; jobs whose outputs are being stored are given the rest of the time to commit, and whatever is still held when
the time is up is handed back too. A commit and a hand-back are both conditioned on holding the lease, so whichever
lands first wins and a job never completes twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from PIL import Image
from pydantic import BaseModel, ValidationError

from zhike.core.context import RunContext
from zhike.core.errors import JobCancelled, ZhikeError, hide_paths, storage_full, validation_message
from zhike.core.registry import LANES, Lane, get_op
from zhike.core.rows import JobRow, StagedAsset
from zhike.core.work import JobWork
from zhike.services.db import utcnow
from zhike.services.jobs.executor import Executor, InProcessExecutor
from zhike.services.jobs.progress import ProgressWriter

if TYPE_CHECKING:
    from zhike.services.container import Zhike

log = logging.getLogger("zhike.worker")


class _Clock:
    """Seconds per stage of one job, added to from several threads. The stages: queue (submitted -> claimed), run
    (the op on the worker thread), the op's own phases (load, denoise, decode...), store (the output pool's time on
    the job's outputs: PNG encoding, writing, and the labelled export, also counted alone as label), outputs_wait
    (how long the completer waited for them after the op returned) and commit."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def rounded(self) -> dict[str, float]:
        with self._lock:
            return {k: round(v, 4) for k, v in self.seconds.items()}


class Worker:
    def __init__(
        self,
        app: Zhike,
        executor: Executor | None = None,
        worker_id: str | None = None,
        lanes: Iterable[Lane] | None = None,
    ) -> None:
        self.app = app
        s = app.settings
        self.executor = executor or InProcessExecutor()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        wanted = set(LANES if lanes is None else lanes)
        self.lanes: tuple[Lane, ...] = tuple(lane for lane in LANES if lane in wanted)  # the quickest first
        self.stop = threading.Event()
        self.wake = threading.Event()  # a job was queued in one of this worker's lanes, or it is told to stop
        # Optional observer of this worker's progress (the CLI's progress bar): (job_id, step, total).
        self.on_progress: Callable[[str, int, int], None] | None = None
        self.writer = ProgressWriter(app.jobs, self.worker_id)
        threads = s.output_threads or max(2, min(4, os.cpu_count() or 2))
        self.outputs = ThreadPoolExecutor(threads, thread_name_prefix="outputs")
        self.completer = ThreadPoolExecutor(1, thread_name_prefix="complete")
        self._finishing = threading.BoundedSemaphore(s.max_finishing)
        self._completions: list[Future[None]] = []
        self._held: dict[str, RunContext] = {}  # jobs claimed and not yet settled (running, or being committed)
        self._running: RunContext | None = None  # the job whose op runs now
        self._thread: threading.Thread | None = None  # the thread in run_forever

    def run_forever(self, poll_seconds: float = 0.5) -> None:
        wakeups = self.app.jobs.wakeups
        self._thread = threading.current_thread()
        wakeups.subscribe(self.lanes, self.wake)
        try:
            while not self.stop.is_set():
                self.wake.clear()  # before the claim: a job queued after its query wakes the wait below
                try:
                    ran = self.run_one(wait=False)  # the next job starts while this one's outputs are stored
                except Exception:  # never let one bad job or a DB hiccup kill the worker thread
                    log.exception("worker loop error")
                    ran = False
                if not ran and not self.stop.is_set():
                    self.wake.wait(poll_seconds)
        finally:
            wakeups.unsubscribe(self.wake)
            self.close()

    def run_one(self, job_id: str | None = None, *, wait: bool = True) -> bool:
        """Claim and run one job; False if there was nothing to run. With `wait`, return once it is committed (or
        failed); without, as soon as the op returned, while its outputs are still stored (`drain()` waits)."""
        s = self.app.settings
        self._finishing.acquire()  # a free completion slot before taking more work
        if self.stop.is_set():  # stopped while waiting for the slot
            self._finishing.release()
            return False
        try:
            job = self.app.jobs.claim(
                self.worker_id,
                lease_seconds=s.lease_seconds,
                max_attempts=s.max_attempts,
                job_id=job_id,
                lanes=self.lanes,
            )
        except BaseException:
            self._finishing.release()
            raise
        if job is None:
            self._finishing.release()
            return False
        self.execute(job)
        if wait:
            self.drain()
        return True

    def drain(self) -> None:
        """Wait until every job this worker ran is committed (or failed)."""
        while self._completions:
            self._completions.pop(0).result()

    def close(self) -> None:
        self.drain()
        self.writer.close()
        self.completer.shutdown(wait=True)
        self.outputs.shutdown(wait=True)

    def interrupt(self) -> None:
        """Stop taking jobs, and stop the running op at its next step (its job is then handed back). Returns at once;
        callable from any thread."""
        self.stop.set()
        self.wake.set()
        running = self._running
        if running is not None:
            running.lost = True  # RunContext.progress raises JobCancelled; _settle_failure hands the job back

    def shutdown(self, timeout: float) -> None:
        """`interrupt`, then wait up to `timeout` seconds for the worker thread to settle its jobs and close its
        pools. Jobs still held then (an op in a phase without steps, such as loading a model; a slow commit) are
        handed back from here: their later outcome is discarded, as they are no longer this worker's."""
        deadline = time.monotonic() + timeout
        self.interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        for job_id in list(self._held):
            if self.app.jobs.release(job_id, self.worker_id):
                log.warning("job %s: still running at shutdown; handed back to the queue", job_id)

    # -- one job -----------------------------------------------------------------------------------------------
    def execute(self, job: JobRow) -> None:
        """Run the job's op; its completion is handed to the completer. Call with a completion slot held."""
        queue, s = self.app.jobs, self.app.settings
        jid = job.id
        clock = _Clock()
        clock.add("queue", max(0.0, (utcnow() - job.created_at).total_seconds()))

        def sink(step: int, total: int, preview: Callable[[], Image.Image] | None) -> None:
            if self.on_progress is not None:
                self.on_progress(jid, step, total)
            self.writer.post(jid, step, total, preview)

        ctx = RunContext(
            job_id=jid,
            owner_id=job.owner_id,
            op=job.op,
            params=job.params,
            settings=s,
            models=self.app.models,
            assets=self.app.assets,
            sink=sink,
            work=JobWork(s.work_dir, jid, keep_seconds=s.work_keep_seconds),
            preview_seconds=s.preview_seconds if s.previews else None,
            screen_images=(
                (lambda imgs: self.app.safety.screen_images(self.app.models, imgs, job.owner_id, job.op))
                if s.image_safety_checker is not None
                else None
            ),
            offload=lambda fn: self.outputs.submit(self._timed, clock, "store", fn),
            prepare_export=lambda staged, image: self._prepare_export(clock, staged, image),
            text_sink=lambda piece: self.writer.post_text(jid, piece),
            text_screen=(
                (lambda text, field: self.app.safety.screen_output(job.owner_id, job.op, field, text))
                if self.app.safety.enabled
                else None
            ),
            watched=job.watched_until is not None and job.watched_until > time.time(),
        )
        self.writer.follow(ctx)
        self._held[jid] = ctx
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(s.heartbeat_seconds):
                if not queue.heartbeat(jid, self.worker_id, s.lease_seconds):
                    ctx.lost = True
                    return

        hb = threading.Thread(target=heartbeat, name=f"heartbeat-{jid}", daemon=True)
        hb.start()
        started = time.perf_counter()
        self._running = ctx
        if self.stop.is_set():  # interrupted while claiming: hand the job back before its first step
            ctx.lost = True
        try:
            op = get_op(job.op)
            try:
                params = op.params_model.model_validate(job.params)
            except ValidationError as e:
                raise validation_message(e, "params") from e
            result = self.executor.execute(op, ctx, params)
        except BaseException as e:
            self._running = None
            clock.add("run", time.perf_counter() - started)
            self.writer.done(jid)
            try:
                self._settle_failure(job, ctx, e, clock)
            finally:
                self._held.pop(jid, None)
                done.set()
                hb.join(timeout=1)
                self._finishing.release()
            if not isinstance(e, Exception):
                raise  # KeyboardInterrupt, SystemExit: the process is going down
            return
        self._running = None
        clock.add("run", time.perf_counter() - started)
        self.writer.done(jid)
        self._completions = [f for f in self._completions if not f.done()]
        self._completions.append(self.completer.submit(self._complete, job, ctx, result, clock, done, hb))

    def _complete(
        self, job: JobRow, ctx: RunContext, result: BaseModel, clock: _Clock, done: threading.Event, hb: Any
    ) -> None:
        """On the completer: wait for the outputs still being stored and labelled, then commit."""
        queue = self.app.jobs
        try:
            waited = time.perf_counter()
            try:
                ctx.settle()
            except Exception as e:
                self._settle_failure(job, ctx, e, clock)
                return
            clock.add("outputs_wait", time.perf_counter() - waited)
            for phase, seconds in ctx.timings.items():
                clock.add(phase, seconds)
            committed = time.perf_counter()
            ok = queue.complete(job.id, self.worker_id, result.model_dump(mode="json"), ctx.staged, clock.rounded())
            if ok:
                clock.add("commit", time.perf_counter() - committed)
                queue.record_timings(job.id, clock.rounded())  # the commit's own time, known only after it
                self._drop_work(ctx)
            else:  # another worker holds the job (and its work folder) now
                log.warning("job %s: lease lost before completion; result discarded", job.id)
        except Exception:
            log.exception("job %s: completion failed", job.id)
        finally:
            self._held.pop(job.id, None)
            done.set()
            hb.join(timeout=1)
            self._finishing.release()

    def _settle_failure(self, job: JobRow, ctx: RunContext, e: BaseException, clock: _Clock) -> None:
        queue, jid = self.app.jobs, job.id
        if isinstance(e, Exception) and not isinstance(e, ZhikeError):
            e = storage_full(e) or e  # a full disk is the user's 507 `storage_full`, not an internal error
        if isinstance(e, JobCancelled):
            if ctx.cancel_requested:
                if queue.finish(jid, self.worker_id, state="cancelled", message="cancelled by the user"):
                    self._drop_work(ctx)
            elif ctx.lost and self.stop.is_set():
                # Interrupted (`interrupt`), or its lease lost meanwhile: then this changes nothing. Its work folder
                # stays for the next attempt.
                if queue.release(jid, self.worker_id):
                    log.info("job %s: interrupted by shutdown; handed back to the queue", jid)
            elif not ctx.lost and queue.finish(jid, self.worker_id, state="cancelled", message=str(e)):
                self._drop_work(ctx)
        elif isinstance(e, ZhikeError):
            log.info("job %s failed: %s", jid, e.message)  # the full text (with server paths) stays in the log
            error = {**e.to_dict(), "message": hide_paths(e.message)}
            queue.finish(jid, self.worker_id, state="failed", error=error, timings=clock.rounded())
        elif isinstance(e, Exception):
            log.error("job %s failed:\n%s", jid, "".join(traceback.format_exception(e)))
            error = {"code": "internal_error", "message": hide_paths(f"{type(e).__name__}: {e}")}
            queue.finish(jid, self.worker_id, state="failed", error=error, timings=clock.rounded())

    @staticmethod
    def _timed(clock: _Clock, stage: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return fn()
        finally:
            clock.add(stage, time.perf_counter() - started)

    def _prepare_export(self, clock: _Clock, staged: StagedAsset, image: Image.Image) -> None:
        """The labelled export of a new output, made from the pixels in hand (no decode) on the output pool: the
        first download, the studio's view and `zhike generate -o` find it ready. A failure here only means the
        export is labelled when first asked for."""
        started = time.perf_counter()
        try:
            self.app.exports.prepare(staged.row, staged.data, image)
        except Exception:
            log.exception("asset %s: export not prepared", staged.row.id)
        finally:
            clock.add("label", time.perf_counter() - started)

    def _drop_work(self, ctx: RunContext) -> None:
        """The job is over and was still ours: its checkpoints are of no further use. A failed job keeps its folder
        (to look into) until the sweep."""
        if not self.app.settings.keep_work:
            ctx.work.remove()


def start_background_workers(app: Zhike) -> list[Worker]:
    """The server's own workers: `workers_<lane>` threads for each lane (0: that lane is left to `zhike worker`
    processes)."""
    s = app.settings
    counts: dict[Lane, int] = {"gpu": s.workers_gpu, "cpu": s.workers_cpu, "quick": s.workers_quick}
    workers = []
    for lane in LANES:
        for i in range(counts[lane]):
            worker = Worker(app, lanes=(lane,))
            threading.Thread(target=worker.run_forever, name=f"zhike-worker-{lane}-{i}", daemon=True).start()
            workers.append(worker)
    return workers


def stop_workers(workers: list[Worker], timeout: float) -> None:
    """Interrupt every worker at once, then give them `timeout` seconds in all to settle (see `Worker.shutdown`)."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.interrupt()
    for worker in workers:
        worker.shutdown(max(0.0, deadline - time.monotonic()))
