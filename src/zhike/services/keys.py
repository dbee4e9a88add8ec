"""API keys: shown once at creation, stored as SHA-256 (keys are 256-bit random, so no slow hash is needed)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import Engine, insert, select, update

from zhike.core.errors import InvalidInput, NotFound
from zhike.core.rows import KeyRow
from zhike.services.db import api_keys, utcnow
from zhike.services.users import advisory_write

KEY_PREFIX = "zk_"
OWNER_PREFIX = "key-"  # owner id of what a key made without a user makes: "key-<key id>"
LAST_USED_EVERY = timedelta(seconds=60)  # write a key's last_used_at at most this often


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def owner_key_id(owner_id: str) -> str | None:
    """The id of the key that is this owner (a key made without a user), else None."""
    return owner_id.removeprefix(OWNER_PREFIX) if owner_id.startswith(OWNER_PREFIX) else None


class KeyService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, owner_id: str | None = None) -> tuple[KeyRow, str]:
        """Returns (row, plaintext key). The plaintext is never stored."""
        name = name.strip()
        if not (1 <= len(name) <= 200):
            raise InvalidInput("key name must be 1-200 characters", code="name_length", field="name", limit=200)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = secrets.token_hex(6)
        row = {
            "id": key_id,
            "name": name,
            "prefix": key[:8],
            "key_hash": hash_key(key),
            "owner_id": owner_id or OWNER_PREFIX + key_id,
            "created_at": utcnow(),
            "last_used_at": None,
            "revoked": False,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(api_keys).values(**row))
        return KeyRow.from_row(row), key

    def verify(self, key: str) -> KeyRow | None:
        """The live key with this text, else None. Its use is written at most once a minute (one write less
        per request)."""
        with self.engine.connect() as conn:
            q = select(api_keys).where(api_keys.c.key_hash == hash_key(key), api_keys.c.revoked.is_(False))
            row = conn.execute(q).mappings().first()
        if row is None:
            return None
        now = utcnow()
        if row["last_used_at"] is None or now - row["last_used_at"] > LAST_USED_EVERY:
            advisory_write(self.engine, update(api_keys).where(api_keys.c.id == row["id"]).values(last_used_at=now))
        return KeyRow.from_row(row)

    def list(self, owner_id: str | None = None, *, include_revoked: bool = True) -> list[KeyRow]:
        """Keys (without their hashes: KeyRow has none): all, or those acting for `owner_id`."""
        q = select(api_keys).order_by(api_keys.c.created_at)
        if owner_id is not None:
            q = q.where(api_keys.c.owner_id == owner_id)
        if not include_revoked:
            q = q.where(api_keys.c.revoked.is_(False))
        with self.engine.connect() as conn:
            return [KeyRow.from_row(r) for r in conn.execute(q).mappings()]

    def get(self, key_id: str) -> KeyRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        return KeyRow.from_row(row) if row else None

    def revoke(self, key_id: str) -> None:
        with self.engine.begin() as conn:
            res = conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked=True))
        if res.rowcount == 0:
            raise NotFound(f"no key with id {key_id!r}", code="key_not_found", field="id")
