"""Models, API keys and users pages: what admins can do, what other users see, errors next to their fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.helpers.server import Server
from tests.web.conftest import PASSWORD, PHONE, api_status, expect, open_studio, shot, sign_in


def go(page: Any, route: str) -> None:
    if page.locator("#nav-toggle").is_visible():  # at phone width the nav folds behind the menu button
        page.click("#nav-toggle")
    page.click(f"#nav a[data-route={route}]")
    expect(page.locator("#view")).to_have_attribute("data-route", route)


def signed_in(new_context: Any, server: Server, user: str, password: str = PASSWORD, **ctx: Any) -> Any:
    page = open_studio(new_context(**ctx), server)
    sign_in(page, user, password)
    expect(page.locator("#whoami")).to_have_text(user)
    return page


def format_bytes(n: float) -> str:
    """As the page's formatBytes writes it."""
    units, i = ["B", "KB", "MB", "GB", "TB"], 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.{1 if i else 0}f} {units[i]}"


# -- models ----------------------------------------------------------------------------------------------
def test_admin_adds_a_model_by_path_and_removes_it(
    server: Server, admin: str, new_context: Any, tiny_sd15: Path
) -> None:
    page = signed_in(new_context, server, admin, locale="zh-CN")
    go(page, "models")
    expect(page.locator("#models-list [data-model=tiny] .model-family")).to_have_text("sd15")
    form = page.locator("#model-add-form")

    # A path that is not there: the API's reason, in Chinese, right under the source field.
    page.fill("#model-source", str(tiny_sd15.parent / "no-such-model"))
    form.locator("button[type=submit]").click()
    error = page.locator("label[data-field=source] + .field-error")
    expect(error).to_contain_text("服务器上找不到这个文件或文件夹")
    expect(error).to_contain_text("no-such-model")
    expect(page.locator("#model-source")).to_have_attribute("aria-invalid", "true")

    page.fill("#model-source", str(tiny_sd15))
    page.fill("#model-name", "tiny-2")
    form.locator("button[type=submit]").click()
    added = page.locator("#models-list [data-model='tiny-2']")
    expect(added).to_be_visible()
    expect(page.locator("label[data-field=source] + .field-error")).to_have_count(0)
    expect(page.locator("#models-notice")).to_have_text("已添加模型“tiny-2”。")
    size = sum(p.stat().st_size for p in tiny_sd15.rglob("*") if p.is_file())
    expect(added.locator(".model-family")).to_have_text("sd15")
    expect(added.locator(".model-kind")).to_have_text("底模")
    expect(added.locator(".model-size")).to_have_text(format_bytes(size))
    expect(added.locator(".model-source")).to_have_text(str(tiny_sd15))  # admins see where it came from
    shot(page, "models-admin-zh")

    added.locator(".model-remove").click()
    dialog = page.locator("#confirm-remove")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("tiny-2")
    page.click("#confirm-remove-no")  # changing one's mind keeps it
    expect(dialog).to_be_hidden()
    expect(added).to_be_visible()
    added.locator(".model-remove").click()
    page.click("#confirm-remove-yes")
    expect(added).to_have_count(0)
    expect(page.locator("#models-list [data-model=tiny]")).to_be_visible()
    names = [m["name"] for m in httpx.get(f"{server.base_url}/api/v1/models", headers=_bearer(server)).json()["models"]]
    assert "tiny-2" not in names and "tiny" in names

    page.set_viewport_size(PHONE)
    expect(page.locator("#models-list [data-model=tiny] .model-family")).to_be_visible()
    width = page.evaluate("document.querySelector('#view').scrollWidth")
    assert width <= PHONE["width"], f"the models page scrolls sideways at phone width ({width}px)"
    shot(page, "models-admin-zh-phone")
    assert page.js_errors == []  # type: ignore[attr-defined]


def _bearer(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.key_a}"}


def test_a_user_sees_the_models_but_cannot_change_them(server: Server, users: dict[str, str], new_context: Any) -> None:
    page = signed_in(new_context, server, "alice", locale="en-US")
    expect(page.locator("#nav a[data-route=users]")).to_be_hidden()
    go(page, "models")
    tiny = page.locator("#models-list [data-model=tiny]")
    expect(tiny.locator(".model-kind")).to_have_text("Checkpoint")
    expect(tiny.locator(".model-source")).to_have_text("—")  # the server path is an admin's business
    expect(page.locator("#model-add-form")).to_have_count(0)
    expect(page.locator(".model-remove")).to_have_count(0)
    assert api_status(page, "/api/v1/users") == 403
    status = page.evaluate(
        """() => fetch('/api/v1/models/tiny', {method: 'DELETE', credentials: 'same-origin'}).then(r => r.status)"""
    )
    assert status == 403  # no CSRF token here either way: refused
    shot(page, "models-user-en")
    page.evaluate("location.hash = '#/users'")  # typed by hand: not for her
    expect(page.locator("#view")).to_have_attribute("data-route", "home")
    assert page.js_errors == []  # type: ignore[attr-defined]


# -- API keys --------------------------------------------------------------------------------------------
def test_create_use_and_revoke_an_api_key(server: Server, users: dict[str, str], new_context: Any) -> None:
    page = signed_in(new_context, server, "bob", locale="zh-CN")
    go(page, "keys")
    expect(page.locator("#keys-empty")).to_be_visible()

    page.locator("#key-create-form button[type=submit]").click()  # no name: the API says so at the field
    expect(page.locator("label[data-field=name] + .field-error")).to_be_visible()
    page.fill("#key-name", "店铺脚本")
    page.locator("#key-create-form button[type=submit]").click()
    secret = page.locator("#key-secret")
    expect(secret).to_be_visible()
    key = secret.inner_text()
    assert key.startswith("zk_") and len(key) > 30
    expect(page.locator("#key-secret-box")).to_contain_text("不会再显示")
    row = page.locator("#keys-list tr[data-key-id]")
    expect(row).to_have_count(1)
    expect(row.locator(".key-name")).to_have_text("店铺脚本")
    expect(row).to_contain_text(key[:8])
    expect(row.locator(".key-last-used")).to_have_text("从未使用")
    shot(page, "keys-created-zh")

    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.get("/api/v1/jobs").status_code == 200
        assert client.get("/api/v1/auth/me").json()["user"]["username"] == "bob"  # the key acts as bob
        page.click("#key-secret-done")
        expect(secret).to_be_hidden()
        go(page, "queue")
        go(page, "keys")  # shown once: a new visit has only the list
        expect(row.locator(".key-last-used")).not_to_have_text("从未使用")
        expect(page.locator("#key-secret")).to_be_hidden()

        row.locator(".key-revoke").click()
        expect(page.locator("#confirm-revoke")).to_contain_text("店铺脚本")
        page.click("#confirm-revoke-yes")
        expect(page.locator("#keys-empty")).to_be_visible()
        r = client.get("/api/v1/jobs")
        assert r.status_code == 401 and r.json()["error"]["field"] == "Authorization"
    assert page.js_errors == []  # type: ignore[attr-defined]


# -- users -----------------------------------------------------------------------------------------------
def test_admin_creates_a_user_who_can_sign_in(
    server: Server, admin: str, users: dict[str, str], new_context: Any
) -> None:
    page = signed_in(new_context, server, admin, locale="zh-CN")
    go(page, "users")
    expect(page.locator("#users-list tr[data-user=alice]")).to_be_visible()

    page.fill("#new-username", "dave")
    page.fill("#new-password", "short")
    page.locator("#user-create-form button[type=submit]").click()
    error = page.locator("label[data-field=password] + .field-error")
    expect(error).to_have_text("密码需要 8-1024 个字符")
    expect(page.locator("#users-list tr[data-user=dave]")).to_have_count(0)

    page.fill("#new-password", "dave's good password")
    page.locator("#user-create-form button[type=submit]").click()
    dave = page.locator("#users-list tr[data-user=dave]")
    expect(dave).to_have_attribute("data-role", "user")
    expect(error).to_have_count(0)
    expect(page.locator("#new-username")).to_have_value("")
    shot(page, "users-zh")

    other = signed_in(new_context, server, "dave", "dave's good password", locale="en-US")
    expect(other.locator("#nav a[data-route=users]")).to_be_hidden()

    # Disabled: dave can no longer sign in; enabled again: he can.
    dave.locator(".user-toggle").click()
    expect(dave).to_have_attribute("data-disabled", "true")
    expect(dave.locator(".user-status")).to_have_text("已停用")
    login = {"username": "dave", "password": "dave's good password"}
    assert httpx.post(f"{server.base_url}/api/v1/auth/login", json=login).status_code == 401
    dave.locator(".user-toggle").click()
    expect(dave).to_have_attribute("data-disabled", "false")
    dave.locator(".user-role").select_option("admin")
    expect(dave).to_have_attribute("data-role", "admin")
    dave.locator(".user-password").click()
    page.fill("#set-password", "tiny")
    page.click("#password-save")
    expect(page.locator("#password-form label[data-field=password] + .field-error")).to_be_visible()
    page.fill("#set-password", "a brand new password")
    page.click("#password-save")
    expect(page.locator("#password-dialog")).to_be_hidden()
    assert httpx.post(f"{server.base_url}/api/v1/auth/login", json=login).status_code == 401
    login["password"] = "a brand new password"
    me = httpx.post(f"{server.base_url}/api/v1/auth/login", json=login)
    assert me.status_code == 200 and me.json()["user"]["role"] == "admin"
    assert page.js_errors == [] and other.js_errors == []  # type: ignore[attr-defined]

    phone = signed_in(new_context, server, admin, locale="en-US", viewport=PHONE)
    go(phone, "users")
    expect(phone.locator("#users-list tr[data-user=dave] .user-status")).to_have_text("Active")
    expect(phone.locator("#user-create-form label[data-field=password] span")).to_have_text("Password")
    width = phone.evaluate("document.querySelector('#view').scrollWidth")
    assert width <= PHONE["width"], f"the users page scrolls sideways at phone width ({width}px)"
    shot(phone, "users-en-phone")
    assert phone.js_errors == []  # type: ignore[attr-defined]
