"""The browser studio end to end: real headless Chromium (Debian `chromium`) driven by Playwright against a real
`zhike serve` process with the tiny model. Pages open with `?test=1`, which adds a 64x64 size and 3 steps.

Skipped only when /usr/bin/chromium is missing (`apt-get install chromium`); CI installs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ARTIFACTS
from tests.helpers.server import Server, create_user, server_fixture, wait_job

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the browser tests", allow_module_level=True)

from playwright.sync_api import BrowserContext, Page, Playwright, expect, sync_playwright  # noqa: E402

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
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture
def new_context(playwright: Playwright, tmp_path: Path) -> Iterator[Callable[..., BrowserContext]]:
    """Open a browser with a fresh user-data dir (no cookies, no localStorage); closed after the test."""
    opened: list[BrowserContext] = []

    def open_context(locale: str = "zh-CN", viewport: dict[str, int] = DESKTOP) -> BrowserContext:
        ctx = playwright.chromium.launch_persistent_context(
            str(tmp_path / f"profile-{len(opened)}"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            locale=locale,
            viewport=viewport,
        )
        ctx.set_default_timeout(TIMEOUT_MS)
        opened.append(ctx)
        return ctx

    yield open_context
    for ctx in opened:
        ctx.close()


def shot(page: Page, name: str) -> None:
    ART.mkdir(parents=True, exist_ok=True)
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


def test_sign_in_error_and_language_switch(server: Server, users: dict[str, str], new_context: Any) -> None:
    page = open_studio(new_context(locale="zh-CN"), server)
    # Not signed in: every route leads to the sign-in page, in Chinese for a Chinese browser.
    expect(page).to_have_url(f"{server.base_url}/?test=1#/login")
    heading = page.locator("#login-form h1")
    expect(heading).to_have_text("登录")
    expect(page.locator("#lang")).to_have_text("English")

    sign_in(page, "carol", "not the password")
    error = page.locator("#login-error")
    expect(error).to_be_visible()
    expect(error).to_have_text("wrong username or password")  # the API's own message
    expect(page.locator("#login-form")).to_contain_text("wrong username or password")
    shot(page, "login-error-zh")

    page.click("#lang")
    expect(heading).to_have_text("Sign in")
    expect(page.locator("#login-form label span").first).to_have_text("Username")
    expect(page.locator("#lang")).to_have_text("中文")
    page.reload()  # the choice is remembered
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(heading).to_have_text("Sign in")
    shot(page, "login-en")
    page.click("#lang")
    expect(heading).to_have_text("登录")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_english_browser_defaults_to_english(server: Server, new_context: Any) -> None:
    page = open_studio(new_context(locale="en-US"), server)
    expect(page.locator("#login-form h1")).to_have_text("Sign in")


def test_generate_see_progress_library_and_sign_out(server: Server, users: dict[str, str], new_context: Any) -> None:
    ctx = new_context(locale="en-US")
    page = open_studio(ctx, server)
    sign_in(page, "alice", users["alice"])
    expect(page.locator("#create-form")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text("alice")
    expect(page.locator("#preset")).to_have_attribute("data-loaded", "true")
    # The presets come from /api/v1/presets, labelled in the page's language.
    expect(page.locator("#preset option[value=guofeng]")).to_have_text("Chinese style")
    shot(page, "create-empty-en")

    # Record every progress state the page shows, as it shows it.
    page.evaluate(
        """() => {
          window.seen = [];
          const el = document.getElementById('progress');
          new MutationObserver(() => window.seen.push(el.dataset.state + ':' + el.getAttribute('aria-valuenow')))
            .observe(el, {attributes: true});
        }"""
    )
    page.fill("#prompt", "a blue and white porcelain teapot")
    page.select_option("#preset", "guofeng")
    expect(page.locator("input[name=size][value='64x64']")).to_be_checked()
    page.click("#generate")
    progress = page.locator("#progress")
    expect(progress).to_be_visible()
    result = page.locator("#result-image[data-asset-id]")
    expect(result).to_be_visible(timeout=GENERATION_MS)
    expect(progress).to_have_attribute("data-state", "succeeded")
    expect(progress).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#progress-text")).to_have_text("Done")
    page.wait_for_function("() => document.querySelector('#result-image').naturalWidth === 64")
    asset_id = result.get_attribute("data-asset-id")
    assert asset_id
    seen = page.evaluate("window.seen")
    assert seen and seen[-1] == "succeeded:100", seen
    assert any(s.split(":")[0] in ("queued", "running") for s in seen), seen  # progress came before the end
    shot(page, "create-done-en")

    # The job ran with what the form chose.
    job = page.evaluate("() => fetch('/api/v1/jobs?limit=1').then(r => r.json())")["jobs"][0]
    assert job["params"]["width"] == 64 and job["params"]["height"] == 64
    assert job["params"]["applied_preset"] == "guofeng"
    assert job["params"]["prompt"].startswith("a blue and white porcelain teapot")

    page.click("#to-library")
    tile = page.locator(f"#library-grid figure[data-asset-id='{asset_id}']")
    expect(tile).to_be_visible()
    expect(page.locator("#library-grid figure").first).to_have_attribute("data-asset-id", asset_id)  # newest first
    page.wait_for_function(
        "id => document.querySelector(`figure[data-asset-id='${id}'] img`)?.naturalWidth === 64",
        arg=asset_id,
    )
    expect(page.locator(".nav a.active")).to_have_text("Library")
    shot(page, "library-en")

    # Switching language relabels the page in place.
    page.click("#lang")
    expect(page.locator(".library h1")).to_have_text("作品库")
    expect(page.locator("#signout")).to_have_text("退出登录")
    page.set_viewport_size(PHONE)
    shot(page, "library-zh-phone")
    page.goto(f"{server.base_url}/?test=1#/create")
    expect(page.locator("#create-form h1")).to_have_text("文生图")
    expect(page.locator("#preset option[value=guofeng]")).to_have_text("国风")
    shot(page, "create-zh-phone")
    page.set_viewport_size(DESKTOP)

    page.click("#signout")
    expect(page.locator("#login-form")).to_be_visible()
    assert api_status(page, "/api/v1/auth/me") == 401
    page.goto(f"{server.base_url}/?test=1#/library")
    expect(page.locator("#login-form")).to_be_visible()  # the library needs signing in again
    expect(page.locator("#library-grid")).to_have_count(0)
    assert api_status(page, f"/api/v1/assets/{asset_id}/file") == 401
    assert page.js_errors == []  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def alice_asset(server: Server, users: dict[str, str]) -> str:
    """An image of alice's, made through the API with her browser session (cookie + CSRF token)."""
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        r = c.post("/api/v1/auth/login", json={"username": "alice", "password": users["alice"]})
        assert r.status_code == 200, r.text
        r = c.post(
            "/api/v1/jobs",
            json={"op": "txt2img", "params": {"prompt": "alice's secret", "width": 64, "height": 64, "steps": 2}},
            headers={"X-CSRF-Token": r.json()["csrf_token"]},
        )
        assert r.status_code == 201, r.text
        job = wait_job(c, r.json()["id"])
        assert job["state"] == "succeeded", job
        return job["outputs"][0]["asset_id"]


def test_second_user_does_not_see_the_first_users_assets(
    server: Server, users: dict[str, str], alice_asset: str, new_context: Any
) -> None:
    page = open_studio(new_context(locale="en-US"), server, "#/library")
    sign_in(page, "bob", users["bob"])
    expect(page.locator("#create-form")).to_be_visible()
    page.click(".nav a[data-route=library]")
    grid = page.locator("#library-grid")
    expect(grid).to_have_attribute("aria-busy", "false")
    expect(page.locator("#library-empty")).to_be_visible()
    expect(page.locator(f"figure[data-asset-id='{alice_asset}']")).to_have_count(0)
    assert api_status(page, f"/api/v1/assets/{alice_asset}/file") == 404
    shot(page, "library-empty-bob")


def test_static_files_and_api_docs_are_served(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        home = c.get("/")
        assert home.status_code == 200 and '<script type="module" src="/static/app.js">' in home.text
        for name, mime in (("app.js", "javascript"), ("app.css", "text/css"), ("i18n.js", "javascript")):
            r = c.get(f"/static/{name}")
            assert r.status_code == 200 and mime in r.headers["content-type"], (name, r.headers)
        assert c.get("/docs").status_code == 200
        assert c.get("/static/nope.js").status_code == 404


def test_nothing_is_fetched_from_outside() -> None:
    """No CDN: the studio's files reference only same-origin paths."""
    web = Path(__file__).resolve().parent.parent / "src" / "zhike" / "web"
    for f in web.iterdir():
        text = f.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f
