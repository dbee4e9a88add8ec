"""Shared FastAPI dependencies: the app's services and the caller's identity.

A caller is identified by `Authorization: Bearer KEY` (API clients) or by the `zhike_session` cookie (the
browser). Cookie-authenticated requests that change something (POST/PUT/PATCH/DELETE) must also send the
session's CSRF token in `X-CSRF-Token`; Bearer requests need none (a browser never adds that header by itself).

Where a request came from is the TCP peer; `X-Forwarded-For`/`-Proto` are believed only from the peers listed in
the `trusted_proxies` setting (anyone can send those headers).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from zhike.core.errors import ZhikeError
from zhike.core.rows import KeyRow, SessionRow, UserRow
from zhike.services.container import Zhike
from zhike.services.keys import owner_key_id
from zhike.services.users import OWNER_PREFIX
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


Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


def _trusted(address: str, proxies: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip  # ::ffff:10.0.0.1 is 10.0.0.1
    return any(ip in net for net in proxies)


def _from_proxy(request: Request) -> bool:
    """Whether the TCP peer is a configured reverse proxy (so its X-Forwarded-* headers are believed)."""
    proxies = request.app.state.zhike.settings.trusted_proxies
    return bool(proxies) and request.client is not None and _trusted(request.client.host, proxies)


def client_ip(request: Request) -> str:
    """The address the request came from: the TCP peer, or behind trusted proxies the nearest address in
    X-Forwarded-For that is not one of them (each proxy appends the peer it saw; what is left of that was
    written by the client and proves nothing)."""
    peer = request.client.host if request.client else "unknown"
    if not _from_proxy(request):
        return peer
    proxies = request.app.state.zhike.settings.trusted_proxies
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # not an address: the proxy did not write it
    return hops[0] if hops else peer  # every hop is a proxy of ours: the first is nearest to the client


def request_scheme(request: Request) -> str:
    """http or https as the client sees it: the connection's, or a trusted proxy's X-Forwarded-Proto."""
    if _from_proxy(request):
        sent = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        if sent in ("http", "https"):
            return sent
    return request.url.scheme


def user_active(user: UserRow | None) -> bool:
    return user is not None and not user.disabled


def owner_active(app: Zhike, owner: str) -> bool:
    """Whether `owner` may still be served: its user exists and is enabled, or (an owner made by a key without a
    user) its key is not revoked. Signed links check it on every request: they outlive neither."""
    if owner.startswith(OWNER_PREFIX):
        return user_active(app.users.for_owner(owner))
    key_id = owner_key_id(owner)
    if key_id is not None:
        key = app.keys.get(key_id)
        return key is not None and not key.revoked
    return True  # the CLI's local owner


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
        if row.owner_id.startswith(OWNER_PREFIX) and not user_active(user):
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
