"""Accounts: login, the caller, API keys and users."""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field

from zhike.api.schemas.common import Out
from zhike.core.rows import KeyRow, Role, UserRow
from zhike.services.users import owner_id


class Me(Out):
    id: str
    username: str
    role: Role

    @classmethod
    def from_row(cls, user: UserRow) -> Me:
        return cls(id=user.id, username=user.username, role=user.role)


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

    @classmethod
    def from_row(cls, row: KeyRow, **more: Any) -> Self:
        """`more`: the fields a subclass adds (KeyCreated's key)."""
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            owner_id=row.owner_id,
            created_at=row.created_at.isoformat(),
            last_used_at=row.last_used_at.isoformat() if row.last_used_at else None,
            revoked=row.revoked,
            **more,
        )


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

    @classmethod
    def from_row(cls, user: UserRow) -> UserPublic:
        """A user as the API shows it (UserRow has no password hash to leave out)."""
        return cls(
            id=user.id,
            username=user.username,
            role=user.role,
            disabled=user.disabled,
            created_at=user.created_at.isoformat(),
            owner_id=owner_id(user),
        )


class UserList(Out):
    users: list[UserPublic]
