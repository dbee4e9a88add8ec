"""Schema migrations: a data home made by the release before migrations (commit 60de743, the committed fixture
made by tests/helpers/make_old_home.py) upgrades in place; new, current, newer and broken databases; two processes
starting together; later revisions (batch table rebuilds, failures roll back); the revision helper."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, String, Table, create_engine

from tests.conftest import make_settings
from tests.helpers.server import log_path, serve_process, wait_job, zhike_env
from zhike.core.registry import get_op
from zhike.services import migrations
from zhike.services.container import Zhike
from zhike.services.db import metadata
from zhike.services.engine import dispose_engines, get_engine
from zhike.services.migrations import BASELINE, SchemaError, config, ensure_schema, head

FIXTURE = Path(__file__).parent / "fixtures" / "old_home_60de743.zip"
# The SQLite backup API rewrites three header counters of the copy (file change counter, schema cookie,
# version-valid-for); every other byte of the copy is the old file's.
HEADER_COUNTERS = set(range(24, 28)) | set(range(40, 44)) | set(range(92, 96))
# What `zhike serve` and `zhike worker` do first: open the home's database.
OPEN_HOME = (
    "import sys; from zhike.services.container import Zhike; from zhike.settings import Settings; "
    "Zhike(Settings(home=sys.argv[1], device='cpu')).engine"
)


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    """get_engine migrates once per process per URL: every test opens its databases anew."""
    dispose_engines()
    yield
    dispose_engines()


def unpack(root: Path) -> tuple[Path, dict[str, Any]]:
    with zipfile.ZipFile(FIXTURE) as zf:
        zf.extractall(root)
    return root / "home", json.loads((root / "manifest.json").read_text())


def table_rows(db: Path, like: Path | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but alembic_version), as SQLite stores them; with `like`, only the columns that
    database has (an upgraded database's rows as they were before the revisions added columns)."""
    shape = columns(like or db)
    con = sqlite3.connect(db)
    try:
        out = {}
        for n, cols in sorted(shape.items()):
            names = ", ".join('"' + c + '"' for c in cols)
            out[n] = con.execute(f'SELECT {names} FROM "{n}" ORDER BY rowid').fetchall()
        return out
    finally:
        con.close()


def columns(db: Path) -> dict[str, list[str]]:
    con = sqlite3.connect(db)
    try:
        names = [
            r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name != 'alembic_version'")
        ]
        return {n: [c[1] for c in con.execute(f'PRAGMA table_info("{n}")')] for n in sorted(names)}
    finally:
        con.close()


def indexes(db: Path) -> list[tuple[str, str | None]]:
    return [(name, sql) for kind, name, sql in schema(db) if kind == "index"]


# The columns the revisions after the baseline add, in order: an upgraded home has these and nothing else new.
ADDED = {"jobs": ["watched_until", "timings", "lane", "partial_text"], "assets": ["name", "folder_id"]}
# tables added by migrations since the baseline (0005 stock and brand, 0007 knowledge bases)
CREATED = {"stock_folders", "brand_kits", "kbs", "kb_documents", "kb_chunks", "kb_conversations", "kb_messages"}


def created_indexes(db: Path) -> set[str]:
    """The indexes of the tables in CREATED."""
    con = sqlite3.connect(db)
    try:
        q = f"SELECT name FROM sqlite_master WHERE type='index' AND tbl_name IN ({', '.join('?' * len(CREATED))})"
        return {r[0] for r in con.execute(q, sorted(CREATED))}
    finally:
        con.close()


def schema(db: Path) -> list[tuple[str, str, str | None]]:
    con = sqlite3.connect(db)
    try:
        q = "SELECT type, name, sql FROM sqlite_master WHERE tbl_name != 'alembic_version' ORDER BY type, name"
        return con.execute(q).fetchall()
    finally:
        con.close()


def revision_of(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
    finally:
        con.close()


def no_version_table(db: Path) -> bool:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT 1 FROM sqlite_master WHERE name='alembic_version'").fetchone() is None
    finally:
        con.close()


def file_hashes(home: Path) -> dict[str, str]:
    """SHA-256 of every file in the home except the database and its copies."""
    return {
        p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.startswith("zhike.db")
    }


def backups(home: Path) -> list[Path]:
    """The copies taken before upgrades, oldest first."""
    return sorted(home.glob("zhike.db.pre-migration-*.bak"), key=lambda p: p.stat().st_mtime_ns)


def open_home(home: Path) -> Zhike:
    z = Zhike(make_settings(home))
    z.engine  # noqa: B018 - opening the database is what upgrades it
    return z


def test_old_home_upgrades_in_place_and_keeps_everything(tmp_path: Path) -> None:
    home, m = unpack(tmp_path)
    db = home / "zhike.db"
    old_bytes, old_rows, old_schema, old_files = db.read_bytes(), table_rows(db), schema(db), file_hashes(home)
    assert no_version_table(db) and len(old_rows["jobs"]) == 5 and len(old_rows["assets"]) == 7

    open_home(home)
    dispose_engines()

    # A backup copy first: the old database, byte for byte but for the header counters the backup API sets.
    (bak,) = backups(home)
    copy = bak.read_bytes()
    assert len(copy) == len(old_bytes)
    assert {i for i in range(len(copy)) if copy[i] != old_bytes[i]} <= HEADER_COUNTERS
    assert table_rows(bak) == old_rows and schema(bak) == old_schema
    # Stamped and upgraded in place: every row and every index as before (new columns empty), files untouched.
    assert revision_of(db) == [head()]
    assert table_rows(db, like=bak) == old_rows
    assert [i for i in indexes(db) if i[0] not in created_indexes(db)] == indexes(bak)
    assert columns(db) == {t: cols + ADDED.get(t, []) for t, cols in columns(bak).items()} | {
        t: columns(db)[t] for t in CREATED
    }
    # New columns empty, but for the lane every old job gets from its op (0004_job_lanes).
    jobs = [dict(zip(columns(db)["jobs"], r, strict=True)) for r in table_rows(db)["jobs"]]
    assert all(j["watched_until"] is None and j["timings"] is None for j in jobs)
    assert [j["lane"] for j in jobs] == [get_op(j["op"]).lane for j in jobs]
    assert {j["op"]: j["lane"] for j in jobs} == {"cutout": "quick", "resize_design": "cpu"}
    assert file_hashes(home) == old_files

    # A real server on the upgraded home: a second start changes nothing, old secrets work, new jobs run.
    with serve_process(home) as url:
        log = log_path(home).read_text()
        assert "upgraded the database schema" not in log and backups(home) == [bak]
        with httpx.Client(base_url=url, timeout=30) as anon:
            assert (
                anon.post("/api/v1/auth/login", json={"username": "mei", "password": "wrong-pass-123"}).status_code
                == 401
            )
            for name, password in m["passwords"].items():
                r = anon.post("/api/v1/auth/login", json={"username": name, "password": password})
                assert r.status_code == 200, r.text
                assert r.json()["user"]["username"] == name
        with httpx.Client(base_url=url, timeout=30, cookies={"zhike_session": m["session_token"]}) as browser:
            assert browser.get("/api/v1/auth/me").json()["user"]["username"] == "mei"  # an old browser session
        mei = httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {m['keys']['mei']}"})
        legacy = httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {m['keys']['legacy']}"})
        with mei, legacy:
            job = mei.get(f"/api/v1/jobs/{m['jobs']['resize']}").json()
            assert job["state"] == "succeeded" and len(job["result"]["images"]) == 2
            listed = {a["id"] for a in mei.get("/api/v1/assets", params={"limit": 100}).json()["assets"]}
            assert {m["assets"]["logo"], m["assets"]["photo"]} <= listed and m["assets"]["other"] not in listed
            other = [r for r in old_rows["assets"] if r[0] == m["assets"]["other"]][0]
            data = legacy.get(f"/api/v1/assets/{m['assets']['other']}/file").content
            assert hashlib.sha256(data).hexdigest() == other[2]  # the stored file, served as it was
            r = mei.post(
                "/api/v1/jobs", json={"op": "cutout", "params": {"image": m["assets"]["logo"], "mode": "logo"}}
            )
            assert r.status_code == 201, r.text
            done = wait_job(mei, r.json()["id"])
            assert done["state"] == "succeeded", done
            r = mei.post(
                "/api/v1/jobs",
                json={
                    "op": "resize_design",
                    "params": {"image": m["assets"]["photo"], "sizes": ["64x64"], "mode": "fit"},
                },
            )
            assert wait_job(mei, r.json()["id"])["state"] == "succeeded"
    # The old files are still there, byte for byte, beside the new outputs.
    now = file_hashes(home)
    assert {k: now.get(k) for k in old_files} == old_files and len(now) > len(old_files)
    assert backups(home) == [bak]


def test_the_baseline_revision_makes_exactly_the_old_schema(tmp_path: Path) -> None:
    home, _ = unpack(tmp_path)
    engine = create_engine(f"sqlite:///{tmp_path / 'baseline.db'}")
    with engine.begin() as conn:
        command.upgrade(config(conn), BASELINE)
    engine.dispose()
    assert schema(tmp_path / "baseline.db") == schema(home / "zhike.db")


def test_empty_home_is_created_at_head_and_the_tables_match_the_migrations(tmp_path: Path) -> None:
    home = tmp_path / "new"
    z = open_home(home)
    assert revision_of(home / "zhike.db") == [head()] and backups(home) == []
    # services/db.py and the migrations describe the same schema (a table change without a migration fails here)
    with z.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
    dispose_engines()
    open_home(home)  # at head: nothing to do, nothing copied
    assert backups(home) == []


def stamp(db: Path, rev: str) -> None:
    con = sqlite3.connect(db)
    with con:
        con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        con.execute("INSERT INTO alembic_version VALUES (?)", (rev,))
    con.close()


def test_a_database_from_a_newer_zhike_is_refused_clearly(tmp_path: Path) -> None:
    home, _ = unpack(tmp_path)
    db = home / "zhike.db"
    stamp(db, "9999")
    before = db.read_bytes()
    for _ in range(2):  # refused every time, not cached as opened
        with pytest.raises(SchemaError, match=r"revision 9999, which Zhike .* does not know: a newer Zhike"):
            open_home(home)
    assert db.read_bytes() == before and backups(home) == []
    # The CLI says so in one line, without a traceback.
    cli = [sys.executable, "-c", "from zhike.cli.db import db_app; db_app(prog_name='zhike db')"]
    cur = subprocess.run([*cli, "current"], env=zhike_env(home), capture_output=True, text=True, timeout=120)
    assert cur.returncode == 0 and "revision: 9999" in cur.stdout and "made by a newer Zhike" in cur.stdout
    up = subprocess.run([*cli, "upgrade"], env=zhike_env(home), capture_output=True, text=True, timeout=120)
    assert up.returncode == 2 and "newer Zhike" in up.stderr and "Traceback" not in up.stderr + up.stdout


def test_a_database_with_only_some_of_the_old_tables_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    con = sqlite3.connect(home / "zhike.db")
    con.execute("CREATE TABLE jobs (id VARCHAR(32) PRIMARY KEY, state VARCHAR(16))")
    con.close()
    with pytest.raises(SchemaError, match=r"missing: api_keys, assets, .*jobs\.op,"):
        open_home(home)
    assert no_version_table(home / "zhike.db") and backups(home) == []


def test_a_starting_process_waits_while_another_holds_the_write_lock(tmp_path: Path) -> None:
    home, _ = unpack(tmp_path)
    db = home / "zhike.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # what a migrating process holds
    engine = create_engine(f"sqlite:///{db}")
    failed: list[BaseException] = []

    def upgrade() -> None:
        try:
            ensure_schema(engine)
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            failed.append(e)

    t = threading.Thread(target=upgrade)
    t.start()
    time.sleep(1.5)
    assert t.is_alive() and backups(home) == [] and no_version_table(db)  # waiting: nothing done yet
    holder.rollback()
    holder.close()
    t.join(60)
    engine.dispose()
    assert not t.is_alive() and not failed
    assert len(backups(home)) == 1 and revision_of(db) == [head()]


def test_server_and_worker_starting_together_migrate_once(tmp_path: Path) -> None:
    home, _ = unpack(tmp_path)
    old_rows = table_rows(home / "zhike.db")
    procs = [
        subprocess.Popen([sys.executable, "-c", OPEN_HOME, str(home)], env=zhike_env(home), stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    logs = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert len(backups(home)) == 1 and revision_of(home / "zhike.db") == [head()]
    assert sum("upgraded the database schema" in log for log in logs) == 1, logs
    assert table_rows(home / "zhike.db", like=backups(home)[0]) == old_rows


REBUILD_USERS = '''
"""test: rebuild users (batch move-and-copy) with a new column"""
import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", recreate="always") as batch:
        batch.add_column(sa.Column("display_name", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", recreate="always") as batch:
        batch.drop_column("display_name")
'''

FAILING = '''
"""test: a migration that fails half-way"""
import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("priority", sa.Integer, nullable=True))
    raise RuntimeError("migration 0099 failed")


def downgrade() -> None:
    pass
'''


@pytest.fixture
def extra_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Make a revision file in a folder of its own the next head (as a later Zhike would ship one)."""

    def add(source: str) -> None:
        folder = tmp_path / "versions"
        folder.mkdir()
        (folder / "0099_test.py").write_text(source.replace("{head}", head()))
        monkeypatch.setattr(migrations, "VERSION_DIRS", [*migrations.VERSION_DIRS, folder])
        migrations.scripts.cache_clear()
        dispose_engines()

    yield add
    migrations.scripts.cache_clear()


def test_a_later_revision_copies_then_upgrades_and_a_table_rebuild_keeps_dependent_rows(
    tmp_path: Path, extra_revision: Callable[[str], None]
) -> None:
    home, _ = unpack(tmp_path / "fx")
    db = home / "zhike.db"
    open_home(home)
    current = head()
    assert revision_of(db) == [current] and len(backups(home)) == 1
    old_rows = table_rows(db)

    extra_revision(REBUILD_USERS)
    open_home(home)
    first, second = backups(home)
    assert revision_of(second) == [current] and revision_of(db) == ["0099"]
    rows = table_rows(db)
    # sessions reference users ON DELETE CASCADE: rebuilding users must not empty them (foreign keys off)
    assert rows["sessions"] == old_rows["sessions"] and len(rows["sessions"]) == 2
    assert rows["users"] == [(*r, None) for r in old_rows["users"]]
    assert {k: v for k, v in rows.items() if k != "users"} == {k: v for k, v in old_rows.items() if k != "users"}
    dispose_engines()
    open_home(home)
    assert len(backups(home)) == 2  # at head now: no third copy


def test_a_failing_revision_leaves_the_database_as_it_was(
    tmp_path: Path, extra_revision: Callable[[str], None]
) -> None:
    home, _ = unpack(tmp_path / "fx")
    db = home / "zhike.db"
    open_home(home)
    dispose_engines()
    before_rows, before_schema = table_rows(db), schema(db)

    current = head()
    extra_revision(FAILING)
    with pytest.raises(RuntimeError, match="migration 0099 failed"):
        open_home(home)
    assert revision_of(db) == [current]
    assert schema(db) == before_schema and table_rows(db) == before_rows  # no half_done table, no jobs.priority


def test_the_revision_helper_autogenerates_from_the_tables(tmp_path: Path) -> None:
    from zhike.services.migrations.__main__ import revision

    assert revision("nothing changed", version_path=tmp_path) is None and list(tmp_path.iterdir()) == []
    probe = Table("zz_probe", metadata, Column("id", Integer, primary_key=True), Column("label", String(20)))
    try:
        path = revision("add probe", version_path=tmp_path)
    finally:
        metadata.remove(probe)
    assert path is not None and path.name == f"{int(head()) + 1:04d}_add_probe.py"
    text = path.read_text()
    assert f"down_revision = '{head()}'" in text and "op.create_table('zz_probe'" in text
    engine = get_engine(f"sqlite:///{tmp_path / 'check.db'}")  # the tables are back to what the migrations make
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
