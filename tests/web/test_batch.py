"""Batch design in the studio: template picker with live preview, a GBK CSV with a bad row, sizes, the job, ZIP."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from PIL import Image

from tests.helpers.server import Server
from tests.web.conftest import DESKTOP, PHONE, expect, open_studio, shot, sign_in


def gbk_csv(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("gbk")


def wait_preview_size(page: Any, width: int, height: int) -> None:
    """The preview image has loaded at this size (the template's canvas, scaled to at most 1080 px on its long side:
    the server caps preview work)."""
    page.wait_for_function(
        "([w, h]) => { const i = document.getElementById('batch-preview');"
        " return i.complete && i.naturalWidth === w && i.naturalHeight === h; }",
        arg=[width, height],
    )


def test_batch_design_from_a_gbk_csv(server: Server, users: dict[str, str], new_context: Any) -> None:
    page = open_studio(new_context(locale="zh-CN", viewport=DESKTOP), server)
    sign_in(page, "alice", users["alice"])
    expect(page.locator("#home")).to_be_visible()  # signing in lands on Home
    page.goto(f"{server.base_url}/?test=1#/batch")
    cards = page.locator("#batch-templates")
    expect(cards).to_have_attribute("data-loaded", "true")
    for tid in ("price_card", "product_poster", "coupon", "xiaohongshu_cover", "story_9x16"):
        expect(cards.locator(f"[data-template={tid}]")).to_have_count(1)

    # Live preview: each template renders in its own shape with sample data (coupon: 1200x600 -> 1080x540).
    cards.locator("[data-template=coupon]").click()
    expect(page.locator("#batch-preview")).to_have_attribute("data-template", "coupon")
    wait_preview_size(page, 1080, 540)
    cards.locator("[data-template=price_card]").click()
    expect(page.locator("#batch-preview")).to_have_attribute("data-template", "price_card")
    wait_preview_size(page, 1080, 1080)
    expect(page.locator("#batch-columns")).to_contain_text("name")

    rows = [
        {"name": "青花瓷茶壶", "price": "128", "title": "新品"},
        {"name": "", "price": "39", "title": ""},  # empty required name: reported, the others render
        {"name": "Bamboo tea tray", "price": "89", "title": ""},
    ]
    page.set_input_files(
        "#batch-data-file", files=[{"name": "商品.csv", "mimeType": "text/csv", "buffer": gbk_csv(rows)}]
    )
    expect(page.locator("#batch-data-summary")).to_contain_text("3 行")
    expect(page.locator("#batch-errors")).to_contain_text("第 2 行")  # worded from the problem's code, in Chinese
    expect(page.locator("#batch-errors")).not_to_contain_text("row")
    expect(page.locator("#batch-rows tr[data-row]")).to_have_count(3)
    expect(page.locator("#batch-preview")).to_have_attribute("data-row", "0")
    page.locator("#batch-rows tr[data-row='2']").click()
    expect(page.locator("#batch-preview")).to_have_attribute("data-row", "2")
    expect(page.locator("#batch-preview-caption")).to_have_text("预览：第 3 行")
    page.check("input[name=batch-size][value=taobao]")
    shot(page, "batch-ready-zh")

    page.click("#batch-run")
    expect(page.locator("#batch-progress")).to_have_attribute("data-state", "succeeded", timeout=90_000)
    expect(page.locator("#batch-done")).to_have_text("完成：4 张设计图，1 行失败")
    href = page.locator("#batch-archive").get_attribute("href")
    shot(page, "batch-done-zh")

    data = page.evaluate("h => fetch(h).then(r => r.arrayBuffer()).then(b => Array.from(new Uint8Array(b)))", href)
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    designs = [n for n in archive.namelist() if n.endswith(".png")]
    assert len(designs) == 4  # 2 good rows x (template size + taobao)
    sizes = sorted(Image.open(io.BytesIO(archive.read(n))).size for n in designs)
    assert sizes == [(800, 800), (800, 800), (1080, 1080), (1080, 1080)]
    manifest = archive.read("manifest.csv").decode("utf-8-sig")
    assert "青花瓷茶壶" in manifest and "Bamboo tea tray" in manifest and "failed" in manifest

    page.click("#lang")
    expect(page.locator(".batch h1")).to_have_text("Batch design")
    expect(page.locator("#batch-preview-caption")).to_have_text("Preview: row 3")
    expect(page.locator("#batch-done")).to_have_text("Done: 4 designs, 1 row(s) failed")
    page.set_viewport_size(PHONE)
    shot(page, "batch-done-en-phone")
    assert page.js_errors == []  # type: ignore[attr-defined]
