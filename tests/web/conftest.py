"""Browser tests: real headless Chromium (Debian `chromium`) driven by Playwright against a real `zhike serve`
process with the tiny model; no browser download. Pages open with `?test=1`, which adds a 64x64 size and 3 steps.

Fixtures: `server` (module; one server per test module), `users` (alice, bob, carol; PASSWORD), `admin` ("root",
role admin), `browser` (session: one Chromium for the run), `new_context(locale=, viewport=)` (a fresh context:
no cookies or localStorage; closed after the test). Helpers: `open_studio`, `sign_in`, `shot` (full-page
screenshot under the test artifacts, `web/`), `api_status`, `api_json`, `login_client`.

Browser tests skip only when /usr/bin/chromium is missing (`apt-get install chromium`); CI installs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.conftest import ARTIFACTS
from tests.helpers.server import Server, create_user, server_fixture

CHROMIUM = Path("/usr/bin/chromium")

# expect() waits for states, never sleeps; its 5 s default is too short for a fresh server's first job on 2 cores.
expect.set_options(timeout=30_000)
GENERATION_MS = 90_000  # the first generation includes loading the model in the server process

ART = ARTIFACTS / "web"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
TIMEOUT_MS = 60_000  # the generation itself is a few seconds; a loaded 2-core CI machine can be much slower
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path
) -> Iterator[Server]:
    yield from server_fixture(request, tmp_path_factory.mktemp("web"), tiny_sd15)


@pytest.fixture(scope="module")
def users(server: Server) -> dict[str, str]:
    names = {"alice": PASSWORD, "bob": PASSWORD, "carol": PASSWORD}
    for name, password in names.items():
        create_user(server.home, name, password)
    return names


@pytest.fixture(scope="module")
def admin(server: Server) -> str:
    """An admin account `root` (PASSWORD); returns its username."""
    create_user(server.home, "root", PASSWORD, admin=True)
    return "root"


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the browser tests")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One Chromium for the whole run: launching one per test cost seconds each on 2 cores. Each test still gets
    fresh contexts (`new_context`), which share no cookies, storage or cache with any other."""
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
    yield b
    b.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Open a fresh browser context (no cookies, no localStorage, no cache); closed after the test."""
    opened: list[BrowserContext] = []

    def open_context(locale: str = "zh-CN", viewport: dict[str, int] = DESKTOP) -> BrowserContext:
        ctx = browser.new_context(locale=locale, viewport=viewport)
        ctx.set_default_timeout(TIMEOUT_MS)
        opened.append(ctx)
        return ctx

    yield open_context
    for ctx in opened:
        ctx.close()


def shot(page: Page, name: str) -> None:
    ART.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # a full-page shot of a scrolled page draws the sticky bar mid-page
    page.screenshot(path=str(ART / f"{name}.png"), full_page=True)


def open_studio(ctx: BrowserContext, server: Server, route: str = "") -> Page:
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server.base_url}/?test=1{route}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


def sign_in(page: Page, username: str, password: str) -> None:
    expect(page.locator("#login-form")).to_be_visible()
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")


def api_status(page: Page, path: str) -> int:
    """The status of a same-origin GET made by the page (with its cookie; never from the HTTP cache)."""
    return page.evaluate("p => fetch(p, {credentials: 'same-origin', cache: 'no-store'}).then(r => r.status)", path)


def api_json(page: Page, path: str) -> Any:
    """A same-origin GET made by the page, parsed as JSON."""
    return page.evaluate("p => fetch(p, {credentials: 'same-origin', cache: 'no-store'}).then(r => r.json())", path)


def login_client(server: Server, username: str, password: str = PASSWORD) -> httpx.Client:
    """An HTTP client signed in as `username` the way the browser is (cookie), sending the CSRF token."""
    c = httpx.Client(base_url=server.base_url, timeout=60)
    r = c.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c
