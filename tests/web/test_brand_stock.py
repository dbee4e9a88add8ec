"""品牌 and 素材库 in a real browser: a brand colour picked on the brand page shows in the live preview and is saved;
an upload goes into a new folder by dragging it there, and back to Unfiled through its menu."""

from __future__ import annotations

import io
import re
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page

from tests.helpers.server import Server
from tests.web.conftest import api_json, expect, open_studio, shot, sign_in

# The preview's band (brand.primary) spans the top 120 of 500 px of the sample design, at its full width.
BAND_PIXEL = """img => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(Math.round(c.width * 0.6), Math.round(c.height * 0.12), 1, 1).data.slice(0, 3));
}"""


def go(page: Page, username: str, password: str, route: str) -> None:
    """Sign in, wait for the page signing in lands on, then open `route`."""
    sign_in(page, username, password)
    page.wait_for_function("() => document.body.dataset.route && document.body.dataset.route !== 'login'")
    page.evaluate("r => { location.hash = '#/' + r; }", route)
    expect(page.locator("body")).to_have_attribute("data-route", route)


def band_colour(page: Page) -> list[int]:
    img = page.locator("#brand-preview")
    expect(img).to_have_js_property("complete", True)
    return img.evaluate(BAND_PIXEL)


def test_brand_colour_shows_in_the_preview_and_is_saved(server: Server, users: dict[str, str], new_context) -> None:
    page = open_studio(new_context(), server, "#/brand")
    go(page, "alice", users["alice"], "brand")
    expect(page.locator("#brand-preview")).to_have_attribute("data-kit", re.compile('"primary":"#e4393c"'))
    assert band_colour(page) == [228, 57, 60]  # the default primary before any kit

    page.fill("#brand-primary", "#1a7f5a")
    expect(page.locator("#brand-preview")).to_have_attribute("data-kit", re.compile('"primary":"#1a7f5a"'))
    page.wait_for_function("() => document.querySelector('#brand-preview').complete")
    assert band_colour(page) == [26, 127, 90]
    assert api_json(page, "/api/v1/brand")["kit"] is None  # only previewed so far

    page.fill("#brand-name", "山茶小铺")
    page.click("#brand-save")
    expect(page.locator("#brand-notice")).to_have_text("已保存品牌。")
    kit = api_json(page, "/api/v1/brand")["kit"]
    assert kit["colors"]["primary"] == "#1a7f5a" and kit["name"] == "山茶小铺"

    page.fill("#brand-accent", "orange")  # not #rrggbb: the field says so in Chinese only
    page.click("#brand-save")
    error = page.locator('[data-error-for="colors.accent"]')
    expect(error).to_have_text("“orange”不是有效颜色，请用 #rrggbb 格式（如 #e4393c）")
    shot(page, "brand-page")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_an_upload_goes_into_a_new_folder_and_back(
    server: Server, users: dict[str, str], new_context, tmp_path: Path
) -> None:
    photo = tmp_path / "咖啡杯.png"
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 60, 40)).save(buf, "PNG")
    photo.write_bytes(buf.getvalue())

    page = open_studio(new_context(), server, "#/stock")
    go(page, "bob", users["bob"], "stock")
    expect(page.locator("#stock-bundled .stock-item").first).to_be_visible()  # the bundled stock, for everyone
    expect(page.locator('#stock-bundled [data-stock-id="badge-baoyou"]')).to_contain_text("包邮")

    page.set_input_files("#stock-files", str(photo))
    card = page.locator('.stock-card[data-name="咖啡杯"]')
    expect(card).to_be_visible()
    asset_id = card.get_attribute("data-asset-id")

    page.fill("#stock-new-folder", "双十一主图")
    page.click("#stock-create-folder")
    folder = page.locator(".stock-folder", has_text="双十一主图")
    expect(folder).to_have_attribute("aria-pressed", "true")  # the new folder opens, empty
    expect(page.locator("#stock-empty")).to_be_visible()
    folder_id = folder.get_attribute("data-folder")

    page.click('.stock-folder[data-folder=""]')  # 全部
    card.drag_to(folder)
    expect(page.locator("#stock-notice")).to_have_text("已移动到“双十一主图”。")
    expect(folder.locator(".stock-count")).to_have_text("1")
    listed = api_json(page, f"/api/v1/stock/assets?folder={folder_id}")["assets"]
    assert [a["id"] for a in listed] == [asset_id]

    folder.click()
    expect(card).to_be_visible()
    card.locator(".stock-move").select_option("none")  # 未归类, through the card's menu
    expect(page.locator("#stock-notice")).to_have_text("已移到未归类。")
    expect(page.locator("#stock-empty")).to_be_visible()
    assert api_json(page, "/api/v1/stock/assets?folder=none")["assets"][0]["id"] == asset_id
    shot(page, "stock-page")
    assert page.js_errors == []  # type: ignore[attr-defined]
