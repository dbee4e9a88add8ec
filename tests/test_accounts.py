"""Accounts: users and passwords, browser sessions with CSRF, per-user API keys, admin-only user management,
the login brake and the first-run admin (service level, the CLI, and a real `zhike serve` process)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.helpers.server import Server, first_admin_passwords, serve_process, server_fixture, wait_job
from zhike.core.errors import Conflict, InvalidInput
from zhike.services.container import Zhike
from zhike.services.db import sessions, users
from zhike.services.users import LoginThrottle, check_password, hash_password, owner_id
from zhike.settings import get_settings

SMALL = {"width": 64, "height": 64, "steps": 2}
PW = "correct horse battery"


# -- service level ---------------------------------------------------------------------------------------
@pytest.fixture
def z(tmp_path: Path) -> Iterator[Zhike]:
    zk = Zhike(make_settings(tmp_path / "home"))
    yield zk
    zk.engine.dispose()


def test_password_hashing_and_verify(z: Zhike) -> None:
    h1, h2 = hash_password(PW), hash_password(PW)
    assert PW not in h1 and h1.startswith("scrypt$16384$8$1$") and h1 != h2  # parameters stored, salt per hash
    assert check_password(PW, h1) and not check_password("wrong password", h1) and not check_password(PW, "x$y")

    user = z.users.create_user("alice", PW)
    with z.engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash).where(users.c.id == user.id)).scalar_one()
    assert PW not in stored
    assert z.users.verify_password("alice", PW).id == user.id
    assert z.users.verify_password("alice", "wrong password") is None
    assert z.users.verify_password("nobody", PW) is None
    z.users.disable(user.id)
    assert z.users.verify_password("alice", PW) is None  # disabled users cannot log in
    z.users.enable(user.id)
    z.users.set_password(user.id, "a new password")
    assert z.users.verify_password("alice", PW) is None and z.users.verify_password("alice", "a new password")


def test_usernames_roles_and_last_admin(z: Zhike) -> None:
    z.users.create_user("张三.dev_1-x", PW)
    for bad in ("", "a b", "x" * 65, "a/b", "<script>"):
        with pytest.raises(InvalidInput):
            z.users.create_user(bad, PW)
    with pytest.raises(InvalidInput):
        z.users.create_user("shortpw", "1234567")
    with pytest.raises(Conflict):
        z.users.create_user("张三.dev_1-x", PW)
    admin = z.users.create_user("root", PW, role="admin")
    with pytest.raises(Conflict):  # the only admin can be neither demoted nor disabled
        z.users.update(admin.id, role="user")
    with pytest.raises(Conflict):
        z.users.update(admin.id, disabled=True)
    assert z.users.get(admin.id).role == "admin"


def test_sessions_store_only_a_hash_and_expire(z: Zhike) -> None:
    user = z.users.create_user("bob", PW)
    token, row = z.users.create_session(user.id)
    assert row.expires_at - row.created_at == timedelta(days=14)
    with z.engine.connect() as conn:
        stored = [dict(r) for r in conn.execute(select(sessions)).mappings()]
    assert len(stored) == 1 and stored[0]["id"] == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(v) for v in stored[0].values())  # the token itself is never stored
    found_user, session = z.users.session_user(token)
    assert found_user.username == "bob" and session.csrf_token == row.csrf_token
    assert z.users.session_user(token + "x") is None

    old, _ = z.users.create_session(user.id, timedelta(seconds=-1))
    assert z.users.session_user(old) is None  # expired
    z.users.delete_session(token)
    assert z.users.session_user(token) is None

    live, _ = z.users.create_session(user.id)
    z.users.set_password(user.id, "another password")  # a password change ends every session
    assert z.users.session_user(live) is None
    live, _ = z.users.create_session(user.id)
    z.users.disable(user.id)
    assert z.users.session_user(live) is None


def test_login_throttle_pauses_and_doubles() -> None:
    now = [1000.0]
    t = LoginThrottle(max_failures=3, window=600, base_pause=30, clock=lambda: now[0])
    for _ in range(3):
        assert t.retry_after("Eve", "1.2.3.4") == 0
        t.failure("eve", "1.2.3.4")
    assert t.retry_after("EVE", "1.2.3.4") == pytest.approx(30)  # per username (any case) and address
    assert t.retry_after("eve", "5.6.7.8") == 0  # the owner elsewhere is not locked out
    now[0] += 31
    assert t.retry_after("eve", "1.2.3.4") == 0
    t.failure("eve", "1.2.3.4")
    assert t.retry_after("eve", "1.2.3.4") == pytest.approx(60)  # doubles past the limit
    t.success("eve", "1.2.3.4")
    assert t.retry_after("eve", "1.2.3.4") == 0
    for i in range(12):  # one address guessing many names
        t.failure(f"user{i}", "9.9.9.9")
    assert t.retry_after("someone-else", "9.9.9.9") > 0 and t.retry_after("someone-else", "1.1.1.1") == 0


def test_users_cli_and_keys_for_a_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZHIKE_DEVICE", "cpu")
    get_settings.cache_clear()
    from zhike.cli.main import app

    runner = CliRunner()

    def cli(*args: str, stdin: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=stdin, catch_exceptions=False)

    try:
        r = cli("users", "create", "王五", "--admin", "--password", PW)
        assert r.exit_code == 0, r.output
        assert cli("users", "create", "dave", "--password-stdin", stdin=PW + "\n").exit_code == 0
        assert cli("users", "create", "erin", stdin="prompted pw\nprompted pw\n").exit_code == 0
        bad = cli("users", "create", "dave", "--password", PW)
        assert bad.exit_code == 2 and "already exists" in bad.stderr
        listed = cli("users", "list").stdout
        assert "王五" in listed and "admin" in listed and "dave" in listed and PW not in listed

        key = cli("keys", "create", "--name", "daves", "--user", "dave").stdout.strip()
        assert key.startswith("zk_")
        assert cli("keys", "create", "--name", "x", "--user", "nobody").exit_code == 2
        z = Zhike(get_settings())
        dave = z.users.by_username("dave")
        assert z.keys.verify(key).owner_id == owner_id(dave) == f"user-{dave.id}"
        assert "dave" in cli("keys", "list").stdout

        assert cli("users", "set-password", "dave", "--password", "changed pw 1").exit_code == 0
        assert z.users.verify_password("dave", "changed pw 1") and z.users.verify_password("erin", "prompted pw")
        assert cli("users", "disable", "dave").exit_code == 0
        assert z.users.verify_password("dave", "changed pw 1") is None
        z.engine.dispose()
    finally:
        get_settings.cache_clear()


# -- a real server ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path
) -> Iterator[Server]:
    yield from server_fixture(request, tmp_path_factory.mktemp("accounts"), tiny_sd15)


@pytest.fixture(scope="module")
def admin_password(server: Server) -> str:
    found = first_admin_passwords(server.log_path.read_text())
    assert len(found) == 1, server.log_text()
    return found[0]


class Browser(httpx.Client):
    """A logged-in cookie client; `csrf` is the token from the login."""

    csrf: str = ""

    def __enter__(self) -> Browser:  # already opened by the login request
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def login(server: Server, username: str, password: str) -> Browser:
    c = Browser(base_url=server.base_url, timeout=60)
    r = c.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    c.csrf = r.json()["csrf_token"]
    return c


def bearer(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=60, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture(scope="module")
def admin(server: Server, admin_password: str) -> Iterator[Browser]:
    with login(server, "admin", admin_password) as c:
        yield c


def make_user(admin: Browser, username: str, role: str = "user") -> dict[str, Any]:
    r = admin.post(
        "/api/v1/users",
        json={"username": username, "password": PW, "role": role},
        headers={"X-CSRF-Token": admin.csrf},
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def alice(server: Server, admin: Browser) -> Iterator[Browser]:
    make_user(admin, "alice")
    with login(server, "alice", PW) as c:
        yield c


@pytest.fixture(scope="module")
def alice_job(alice: Browser) -> dict[str, Any]:
    """A txt2img job submitted with alice's cookie (and CSRF header), finished."""
    body = {"op": "txt2img", "params": {"prompt": "a lantern", "model": "tiny", **SMALL, "seed": 7}}
    r = alice.post("/api/v1/jobs", json=body, headers={"X-CSRF-Token": alice.csrf})
    assert r.status_code == 201, r.text
    job = wait_job(alice, r.json()["id"])
    assert job["state"] == "succeeded", job
    return job


def test_first_run_admin_is_created_once(server: Server, admin_password: str) -> None:
    r = httpx.post(f"{server.base_url}/api/v1/auth/login", json={"username": "admin", "password": admin_password})
    assert r.status_code == 200 and r.json()["user"]["role"] == "admin", r.text
    assert "zhike users set-password admin" in server.log_path.read_text()
    with serve_process(server.home) as url:  # a second start on the same data makes no second admin
        assert httpx.get(f"{url}/api/v1/health").status_code == 200
    assert first_admin_passwords(server.log_path.read_text()) == [admin_password]
    z = Zhike(make_settings(server.home))
    assert [u.username for u in z.users.list() if u.role == "admin"] == ["admin"]
    z.engine.dispose()


def test_login_sets_a_safe_cookie_and_me_works(server: Server, alice: Browser) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        r = c.post("/api/v1/auth/login", json={"username": "alice", "password": PW})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user"]["username"] == "alice" and body["user"]["role"] == "user" and body["csrf_token"]
        cookie = r.headers["set-cookie"]
        attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert cookie.startswith("zhike_session=") and {"httponly", "samesite", "path", "max-age"} <= attrs
        assert "samesite=lax" in cookie.lower() and "max-age=1209600" in cookie.lower()
        assert "secure" not in attrs  # plain http here; https requests (or cookie_secure=true) get Secure
        me = c.get("/api/v1/auth/me").json()
        assert me["user"]["username"] == "alice" and me["csrf_token"] == body["csrf_token"]
    assert alice.get("/api/v1/auth/me").json()["user"]["id"] == body["user"]["id"]


def test_cookie_requests_need_the_csrf_header(alice: Browser, alice_job: dict[str, Any]) -> None:
    body = {"op": "txt2img", "params": {"prompt": "x", "model": "tiny", **SMALL}}
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        r = alice.post("/api/v1/jobs", json=body, headers=headers)
        assert r.status_code == 403, r.text
        err = r.json()["error"]
        assert err["field"] == "X-CSRF-Token" and "X-CSRF-Token" in err["message"]
    assert alice.post(f"/api/v1/jobs/{alice_job['id']}/cancel").status_code == 403
    # reads need no token, and the job submitted with it ran; its image is readable with the cookie
    assert alice.get(f"/api/v1/jobs/{alice_job['id']}").json()["state"] == "succeeded"
    asset_id = alice_job["result"]["images"][0]["asset_id"]
    r = alice.get(f"/api/v1/assets/{asset_id}/file")
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"


def test_logout_ends_the_session(server: Server) -> None:
    with login(server, "admin", first_admin_passwords(server.log_path.read_text())[0]) as c:
        token = c.cookies["zhike_session"]
        assert c.post("/api/v1/auth/logout").status_code == 403  # CSRF applies to logout too
        r = c.post("/api/v1/auth/logout", headers={"X-CSRF-Token": c.csrf})
        assert r.status_code == 200 and "zhike_session=" in r.headers["set-cookie"]
    with httpx.Client(base_url=server.base_url, cookies={"zhike_session": token}) as old:
        r = old.get("/api/v1/auth/me")
        assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"
        assert r.json()["error"]["type"] == "unauthorized"
        assert old.get("/api/v1/jobs").status_code == 401


def test_user_keys_see_the_users_jobs_and_no_one_elses(
    server: Server, admin: Browser, alice: Browser, alice_job: dict[str, Any]
) -> None:
    r = alice.post("/api/v1/keys", json={"name": "laptop"}, headers={"X-CSRF-Token": alice.csrf})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert key.startswith("zk_") and r.json()["owner_id"].startswith("user-")
    listed = alice.get("/api/v1/keys").json()["keys"]
    assert [k["name"] for k in listed] == ["laptop"] and all("key" not in k for k in listed)

    asset_id = alice_job["result"]["images"][0]["asset_id"]
    with bearer(server, key) as k:  # the key acts as alice: same jobs and assets
        assert k.get(f"/api/v1/jobs/{alice_job['id']}").status_code == 200
        assert k.get(f"/api/v1/assets/{asset_id}").status_code == 200
        assert alice_job["id"] in [j["id"] for j in k.get("/api/v1/jobs").json()["jobs"]]
        assert k.get("/api/v1/auth/me").json()["user"]["username"] == "alice"
        r = k.post("/api/v1/jobs", json={"op": "txt2img", "params": {"prompt": "y", "model": "tiny", **SMALL}})
        assert r.status_code == 201, r.text  # Bearer requests need no CSRF token
        assert alice.get(f"/api/v1/jobs/{r.json()['id']}").status_code == 200

    make_user(admin, "bob")
    with login(server, "bob", PW) as bob:
        assert bob.get(f"/api/v1/jobs/{alice_job['id']}").status_code == 404
        assert bob.get(f"/api/v1/assets/{asset_id}").status_code == 404
        assert bob.get(f"/api/v1/assets/{asset_id}/file").status_code == 404
        bob_key = bob.post("/api/v1/keys", json={"name": "b"}, headers={"X-CSRF-Token": bob.csrf}).json()
        with bearer(server, bob_key["key"]) as bk:
            assert bk.get(f"/api/v1/jobs/{alice_job['id']}").status_code == 404
            assert bk.get(f"/api/v1/assets/{asset_id}").status_code == 404
        with bearer(server, server.key_a) as legacy:  # keys made without a user keep their own space
            assert legacy.get(f"/api/v1/jobs/{alice_job['id']}").status_code == 404
            assert legacy.get("/api/v1/auth/me").status_code == 401
        # keys: only your own can be revoked; admins may list all
        mine = alice.get("/api/v1/keys").json()["keys"][0]["id"]
        assert bob.delete(f"/api/v1/keys/{mine}", headers={"X-CSRF-Token": bob.csrf}).status_code == 404
        assert bob.get("/api/v1/keys", params={"all": 1}).json()["keys"] == [
            k for k in bob.get("/api/v1/keys").json()["keys"]
        ]
        everything = {k["id"] for k in admin.get("/api/v1/keys", params={"all": 1}).json()["keys"]}
        assert {mine, bob_key["id"]} <= everything
        assert bob.delete(f"/api/v1/keys/{bob_key['id']}", headers={"X-CSRF-Token": bob.csrf}).status_code == 200
        with bearer(server, bob_key["key"]) as bk:
            assert bk.get("/api/v1/jobs").status_code == 401


def test_only_admins_manage_users(admin: Browser, alice: Browser) -> None:
    h = {"X-CSRF-Token": alice.csrf}
    assert alice.get("/api/v1/users").status_code == 403
    r = alice.post("/api/v1/users", json={"username": "mallory", "password": PW, "role": "admin"}, headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    assert r.json()["error"]["type"] == "forbidden"
    me = alice.get("/api/v1/auth/me").json()["user"]
    assert alice.patch(f"/api/v1/users/{me['id']}", json={"role": "admin"}, headers=h).status_code == 403

    names = {u["username"]: u for u in admin.get("/api/v1/users").json()["users"]}
    assert {"admin", "alice"} <= set(names) and all("password_hash" not in u for u in names.values())
    dup = admin.post("/api/v1/users", json={"username": "alice", "password": PW}, headers={"X-CSRF-Token": admin.csrf})
    assert dup.status_code == 409
    short = admin.post(
        "/api/v1/users", json={"username": "newbie", "password": "short"}, headers={"X-CSRF-Token": admin.csrf}
    )
    assert short.status_code == 422 and short.json()["error"]["field"] == "password"


def test_disabled_users_are_locked_out(server: Server, admin: Browser) -> None:
    carl = make_user(admin, "carl")
    with login(server, "carl", PW) as c:
        key = c.post("/api/v1/keys", json={"name": "k"}, headers={"X-CSRF-Token": c.csrf}).json()["key"]
        r = admin.patch(f"/api/v1/users/{carl['id']}", json={"disabled": True}, headers={"X-CSRF-Token": admin.csrf})
        assert r.status_code == 200 and r.json()["disabled"] is True
        assert c.get("/api/v1/auth/me").status_code == 401  # the open session ended
    with bearer(server, key) as k:
        assert k.get("/api/v1/jobs").status_code == 401  # and the user's keys stopped
    r = httpx.post(f"{server.base_url}/api/v1/auth/login", json={"username": "carl", "password": PW})
    assert r.status_code == 401 and r.json()["error"]["message"] == "wrong username or password"


def test_wrong_password_is_a_generic_401(server: Server, alice: Browser) -> None:
    url = f"{server.base_url}/api/v1/auth/login"
    known = httpx.post(url, json={"username": "alice", "password": "not her password"})
    unknown = httpx.post(url, json={"username": "no-such-user", "password": "whatever123"})
    for r in (known, unknown):
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/json")
        assert "set-cookie" not in r.headers
    assert known.json()["error"]["message"] == unknown.json()["error"]["message"] == "wrong username or password"


def test_brute_force_brake(server: Server, admin: Browser) -> None:
    make_user(admin, "dora")
    url = f"{server.base_url}/api/v1/auth/login"
    for _ in range(5):  # login_max_failures
        assert httpx.post(url, json={"username": "dora", "password": "guess-guess"}).status_code == 401
    r = httpx.post(url, json={"username": "dora", "password": PW})  # even the right password waits now
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.json()["error"]["code"] == "login_throttled" and r.json()["error"]["type"] == "too_many_attempts"
    assert httpx.post(url, json={"username": "alice", "password": PW}).status_code == 200  # others are not held


@pytest.mark.parametrize(("base_url", "setting", "secure"), [("https://s", None, True), ("http://s", True, True)])
def test_cookie_is_secure_over_https_or_when_set(
    tmp_path: Path, base_url: str, setting: bool | None, secure: bool
) -> None:
    from fastapi.testclient import TestClient

    from zhike.api.app import create_app

    settings = make_settings(tmp_path / "home", cookie_secure=setting)
    app = create_app(settings, start_worker=False)
    app.state.zhike.users.create_user("sam", PW)
    with TestClient(app, base_url=base_url) as c:
        r = c.post("/api/v1/auth/login", json={"username": "sam", "password": PW})
        assert r.status_code == 200, r.text
        assert ("secure" in r.headers["set-cookie"].lower()) is secure
    app.state.zhike.engine.dispose()
