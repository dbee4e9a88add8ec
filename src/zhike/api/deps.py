"""Shared FastAPI dependencies: the app's services and the caller's identity.

A caller is identified by `Authorization: Bearer KEY` (API clients) or by the `zhike_session` cookie (the
browser). Cookie-authenticated requests that change something (POST/PUT/PATCH/DELETE) must also send the
session's CSRF token in `X-CSRF-Token`; Bearer requests need none (a browser never adds that header by itself).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Header, Request

from zhike.core.errors import ZhikeError
from zhike.core.rows import KeyRow, SessionRow, UserRow
from zhike.services.container import Zhike
from zhike.services.users import owner_id as user_owner_id

SESSION_COOKIE = "zhike_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Unauthorized(ZhikeError):
    status = 401
    code = "unauthorized"


class Forbidden(ZhikeError):
    status = 403
    code = "forbidden"


def get_app(request: Request) -> Zhike:
    return request.app.state.zhike


AppDep = Annotated[Zhike, Depends(get_app)]


@dataclass(frozen=True)
class Identity:
    """Who is calling: the owner id that scopes jobs and assets, and the user (None for keys made without one)."""

    owner_id: str
    user: UserRow | None = None
    session: SessionRow | None = None  # set when authenticated by the session cookie
    key: KeyRow | None = None  # set when authenticated by an API key


def authenticate(request: Request, app: Zhike, authorization: str | None) -> Identity:
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized(
                "the Authorization header must be `Bearer KEY`", code="api_key_invalid", field="Authorization"
            )
        row = app.keys.verify(key.strip())
        if row is None:
            raise Unauthorized("unknown or revoked API key", code="api_key_invalid", field="Authorization")
        user = app.users.for_owner(row.owner_id)
        if row.owner_id.startswith("user-") and (user is None or user.disabled):
            raise Unauthorized(  # its user was disabled
                "unknown or revoked API key", code="api_key_invalid", field="Authorization"
            )
        return Identity(row.owner_id, user=user, key=row)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        found = app.users.session_user(token)
        if found is None:
            raise Unauthorized(
                "your session has expired or was ended: log in again", code="session_expired", field=SESSION_COOKIE
            )
        user, session = found
        if request.method.upper() not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
                raise Forbidden(
                    f"missing or wrong {CSRF_HEADER} header: send the csrf_token from /api/v1/auth/login "
                    "or /api/v1/auth/me with every request that changes something",
                    code="csrf_missing",
                    field=CSRF_HEADER,
                )
        return Identity(user_owner_id(user), user=user, session=session)
    raise Unauthorized(
        "missing API key: send `Authorization: Bearer KEY` (create one: `zhike keys create`) or log in",
        code="not_authenticated",
        field="Authorization",
    )


def get_identity(request: Request, app: AppDep, authorization: Annotated[str | None, Header()] = None) -> Identity:
    return authenticate(request, app, authorization)


IdentityDep = Annotated[Identity, Depends(get_identity)]


def get_owner(identity: IdentityDep) -> str:
    """The owner id of the caller: the API key's, or the logged-in user's."""
    return identity.owner_id


OwnerDep = Annotated[str, Depends(get_owner)]


def get_user(identity: IdentityDep) -> UserRow:
    """The calling user (by session cookie or by a key made for a user), or 401."""
    if identity.user is None:
        raise Unauthorized(
            "this needs a user: log in, or use an API key made for a user (`zhike keys create --user NAME`)",
            code="user_required",
            field="Authorization",
        )
    return identity.user


UserDep = Annotated[UserRow, Depends(get_user)]


def get_admin(user: UserDep) -> UserRow:
    if not user.is_admin:
        raise Forbidden("only admins may do this", code="admin_only", field="role")
    return user


AdminDep = Annotated[UserRow, Depends(get_admin)]


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
