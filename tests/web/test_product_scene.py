"""Product in scene (subject_swap) in the Canvas tools: pick a scene, drag the product to where it should stand on
the scene preview, run; the job gets that spot and the result's product stands there. Real server, real browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.server import Server, server_fixture
from tests.test_product_scene import bottle, table_scene
from tests.web.conftest import expect, login_client, shot
from tests.web.test_editor import last_job, open_editor, upload, wait_result


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path
) -> Iterator[Server]:
    yield from server_fixture(request, tmp_path_factory.mktemp("web-scene"), tiny_sd15)


@pytest.fixture(scope="module")
def alice(server: Server, users: dict[str, str]) -> Iterator[httpx.Client]:
    c = login_client(server, "alice")
    yield c
    c.close()


def test_drag_the_product_to_its_spot_on_the_scene(server: Server, alice: httpx.Client, new_context: Any) -> None:
    scene = table_scene(w=240, h=168)
    scene_id, product_id = upload(alice, scene), upload(alice, bottle(h=80))
    page = open_editor(new_context, server, product_id)
    page.click("[data-mode=tools]")
    page.select_option("#tool-op", "subject_swap")
    expect(page.locator("#spot-panel")).to_be_hidden()  # no scene yet: nothing to drag on
    page.click("[data-field=scene_image] .picker-choose")
    page.click(f".picker-dialog [data-asset-id='{scene_id}']")
    expect(page.locator("#spot-panel")).to_be_visible()
    expect(page.locator("#spot-value")).to_contain_text("自动")
    page.wait_for_function("() => document.querySelector('#spot-scene').naturalWidth > 0")
    page.locator("#spot-scene").scroll_into_view_if_needed()
    box = page.locator("#spot-scene").bounding_box()
    assert box
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.8 * box["height"], steps=8)
    page.mouse.up()
    expect(page.locator("#spot-ghost")).to_be_visible()
    expect(page.locator("#spot-value")).to_contain_text("0.30")
    shot(page, "edit-product-spot-zh")
    page.click("#edit-run")
    wait_result(page)
    job = last_job(page)
    assert job["op"] == "subject_swap" and job["params"]["scene_image"] == scene_id
    spot = job["params"]["placement"]
    assert abs(spot["x"] - 0.3) < 0.02 and abs(spot["y"] - 0.8) < 0.02
    x0, _, x1, y1 = job["result"]["product_box"]
    assert job["result"]["placed_on"] == "position"
    assert abs((x0 + x1) / 2 - spot["x"] * 240) <= 2 and abs(y1 - spot["y"] * 168) <= 2
    shot(page, "edit-product-spot-result-zh")
    assert page.js_errors == []  # type: ignore[attr-defined]
