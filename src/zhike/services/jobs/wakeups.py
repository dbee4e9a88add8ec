"""Wake the in-process workers that serve a lane as soon as a job is queued in it, instead of at their next poll.

Each worker subscribes with the lanes it serves and waits on its own event, so a cutout queued while a generation
runs wakes the quick worker, not the busy GPU one. Jobs queued by other processes are found by polling."""

from __future__ import annotations

import threading
from collections.abc import Iterable


class Wakeups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[frozenset[str], threading.Event]] = []

    def subscribe(self, lanes: Iterable[str], event: threading.Event) -> None:
        """Set `event` whenever a job is queued in one of `lanes` (and when the queue closes)."""
        with self._lock:
            self._subscribers.append((frozenset(lanes), event))

    def unsubscribe(self, event: threading.Event) -> None:
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s[1] is not event]

    def notify(self, lane: str | None = None) -> None:
        """A job was queued in `lane` (None: wake every worker, e.g. the process is stopping)."""
        with self._lock:
            woken = [e for lanes, e in self._subscribers if lane is None or lane in lanes]
        for event in woken:
            event.set()
