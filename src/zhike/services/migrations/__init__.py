"""Schema migrations (Alembic), applied when a process first opens a database (services/engine.py `get_engine`).

- empty database: upgrade to head;
- made before migrations (Zhike's tables, no `alembic_version`): backup copy, stamp the baseline, upgrade;
- at an older revision: backup copy, upgrade;
- at head: nothing;
- at a revision this code does not know (made by a newer Zhike): `SchemaError`, nothing touched.

The check and the upgrade run in one transaction holding the database's write lock (SQLite: BEGIN IMMEDIATE,
PostgreSQL: an advisory lock), so a server and a worker starting together migrate once and the second one sees
the result. Alembic is configured here in code (script_location is this package): there is no alembic.ini.
Adding a revision: `python -m zhike.services.migrations revision -m "what changes"` (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool, StaticPool

from zhike import __version__
from zhike.core.errors import ZhikeError

log = logging.getLogger("zhike.db")

HERE = Path(__file__).resolve().parent
VERSION_DIRS: list[Path] = [HERE / "versions"]  # tests add a folder with revisions of their own
BASELINE = "0001"  # the schema of the last release made without migrations (commit 60de743)
LOCK_WAIT_SECONDS = 300  # how long a starting process waits while another one migrates
_PG_LOCK_KEY = 0x5A48494B45  # "ZHIKE": the advisory lock PostgreSQL migrations hold


class SchemaError(ZhikeError):
    """The database's schema cannot be brought to this Zhike's: made by a newer Zhike, or not by Zhike."""

    status = 503
    code = "database_schema"


@dataclass(frozen=True)
class Upgrade:
    """What `ensure_schema` did to a database that was not at head."""

    before: tuple[str, ...]  # () for an empty database or one made before migrations
    after: str
    backup: Path | None  # the copy taken first (SQLite); None for a new database or another backend
    adopted: bool  # made before migrations: stamped with the baseline first


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration; env.py runs the migrations on `connection`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")  # 0002_add_x.py: files sort in revision order
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(d) for d in VERSION_DIRS))
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    heads = scripts().get_heads()
    if len(heads) != 1:  # two revisions with the same parent (parallel branches): merge them into one
        raise RuntimeError(f"the migrations have {len(heads)} heads {heads}; `alembic merge` them")
    return heads[0]


def current(conn: Connection) -> tuple[str, ...]:
    """The revisions recorded in the database; () when it has no alembic_version table."""
    return MigrationContext.configure(conn).get_current_heads()


def known(rev: str) -> bool:
    """Whether `rev` is one of this Zhike's revisions (a newer Zhike's are not)."""
    try:
        return scripts().get_revision(rev) is not None
    except CommandError:
        return False


def _where(url: URL) -> str:
    return url.database if url.get_backend_name() == "sqlite" and url.database else url.render_as_string()


@lru_cache(maxsize=1)
def baseline_columns() -> dict[str, frozenset[str]]:
    """Table -> column names the baseline revision creates, read from an in-memory database made by it."""
    engine = create_engine("sqlite://", poolclass=StaticPool)
    try:
        with engine.begin() as conn:
            command.upgrade(config(conn), BASELINE)
            insp = inspect(conn)
            return {
                t: frozenset(c["name"] for c in insp.get_columns(t))
                for t in insp.get_table_names()
                if t != "alembic_version"
            }
    finally:
        engine.dispose()


def ensure_schema(engine: Engine) -> Upgrade | None:
    """Bring the database to the head revision (see the module docstring); None when it already was."""
    target = head()
    with engine.connect() as conn:
        if current(conn) == (target,):
            return None
    with _write_locked(engine.url) as conn:
        done = _migrate(conn, engine.url, target)
    engine.dispose()  # pooled connections opened before the upgrade
    return done


@contextmanager
def _write_locked(url: URL) -> Iterator[Connection]:
    """A connection in a transaction that holds the database's write lock until it commits (or rolls back)."""
    sqlite = url.get_backend_name() == "sqlite"
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": LOCK_WAIT_SECONDS} if sqlite else {})
    if sqlite:

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # SQLAlchemy begins the transactions, not the driver: DDL becomes transactional (a failed upgrade
            # leaves nothing behind) and BEGIN IMMEDIATE takes the write lock before the revision is read.
            # Foreign keys stay off (SQLite's default) here: batch migrations drop and re-create tables, and with
            # them on, dropping `users` would cascade into `sessions`. _migrate checks them before committing.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.begin() as conn:
            if url.get_backend_name() == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            yield conn
    finally:
        engine.dispose()


def _migrate(conn: Connection, url: URL, target: str) -> Upgrade | None:
    before = current(conn)
    if before == (target,):
        return None  # another process upgraded it while this one waited for the lock
    unknown = [r for r in before if not known(r)]
    if unknown:
        raise SchemaError(
            f"the database {_where(url)} is at schema revision {', '.join(unknown)}, which Zhike {__version__} "
            "does not know: a newer Zhike made or upgraded it. Run that version, or restore the copy taken "
            "before the upgrade (zhike.db.pre-migration-*.bak next to the database)."
        )
    cfg = config(conn)
    tables = set(inspect(conn).get_table_names())
    if not before and not (tables and tables & baseline_columns().keys()):
        command.upgrade(cfg, "head")
        log.info("created the database schema (revision %s) in %s", target, _where(url))
        return Upgrade(before, target, None, adopted=False)
    if not before:
        _check_baseline(conn, url)
    backup = _backup(url)
    if not before:
        command.stamp(cfg, BASELINE)
    command.upgrade(cfg, "head")
    if url.get_backend_name() == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:  # raising rolls the whole upgrade back
            raise RuntimeError(f"the upgrade to {target} would break foreign keys: {broken[:5]}")
    log.warning(
        "upgraded the database schema of %s from %s to revision %s%s",
        _where(url),
        ", ".join(before) or "the release before migrations",
        target,
        f"; the database before the upgrade is copied to {backup}" if backup else "",
    )
    return Upgrade(before, target, backup, adopted=not before)


def _check_baseline(conn: Connection, url: URL) -> None:
    """A database made before migrations must have the baseline's tables and columns before it is stamped."""
    insp = inspect(conn)
    missing: list[str] = []
    for table, columns in sorted(baseline_columns().items()):
        if not insp.has_table(table):
            missing.append(table)
            continue
        have = {c["name"] for c in insp.get_columns(table)}
        missing += [f"{table}.{c}" for c in sorted(columns - have)]
    if missing:
        raise SchemaError(
            f"the database {_where(url)} has some of Zhike's tables but not the schema this Zhike upgrades from "
            f"(missing: {', '.join(missing)}). It was not made by Zhike 0.1.0 (commit 60de743) or later; "
            "start with a new ZHIKE_HOME or add what is missing by hand."
        )


def _backup(url: URL) -> Path | None:
    """Copy an SQLite database with its online backup API (consistent while others read it); None elsewhere."""
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        log.warning(
            "upgrading the database schema of %s without a backup copy: back the database up before upgrading "
            "Zhike (e.g. pg_dump)",
            _where(url),
        )
        return None
    src = Path(db)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    mode = src.stat().st_mode & 0o777  # the copy holds password hashes too: no more readable than the database
    for n in range(1000):
        dest = src.with_name(f"{src.name}.pre-migration-{stamp}{f'-{n}' if n else ''}.bak")
        try:
            os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - a thousand upgrades in one second
        raise RuntimeError(f"cannot name a backup copy of {src}")
    source, copy = sqlite3.connect(src), sqlite3.connect(dest)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return dest
