"""Accounts: login, the caller, API keys and users."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from zhike.api.schemas.common import Out

Role = Literal["admin", "user"]


class Me(Out):
    id: str
    username: str
    role: Role


class LoginResult(Out):
    user: Me
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every request that changes something")


class MeResult(Out):
    user: Me
    csrf_token: str | None = Field(None, description="Only when signed in by the session cookie")


class Ok(Out):
    ok: bool


class KeyPublic(Out):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it")
    owner_id: str
    created_at: str | None
    last_used_at: str | None
    revoked: bool


class KeyCreated(KeyPublic):
    key: str = Field(description="The secret key: shown only in this answer")


class KeyList(Out):
    keys: list[KeyPublic]


class KeyRevoked(Out):
    id: str
    revoked: bool


class UserPublic(Out):
    id: str
    username: str
    role: Role
    disabled: bool
    created_at: str | None
    owner_id: str


class UserList(Out):
    users: list[UserPublic]
