"""Create's pro mode: the form is generated from each operation's JSON schema; remix re-makes an image."""

from __future__ import annotations

import hashlib
from contextlib import closing
from typing import Any

from tests.helpers.server import Server
from tests.web.conftest import GENERATION_MS, PHONE, api_json, expect, login_client, open_studio, shot, sign_in


def pro_txt2img(ctx: Any, server: Server, users: dict[str, str], prompt: str) -> Any:
    """alice's studio in pro mode, on txt2img, with `prompt` typed in."""
    page = open_studio(ctx, server)
    sign_in(page, "alice", users["alice"])
    page.click("#nav a[data-route=create]")  # signing in lands on Home
    page.click("label:has(#mode-pro)")
    expect(page.locator("#pro-form")).to_have_attribute("data-loaded", "true")
    page.select_option("#pro-op", "txt2img")
    page.fill("#pro-prompt", prompt)
    return page


def asset_sha(page: Any, asset_id: str) -> str:
    return api_json(page, f"/api/v1/assets/{asset_id}")["sha256"]


def test_pro_mode_every_op_bad_input_and_remix(server: Server, users: dict[str, str], new_context: Any) -> None:
    page = open_studio(new_context(locale="zh-CN"), server)
    sign_in(page, "alice", users["alice"])
    page.click("#nav a[data-route=create]")  # signing in lands on Home
    page.click("label:has(#mode-pro)")
    form = page.locator("#pro-form")
    expect(form).to_have_attribute("data-loaded", "true")

    # Every operation the server has is offered, and its parameters become fields without op-specific code.
    ops = api_json(page, "/api/v1/ops")["ops"]
    assert page.locator("#pro-op option").count() == len(ops)
    for op in ops:
        page.select_option("#pro-op", op["name"])
        expect(page.locator(f".schema-form[data-op='{op['name']}']")).to_be_visible()
        schema = op["params_schema"]
        for name in schema.get("required", []):
            expect(page.locator(f"#pro-fields [data-field='{name}']")).to_have_count(1)
        shown = {
            n
            for n, p in schema["properties"].items()
            if not p.get("readOnly") and not any(x.get("readOnly") for x in p.get("anyOf", []))
        }
        assert page.locator(
            "#pro-fields .schema-form > [data-field], #pro-fields .sf-more > [data-field]"
        ).count() == len(shown), op["name"]
    # An image parameter is a picker; LoRAs are a repeatable group.
    page.select_option("#pro-op", "upscale")
    expect(page.locator("[data-field=image] .asset-picker")).to_be_visible()
    page.select_option("#pro-op", "txt2img")
    expect(page.locator("[data-field=prompt] label")).to_have_text("画面描述必填")  # the label and its 必填 mark
    shot(page, "create-pro-zh")

    # Bad input: the API's message (in Chinese) next to the field it names; nothing is queued.
    page.fill("#pro-prompt", "一只青花瓷茶壶")
    page.fill("#pro-steps", "999")
    page.click("#pro-generate")
    err = page.locator("[data-error-for=steps]")
    expect(err).to_have_text("步数：不能大于 150")
    expect(page.locator("#pro-steps")).to_have_attribute("aria-invalid", "true")
    shot(page, "create-pro-bad-input-zh")
    assert api_json(page, "/api/v1/jobs")["jobs"] == []

    # A real run with chosen parameters; the job gets exactly those.
    page.fill("#pro-steps", "2")
    page.fill("#pro-width", "64")
    page.fill("#pro-height", "64")
    page.fill("#pro-seed", "1234")
    page.click("#pro-generate")
    expect(err).to_have_count(0)
    result = page.locator("#result-image[data-asset-id]")
    expect(result).to_be_visible(timeout=GENERATION_MS)
    first_id = result.get_attribute("data-asset-id")
    job = api_json(page, "/api/v1/jobs?limit=1")["jobs"][0]
    assert job["op"] == "txt2img"
    assert (job["params"]["steps"], job["params"]["seed"], job["params"]["width"]) == (2, 1234, 64)
    assert job["params"]["prompt"] == "一只青花瓷茶壶"

    # Remix: the asset's operation and parameters come back into the form; generating re-makes the same pixels.
    page.goto(f"{server.base_url}/?test=1#/create?remix={first_id}")
    expect(page.locator("#pro-note")).to_contain_text(first_id)
    expect(page.locator("#pro-prompt")).to_have_value("一只青花瓷茶壶")
    expect(page.locator("#pro-seed")).to_have_value("1234")
    expect(page.locator("#pro-steps")).to_have_value("2")
    page.click("#lang")  # labels follow the language switch; the values stay
    expect(page.locator("[data-field=steps] label")).to_have_text("Steps")
    expect(page.locator("#pro-prompt")).to_have_value("一只青花瓷茶壶")
    shot(page, "create-remix-en")
    page.click("#pro-generate")
    expect(page.locator("#progress")).to_have_attribute("data-state", "succeeded", timeout=GENERATION_MS)
    second_id = page.locator("#result-image[data-asset-id]").get_attribute("data-asset-id")
    assert second_id and second_id != first_id
    assert asset_sha(page, second_id) == asset_sha(page, first_id)

    page.set_viewport_size(PHONE)
    shot(page, "create-pro-en-phone")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_asset_picker_chooses_from_the_library(server: Server, users: dict[str, str], new_context: Any) -> None:
    page = open_studio(new_context(locale="en-US"), server, "#/create?op=upscale")
    sign_in(page, "bob", users["bob"])
    expect(page.locator("#home")).to_be_visible()  # signing in lands on Home
    page.goto(f"{server.base_url}/?test=1#/create?op=upscale")
    expect(page.locator(".schema-form[data-op=upscale]")).to_be_visible()
    ids = []
    for colour in ((200, 40, 40), (40, 40, 200)):
        with page.expect_file_chooser() as chooser:
            page.click("[data-field=image] .picker-upload")
        png = _png_bytes(colour)
        chooser.value.set_files({"name": "tiny.png", "mimeType": "image/png", "buffer": png})
        expect(page.locator("#pro-image")).not_to_have_value("" if not ids else ids[-1])
        ids.append(page.locator("#pro-image").input_value())
        assert api_json(page, f"/api/v1/assets/{ids[-1]}")["sha256"] == hashlib.sha256(png).hexdigest()
    expect(page.locator("[data-field=image] .picker-thumb")).to_be_visible()
    uploaded = ids[0]  # choose the first upload back from the library
    page.click("[data-field=image] .picker-choose")
    tile = page.locator(f".picker-dialog [data-asset-id='{uploaded}']")
    expect(tile).to_be_visible()
    shot(page, "create-picker-en")
    tile.click()
    expect(page.locator("#pro-image")).to_have_value(uploaded)
    assert page.js_errors == []  # type: ignore[attr-defined]


def _png_bytes(colour: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "PNG")
    return buf.getvalue()


def test_queued_job_shows_its_position_and_cancels(server: Server, users: dict[str, str], new_context: Any) -> None:
    page = open_studio(new_context(locale="zh-CN"), server)
    sign_in(page, "carol", users["carol"])
    expect(page.locator("#home")).to_be_visible()  # signing in lands on Home
    page.click("#nav a[data-route=create]")
    expect(page.locator("#create-form")).to_be_visible()
    # A long job of carol's own runs first (the server runs one job at a time), so the page's job waits in line.
    with closing(login_client(server, "carol")) as carol:
        long = {"prompt": "a long one", "width": 512, "height": 512, "steps": 60}
        r = carol.post("/api/v1/jobs", json={"op": "txt2img", "params": long})
        assert r.status_code == 201, r.text
        blocker = r.json()["id"]
        page.fill("#prompt", "一盏红灯笼")
        page.click("#generate")
        progress = page.locator("#progress")
        expect(progress).to_have_attribute("data-state", "queued")
        # Its own long job is running (not counted as ahead), so this one is next.
        expect(page.locator("#progress-text")).to_have_text("排队中 · 下一个就轮到它")
        shot(page, "create-queued-zh")
        page.click("#cancel")
        expect(progress).to_have_attribute("data-state", "cancelled")
        expect(page.locator("#progress-text")).to_have_text("已取消")
        expect(page.locator("#generate")).to_be_enabled()
        carol.post(f"/api/v1/jobs/{blocker}/cancel")
    jobs = api_json(page, "/api/v1/jobs")["jobs"]
    assert [j["state"] for j in jobs if j["params"]["prompt"] == "一盏红灯笼"] == ["cancelled"]
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_list_rows_keep_their_place_after_a_remove(server: Server, users: dict[str, str], new_context: Any) -> None:
    """LoRA rows: remove the first of two, and the API's error about the remaining one lands next to it."""
    page = pro_txt2img(new_context(locale="zh-CN"), server, users, "一只青花瓷茶壶")
    page.locator("details.sf-more").evaluate("el => el.open = true")
    add = page.locator("[data-field=loras] > .sf-add")
    add.click()
    add.click()
    items = page.locator("[data-field=loras] .sf-item")
    expect(items).to_have_count(2)
    # The name is a select of the installed LoRAs (none here): a LoRA removed since the page loaded.
    items.nth(1).locator("select").first.evaluate(
        "el => { el.add(new Option('no-such-lora', 'no-such-lora')); el.value = 'no-such-lora';"
        " el.dispatchEvent(new Event('change', {bubbles: true})); }"
    )
    items.nth(0).locator(".sf-remove").click()
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("data-field", "loras.0")
    ids = page.locator("[data-field=loras] [id]").evaluate_all("els => els.map((e) => e.id)")
    assert len(ids) == len(set(ids))
    add.click()  # a new row after a remove gets ids of its own
    ids = page.locator("[data-field=loras] [id]").evaluate_all("els => els.map((e) => e.id)")
    assert len(ids) == len(set(ids))
    page.locator("[data-field=loras] .sf-item").nth(1).locator(".sf-remove").click()
    page.click("#pro-generate")
    err = page.locator("[data-field='loras.0.name'] [data-error-for='loras.0.name'], [data-error-for='loras.0.name']")
    expect(err.first).to_be_visible()
    expect(page.locator("[data-field='loras.0'] [data-error-for]")).to_have_count(1)
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_step_previews_show_while_the_studio_follows_a_job(
    server: Server, users: dict[str, str], new_context: Any
) -> None:
    """The page follows the job over SSE, which tells the worker someone watches: previews are made and shown
    (as the latents' cheap RGB projection) before the result replaces them."""
    page = pro_txt2img(new_context(locale="en-US"), server, users, "a slow teapot")
    page.fill("#pro-steps", "150")
    page.fill("#pro-width", "64")
    page.fill("#pro-height", "64")
    page.click("#pro-generate")
    preview = page.locator("#result-image.preview")
    expect(preview).to_be_visible(timeout=GENERATION_MS)
    assert "/preview?step=" in (preview.get_attribute("src") or "")
    page.wait_for_function("() => document.querySelector('#result-image').naturalWidth === 16")  # 8x8 latents, x2
    shot(page, "create-preview-en")
    result = page.locator("#result-image[data-asset-id]:not(.preview)")
    expect(result).to_be_visible(timeout=GENERATION_MS)
