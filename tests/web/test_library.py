"""The library page in a real browser: search, filters in the hash, infinite scroll, detail with parameters and
lineage, remix/edit/download links, delete with a confirm dialog, owner isolation, language switch, phone width."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page

from tests.helpers.server import Server, wait_job
from tests.web.conftest import ART, PHONE, api_json, api_status, expect, login_client, open_studio, shot, sign_in

PAGE = 12  # the library's page size with ?test=1
UPLOADS = 30


def _generate(c: Any, op: str, params: dict[str, Any]) -> str:
    r = c.post("/api/v1/jobs", json={"op": op, "params": params})
    assert r.status_code == 201, r.text
    job = wait_job(c, r.json()["id"], timeout=180)
    assert job["state"] == "succeeded", job
    return job["outputs"][0]["asset_id"]


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), ((i * 37) % 256, (i * 91) % 256, 180)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def data(server: Server, users: dict[str, str]) -> dict[str, Any]:
    """alice: three txt2img images (one Chinese prompt), an img2img child of the first, then 30 uploads."""
    c = login_client(server, "alice")
    try:
        small = {"width": 64, "height": 64, "steps": 2}
        fox = _generate(c, "txt2img", {"prompt": "a red fox in snow", "seed": 11, **small})
        teapot = _generate(c, "txt2img", {"prompt": "青花瓷茶壶，放在木桌上", "seed": 22, **small})
        house = _generate(c, "txt2img", {"prompt": "a lighthouse at dusk", "seed": 33, **small})
        child = _generate(
            c, "img2img", {"prompt": "watercolour painting", "init_image": fox, "strength": 0.5, "seed": 44, **small}
        )
        uploads = []
        for i in range(UPLOADS):
            r = c.post(
                "/api/v1/assets",
                files={"file": (f"u{i}.png", _png(i), "image/png")},
                data={"tags": "商品,主图" if i % 10 == 0 else "素材"},
            )
            assert r.status_code == 201, r.text
            uploads.append(r.json()["id"])
    finally:
        c.close()
    return {"fox": fox, "teapot": teapot, "house": house, "child": child, "uploads": uploads}


def open_library(
    new_context: Any, server: Server, user: str, password: str, route: str = "#/library", **kw: Any
) -> Page:
    page = open_studio(new_context(**kw), server)
    sign_in(page, user, password)
    expect(page.locator("#home")).to_be_visible()  # signing in lands on Home
    page.evaluate("h => { location.hash = h }", route)
    expect(page.locator("#library-grid")).to_have_attribute("aria-busy", "false")
    return page


def shot_dialog(page: Page, name: str) -> None:
    """What the user sees with a dialog open: the viewport (a full-page shot stretches the modal's backdrop)."""
    ART.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ART / f"{name}.png"))


def tile_ids(page: Page) -> list[str]:
    return page.locator("#library-grid figure[data-asset-id]").evaluate_all("els => els.map(e => e.dataset.assetId)")


def test_search_and_filters_narrow_the_grid_and_live_in_the_hash(
    server: Server, users: dict[str, str], data: dict[str, Any], new_context: Any
) -> None:
    page = open_library(new_context, server, "alice", users["alice"])
    tiles = page.locator("#library-grid figure[data-asset-id]")
    expect(tiles.first).to_have_attribute("data-asset-id", data["uploads"][-1])  # newest first
    assert PAGE <= tiles.count() < UPLOADS + 4  # a page at a time, not everything
    expect(page.locator("#library-op")).to_have_attribute("data-loaded", "true")
    # The search box says what it searches for the kinds shown: prompts of images, names and briefs of text.
    search = page.locator("#library-search")
    expect(search).to_have_attribute("placeholder", "搜索画面描述或商品名称，例如：茶壶")
    page.select_option("#library-kind", "text")
    expect(search).to_have_attribute("placeholder", "搜索商品名称或文案要求，例如：保温杯")
    expect(page.locator("label:has(#library-search) span")).to_have_text("搜索文案")
    page.select_option("#library-kind", "image")
    expect(search).to_have_attribute("placeholder", "搜索画面描述，例如：茶壶")
    page.select_option("#library-kind", "")
    expect(tiles.first).to_have_attribute("data-asset-id", data["uploads"][-1])
    shot(page, "library-grid-zh")

    page.fill("#library-search", "茶壶")  # debounced: no Enter needed
    expect(tiles).to_have_count(1)
    expect(tiles.first).to_have_attribute("data-asset-id", data["teapot"])
    assert "q=%E8%8C%B6%E5%A3%B6" in page.url
    page.fill("#library-search", "FOX")  # any case; the img2img child's prompt has no "fox"
    expect(tiles).to_have_count(1)
    expect(tiles.first).to_have_attribute("data-asset-id", data["fox"])

    page.reload()  # the filters come back from the hash
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#library-search")).to_have_value("FOX")
    expect(tiles).to_have_count(1)

    page.click("#library-clear")
    expect(page.locator("#library-search")).to_have_value("")
    expect(tiles.first).to_have_attribute("data-asset-id", data["uploads"][-1])
    page.select_option("#library-op", "txt2img")
    expect(tiles).to_have_count(3)
    assert tile_ids(page) == [data["house"], data["teapot"], data["fox"]]
    page.select_option("#library-op", "img2img")
    expect(tiles).to_have_count(1)
    expect(tiles.first).to_have_attribute("data-asset-id", data["child"])
    page.select_option("#library-op", "origin:upload")
    page.fill("#library-tag", "主图")
    expect(tiles).to_have_count(3)  # uploads 0, 10, 20
    assert set(tile_ids(page)) == {data["uploads"][0], data["uploads"][10], data["uploads"][20]}
    assert "origin=upload" in page.url and "tag=" in page.url

    # Dates: everything was made today; from tomorrow there is nothing, and the page says so.
    page.fill("#library-tag", "")
    page.select_option("#library-op", "txt2img")
    expect(tiles).to_have_count(3)
    today = page.evaluate("() => { const d = new Date(); return d.toLocaleDateString('sv'); }")  # yyyy-mm-dd
    tomorrow = page.evaluate(
        "() => { const d = new Date(); d.setDate(d.getDate() + 1); return d.toLocaleDateString('sv'); }"
    )
    page.fill("#library-since", today)
    page.fill("#library-until", today)
    expect(tiles).to_have_count(3)
    page.fill("#library-since", tomorrow)
    page.fill("#library-until", "")
    expect(page.locator("#library-no-results")).to_be_visible()
    expect(page.locator("#library-no-results")).to_contain_text("没有符合这些筛选条件的作品")
    expect(page.locator("#library-empty")).to_have_count(0)

    # The model filter lists the registered models.
    page.fill("#library-since", "")
    expect(tiles).to_have_count(3)
    expect(page.locator("#library-model option[value=tiny]")).to_have_count(1)
    page.select_option("#library-model", "tiny")
    expect(tiles).to_have_count(3)

    page.click("#lang")
    expect(page.locator("#library-search")).to_have_attribute(
        "placeholder", "Search prompts or product names, e.g. teapot"
    )
    expect(page.locator(".library h1")).to_have_text("Library")
    expect(page.locator("#library-op option[value='']")).to_have_text("All types")
    expect(page.locator("#library-op option[value=txt2img]")).not_to_have_text("")
    expect(page.locator("label:has(#library-model) span")).to_have_text("Model")
    expect(page.locator("#library-clear")).to_have_text("Clear filters")
    shot(page, "library-filters-en")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_infinite_scroll_loads_every_asset_once_in_order(
    server: Server, users: dict[str, str], data: dict[str, Any], new_context: Any
) -> None:
    page = open_library(new_context, server, "alice", users["alice"])
    total = len(api_json(page, "/api/v1/assets?limit=500")["assets"])
    assert total == UPLOADS + 4
    tiles = page.locator("#library-grid figure[data-asset-id]")
    expect(tiles.first).to_be_visible()
    first = tiles.count()
    assert first < total and first % PAGE == 0, first
    for _ in range(10):
        if tiles.count() >= total:
            break
        before = tiles.count()
        page.locator("#library-sentinel").scroll_into_view_if_needed()
        page.mouse.wheel(0, 5000)
        expect(tiles).not_to_have_count(before)
    expect(tiles).to_have_count(total)
    want = [a["id"] for a in api_json(page, "/api/v1/assets?limit=500")["assets"]]
    assert tile_ids(page) == want  # each once, newest first
    expect(page.locator("#library-status")).to_have_text("已经到底了")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_detail_shows_parameters_and_lineage_and_links(
    server: Server, users: dict[str, str], data: dict[str, Any], new_context: Any
) -> None:
    page = open_library(new_context, server, "alice", users["alice"], "#/library?q=fox")
    tiles = page.locator("#library-grid figure[data-asset-id]")
    expect(tiles).to_have_count(1)
    page.evaluate("() => { document.getElementById('library-grid').dataset.mark = 'kept'; }")
    tiles.first.locator("img").click()
    detail = page.locator("#asset-detail")
    expect(detail).to_be_visible()
    assert f"asset={data['fox']}" in page.url and "q=fox" in page.url
    params = page.locator("#detail-params")
    expect(params.locator("tr[data-param=prompt] th")).to_have_text("画面描述")
    expect(params.locator("tr[data-param=prompt] td")).to_have_text("a red fox in snow")
    expect(params.locator("tr[data-param=seed] th")).to_have_text("随机种子")
    expect(params.locator("tr[data-param=seed] td")).to_have_text("11")
    expect(params.locator("tr[data-param=steps] td")).to_have_text("2")
    expect(params.locator("tr[data-param=model] td")).to_have_text("tiny")
    expect(page.locator("#detail-meta dd[data-meta=size]")).to_have_text("64×64")
    expect(page.locator("#detail-meta dd[data-meta=op]")).not_to_have_text("txt2img")  # the op's title, translated
    expect(page.locator("#detail-parent")).to_contain_text("无（这是原创）")
    child_thumb = page.locator(f"#detail-children a[data-asset-id='{data['child']}']")
    expect(child_thumb).to_be_visible()
    expect(page.locator("#detail-remix")).to_have_attribute("href", f"#/create?remix={data['fox']}")
    expect(page.locator("#detail-edit")).to_have_attribute("href", f"#/edit?asset={data['fox']}")
    download = page.locator("#detail-download")
    # The result panel's Download: the server names the file (Content-Disposition), in the page's language.
    expect(download).to_have_attribute("href", f"/api/v1/assets/{data['fox']}/file?download=1&lang=zh")
    expect(download).to_have_attribute("download", "")
    expect(page.locator("#detail-format")).to_have_value("png")
    page.wait_for_function("() => document.getElementById('detail-image').naturalWidth === 64")
    shot_dialog(page, "library-detail-zh")

    # Lineage: the child's detail links back to its parent.
    child_thumb.click()
    expect(params.locator("tr[data-param=prompt] td")).to_have_text("watercolour painting")
    expect(params.locator("tr[data-param=strength] td")).to_have_text("0.5")
    parent_link = page.locator(f"#detail-parent a[data-asset-id='{data['fox']}']")
    expect(parent_link).to_be_visible()
    expect(page.locator("#detail-children")).to_contain_text("还没有由它生成的图片")

    # Back steps back through the details opened, then closes the detail; the grid is not rebuilt.
    page.go_back()
    expect(params.locator("tr[data-param=prompt] td")).to_have_text("a red fox in snow")
    page.go_back()
    expect(detail).to_be_hidden()
    expect(page).to_have_url(f"{server.base_url}/?test=1#/library?q=fox")
    assert page.evaluate("() => document.getElementById('library-grid').dataset.mark") == "kept"
    tiles.first.locator("img").click()
    child_thumb.click()
    expect(params.locator("tr[data-param=prompt] td")).to_have_text("watercolour painting")

    # Esc closes it; the hash loses `asset`, keeps the search, and the grid was not rebuilt.
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    expect(page).to_have_url(f"{server.base_url}/?test=1#/library?q=fox")
    assert page.evaluate("() => document.getElementById('library-grid').dataset.mark") == "kept"

    # The detail is modal (the page behind it is inert); switch the language, then the detail opens in English.
    page.click("#lang")
    expect(page.locator("label:has(#library-search) span")).to_have_text("Search prompts and copy")
    tiles.first.locator("img").click()
    expect(params.locator("tr[data-param=prompt] th")).to_have_text("Prompt")
    expect(params.locator("tr[data-param=seed] th")).to_have_text("Seed")
    expect(page.locator("#detail-parent")).to_contain_text("Nothing (an original)")
    expect(page.locator("#detail-remix")).to_have_text("Remix")
    expect(page.locator("#detail-delete")).to_have_text("Delete")
    page.wait_for_function("() => document.getElementById('detail-image').naturalWidth === 64")
    shot_dialog(page, "library-detail-en")
    page.locator(f"#detail-children a[data-asset-id='{data['child']}']").click()
    expect(params.locator("tr[data-param=strength] th")).to_have_text("Strength")
    expect(params.locator("tr[data-param=negative_prompt]")).to_have_count(0)  # empty values are left out
    expect(page.locator("#detail-children")).to_contain_text("Nothing made from it yet")
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    expect(page).to_have_url(f"{server.base_url}/?test=1#/library?q=fox")
    # The open detail is in the hash: a reload opens it again (a shared link too).
    tiles.first.locator("img").click()
    expect(page).to_have_url(f"{server.base_url}/?test=1#/library?q=fox&asset={data['fox']}")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#detail-params tr[data-param=prompt] td")).to_have_text("a red fox in snow")
    expect(page.locator("#library-search")).to_have_value("fox")
    page.click("#detail-close")
    expect(detail).to_be_hidden()
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_second_user_finds_none_of_alices_assets(
    server: Server, users: dict[str, str], data: dict[str, Any], new_context: Any
) -> None:
    page = open_library(new_context, server, "bob", users["bob"], "#/library?q=fox")
    expect(page.locator("#library-no-results")).to_be_visible()
    page.fill("#library-search", "")
    expect(page.locator("#library-empty")).to_be_visible()
    assert tile_ids(page) == []
    page.evaluate("h => { location.hash = h }", f"#/library?asset={data['fox']}")
    expect(page.locator("#detail-error")).to_have_text("找不到这张图片，可能已被删除。")
    assert api_status(page, f"/api/v1/assets/{data['fox']}") == 404
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_phone_width_two_columns_collapsed_filters_full_screen_detail(
    server: Server, users: dict[str, str], data: dict[str, Any], new_context: Any
) -> None:
    page = open_library(new_context, server, "alice", users["alice"], viewport=PHONE)
    tiles = page.locator("#library-grid figure[data-asset-id]")
    expect(tiles.nth(2)).to_be_visible()
    boxes = [tiles.nth(i).bounding_box() for i in range(3)]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[2]["y"] > boxes[0]["y"]  # two columns
    assert boxes[1]["x"] + boxes[1]["width"] <= PHONE["width"]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scroll
    expect(page.locator("#library-op")).to_be_hidden()  # filters fold away behind a button
    page.click("#library-filters-toggle")
    expect(page.locator("#library-op")).to_be_visible()
    expect(page.locator("#library-since")).to_be_visible()
    shot(page, "library-grid-zh-phone")

    page.select_option("#library-op", "txt2img")
    expect(tiles).to_have_count(3)
    expect(page.locator("#library-filters-toggle")).to_have_text("筛选（1）")
    tiles.first.locator("img").click()
    detail = page.locator("#asset-detail")
    expect(detail.locator("#detail-params")).to_be_visible()
    box = detail.bounding_box()
    assert box["x"] == 0 and box["width"] == PHONE["width"] and box["height"] == PHONE["height"]  # full screen
    page.wait_for_function("() => document.getElementById('detail-image').naturalWidth === 64")
    shot_dialog(page, "library-detail-zh-phone")
    page.click("#detail-close")
    expect(detail).to_be_hidden()
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_delete_asks_first_and_removes_only_that_asset(
    server: Server, users: dict[str, str], data: dict[str, Any], new_context: Any
) -> None:
    page = open_library(new_context, server, "alice", users["alice"])
    before = [a["id"] for a in api_json(page, "/api/v1/assets?limit=500")["assets"]]
    victim = data["uploads"][-2]
    tile = page.locator(f"#library-grid figure[data-asset-id='{victim}']")
    tile.locator("img").click()
    expect(page.locator("#asset-detail")).to_be_visible()
    expect(page.locator("#detail-params")).to_contain_text("上传的图片没有生成参数")
    expect(page.locator("#detail-remix")).to_have_count(0)  # nothing to remix in an upload
    page.click("#detail-delete")
    confirm = page.locator("#confirm-delete")
    expect(confirm).to_be_visible()
    expect(confirm.locator("h2")).to_have_text("删除这张图片？")
    expect(page.locator("#confirm-delete-no")).to_have_text("取消")
    expect(page.locator("#confirm-delete-yes")).to_have_text("删除")
    shot_dialog(page, "library-confirm-delete-zh")
    page.click("#confirm-delete-no")  # cancel keeps it
    expect(confirm).to_be_hidden()
    expect(page.locator("#asset-detail")).to_be_visible()
    assert api_status(page, f"/api/v1/assets/{victim}") == 200

    page.click("#detail-delete")
    page.click("#confirm-delete-yes")
    expect(page.locator("#asset-detail")).to_be_hidden()
    expect(tile).to_have_count(0)
    assert api_status(page, f"/api/v1/assets/{victim}") == 404
    after = [a["id"] for a in api_json(page, "/api/v1/assets?limit=500")["assets"]]
    assert after == [i for i in before if i != victim]  # nothing else lost
    for aid in (data["uploads"][-1], data["uploads"][-3]):
        assert api_status(page, f"/api/v1/assets/{aid}/file") == 200

    # Deleting a parent keeps its child, whose detail says the original was deleted.
    page.evaluate("h => { location.hash = h }", f"#/library?asset={data['fox']}")
    expect(page.locator("#detail-params tr[data-param=prompt] td")).to_have_text("a red fox in snow")
    page.click("#detail-delete")
    page.click("#confirm-delete-yes")
    expect(page.locator("#asset-detail")).to_be_hidden()
    assert api_status(page, f"/api/v1/assets/{data['fox']}") == 404
    page.evaluate("h => { location.hash = h }", f"#/library?asset={data['child']}")
    expect(page.locator("#detail-parent")).to_have_text("原图已删除")
    page.wait_for_function("() => document.getElementById('detail-image').naturalWidth === 64")
    assert api_status(page, f"/api/v1/assets/{data['child']}/file") == 200
    assert page.js_errors == []  # type: ignore[attr-defined]
