"""CPU-heavy request work (label checks, template previews, data files) off the event loop and off FastAPI's shared
request threads.

Such a call takes a slot: at most `threads` run at once, in threads of their own (a flood of them never holds the
threads that serve `/health`, listings and downloads). One owner holds at most `per_owner` slots, running or
waiting (more: 429 `too_many_requests`); a call that waits longer than `wait_s` for a slot, or finds
MAX_WAITING_PER_THREAD calls per thread waiting already, is refused (503 `server_busy`); both say when to try again
(Retry-After). The work itself is bounded by its input limits, so a slot is never held long.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request

from zhike.core.errors import TooManyRequests, ZhikeError
from zhike.services.images import Busy

T = TypeVar("T")
MAX_WAITING_PER_THREAD = 8  # waiting calls hold their uploads in memory: bound how many


def _retry(e: ZhikeError, seconds: int) -> ZhikeError:
    e.headers = {"Retry-After": str(seconds)}  # type: ignore[attr-defined]  # read by api/errors.py
    return e


class HeavyWork:
    def __init__(self, threads: int, per_owner: int, wait_s: float) -> None:
        self.threads, self.per_owner, self.wait_s = threads, per_owner, wait_s
        self._slots = anyio.CapacityLimiter(threads)
        self._pool = anyio.CapacityLimiter(threads)  # the threads themselves: a slot holder always finds one free
        self._by_owner: Counter[str] = Counter()
        self._waiting = 0

    def held(self, owner: str) -> int:
        return self._by_owner[owner]

    @asynccontextmanager
    async def slot(self, owner: str, *, field: str | None = None) -> AsyncIterator[None]:
        """Hold one of the slots (all state lives on the event loop: no locks)."""
        if self._by_owner[owner] >= self.per_owner:
            raise _retry(
                TooManyRequests(
                    f"you already have {self.per_owner} previews, label checks or data files being worked on: "
                    "wait for them to finish",
                    code="heavy_busy",
                    field=field,
                    limit=self.per_owner,
                ),
                1,
            )
        if self._slots.borrowed_tokens >= self.threads and self._waiting >= self.threads * MAX_WAITING_PER_THREAD:
            raise self._busy(field)
        self._by_owner[owner] += 1
        token = object()
        try:
            self._waiting += 1
            try:
                with anyio.fail_after(self.wait_s):
                    await self._slots.acquire_on_behalf_of(token)
            except TimeoutError:
                raise self._busy(field) from None
            finally:
                self._waiting -= 1
            try:
                yield
            finally:
                self._slots.release_on_behalf_of(token)
        finally:
            self._by_owner[owner] -= 1
            if not self._by_owner[owner]:
                del self._by_owner[owner]

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` in a thread of this pool (inside `slot`)."""
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=self._pool)

    def _busy(self, field: str | None) -> ZhikeError:
        seconds = max(1, round(self.wait_s))
        return _retry(
            Busy(
                f"the server is busy with other previews and checks: try again in {seconds} s "
                f"/ 服务器正忙，请 {seconds} 秒后再试",
                field=field,
                ctx={"seconds": seconds},
            ),
            seconds,
        )


async def heavy_work(request: Request) -> HeavyWork:
    """The app's HeavyWork, made on first use from the settings (an async dependency: made on the event loop)."""
    state = request.app.state
    work: HeavyWork | None = getattr(state, "heavy_work", None)
    if work is None:
        s = state.zhike.settings
        work = state.heavy_work = HeavyWork(s.heavy_threads, s.heavy_per_user, s.heavy_wait_seconds)
    return work


HeavyDep = Annotated[HeavyWork, Depends(heavy_work)]
