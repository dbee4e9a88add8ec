"""Batch product photos (批量主图) in the studio: pick photos and drop one more (a real JPEG among them, and an empty
one), run, see the finished images and the empty photo's problem, download the ZIP and find the photos' names."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.helpers.server import Server, create_user, server_fixture
from tests.test_product_photos import blank_png, coffee, cut_png
from tests.web.conftest import DESKTOP, PASSWORD, expect, open_studio, shot, sign_in


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path, embedded_dir: Path
) -> Iterator[Server]:
    yield from server_fixture(request, tmp_path_factory.mktemp("web-pp"), tiny_sd15, embedded_dir=str(embedded_dir))


def test_drop_photos_run_and_download_the_zip(server: Server, new_context: Any) -> None:
    create_user(server.home, "shop", PASSWORD)
    page = open_studio(new_context(locale="zh-CN", viewport=DESKTOP), server)
    sign_in(page, "shop", PASSWORD)
    expect(page.locator("#nav")).to_be_visible()
    page.goto(f"{server.base_url}/?test=1#/product-photos")
    expect(page.locator(".pp h1")).to_have_text("批量主图")
    expect(page.locator(".pp-form")).to_have_attribute("data-loaded", "true")

    page.set_input_files(
        "#pp-files",
        files=[
            {"name": "咖啡杯.jpg", "mimeType": "image/jpeg", "buffer": coffee()},
            {"name": "保温杯.png", "mimeType": "image/png", "buffer": cut_png()},
            {"name": "空白.png", "mimeType": "image/png", "buffer": blank_png()},  # nothing to cut out
        ],
    )
    page.evaluate(  # a file dropped on the drop zone, as a browser's drag and drop hands it over
        """([name, bytes]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name, {type: "image/png"}));
            document.getElementById("pp-drop").dispatchEvent(
                new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""",
        ["茶壶.png", list(cut_png(colour="#7a4"))],
    )
    expect(page.locator("#pp-list li[data-state=ok]")).to_have_count(4)
    expect(page.locator("#pp-upload-status")).to_have_text("已上传 4 张")
    # Settings come from the op's Params: the background's swatches only show for a colour background.
    expect(page.locator(".pp-form [data-field=color]")).to_be_hidden()
    page.select_option("#pp-background", "color")
    expect(page.locator(".pp-form [data-field=color]")).to_be_visible()
    page.select_option("#pp-background", "white")
    expect(page.locator(".pp-form input[data-size-id=taobao]")).to_be_checked()
    page.check(".pp-form input[data-size-id=jd]")
    shot(page, "product-photos-ready-zh")

    page.click("#pp-run")
    expect(page.locator("#pp-progress")).to_have_attribute("data-state", "succeeded", timeout=240_000)
    expect(page.locator("#pp-done")).to_have_text("完成：3 张照片，共 6 张主图；1 张有问题")
    expect(page.locator("#pp-outputs img")).to_have_count(6)
    expect(page.locator("#pp-problems li")).to_have_text(["空白 没有找到商品主体：请用主体清晰的照片"])
    page.wait_for_function(
        "() => [...document.querySelectorAll('#pp-outputs img')].every((i) => i.complete && i.naturalWidth)"
    )
    shot(page, "product-photos-done-zh")

    href = page.locator("#pp-archive").get_attribute("href")
    data = page.evaluate("h => fetch(h).then(r => r.arrayBuffer()).then(b => Array.from(new Uint8Array(b)))", href)
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    pngs = sorted(n for n in archive.namelist() if n.endswith(".png"))
    assert pngs == sorted(
        f"{name}-{size}-800x800.png" for name in ("咖啡杯", "保温杯", "茶壶") for size in ("taobao", "jd")
    )
    assert Image.open(io.BytesIO(archive.read("咖啡杯-taobao-800x800.png"))).size == (800, 800)

    page.click("#lang")
    expect(page.locator(".pp h1")).to_have_text("Batch product photos")
    expect(page.locator("#pp-done")).to_have_text("Done: 3 photos, 6 images; 1 with problems")
    expect(page.locator("#pp-problems li")).to_have_text(["空白 no product found: use a photo with one clear product"])
    shot(page, "product-photos-done-en")
    assert page.js_errors == []  # type: ignore[attr-defined]
