"""Shared FastAPI dependencies: the app's services and the caller's identity."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Header, Request

from zhike.core.errors import ZhikeError
from zhike.services.container import Zhike


class Unauthorized(ZhikeError):
    status = 401
    code = "unauthorized"


def get_app(request: Request) -> Zhike:
    return request.app.state.zhike


AppDep = Annotated[Zhike, Depends(get_app)]


def get_owner(app: AppDep, authorization: Annotated[str | None, Header()] = None) -> str:
    """The owner id of the API key in `Authorization: Bearer KEY`."""
    if not authorization:
        raise Unauthorized(
            "missing API key: send `Authorization: Bearer KEY` (create one: `zhike keys create`)",
            field="Authorization",
        )
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("the Authorization header must be `Bearer KEY`", field="Authorization")
    row = app.keys.verify(key.strip())
    if row is None:
        raise Unauthorized("unknown or revoked API key", field="Authorization")
    return row["owner_id"]


OwnerDep = Annotated[str, Depends(get_owner)]


T = TypeVar("T")
# Threads that block until a job changes (SSE followers, OpenAI-style calls that answer when the job is done).
WAIT_THREADS = 256


async def run_waiting(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking wait in its own thread pool: waiters must never hold the threads that serve ordinary
    requests (FastAPI's shared pool has 40; 40 followers of a queued job would stall every other endpoint)."""
    state = request.app.state
    limiter = getattr(state, "wait_limiter", None)
    if limiter is None:
        limiter = state.wait_limiter = anyio.CapacityLimiter(WAIT_THREADS)
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=limiter)
