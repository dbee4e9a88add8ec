"""The worker: claims jobs, runs them through an executor, keeps the lease alive, records the outcome."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

from PIL import Image
from pydantic import ValidationError

from zhike.core.context import RunContext
from zhike.core.errors import JobCancelled, ZhikeError, hide_paths, validation_message
from zhike.core.registry import get_op
from zhike.core.rows import JobRow
from zhike.core.work import JobWork
from zhike.services.images import to_jpeg
from zhike.services.jobs.executor import Executor, InProcessExecutor

if TYPE_CHECKING:
    from zhike.services.container import Zhike

log = logging.getLogger("zhike.worker")


class Worker:
    def __init__(self, app: Zhike, executor: Executor | None = None, worker_id: str | None = None) -> None:
        self.app = app
        self.executor = executor or InProcessExecutor()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.stop = threading.Event()
        # Optional observer of this worker's progress (the CLI's progress bar): (job_id, step, total).
        self.on_progress: Callable[[str, int, int], None] | None = None

    def run_forever(self, poll_seconds: float = 0.5) -> None:
        queue = self.app.jobs
        while not self.stop.is_set():
            try:
                ran = self.run_one()
            except Exception:  # never let one bad job or a DB hiccup kill the worker thread
                log.exception("worker loop error")
                ran = False
            if not ran:
                queue.wakeup.wait(poll_seconds)
                queue.wakeup.clear()

    def run_one(self, job_id: str | None = None) -> bool:
        """Claim and run one job; False if there was nothing to run."""
        s = self.app.settings
        job = self.app.jobs.claim(
            self.worker_id, lease_seconds=s.lease_seconds, max_attempts=s.max_attempts, job_id=job_id
        )
        if job is None:
            return False
        self.execute(job)
        return True

    def execute(self, job: JobRow) -> None:
        queue, s = self.app.jobs, self.app.settings
        jid = job.id

        def sink(step: int, total: int, preview: Image.Image | None) -> tuple[bool, bool]:
            if self.on_progress is not None:
                self.on_progress(jid, step, total)
            data = to_jpeg(preview, quality=70) if preview is not None else None
            return queue.report_progress(jid, self.worker_id, step=step, total=total, preview=data)

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
            preview_every=s.preview_every,
            screen_images=(
                (lambda imgs: self.app.safety.screen_images(self.app.models, imgs, job.owner_id, job.op))
                if s.image_safety_checker is not None
                else None
            ),
        )
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(s.heartbeat_seconds):
                if not queue.heartbeat(jid, self.worker_id, s.lease_seconds):
                    ctx.lost = True
                    return

        hb = threading.Thread(target=heartbeat, name=f"heartbeat-{jid}", daemon=True)
        hb.start()
        try:
            op = get_op(job.op)
            try:
                params = op.params_model.model_validate(job.params)
            except ValidationError as e:
                raise validation_message(e, "params") from e
            result = self.executor.execute(op, ctx, params)
            if queue.complete(jid, self.worker_id, result.model_dump(mode="json"), ctx.staged):
                self._drop_work(ctx)
            else:  # another worker holds the job (and its work folder) now
                log.warning("job %s: lease lost before completion; result discarded", jid)
        except JobCancelled as e:
            if not ctx.lost and queue.finish(jid, self.worker_id, state="cancelled", message=str(e)):
                self._drop_work(ctx)
        except ZhikeError as e:
            log.info("job %s failed: %s", jid, e.message)  # the full text (with server paths) stays in the log
            queue.finish(jid, self.worker_id, state="failed", error={**e.to_dict(), "message": hide_paths(e.message)})
        except Exception as e:
            log.error("job %s failed:\n%s", jid, traceback.format_exc())
            queue.finish(
                jid,
                self.worker_id,
                state="failed",
                error={"code": "internal_error", "message": hide_paths(f"{type(e).__name__}: {e}")},
            )
        finally:
            done.set()
            hb.join(timeout=1)

    def _drop_work(self, ctx: RunContext) -> None:
        """The job is over and was still ours: its checkpoints are of no further use. A failed job keeps its folder
        (to look into) until the sweep."""
        if not self.app.settings.keep_work:
            ctx.work.remove()


def start_background_worker(app: Zhike) -> tuple[Worker, threading.Thread]:
    worker = Worker(app)
    thread = threading.Thread(target=worker.run_forever, name="zhike-worker", daemon=True)
    thread.start()
    return worker, thread
