"""The studio's shell end to end: sign in, simple-mode generation, library, language, isolation, static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.server import Server, wait_job
from tests.web.conftest import (
    DESKTOP,
    GENERATION_MS,
    PASSWORD,
    PHONE,
    api_status,
    expect,
    open_studio,
    shot,
    sign_in,
)


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
    expect(error).to_have_text("用户名或密码错误")  # the API's message, in the page's language
    shot(page, "login-error-zh")

    page.click("#lang")
    expect(error).to_be_visible()
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
    expect(page.locator("#home")).to_be_visible()  # signing in lands on Home
    page.click("#nav a[data-route=create]")
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
    expect(page.locator("#home")).to_be_visible()  # signing in lands on Home
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
    web = Path(__file__).resolve().parents[2] / "src" / "zhike" / "web"
    for f in (p for p in web.rglob("*") if p.is_file()):
        text = f.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f


PAGES = ["home", "create", "edit", "library", "batch", "queue", "models", "keys", "users"]


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_every_page_renders_translated_in_both_languages(
    server: Server, admin: str, locale: str, new_context: Any
) -> None:
    """Each page as an admin: no untranslated string key is visible, no JS error; a screenshot of each."""
    page = open_studio(new_context(locale=locale), server)
    sign_in(page, admin, PASSWORD)
    expect(page.locator("#home")).to_be_visible()
    lang = "zh" if locale.startswith("zh") else "en"
    for route in PAGES:
        page.goto(f"{server.base_url}/?test=1#/{route}")
        expect(page.locator("#view")).to_have_attribute("data-route", route)
        page.wait_for_function("() => !document.querySelector('[aria-busy=true]')")
        # A missing translation shows its key ("library.title"): look for visible text that is only a dotted key.
        raw = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(el => el.offsetParent !== null && el.children.length === 0)
                .map(el => (el.textContent || '').trim())
                .filter(s => /^[a-z]+(\\.[A-Za-z0-9_]+)+$/.test(s))"""
        )
        assert raw == [], (route, raw)
        if lang == "zh":  # the page speaks Chinese: its heading has CJK characters
            heading = page.locator("#view h1").first.inner_text()
            assert any("\u4e00" <= c <= "\u9fff" for c in heading), (route, heading)
        shot(page, f"page-{route}-{lang}")
    assert page.js_errors == []  # type: ignore[attr-defined]
