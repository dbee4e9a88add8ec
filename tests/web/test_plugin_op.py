"""A throw-away operation from a plugin package appears everywhere with no change to Zhike: it is found through
the `zhike.ops` entry-point group, listed by /api/v1/ops, gets a `zhike OP` command with a flag per parameter,
and shows in the studio's Canvas tools, where it runs like any built-in tool."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.helpers.server import ZHIKE, Server, server_fixture
from tests.web.conftest import PASSWORD, login_client, open_studio, sign_in

PLUGIN_OP = '''
"""A plugin's operation: one file, no change to Zhike."""
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from zhike.core.registry import operation
from zhike.core.types import AssetId, ImageOut, ImagesResult
from zhike.core.ui import Studio, ui


class MirrorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: AssetId = Field(
        ..., description="The image", json_schema_extra=ui("图片", "Image", canvas="image", cli_argument=True)
    )
    axis: Literal["horizontal", "vertical"] = Field(
        "horizontal",
        description="Which way to flip",
        json_schema_extra=ui(
            "方向", "Axis", choices={"horizontal": ("左右", "Left-right"), "vertical": ("上下", "Up-down")}
        ),
    )


@operation(
    "demo_mirror",
    params=MirrorParams,
    result=ImagesResult,
    title={"zh": "镜像翻转", "en": "Mirror"},
    studio=Studio(tool=True, order=50, help=("把图片左右或上下翻转。", "Flip the image left-right or up-down.")),
)
def demo_mirror(ctx, p: MirrorParams) -> ImagesResult:
    """Flip an image."""
    from PIL import Image

    img = ctx.load_image(p.image, field="params.image")
    out = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT if p.axis == "horizontal" else Image.Transpose.FLIP_TOP_BOTTOM)
    aid = ctx.save_image(out, params=p.model_dump(mode="json"), seed=None, model=None, parent_id=p.image)
    return ImagesResult(images=[ImageOut(asset_id=aid, width=out.width, height=out.height)])
'''


def write_plugin(root: Path) -> Path:
    """A package plus the dist-info that declares its entry point, as `pip install` would leave them."""
    pkg = root / "zhike_demo_plugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "mirror.py").write_text(PLUGIN_OP)
    info = root / "zhike_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zhike-demo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[zhike.ops]\nmirror = zhike_demo_plugin.mirror\n")
    return root


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = write_plugin(tmp_path_factory.mktemp("plugin"))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), old]))  # the server and CLI inherit it
    yield str(root)
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path, plugin_path: str
) -> Iterator[Server]:
    yield from server_fixture(request, tmp_path_factory.mktemp("web-plugin"), tiny_sd15)


def test_plugin_op_is_listed_by_the_api_and_has_a_command(server: Server, plugin_path: str) -> None:
    ops = httpx.get(f"{server.base_url}/api/v1/ops", headers={"Authorization": f"Bearer {server.key_a}"}).json()
    mine = next(o for o in ops["ops"] if o["name"] == "demo_mirror")
    assert mine["module"] == "zhike_demo_plugin.mirror" and mine["studio"]["tool"] is True
    axis = mine["params_schema"]["properties"]["axis"]
    assert axis["x-zhike"]["label"] == {"zh": "方向", "en": "Axis"} and axis["enum"] == ["horizontal", "vertical"]
    env = {**os.environ, "COLUMNS": "300", "ZHIKE_HOME": str(server.home)}
    r = subprocess.run([ZHIKE, "demo-mirror", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "--axis" in r.stdout and "horizontal" in r.stdout and "default: horizontal" in r.stdout
    assert "镜像翻转 Mirror" in r.stdout and "IMAGE" in r.stdout
    listed = subprocess.run([ZHIKE, "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert "demo-mirror" in listed.stdout


def test_plugin_op_runs_from_the_cli(server: Server, plugin_path: str, tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    img = Image.new("RGB", (40, 20), "white")
    img.paste((255, 0, 0), (0, 0, 10, 20))  # red on the left
    img.save(src)
    env = {**os.environ, "ZHIKE_HOME": str(tmp_path / "home")}
    out = tmp_path / "out.png"
    r = subprocess.run(
        [ZHIKE, "demo-mirror", str(src), "-o", str(out)], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    flipped = np.asarray(Image.open(out).convert("RGB"))
    assert tuple(flipped[10, 35]) == (255, 0, 0) and tuple(flipped[10, 5]) == (255, 255, 255)  # red moved right


def test_plugin_op_is_a_studio_tool(server: Server, users: dict[str, str], new_context: Any) -> None:
    client = login_client(server, "alice")
    img = Image.new("RGB", (64, 48), "white")
    img.paste((0, 0, 255), (0, 0, 64, 12))  # blue band at the top
    buf = io.BytesIO()
    img.save(buf, "PNG")
    asset = client.post("/api/v1/assets", files={"file": ("in.png", buf.getvalue(), "image/png")}).json()["id"]
    page = open_studio(new_context(locale="zh-CN"), server)
    sign_in(page, "alice", PASSWORD)
    expect(page.locator("#home")).to_be_visible()  # signing in lands on Home
    page.goto(f"{server.base_url}/?test=1#/edit?asset={asset}")
    expect(page.locator(".edit-side")).to_have_attribute("data-loaded", "true")
    page.click("[data-mode=tools]")
    expect(page.locator("#tool-op option[value=demo_mirror]")).to_have_text("镜像翻转")
    page.select_option("#tool-op", "demo_mirror")
    expect(page.locator("#tool-help")).to_have_text("把图片左右或上下翻转。")
    expect(page.locator("#tool-axis option[value=vertical]")).to_have_text("上下")  # its own choice labels
    page.select_option("#tool-axis", "vertical")
    page.click("#edit-run")
    result = page.locator("#edit-result-image[data-asset-id]")
    expect(result).to_be_visible(timeout=60_000)
    out = client.get(f"/api/v1/assets/{result.get_attribute('data-asset-id')}/file")
    arr = np.asarray(Image.open(io.BytesIO(out.content)).convert("RGB"))
    assert tuple(arr[44, 30]) == (0, 0, 255) and tuple(arr[2, 30]) == (255, 255, 255)  # the band moved down
    assert page.js_errors == []  # type: ignore[attr-defined]
    client.close()
