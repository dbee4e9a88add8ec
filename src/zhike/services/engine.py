"""Engines: one per database URL per process, brought to the newest schema migration when first opened.

Apart from the tables (services/db.py) so that the migrations, which read the tables, sit between the two.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine, create_engine, event

from zhike.services.migrations import ensure_schema

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    # WAL lets readers (API) run while the worker writes; busy_timeout makes writers wait instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def get_engine(url: str) -> Engine:
    """One engine per URL per process; on first use brings the schema to the newest migration (see migrations/).

    The tables above are what the newest migration makes; changing them needs a migration too (a test checks).
    """
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_pre_ping=True)
            try:
                ensure_schema(engine)
            except BaseException:
                engine.dispose()
                raise
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
