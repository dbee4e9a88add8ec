"""Home, the tool pages, the nav and the up-front "add a model first" notices, as a new merchant meets them: a real
`zhike serve` with NO checkpoint (nothing registered) but the embedded weights, so the offline tools really run."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page

from tests.helpers.server import Server, create_user, serve_process
from tests.web.conftest import DESKTOP, PASSWORD, PHONE, api_json, expect, login_client, open_studio, shot, sign_in

USER = "shop"
TOOLS_ZH = {"cutout": "抠图", "id_photo": "证件照", "upscale": "超分", "resize_design": "尺寸变换"}
TOOLS_EN = {"cutout": "Cutout", "id_photo": "ID photo", "upscale": "Upscale", "resize_design": "Resize"}


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path) -> Iterator[Server]:
    """A server as a fresh install has it: no model registered (the `server` fixture registers the tiny one)."""
    home = tmp_path_factory.mktemp("web-home") / "home"
    create_user(home, USER, PASSWORD)
    with serve_process(home, embedded_dir=str(embedded_dir)) as url:
        yield Server(url, "", "", home)


def signed_in(new_context: Any, server: Server, locale: str = "zh-CN", viewport: dict[str, int] = DESKTOP) -> Page:
    page = open_studio(new_context(locale=locale, viewport=viewport), server)
    sign_in(page, USER, PASSWORD)
    expect(page.locator("#view")).to_have_attribute("data-route", "home")  # Home, not text-to-image, comes first
    return page


def card(page: Page, op: str) -> Any:
    return page.locator(f"#home-tools a.home-card[data-href='#/tool/{op}']")


def test_home_shows_the_tools_first_and_says_generation_needs_a_model(bare: Server, new_context: Any) -> None:
    page = signed_in(new_context, bare)
    for op, name in TOOLS_ZH.items():
        expect(card(page, op).locator(".home-card-title")).to_have_text(name)
    expect(page.locator("#home-tools a[data-href='#/batch'] .home-card-title")).to_have_text("批量设计")
    notice = page.locator("#home-no-model")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("需要先添加模型")
    expect(page.locator("#home-generate a[data-href='#/create'] .home-badge")).to_have_text("需要模型")
    shot(page, "home-zh")

    page.click("#lang")
    for op, name in TOOLS_EN.items():
        expect(card(page, op).locator(".home-card-title")).to_have_text(name)
    expect(notice).to_contain_text("Add a model first")
    assert "需要" not in notice.inner_text()
    shot(page, "home-en")

    # The notice leads to the Models page, which says where the files come from and how to add them.
    page.click("#home-models-link")
    expect(page.locator("#view")).to_have_attribute("data-route", "models")
    guide = page.locator("#models-guide")
    expect(guide).to_have_attribute("open", "")
    expect(guide).to_contain_text("Civitai")
    expect(guide).to_contain_text("zhike models add")

    # Each tool is one click from the nav: the 工具 menu opens on hover.
    page.hover("#nav-tools")
    page.click("#nav a[data-route='tool/id_photo']")
    expect(page.locator("#tool-page")).to_have_attribute("data-op", "id_photo")
    expect(page.locator("#nav .nav-menu-list")).to_be_hidden()  # closed again after the click
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_nav_folds_into_a_menu_on_a_phone(bare: Server, new_context: Any) -> None:
    page = signed_in(new_context, bare, viewport=PHONE)
    expect(page.locator("#nav")).to_be_hidden()
    page.click("#nav-toggle")
    expect(page.locator("#nav a[data-route='tool/cutout']")).to_be_visible()
    shot(page, "home-nav-phone-zh")
    page.click("#nav a[data-route='tool/cutout']")
    expect(page.locator("#tool-page")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#nav")).to_be_hidden()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the tool page scrolls sideways at phone width ({width}px)"


def photo_png() -> bytes:
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.coffee()).resize((300, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_tool_card_runs_cutout_on_an_uploaded_photo(bare: Server, new_context: Any, tmp_path: Path) -> None:
    photo = tmp_path / "咖啡杯.png"
    photo.write_bytes(photo_png())
    page = signed_in(new_context, bare)
    card(page, "cutout").click()
    expect(page.locator("#tool-page")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#tool-title")).to_have_text("智能抠图")

    page.click("#tool-run")  # no image yet: said at the picker, nothing sent
    expect(page.locator("#tool-form [data-error-for=image]")).to_contain_text("图片")
    assert not [j for j in api_json(page, "/api/v1/jobs?limit=100")["jobs"] if j["op"] == "cutout"]

    page.locator("#tool-form [data-field=image] input[type=file]").set_input_files(str(photo))
    expect(page.locator("#tool-form [data-field=image] .picker-thumb")).to_be_visible()
    upload_id = page.locator("#tf-image").input_value()
    page.click("#tool-run")
    expect(page.locator("#tool-progress")).to_have_attribute("data-state", "succeeded", timeout=120_000)
    expect(page.locator("#tool-progress-text")).to_contain_text("完成")
    result = page.locator("#tool-result-image[data-asset-id]")
    expect(result).to_be_visible()
    out_id = result.get_attribute("data-asset-id")
    expect(page.locator("#tool-dl-download")).to_be_visible()
    assert f"/api/v1/assets/{out_id}/file" in (page.locator("#tool-dl-download").get_attribute("href") or "")
    shot(page, "tool-cutout-zh")

    job = api_json(page, "/api/v1/jobs?limit=1")["jobs"][0]
    assert job["op"] == "cutout" and job["params"]["image"] == upload_id
    with closing(login_client(bare, USER)) as c:
        out = Image.open(io.BytesIO(c.get(f"/api/v1/assets/{out_id}/file").content))
        alpha = out.getchannel("A") if out.mode == "RGBA" else None
    assert alpha is not None and alpha.getextrema() == (0, 255)  # background gone, subject kept

    # The pickers say what each image is: its name, what made it and when (not only pixel sizes).
    page.click("#tool-form [data-field=image] .picker-choose")
    made = page.locator(f".picker-dialog .picker-tile[data-asset-id='{out_id}']")
    expect(made.locator(".asset-name")).to_have_text("咖啡杯")
    expect(made.locator(".asset-op")).to_have_text("抠图")
    expect(page.locator(f".picker-dialog .picker-tile[data-asset-id='{upload_id}'] .asset-op")).to_have_text("上传")
    page.keyboard.press("Escape")
    page.goto(f"{bare.base_url}/?test=1#/edit")
    tile = page.locator(f"#edit-picker [data-asset-id='{out_id}']")
    expect(tile.locator(".asset-name")).to_have_text("咖啡杯")
    expect(tile.locator(".asset-op")).to_have_text("抠图")
    expect(tile.locator("time")).not_to_be_empty()
    shot(page, "edit-picker-names-zh")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_create_says_no_model_up_front_and_asks_for_a_prompt(bare: Server, new_context: Any) -> None:
    page = signed_in(new_context, bare)
    page.click("#nav a[data-route=create]")
    banner = page.locator("#create-no-model")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("还没有生成模型")
    expect(banner.locator("a")).to_have_attribute("href", "#/models")
    page.click("#generate")
    expect(page.locator("#prompt-error")).to_have_text("请填写画面描述")
    expect(page.locator("#prompt")).to_have_attribute("aria-invalid", "true")
    assert not [j for j in api_json(page, "/api/v1/jobs?limit=100")["jobs"] if j["op"] == "txt2img"]  # nothing sent
    shot(page, "create-no-model-zh")
    page.click("#lang")
    expect(page.locator("#prompt-error")).to_have_text("Describe the picture")
    expect(banner).to_contain_text("no generation model")
    assert "模型" not in banner.inner_text()


def test_top_bar_stays_above_the_canvas_when_scrolled(bare: Server, new_context: Any) -> None:
    with closing(login_client(bare, USER)) as c:
        r = c.post("/api/v1/assets", files={"file": ("杯子.png", photo_png(), "image/png")})
        asset = r.json()["id"]
    page = signed_in(new_context, bare, viewport={"width": 820, "height": 600})  # stage above the panel: a long page
    page.goto(f"{bare.base_url}/?test=1#/edit?asset={asset}")
    expect(page.locator("#edit-stage")).to_have_attribute("data-ready", "true")
    expect(page.locator(".edit-side")).to_have_attribute("data-loaded", "true")
    # No model: quick erase is chosen and AI fill says what it needs.
    expect(page.locator("#fill-classical")).to_be_checked()
    expect(page.locator("#fill-diffusion")).to_be_disabled()
    expect(page.locator("#fill-no-model")).to_be_visible()
    shot(page, "edit-fill-no-model-zh")

    # Scroll until the image's top edge is 40 px under the sticky bar, then ask what is drawn there.
    page.evaluate(
        """() => {
          const bar = document.querySelector('.topbar').getBoundingClientRect();
          const img = document.querySelector('.stage-image').getBoundingClientRect();
          window.scrollBy(0, img.top - bar.bottom + 40);
        }"""
    )
    probe = page.evaluate(
        """() => {
          const bar = document.querySelector('.topbar').getBoundingClientRect();
          const img = document.querySelector('.stage-image').getBoundingClientRect();
          const x = img.left + img.width / 2, y = bar.bottom - 6;
          const hit = document.elementFromPoint(x, y);
          const onBar = Boolean(hit && hit.closest(".topbar"));
          return {under: img.top < y && y < img.bottom, onBar, y, top: img.top, scrolled: scrollY};
        }"""
    )
    assert probe["under"], f"the image should be under the bar for this check to mean anything: {probe}"
    assert probe["onBar"], "the canvas paints over the top bar"
    assert page.js_errors == []  # type: ignore[attr-defined]
