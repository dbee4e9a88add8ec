"""A tool result's Download: a photo uploaded as 咖啡杯.jpg, cut out on the canvas, downloaded as JPEG at 800×800:
the browser saves 抠图-咖啡杯-800x800.jpg, an 800×800 JPEG carrying its provenance labels. Real server, real
ISNet weights, real Chromium."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from skimage import data as skdata

from tests.helpers.server import Server, server_fixture
from tests.web.conftest import GENERATION_MS, PASSWORD, expect, login_client, open_studio, shot, sign_in


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path
) -> Iterator[Server]:
    embedded = Path(os.environ["ZHIKE_EMBEDDED_DIR"])
    if not (embedded / "isnet-medium").is_dir():
        pytest.fail(f"embedded matting weights missing in {embedded}: run `make embedded`")
    yield from server_fixture(request, tmp_path_factory.mktemp("web-dl"), tiny_sd15, embedded_dir=str(embedded))


@pytest.fixture(scope="module")
def alice(server: Server, users: dict[str, str]) -> Iterator[httpx.Client]:
    c = login_client(server, "alice")
    yield c
    c.close()


def test_cutout_result_downloads_as_a_named_labelled_jpeg_of_the_marketplace_size(
    server: Server, alice: httpx.Client, new_context: Any, tmp_path: Path
) -> None:
    buf = io.BytesIO()
    Image.fromarray(skdata.coffee()).resize((300, 225)).save(buf, "JPEG", quality=90)
    r = alice.post("/api/v1/assets", files={"file": ("咖啡杯.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 201 and r.json()["name"] == "咖啡杯"
    photo = r.json()["id"]

    page = open_studio(new_context(locale="zh-CN"), server)
    sign_in(page, "alice", PASSWORD)
    expect(page.locator("nav")).to_be_visible()
    page.goto(f"{server.base_url}/?test=1#/edit?asset={photo}")
    expect(page.locator(".edit-side")).to_have_attribute("data-loaded", "true")
    page.click("[data-mode=tools]")
    page.select_option("#tool-op", "cutout")
    page.click("#edit-run")
    expect(page.locator("#edit-result-image[data-asset-id]")).to_be_visible(timeout=2 * GENERATION_MS)  # 2 busy cores
    result = page.locator("#edit-result-image").get_attribute("data-asset-id")

    # The panel under the result: format, a marketplace size, Download.
    panel = page.locator("#edit-result-panel")
    expect(panel.locator("#edit-result-download")).to_have_text("下载")
    expect(page.locator("#edit-result-size option[value=taobao]")).to_have_count(1)
    page.select_option("#edit-result-format", "jpeg")
    page.select_option("#edit-result-size", "taobao")
    shot(page, "download-panel-zh")
    with page.expect_download() as info:
        page.click("#edit-result-download")
    download = info.value
    assert download.suggested_filename == "抠图-咖啡杯-800x800.jpg"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    data = saved.read_bytes()
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG" and img.size == (800, 800)
    # Its labels, read back by the project's own verifier: they name the cut-out.
    report = alice.post("/api/v1/verify", files={"file": (saved.name, data, "image/jpeg")}).json()
    assert report["implicit"]["status"] == "valid" and report["asset"]["id"] == result
    assert report["c2pa"]["status"] in ("trusted", "valid")
    assert page.js_errors == []  # type: ignore[attr-defined]
