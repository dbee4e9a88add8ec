"""In-process change notices for jobs: a change made by this process's worker wakes whoever waits on that job at
once, be it a thread (the CLI, `JobQueue.wait`) or an asyncio task (long polls and event streams, which hold no
thread while they wait). Changes made by other processes are not seen here: waiters also re-read on a timer."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_Listener = tuple[asyncio.AbstractEventLoop, asyncio.Event]


class Changes:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._listeners: dict[str, list[_Listener]] = {}

    def notify(self, job_id: str | None = None) -> None:
        """`job_id` changed (None: everything, e.g. the process is shutting down). Callable from any thread."""
        with self._cond:
            self._cond.notify_all()
            if job_id is None:
                woken = [x for xs in self._listeners.values() for x in xs]
            else:
                woken = list(self._listeners.get(job_id, ()))
        for loop, event in woken:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there any more
                loop.call_soon_threadsafe(event.set)

    def wait(self, timeout: float) -> None:
        """Block this thread until any change or the timeout."""
        with self._cond:
            self._cond.wait(timeout)

    @contextmanager
    def listen(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set (on the running loop) whenever `job_id` changes. Clear it before each read of the job, so a
        change landing between the read and the next wait is not missed."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._cond:
            self._listeners.setdefault(job_id, []).append(entry)
        try:
            yield entry[1]
        finally:
            with self._cond:
                left = self._listeners.get(job_id, [])
                left.remove(entry)
                if not left:
                    self._listeners.pop(job_id, None)
