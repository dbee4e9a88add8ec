"""The template gallery on the batch page: server-rendered previews, search by zh/en names and tags, category
chips, size filter; picking a card makes the batch page preview that template."""

from __future__ import annotations

from typing import Any

from tests.helpers.server import Server
from tests.web.conftest import DESKTOP, expect, open_studio, shot, sign_in
from zhike.design.template import bundled_templates


def test_search_filter_and_pick_a_template(server: Server, users: dict[str, str], new_context: Any) -> None:
    page = open_studio(new_context(locale="zh-CN", viewport=DESKTOP), server)
    sign_in(page, "alice", users["alice"])
    page.click("nav a[href='#/batch']")
    gallery = page.locator("#batch-templates")
    expect(gallery).to_have_attribute("data-loaded", "true")
    cards = gallery.locator(".tg-card")
    expect(cards).to_have_count(len(bundled_templates()))
    # Previews are real images drawn by the server (a long 详情页 stays long).
    first = gallery.locator("[data-template=detail_food] img")
    first.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => { const i = document.querySelector('#batch-templates [data-template=detail_food] img');"
        " return i && i.complete && i.naturalWidth === 360 && i.naturalHeight > 1500; }"
    )

    shot(page, "template-gallery-all-zh")

    # Search by a Chinese tag, then by English words: both languages of names and tags are searched.
    search = gallery.locator(".tg-search")
    search.fill("双十一")
    ids = lambda: sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.template)"))  # noqa: E731
    expect(gallery.locator("[data-template=double11_main]")).to_be_visible()
    expect(gallery.locator("[data-template=main_clean_red]")).to_have_count(0)
    assert {"double11_main", "double11_poster"} <= set(ids())
    search.fill("shelf tag")
    expect(cards).to_have_count(3)
    assert all(i.startswith("price_tag_") for i in ids())
    search.fill("没有这种模板")
    expect(gallery.locator(".tg-empty")).to_be_visible()
    search.fill("")

    # Category chip 详情页: only the long detail pages, all 750 wide; then the size filter within 主图.
    gallery.locator(".tg-chip[data-category=detail_page]").click()
    expect(gallery.locator(".tg-chip[data-category=detail_page]")).to_have_class("tg-chip selected")
    expect(cards).to_have_count(5)
    assert all(i.startswith("detail_") for i in ids())
    gallery.locator(".tg-chip[data-category=all]").click()
    gallery.locator(".tg-size").select_option("800x800")
    sizes = set(cards.evaluate_all("cs => cs.map(c => c.querySelector('.tg-meta').textContent.split(' · ')[1])"))
    assert sizes == {"800×800"}
    gallery.locator(".tg-chip[data-category=festival]").click()
    assert set(ids()) == {"double11_main", "s618_main"}
    shot(page, "template-gallery-zh")

    # Pick: the batch page previews that template (its sample data) and lists its columns.
    gallery.locator("[data-template=s618_main]").click()
    expect(gallery.locator("[data-template=s618_main]")).to_have_class("tg-card selected")
    expect(page.locator("#batch-preview")).to_have_attribute("data-template", "s618_main")
    page.wait_for_function(
        "() => { const i = document.getElementById('batch-preview'); return i.complete && i.naturalWidth === 800; }"
    )
    expect(page.locator("#batch-columns")).to_contain_text("price")
    expect(page.locator("#batch-preview-caption")).to_have_text("预览：示例数据")
    shot(page, "template-gallery-picked-zh")

    # English: chips and names relabel in place, the choice stays.
    page.click("#lang")
    expect(gallery.locator(".tg-chip[data-category=festival]")).to_have_text("Festival sale")
    expect(gallery.locator("[data-template=s618_main] .tg-name")).to_have_text("618 main image")
    expect(gallery.locator("[data-template=s618_main]")).to_have_class("tg-card selected")
    shot(page, "template-gallery-picked-en")
