"""Users, passwords and browser sessions.

- Passwords: `hashlib.scrypt` with a random 16-byte salt per hash, stored as `scrypt$N$r$p$salt$hash` so the cost
  can be raised later without breaking old hashes. Checks compare in constant time, and an unknown username
  costs the same scrypt as a known one (no timing oracle for which names exist).
- Sessions: the browser holds a random 256-bit token; the database holds only its SHA-256 (a leaked database
  cannot be replayed as logins), a CSRF token and an absolute expiry.
- A user's jobs and assets belong to `owner_id(user)` = "user-<id>"; API keys made for the user carry the same
  owner id, so a key and its user see the same things.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
import time
from collections import deque
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, Executable, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from zhike.core.errors import Conflict, InvalidInput, NotFound, storage_full
from zhike.core.rows import SessionRow, UserRow
from zhike.services.db import sessions, users, utcnow

ROLES = ("admin", "user")
USERNAME_RE = re.compile(r"^[A-Za-z0-9._\-\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{1,64}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN = 2**14, 8, 1, 32
SCRYPT_MAXMEM = 128 * 1024 * 1024
OWNER_PREFIX = "user-"
LAST_SEEN_EVERY = timedelta(seconds=60)  # write a session's last_seen at most this often


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=SCRYPT_DKLEN, maxmem=SCRYPT_MAXMEM)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(dk)}"


def check_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` string; False for anything malformed."""
    try:
        algo, n, r, p, salt, expected = stored.split("$")
        if algo != "scrypt":
            return False
        want = base64.b64decode(expected)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=SCRYPT_MAXMEM,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def advisory_write(engine: Engine, statement: Executable) -> None:
    """Run a write that only records something (a session's or key's last use), skipping it when the disk is
    full: a full disk must not turn away every signed-in request along with it."""
    try:
        with engine.begin() as conn:
            conn.execute(statement)
    except OperationalError as e:
        if storage_full(e) is None:
            raise


def owner_id(user: UserRow) -> str:
    return OWNER_PREFIX + user.id


def check_username(username: str) -> str:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise InvalidInput(
            "username must be 1-64 characters: letters, digits, Chinese characters, '.', '_' or '-'",
            code="username_invalid",
            field="username",
            limit=64,
        )
    return username


def check_new_password(password: str) -> str:
    if not isinstance(password, str) or not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
        raise InvalidInput(
            f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters",
            code="password_length",
            field="password",
            limit=MAX_PASSWORD,
            ctx={"min": MIN_PASSWORD, "max": MAX_PASSWORD},
        )
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(
            f"role must be one of {', '.join(ROLES)}",
            code="choice_invalid",
            field="role",
            ctx={"choices": ", ".join(ROLES)},
        )
    return role


class UserService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dummy_hash: str | None = None

    # -- users ---------------------------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: str = "user") -> UserRow:
        row = {
            "id": secrets.token_hex(6),
            "username": check_username(username),
            "password_hash": hash_password(check_new_password(password)),
            "role": check_role(role),
            "created_at": utcnow(),
            "disabled": False,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(users).values(**row))
        except IntegrityError as e:
            raise Conflict(
                f"a user named {username!r} already exists",
                code="username_taken",
                field="username",
                ctx={"name": username},
            ) from e
        return UserRow.from_row(row)

    def get(self, user_id: str) -> UserRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
        return UserRow.from_row(row) if row else None

    def by_username(self, username: str) -> UserRow | None:
        user, _ = self._with_hash(username)
        return user

    def _with_hash(self, username: str) -> tuple[UserRow | None, str]:
        """The user and the password hash (which never leaves this service)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
        return (UserRow.from_row(row), row["password_hash"]) if row else (None, "")

    def require(self, username: str) -> UserRow:
        user = self.by_username(username)
        if user is None:
            raise NotFound(
                f"no user named {username!r}", code="user_not_found", field="username", ctx={"name": username}
            )
        return user

    def for_owner(self, owner: str) -> UserRow | None:
        """The user whose owner id this is (None for owners that are no user, e.g. keys made without one)."""
        if not owner.startswith(OWNER_PREFIX):
            return None
        return self.get(owner.removeprefix(OWNER_PREFIX))

    def list(self) -> list[UserRow]:
        with self.engine.connect() as conn:
            return [UserRow.from_row(r) for r in conn.execute(select(users).order_by(users.c.created_at)).mappings()]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def verify_password(self, username: str, password: str) -> UserRow | None:
        """The user when the password is right and the user is enabled; else None, in about the same time."""
        user, stored = self._with_hash(username) if isinstance(username, str) and len(username) <= 64 else (None, "")
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = hash_password(secrets.token_urlsafe(16))
            check_password(password, self._dummy_hash)
            return None
        ok = check_password(password, stored)
        return user if ok and not user.disabled else None

    def set_password(self, user_id: str, password: str) -> None:
        """Change the password and end the user's sessions (a stolen session does not survive the change)."""
        digest = hash_password(check_new_password(password))
        with self.engine.begin() as conn:
            res = conn.execute(update(users).where(users.c.id == user_id).values(password_hash=digest))
            if res.rowcount == 0:
                raise NotFound(f"no user with id {user_id!r}", code="user_not_found", field="id", ctx={"name": user_id})
            conn.execute(delete(sessions).where(sessions.c.user_id == user_id))

    def update(
        self, user_id: str, *, disabled: bool | None = None, role: str | None = None, password: str | None = None
    ) -> UserRow:
        """Change a user; refuses a change that would leave no enabled admin."""
        user = self.get(user_id)
        if user is None:
            raise NotFound(f"no user with id {user_id!r}", code="user_not_found", field="id", ctx={"name": user_id})
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = check_role(role)
        if disabled is not None:
            values["disabled"] = bool(disabled)
        if password is not None:
            check_new_password(password)
        if values:
            with self.engine.begin() as conn:
                conn.execute(update(users).where(users.c.id == user_id).values(**values))
                admins = conn.execute(
                    select(func.count()).select_from(users).where(users.c.role == "admin", users.c.disabled.is_(False))
                ).scalar_one()
                was_admin = user.is_admin and not user.disabled
                if was_admin and admins == 0:  # raising rolls the update back
                    raise Conflict(
                        "this change would leave no enabled admin",
                        code="last_admin",
                        field="role" if role else "disabled",
                    )
                if values.get("disabled"):
                    conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
        if password is not None:
            self.set_password(user_id, password)
        return self.get(user_id) or user

    def disable(self, user_id: str) -> UserRow:
        return self.update(user_id, disabled=True)

    def enable(self, user_id: str) -> UserRow:
        return self.update(user_id, disabled=False)

    def ensure_first_admin(self) -> str | None:
        """On a deployment with no user, create `admin` with a random password and return it (else None)."""
        if self.count() > 0:
            return None
        password = secrets.token_urlsafe(15)
        try:
            self.create_user("admin", password, role="admin")
        except Conflict:  # another process made it first
            return None
        return password

    # -- sessions ------------------------------------------------------------------------------------------
    def create_session(self, user_id: str, lifetime: timedelta = timedelta(days=14)) -> tuple[str, SessionRow]:
        """Returns (token for the cookie, session row). Only the token's SHA-256 is stored."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        row = {
            "id": token_hash(token),
            "user_id": user_id,
            "csrf_token": secrets.token_urlsafe(32),
            "created_at": now,
            "expires_at": now + lifetime,
            "last_seen": now,
        }
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))  # keep the table small
            conn.execute(insert(sessions).values(**row))
        return token, SessionRow.from_row(row)

    def session_user(self, token: str) -> tuple[UserRow, SessionRow] | None:
        """(user, session) for a live session token of an enabled user; None when unknown, expired or disabled."""
        if not token or len(token) > 200:
            return None
        now = utcnow()
        with self.engine.connect() as conn:
            found = conn.execute(
                select(sessions, users)
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.id == token_hash(token))
            ).first()
        if found is None:
            return None
        # Both tables have `id` and `created_at`: take each one's columns by the column itself.
        session = SessionRow.from_row({c.name: found._mapping[c] for c in sessions.c})
        user = UserRow.from_row({c.name: found._mapping[c] for c in users.c})
        if session.expires_at <= now:
            self.delete_session(token)
            return None
        if user.disabled:
            return None
        if session.last_seen is None or now - session.last_seen > LAST_SEEN_EVERY:
            advisory_write(self.engine, update(sessions).where(sessions.c.id == session.id).values(last_seen=now))
        return user, session

    def delete_session(self, token: str) -> None:
        self.delete_session_id(token_hash(token))

    def delete_session_id(self, session_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.id == session_id))


KNOWN_SOURCES = 8  # sources remembered per account that logged in


def _source(ip: str) -> str:
    """The counted source of a client address: IPv4 as is, IPv6 by its /64."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


class LoginThrottle:
    """Brake on password guessing, per process. Failed logins count over a sliding window three ways:

    - per account and source together: at `max_failures` that source may not try that account for a pause that
      doubles with every further failure (30 s, 60 s, ... capped at the window). Other sources are not held, so
      a flood of wrong passwords from one place never locks the owner (an admin included) out everywhere;
    - per source, over all accounts: `max_failures * source_factor` (one address guessing many names), same pause;
    - per account, over all sources: past `max_failures * account_factor` (guessing spread over many addresses)
      each attempt on the account waits 1 s, 2 s, 4 s ... (capped at `max_spacing`) after the last failure. That
      slows such a guesser to about one try a minute without ever locking the account; sources the account has
      logged in from are not held back by it.

    Attempts refused during a pause are not checked, so they teach a guesser nothing. A source is a client
    address; IPv6 ones count by their /64 (one host is usually handed a whole /64)."""

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 900.0,
        base_pause: float = 30.0,
        source_factor: int = 4,
        account_factor: int = 10,
        max_spacing: float = 60.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.max_failures, self.window, self.base_pause = max_failures, window, base_pause
        self.source_factor, self.account_factor, self.max_spacing = source_factor, account_factor, max_spacing
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._paused_until: dict[str, float] = {}
        self._known: dict[str, deque[str]] = {}  # account -> the last sources it logged in from
        self._lock = threading.Lock()

    def _keys(self, username: str, ip: str) -> tuple[str, str, str]:
        """(account+source, source, account) keys of the counters."""
        account, source = username.casefold()[:64], _source(ip)
        return f"p:{account}\0{source}", f"s:{source}", f"a:{account}"

    def _rules(self, username: str, ip: str) -> list[tuple[str, int, float, float]]:
        """(key, failures that start a pause, first pause, longest pause) for each counter."""
        pair, source, account = self._keys(username, ip)
        return [
            (pair, self.max_failures, self.base_pause, self.window),
            (source, self.max_failures * self.source_factor, self.base_pause, self.window),
            (account, self.max_failures * self.account_factor, 1.0, min(self.max_spacing, self.window)),
        ]

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, username: str, ip: str) -> float:
        """Seconds until an attempt for this username from this address is allowed (0: now)."""
        now = self.clock()
        pair, source, account = self._keys(username, ip)
        with self._lock:
            held = [pair, source]
            if source not in self._known.get(account, ()):
                held.append(account)
            waits = [self._paused_until.get(k, 0.0) - now for k in held]
        return max(0.0, *waits)

    def failure(self, username: str, ip: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > 50_000:  # many distinct names: drop what has left the window
                for k in list(self._failures):
                    self._prune(k, now)
                self._paused_until = {k: t for k, t in self._paused_until.items() if t > now}
            for key, limit, first, longest in self._rules(username, ip):
                q = self._prune(key, now)
                q.append(now)
                self._failures[key] = q
                if len(q) >= limit:
                    self._paused_until[key] = now + min(longest, first * 2 ** (len(q) - limit))

    def success(self, username: str, ip: str) -> None:
        """A right password clears that account's count from that source (not the source's: one known account
        must not reset the brake on guessing others) and remembers the source as the account's own."""
        pair, source, account = self._keys(username, ip)
        with self._lock:
            self._failures.pop(pair, None)
            self._paused_until.pop(pair, None)
            known = self._known.setdefault(account, deque(maxlen=KNOWN_SOURCES))
            if source not in known:
                known.append(source)
