"""Red-team findings of issue 13 at the HTTP edge, each tested with the hostile request that found it: a forged
Host header in signed links, forged X-Forwarded-For against the login brake, a wrong-password flood against the
admin, missing security headers, signed links that outlived their owner, and a full disk.

The Host and X-Forwarded-For findings lived in the server in front of the app (uvicorn believed X-Forwarded-For
from local peers), so they are tested against a real `zhike serve`; the rest through the app (TestClient, whose
`client=` is the TCP peer a request comes from)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from starlette.requests import Request

from tests.conftest import make_settings
from tests.helpers.server import serve_process
from zhike.api.app import WEB_DIR, create_app
from zhike.api.signing import base_url
from zhike.services.container import Zhike
from zhike.services.db import assets
from zhike.services.users import LoginThrottle, owner_id

PW = "correct horse battery"
LOGIN = "/api/v1/auth/login"
EVIL = "evil.example"


def png(seed: int, side: int = 32) -> bytes:
    """A PNG of noise (does not compress: its size is about side² × 3 bytes)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def login(client: httpx.Client | TestClient, username: str, password: str, **headers: str) -> httpx.Response:
    return client.post(LOGIN, json={"username": username, "password": password}, headers=headers)


def assert_throttled(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "login_throttled"


# -- a real server ---------------------------------------------------------------------------------------
class Live(NamedTuple):
    url: str
    home: Path
    root_id: str  # an admin
    alice_id: str
    alice_key: str  # acts for alice
    lone_key: str  # made without a user: its own owner
    lone_key_id: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("security") / "home"
    z = Zhike(make_settings(home))
    z.catalog.add(str(tiny_sd15), name="tiny")
    root = z.users.create_user("root", PW, role="admin")  # no first-run admin with a random password
    z.assets.upload(png(3), owner_id=owner_id(root))  # for the library page
    alice = z.users.create_user("alice", PW)
    z.users.create_user("dora", PW)
    _, alice_key = z.keys.create("alice's", owner_id=owner_id(alice))
    lone, lone_key = z.keys.create("lone")
    z.engine.dispose()
    with serve_process(home) as url:
        yield Live(url, home, root.id, alice.id, alice_key, lone_key, lone.id)


def generate_url(live: Live, key: str, **headers: str) -> str:
    """The signed URL of a 64×64 image made through the OpenAI-style endpoint."""
    body = {"prompt": "a red lantern", "size": "64x64", "steps": 2, "response_format": "url", "model": "tiny"}
    r = httpx.post(
        f"{live.url}/v1/images/generations",
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    return r.json()["data"][0]["url"]


@pytest.fixture(scope="module")
def alice_url(live: Live) -> str:
    # The hostile request: a Host (and X-Forwarded-Host) naming the attacker's server.
    return generate_url(live, live.alice_key, Host=EVIL, **{"X-Forwarded-Host": EVIL, "X-Forwarded-Proto": "https"})


def test_signed_urls_never_carry_a_forged_host(live: Live, alice_url: str) -> None:
    assert EVIL not in alice_url
    assert alice_url.startswith(f"{live.url}/api/v1/assets/") and "sig=" in alice_url  # the socket's own address
    r = httpx.get(alice_url)  # and it works, without a key
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"


def test_the_link_base_is_public_url_or_the_socket_never_the_host_header() -> None:
    def request(server: tuple[str, int | None] | None, scheme: str = "http") -> Request:
        return Request({"type": "http", "scheme": scheme, "server": server, "headers": [(b"host", EVIL.encode())]})

    assert base_url(request(("10.0.0.5", 7860)), None) == "http://10.0.0.5:7860"
    assert base_url(request(("::1", 443), "https"), None) == "https://[::1]"
    assert base_url(request(("/run/zhike.sock", None)), None) == ""  # a unix socket: relative links
    assert base_url(request(("10.0.0.5", 7860)), "https://img.example.com/zk/") == "https://img.example.com/zk"


def test_signed_links_end_with_their_owner(live: Live, alice_url: str) -> None:
    z = Zhike(make_settings(live.home))
    try:
        assert httpx.get(alice_url).status_code == 200
        z.users.disable(live.alice_id)
        r = httpx.get(alice_url)
        assert r.status_code == 404 and r.json()["error"]["code"] == "link_invalid", r.text
        z.users.enable(live.alice_id)
        assert httpx.get(alice_url).status_code == 200  # it was the owner, not the link

        lone_url = generate_url(live, live.lone_key)  # a key made without a user owns what it makes
        assert httpx.get(lone_url).status_code == 200
        z.keys.revoke(live.lone_key_id)
        r = httpx.get(lone_url)
        assert r.status_code == 404 and r.json()["error"]["code"] == "link_invalid", r.text
    finally:
        z.engine.dispose()


def test_forged_forwarded_for_does_not_reset_the_brake(live: Live) -> None:
    """No trusted_proxies (the default): the peer is 127.0.0.1 whatever X-Forwarded-For says."""
    with httpx.Client(base_url=live.url, timeout=60) as c:
        for i in range(5):
            r = login(c, "dora", "guess-guess", **{"X-Forwarded-For": f"203.0.113.{i}"})
            assert r.status_code == 401, r.text
        assert_throttled(login(c, "dora", PW, **{"X-Forwarded-For": "203.0.113.99"}))
        assert_throttled(login(c, "dora", PW, **{"X-Forwarded-For": "203.0.113.99", "X-Real-IP": "203.0.113.98"}))


# -- through the app -------------------------------------------------------------------------------------
def app_with(home: Path, **settings: Any) -> Any:
    app = create_app(make_settings(home, **settings), start_worker=False)
    app.state.zhike.users.create_user("root", PW, role="admin")
    app.state.zhike.users.create_user("erin", PW)
    return app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    app = app_with(tmp_path / "home")
    yield app
    app.state.zhike.engine.dispose()


def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    app = app_with(tmp_path / "home", trusted_proxies="10.0.0.0/8")
    proxy = TestClient(app, base_url="http://s", client=("10.1.2.3", 4000))
    outsider = TestClient(app, base_url="http://s", client=("203.0.113.5", 4000))
    # Behind the proxy, the client is the rightmost address it did not add itself: what a client writes to the
    # left of it (6.6.6.6 here) is not believed.
    for _ in range(5):
        assert login(proxy, "erin", "guess-guess", **{"X-Forwarded-For": "198.51.100.7"}).status_code == 401
    assert_throttled(login(proxy, "erin", PW, **{"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}))
    r = login(proxy, "erin", PW, **{"X-Forwarded-For": "198.51.100.8", "X-Forwarded-Proto": "https"})
    assert r.status_code == 200, r.text  # another client behind the same proxy is not held
    assert "secure" in r.headers["set-cookie"].lower()  # the proxy said https
    # A peer that is no trusted proxy: its headers are its own words.
    for i in range(5):
        assert login(outsider, "root", "guess-guess", **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code == 401
    assert_throttled(login(outsider, "root", PW, **{"X-Forwarded-For": "198.51.100.200"}))
    r = login(outsider, "erin", PW, **{"X-Forwarded-Proto": "https"})
    assert r.status_code == 200 and "secure" not in r.headers["set-cookie"].lower()
    app.state.zhike.engine.dispose()


def test_a_password_flood_does_not_lock_the_owner_out(app: Any) -> None:
    attacker = TestClient(app, client=("198.51.100.66", 4000))
    owner = TestClient(app, client=("192.0.2.10", 4000))
    answers = [login(attacker, "root", f"guess-{i}") for i in range(10)]
    assert [r.status_code for r in answers] == [401] * 5 + [429] * 5
    assert_throttled(answers[-1])
    assert_throttled(login(attacker, "root", PW))  # the attacker's source stays held, even with the password
    r = login(owner, "root", PW)  # the admin, from elsewhere
    assert r.status_code == 200 and r.json()["user"]["role"] == "admin", r.text
    # One source guessing across accounts is held for every account (4 × 5 failures in all).
    for i in range(15):
        assert login(attacker, f"name{i}", "guess-guess").status_code == 401
    assert_throttled(login(attacker, "erin", PW))
    assert login(owner, "erin", PW).status_code == 200


def test_the_brake_on_a_source_ends_with_its_window(tmp_path: Path) -> None:
    app = app_with(tmp_path / "home", login_window_seconds=1.0)
    c = TestClient(app, client=("198.51.100.1", 4000))
    for _ in range(5):
        assert login(c, "erin", "guess-guess").status_code == 401
    r = login(c, "erin", PW)
    assert_throttled(r)
    time.sleep(int(r.headers["retry-after"]) + 0.05)
    assert login(c, "erin", PW).status_code == 200
    app.state.zhike.engine.dispose()


def test_guessing_spread_over_many_sources_is_slowed_not_locked() -> None:
    now = [1000.0]
    t = LoginThrottle(max_failures=5, window=900, account_factor=10, max_spacing=60, clock=lambda: now[0])
    t.success("root", "192.0.2.10")  # the owner's usual source
    for i in range(50):  # 50 sources, one guess each: no source reaches its own limit
        assert t.retry_after("root", f"10.0.{i}.1") == 0
        t.failure("root", f"10.0.{i}.1")
    assert t.retry_after("root", "10.9.9.9") == pytest.approx(1)  # a new source waits a little
    assert t.retry_after("root", "192.0.2.10") == 0  # the owner's own source does not
    for i in range(50, 60):  # each further guess doubles the spacing, up to a minute
        now[0] += t.retry_after("root", f"10.0.{i}.1")
        t.failure("root", f"10.0.{i}.1")
    assert t.retry_after("root", "10.9.9.9") == pytest.approx(60)
    now[0] += 60
    assert t.retry_after("root", "10.9.9.9") == 0  # slowed, never locked
    assert t.retry_after("someone-else", "10.9.9.9") == 0


def test_ipv6_sources_count_by_their_slash_64() -> None:
    now = [1000.0]
    t = LoginThrottle(max_failures=5, clock=lambda: now[0])
    for i in range(5):
        t.failure("bob", f"2001:db8::{i + 1}")  # one host walking its /64
    assert t.retry_after("bob", "2001:db8::ffff") > 0
    assert t.retry_after("bob", "2001:db8:0:1::1") == 0


# -- headers ---------------------------------------------------------------------------------------------
COMMON_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def assert_locked_down(r: httpx.Response) -> dict[str, list[str]]:
    for name, value in COMMON_HEADERS.items():
        assert r.headers.get(name) == value, (r.request.url, name, r.headers)
    csp = directives(r.headers["content-security-policy"])
    assert csp["frame-ancestors"] == ["'none'"], csp
    return csp


def test_every_answer_has_the_security_headers(app: Any) -> None:
    z = app.state.zhike
    _, key = z.keys.create("k")
    c = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    up = c.post("/api/v1/assets", files={"file": ("x.png", png(1), "image/png")})
    assert up.status_code == 201, up.text
    not_html = [
        c.get("/api/v1/health"),  # JSON
        c.get(f"/api/v1/assets/{up.json()['id']}/file"),  # a file
        c.get(f"/api/v1/assets/{up.json()['id']}/thumb"),
        c.get("/api/v1/assets/nope"),  # an error
        c.post("/api/v1/assets", content=b"x" * 10, headers={"Content-Length": str(10**9)}),  # BodyLimit's 413
    ]
    assert [r.status_code for r in not_html] == [200, 200, 200, 404, 413]
    for r in not_html:
        assert assert_locked_down(r)["default-src"] == ["'none'"]  # nothing in it may run or load

    studio = c.get("/")
    assert studio.status_code == 200 and studio.headers["content-type"].startswith("text/html")
    csp = assert_locked_down(studio)
    assert csp["script-src"] == ["'self'"] and csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    # The policy fits the page: only scripts from our own origin, no inline script or handler to be blocked.
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all(re.search(r'src="/static/', attrs) and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son\w+=", html)
    js = c.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]  # nosniff needs the right type
    assert_locked_down(js)

    docs = c.get("/docs")  # Swagger UI loads from a CDN: only framing is refused
    assert docs.status_code == 200 and directives(docs.headers["content-security-policy"]) == {
        "frame-ancestors": ["'none'"]
    }


def test_the_studio_runs_under_its_policy(live: Live) -> None:
    """Every page of the studio, signed in as an admin, in a real browser: no Content-Security-Policy violation."""
    from playwright.sync_api import expect, sync_playwright

    from tests.web.conftest import CHROMIUM, FLAGS

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the browser tests")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.add_init_script(
                "window.__csp = []; document.addEventListener('securitypolicyviolation',"
                " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
            )
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{live.url}/?test=1")
            expect(page.locator("#login-form")).to_be_visible(timeout=30_000)
            page.fill("#username", "root")
            page.fill("#password", PW)
            page.click("#login-form button[type=submit]")
            expect(page.locator("#nav")).to_be_visible(timeout=30_000)
            for route in ("create", "library", "edit", "batch", "queue", "models", "keys", "users"):
                page.goto(f"{live.url}/?test=1#/{route}")
                expect(page.locator("body")).to_have_attribute("data-route", route, timeout=30_000)
                if route == "library":  # an image from /api (img-src) and the view's own stylesheet
                    thumb = page.locator("#view img").first
                    expect(thumb).to_be_visible(timeout=30_000)
                    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
                page.wait_for_timeout(200)  # a violation is reported as an event a moment after the load
            assert page.evaluate("window.__csp") == [] and errors == []
        finally:
            browser.close()


# -- a full disk -----------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a disk that really fills (ENOSPC), for the whole ZHIKE_HOME (database included)."""
    mount = shutil.which("mount")
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run([mount or "mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True)
    if mount is None or r.returncode != 0:
        pytest.skip(f"a full disk needs a small filesystem; mounting a tmpfs was refused: {r.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write until the disk has no byte left; returns the filler file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as e:
        assert e.errno == 28, e  # ENOSPC
    try:
        while True:
            os.write(fd, b"\0")
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_answers_507_and_stores_nothing(small_disk: Path) -> None:
    app = create_app(make_settings(small_disk / "home"), start_worker=False)
    z = app.state.zhike
    _, key = z.keys.create("k")
    _, fresh_key = z.keys.create("never used yet")  # its first use writes last_used_at
    c = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    old, new = png(1), png(2, side=160)  # new: ~77 KB
    try:
        assert c.post("/api/v1/assets", files={"file": ("old.png", old, "image/png")}).status_code == 201
        filler = fill(small_disk)

        # The file write fails (ENOSPC), and so does SQLite's (the same bytes again: no file to write, one row).
        for data in (new, old):
            r = c.post("/api/v1/assets", files={"file": ("x.png", data, "image/png")})
            assert r.status_code == 507, r.text
            err = r.json()["error"]
            assert err["code"] == err["type"] == "storage_full" and "disk" in err["message"], err
        with z.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(assets)).scalar_one() == 1
        stored = sorted(p.name for p in z.settings.assets_dir.rglob("*") if p.is_file())
        assert len(stored) == 1 and not any(n.startswith(".tmp") for n in stored), stored  # no half-written file

        assert c.get("/api/v1/health").status_code == 200  # still answering
        listed = TestClient(app).get("/api/v1/assets", headers={"Authorization": f"Bearer {fresh_key}"})
        assert listed.status_code == 200, listed.text  # reads work, though noting the key's use could not

        filler.unlink()  # space freed: the same upload works
        r = c.post("/api/v1/assets", files={"file": ("x.png", new, "image/png")})
        assert r.status_code == 201, r.text
        assert c.get(f"/api/v1/assets/{r.json()['id']}/file").content == new
    finally:
        z.engine.dispose()
