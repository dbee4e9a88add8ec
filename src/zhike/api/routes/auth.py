"""Accounts: browser login (session cookie + CSRF token), the caller's API keys, and users (admins only)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from zhike.api.deps import (
    SESSION_COOKIE,
    AdminDep,
    AppDep,
    IdentityDep,
    Unauthorized,
    UserDep,
    client_ip,
    request_scheme,
)
from zhike.api.schemas import (
    KeyCreated,
    KeyList,
    KeyPublic,
    KeyRevoked,
    LoginResult,
    Me,
    MeResult,
    Ok,
    UserList,
    UserPublic,
)
from zhike.core.errors import NotFound, ZhikeError
from zhike.services.container import Zhike
from zhike.services.users import MAX_PASSWORD, owner_id

router = APIRouter(prefix="/api/v1", tags=["accounts"])

# Says nothing about which part was wrong, or whether the user exists or is disabled.
LOGIN_FAILED = "wrong username or password"


class TooManyAttempts(ZhikeError):
    status = 429
    code = "too_many_attempts"

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            f"too many failed logins: try again in {seconds} s", code="login_throttled", ctx={"seconds": seconds}
        )
        self.headers = {"Retry-After": str(seconds)}


class LoginBody(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=MAX_PASSWORD)


class KeyBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class NewUserBody(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=MAX_PASSWORD)
    role: Literal["admin", "user"] = "user"


class UserPatch(BaseModel):
    disabled: bool | None = None
    role: Literal["admin", "user"] | None = None
    password: str | None = Field(None, max_length=MAX_PASSWORD)


def _cookie_secure(app: Zhike, request: Request) -> bool:
    setting = app.settings.cookie_secure
    return setting if setting is not None else request_scheme(request) == "https"


# -- login -----------------------------------------------------------------------------------------------
@router.post(
    "/auth/login", summary="Log in: sets the session cookie and returns the CSRF token", response_model=LoginResult
)
def login(body: LoginBody, request: Request, response: Response, app: AppDep) -> LoginResult:
    ip = client_ip(request)  # X-Forwarded-For only from trusted_proxies: anyone can send it
    throttle = app.login_throttle
    wait = throttle.retry_after(body.username, ip)
    if wait > 0:
        raise TooManyAttempts(wait)
    user = app.users.verify_password(body.username, body.password)
    if user is None:
        throttle.failure(body.username, ip)
        raise Unauthorized(LOGIN_FAILED, code="login_failed")
    throttle.success(body.username, ip)
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # a new login never reuses a session (no fixation)
        app.users.delete_session(old)
    lifetime = timedelta(days=app.settings.session_days)
    token, session = app.users.create_session(user.id, lifetime)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(app, request),
    )
    response.headers["Cache-Control"] = "no-store"
    return LoginResult(user=Me.from_row(user), csrf_token=session.csrf_token)


@router.post("/auth/logout", summary="End this browser session and clear its cookie", response_model=Ok)
def logout(identity: IdentityDep, request: Request, response: Response, app: AppDep) -> dict[str, Any]:
    if identity.session is not None:
        app.users.delete_session_id(identity.session.id)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_cookie_secure(app, request))
    return {"ok": True}


@router.get(
    "/auth/me",
    summary="The logged-in user (and the session's CSRF token)",
    response_model=MeResult,
    response_model_exclude_unset=True,  # csrf_token only for session callers, absent (not null) for keys
)
def me(identity: IdentityDep, user: UserDep, response: Response) -> MeResult:
    response.headers["Cache-Control"] = "no-store"
    if identity.session is not None:
        return MeResult(user=Me.from_row(user), csrf_token=identity.session.csrf_token)
    return MeResult(user=Me.from_row(user))  # csrf_token unset: left out of the answer


# -- API keys --------------------------------------------------------------------------------------------
@router.get("/keys", summary="Your API keys (admins: every key with ?all=1)", response_model=KeyList)
def list_keys(app: AppDep, user: UserDep, show_all: Annotated[bool, Query(alias="all")] = False) -> KeyList:
    everything = show_all and user.is_admin
    rows = app.keys.list() if everything else app.keys.list(owner_id(user), include_revoked=False)
    return KeyList(keys=[KeyPublic.from_row(r) for r in rows])


@router.post(
    "/keys",
    status_code=201,
    summary="Create an API key for yourself; the key is returned only here",
    response_model=KeyCreated,
)
def create_key(body: KeyBody, app: AppDep, user: UserDep, response: Response) -> KeyCreated:
    row, key = app.keys.create(body.name, owner_id=owner_id(user))
    response.headers["Cache-Control"] = "no-store"
    return KeyCreated.from_row(row, key=key)


@router.delete("/keys/{key_id}", summary="Revoke one of your API keys (admins: any key)", response_model=KeyRevoked)
def revoke_key(key_id: str, app: AppDep, user: UserDep) -> dict[str, Any]:
    row = app.keys.get(key_id)
    if row is None or (row.owner_id != owner_id(user) and not user.is_admin):
        raise NotFound(f"no key with id {key_id!r}", code="key_not_found", field="id", ctx={"id": key_id})
    app.keys.revoke(key_id)
    return {"id": key_id, "revoked": True}


# -- users (admins) --------------------------------------------------------------------------------------
@router.get("/users", summary="Every user (admins only)", response_model=UserList)
def list_users(app: AppDep, _: AdminDep) -> UserList:
    return UserList(users=[UserPublic.from_row(u) for u in app.users.list()])


@router.post("/users", status_code=201, summary="Create a user (admins only)", response_model=UserPublic)
def create_user(body: NewUserBody, app: AppDep, _: AdminDep) -> UserPublic:
    return UserPublic.from_row(app.users.create_user(body.username, body.password, body.role))


@router.patch(
    "/users/{user_id}",
    summary="Disable/enable a user, change the role or set a password (admins only)",
    response_model=UserPublic,
)
def patch_user(user_id: str, body: UserPatch, app: AppDep, _: AdminDep) -> UserPublic:
    return UserPublic.from_row(
        app.users.update(user_id, disabled=body.disabled, role=body.role, password=body.password)
    )
