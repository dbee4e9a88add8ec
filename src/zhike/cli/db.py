"""`zhike db current|upgrade`: the database's schema revision. Every process upgrades it by itself when it opens
the database (services/migrations); these commands show where it stands and upgrade it without starting a server."""

from __future__ import annotations

import typer
from sqlalchemy import create_engine, inspect, make_url

from zhike.cli.common import out, run_cli
from zhike.services import migrations
from zhike.settings import get_settings

db_app = typer.Typer(help="The database schema: its revision, and upgrading it", no_args_is_help=True)


@db_app.command()
def current() -> None:
    """Show the database's schema revision and the one this Zhike uses (changes nothing)."""
    s = get_settings()
    engine = create_engine(s.db_url)  # not get_engine: opening it that way would upgrade it
    try:
        with engine.connect() as conn:
            revs = migrations.current(conn)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    target = migrations.head()
    if revs == (target,):
        state = "up to date"
    elif not revs:
        state = "made before migrations: upgraded at the next start" if tables else "empty: created at the next start"
    elif all(migrations.known(r) for r in revs):
        state = "older: upgraded at the next start"
    else:
        state = "made by a newer Zhike: this one will not open it"
    out.print(f"database: {make_url(s.db_url).render_as_string()}")  # a password in the URL shows as ***
    out.print(f"revision: {', '.join(revs) or 'none'}")
    out.print(f"this Zhike: {target} ({state})")


@db_app.command()
def upgrade() -> None:
    """Upgrade the schema now (a copy of an SQLite database is kept next to it first)."""
    s = get_settings()
    s.ensure_dirs()
    engine = create_engine(s.db_url)
    try:
        done = run_cli(lambda: migrations.ensure_schema(engine))
    finally:
        engine.dispose()
    if done is None:
        out.print(f"already at revision {migrations.head()}")
        return
    out.print(f"upgraded from {', '.join(done.before) or 'none'} to {done.after}")
    if done.backup:
        out.print(f"copy of the database before the upgrade: {done.backup}")
