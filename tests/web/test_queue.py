"""The queue page: the user's jobs live (state, progress, position, outputs), cancel, errors in plain words, retry."""

from __future__ import annotations

import re
import shutil
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.server import Server, run_cli_inprocess, wait_job
from tests.web.conftest import GENERATION_MS, PHONE, expect, login_client, open_studio, shot, sign_in

SMALL = {"width": 64, "height": 64, "steps": 3, "model": "tiny"}
SLOW = {"width": 512, "height": 512, "steps": 150, "model": "tiny"}  # keeps the single worker busy for a while


def submit(client: httpx.Client, prompt: str, params: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v1/jobs", json={"op": "txt2img", "params": {"prompt": prompt, **params}})
    assert r.status_code == 201, r.text
    return r.json()


def open_queue(new_context: Any, server: Server, user: str, password: str, **ctx: Any) -> Any:
    page = open_studio(new_context(**ctx), server)
    sign_in(page, user, password)
    expect(page.locator("#home")).to_be_visible()  # signing in lands on Home
    if page.locator("#nav-toggle").is_visible():  # a phone: the nav folds behind 菜单
        page.click("#nav-toggle")
    page.click("#nav a[data-route=queue]")
    expect(page.locator("#queue-list")).to_have_attribute("data-loaded", "true")
    return page


def row(page: Any, job_id: str) -> Any:
    return page.locator(f"#queue-list [data-job-id='{job_id}']")


def test_jobs_show_up_progress_and_end_with_their_outputs(
    server: Server, users: dict[str, str], new_context: Any
) -> None:
    with closing(login_client(server, "alice")) as alice:
        first = submit(alice, "a red lantern at night", SMALL)
        second = submit(alice, "一只青花瓷茶壶", SMALL)
        page = open_queue(new_context, server, "alice", users["alice"], locale="zh-CN")
        rows = page.locator("#queue-list [data-job-id]")
        expect(rows).to_have_count(2)
        expect(rows.first).to_have_attribute("data-job-id", second["id"])  # newest first
        newest = row(page, second["id"])
        expect(newest.locator(".job-op")).to_have_text("文生图")  # the op's title from /api/v1/ops
        expect(newest.locator(".job-prompt")).to_have_text("一只青花瓷茶壶")
        # The page follows the jobs by itself until both are done, each with a thumbnail into the library.
        for job in (first, second):
            expect(row(page, job["id"])).to_have_attribute("data-state", "succeeded", timeout=GENERATION_MS)
        done = wait_job(alice, second["id"])
    thumb = newest.locator(".job-outputs a")
    expect(thumb).to_have_attribute("href", f"#/library?asset={done['outputs'][0]['asset_id']}")
    page.wait_for_function(
        "id => document.querySelector(`[data-job-id='${id}'] .job-outputs img`)?.naturalWidth === 64", arg=second["id"]
    )
    expect(newest.locator(".badge")).to_have_text("完成")
    expect(newest.locator(".job-cancel, .job-retry")).to_have_count(0)  # nothing to do with a finished job
    shot(page, "queue-zh")

    page.click("#lang")
    expect(newest.locator(".badge")).to_have_text("Done")
    expect(newest.locator(".job-op")).to_have_text("Text to image")
    expect(page.locator("#queue-state option[value=failed]")).to_have_text("Failed")
    shot(page, "queue-en")

    page.select_option("#queue-state", "failed")  # the filter asks the API for that state only
    expect(page.locator("#queue-empty")).to_be_visible()
    expect(page.locator("#queue-list [data-job-id]")).to_have_count(0)
    page.select_option("#queue-state", "succeeded")
    expect(page.locator("#queue-list [data-job-id]")).to_have_count(2)
    thumb.click()
    expect(page).to_have_url(re.compile(r"#/library\?asset="))
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_cancel_a_queued_job_behind_a_running_one(server: Server, users: dict[str, str], new_context: Any) -> None:
    with closing(login_client(server, "bob")) as bob:
        busy = submit(bob, "a long one", SLOW)
        waiting = [submit(bob, f"waiting {i}", SMALL) for i in range(2)]
        page = open_queue(new_context, server, "bob", users["bob"], locale="zh-CN")
        expect(row(page, busy["id"])).to_have_attribute("data-state", "running", timeout=GENERATION_MS)
        last = row(page, waiting[1]["id"])  # one job ahead of it still waits too
        expect(last).to_have_attribute("data-state", "queued")
        # the position, then the estimate once this server has finished jobs of the op ("· 预计约 40 秒后开始")
        expect(last.locator(".job-step")).to_have_text(
            re.compile(r"^你前面还有 1 个自己的任务（各用户轮流执行）( · 预计约 .+后开始)?$")
        )
        expect(row(page, busy["id"]).locator(".job-step")).to_have_text(re.compile(r"第 \d+ / 150 步"))

        last.locator(".job-cancel").click()
        expect(last).to_have_attribute("data-state", "cancelled")
        expect(last.locator(".badge")).to_have_text("已取消")
        expect(last.locator(".job-retry")).to_be_visible()
        assert bob.get(f"/api/v1/jobs/{waiting[1]['id']}").json()["state"] == "cancelled"
        # The next one moves up; stopping the long job lets it run.
        row(page, busy["id"]).locator(".job-cancel").click()
        expect(row(page, busy["id"])).to_have_attribute("data-state", "cancelled")
        expect(row(page, waiting[0]["id"])).to_have_attribute("data-state", "succeeded", timeout=GENERATION_MS)
    assert page.js_errors == []  # type: ignore[attr-defined]


@pytest.fixture
def fragile_model(server: Server, tiny_sd15: Path, tmp_path: Path) -> Path:
    """A second copy of the tiny model, registered with the CLI; the test hides its folder so loading fails."""
    copy = tmp_path / "fragile"
    shutil.copytree(tiny_sd15, copy)
    # `zz-fragile` sorts after `tiny`: not the default model
    run_cli_inprocess(server.home, "models", "add", str(copy), "--name", "zz-fragile")
    return copy


def test_a_failed_job_says_why_and_retry_runs_it_again(
    server: Server, users: dict[str, str], new_context: Any, fragile_model: Path
) -> None:
    hidden = fragile_model.with_name("fragile-hidden")
    fragile_model.rename(hidden)
    with closing(login_client(server, "carol")) as carol:
        failed = wait_job(carol, submit(carol, "a paper crane", {**SMALL, "model": "zz-fragile"})["id"])
        assert failed["state"] == "failed" and failed["error"]["code"] == "model_load_failed"
        assert str(tmp_root(fragile_model)) not in failed["error"]["message"]  # no server paths for users
        page = open_queue(new_context, server, "carol", users["carol"], locale="zh-CN")
        bad = row(page, failed["id"])
        expect(bad).to_have_attribute("data-state", "failed")
        error = bad.locator(".job-error")
        expect(error).to_be_visible()
        # Plain words in the page's language only, naming the model; never a bare code.
        expect(error).to_contain_text("无法加载模型“zz-fragile”")
        expect(error).not_to_contain_text("could not load")
        shot(page, "queue-failed-zh")

        hidden.rename(fragile_model)  # the files are back
        bad.locator(".job-retry").click()
        rows = page.locator("#queue-list [data-job-id]")
        expect(rows).to_have_count(2)
        fresh_id = rows.first.get_attribute("data-job-id")
        assert fresh_id != failed["id"]
        fresh = row(page, fresh_id)
        expect(fresh.locator(".job-origin")).to_contain_text(failed["id"])
        expect(fresh).to_have_attribute("data-state", "succeeded", timeout=GENERATION_MS)
        expect(fresh.locator(".job-outputs img")).to_be_visible()
        assert carol.get(f"/api/v1/jobs/{fresh_id}").json()["params"] == failed["params"]
        expect(bad).to_have_attribute("data-state", "failed")  # the original stays, below the new one
    assert page.js_errors == []  # type: ignore[attr-defined]

    phone = open_queue(new_context, server, "carol", users["carol"], locale="zh-CN", viewport=PHONE)
    first = phone.locator("#queue-list [data-job-id]").first
    expect(first).to_have_attribute("data-state", "succeeded")
    failed_row = row(phone, failed["id"])
    expect(failed_row.locator(".job-actions")).to_be_visible()
    # Both boxes read in one step: the list re-renders while it polls, so two separate reads can meet a detached row.
    main, actions = phone.wait_for_function(STACKED_BOXES, arg=failed["id"]).json_value()
    assert actions["y"] >= main["y"] + main["height"] - 1  # stacked, not side by side
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways at phone width ({width}px)"
    shot(phone, "queue-zh-phone")
    assert phone.js_errors == []  # type: ignore[attr-defined]


STACKED_BOXES = """(id) => {
  const row = document.querySelector(`#queue-list [data-job-id="${id}"]`);
  const parts = row && [row.querySelector(".job-main"), row.querySelector(".job-actions")];
  if (!parts || !parts.every((el) => el && el.getClientRects().length)) return null;
  return parts.map((el) => { const r = el.getBoundingClientRect(); return { y: r.y, height: r.height }; });
}"""


def tmp_root(path: Path) -> Path:
    """The folder the test's model lives in: the server's own directory layout, which users must not see."""
    return path.parent
