"""`zhike verify FILE` and `POST /api/v1/verify`: labelled exports of real assets, stripped copies found by their
watermark, owner scoping, and clear errors for bad files."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from skimage import data as skdata

from tests.conftest import make_settings
from tests.helpers.cli import cli_for
from zhike.api.app import create_app
from zhike.core.rows import AssetRow
from zhike.services.assets.service import AssetService
from zhike.services.container import Zhike


def make_asset(z: Zhike, owner: str) -> tuple[AssetRow, bytes]:
    """A generated asset stored the way jobs store them, and its labelled export bytes."""
    img = Image.fromarray(skdata.coffee()).convert("RGB").resize((512, 384))
    staged = z.assets.stage_image(
        img, owner_id=owner, job_id="job1", op="txt2img", params={"prompt": "咖啡"}, seed=7, model="tiny"
    )
    with z.engine.begin() as conn:
        AssetService.commit_staged(conn, [staged])
    row = z.assets.get(staged.row.id, owner_id=owner)
    return row, z.labels.label_image(z.assets.read_bytes(row), row.mime, row)


def jpeg80(data: bytes) -> bytes:
    """What a chat app does to a shared image: decode, re-encode at quality 80, no metadata."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def api(home: Path) -> Iterator[tuple[TestClient, Zhike]]:
    settings = make_settings(home)
    application = create_app(settings, start_worker=False)
    with TestClient(application) as client:
        yield client, application.state.zhike


def test_api_verify_reports_labels_and_finds_own_assets_only(api: tuple[TestClient, Zhike]) -> None:
    client, z = api
    _, key_a = z.keys.create("a", owner_id="owner-a")
    _, key_b = z.keys.create("b", owner_id="owner-b")
    row, exported = make_asset(z, "owner-a")
    auth_a = {"Authorization": f"Bearer {key_a}"}

    r = client.post("/api/v1/verify", files={"file": ("x.png", exported, "image/png")}, headers=auth_a)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["implicit"]["status"] == "valid" and body["implicit"]["fields"]["ProduceID"] == row.id
    assert body["c2pa"]["status"] == "trusted" and body["c2pa"]["model"] == "tiny"
    assert body["watermark"]["status"] == "valid"
    assert body["asset"]["id"] == row.id and body["asset"]["in_deployment"] is True
    assert body["summary"]["zh"].startswith("AI生成内容")

    # Metadata gone (JPEG 80): the watermark still leads the owner to the asset...
    r = client.post("/api/v1/verify", files={"file": ("x.jpg", jpeg80(exported), "image/jpeg")}, headers=auth_a)
    body = r.json()
    assert body["implicit"]["status"] == "absent" and body["c2pa"]["status"] == "absent"
    assert body["asset"]["id"] == row.id and body["asset"]["found_by"] == ["watermark"]
    # ...but not another owner: no probing of other users' assets through the watermark.
    r = client.post(
        "/api/v1/verify",
        files={"file": ("x.jpg", jpeg80(exported), "image/jpeg")},
        headers={"Authorization": f"Bearer {key_b}"},
    )
    assert r.json()["asset"]["id"] is None and r.json()["asset"]["in_deployment"] is False


def gif() -> bytes:
    buf = io.BytesIO()
    Image.new("P", (4, 4)).save(buf, "GIF")
    return buf.getvalue()


@pytest.mark.parametrize(
    "payload,status",
    [
        (b"", 422),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 422),  # truncated
        (gif(), 415),  # an image, but labels are read from PNG, JPEG and WebP
        (b"x" * 31_000_001, 413),  # over max_upload_mb (30 MB)
    ],
)
def test_api_verify_bad_files_name_the_field(api: tuple[TestClient, Zhike], payload: bytes, status: int) -> None:
    client, z = api
    _, key = z.keys.create("a", owner_id="owner-a")
    auth = {"Authorization": f"Bearer {key}"}
    r = client.post("/api/v1/verify", files={"file": ("x", payload, "application/octet-stream")}, headers=auth)
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == "file"


def test_api_verify_needs_a_key_and_a_file(api: tuple[TestClient, Zhike]) -> None:
    client, z = api
    assert client.post("/api/v1/verify", files={"file": ("x.png", b"x", "image/png")}).status_code == 401
    _, key = z.keys.create("a", owner_id="owner-a")
    r = client.post("/api/v1/verify", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 422 and "file" in r.text


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from cli_for(home, monkeypatch)


def test_cli_verify(cli: Any, home: Path, tmp_path: Path) -> None:
    z = Zhike(make_settings(home))
    row, exported = make_asset(z, "local")
    labelled = tmp_path / "labelled.png"
    labelled.write_bytes(exported)
    stripped = tmp_path / "shared.jpg"
    stripped.write_bytes(jpeg80(exported))

    res = cli("verify", str(labelled))
    assert res.exit_code == 0, res.output
    assert row.id in res.output and "trusted" in res.output and "隐式标识" in res.output

    res = cli("verify", str(stripped), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["asset"]["id"] == row.id and report["asset"]["found_by"] == ["watermark"]

    plain = tmp_path / "plain.png"
    Image.fromarray(skdata.coffee()).save(plain)
    res = cli("verify", str(plain))
    assert res.exit_code == 1 and "未发现" in res.output

    bad = tmp_path / "bad.png"
    bad.write_bytes(exported[:200])
    res = cli("verify", str(bad))
    assert res.exit_code == 2 and "FILE" in res.output and "truncated" in res.output
    res = cli("verify", str(tmp_path / "missing.png"))
    assert res.exit_code == 2 and "no file" in res.output
    z.engine.dispose()


def test_file_and_thumbnail_answers_are_labelled_cached_and_uploads_untouched(api: tuple[TestClient, Zhike]) -> None:
    client, z = api
    _, key = z.keys.create("a", owner_id="owner-a")
    auth = {"Authorization": f"Bearer {key}"}
    row, _ = make_asset(z, "owner-a")

    r = client.get(f"/api/v1/assets/{row.id}/file", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    body = client.post("/api/v1/verify", files={"file": ("x.png", r.content, "image/png")}, headers=auth).json()
    assert body["implicit"]["status"] == "valid" and body["c2pa"]["status"] == "trusted"
    assert body["watermark"]["status"] == "valid" and body["asset"]["id"] == row.id
    # Made once per asset and settings: the same bytes and ETag again, and a 304 for the browser's copy.
    again = client.get(f"/api/v1/assets/{row.id}/file", headers=auth)
    assert again.content == r.content and again.headers["etag"] == r.headers["etag"]
    r304 = client.get(f"/api/v1/assets/{row.id}/file", headers={**auth, "If-None-Match": r.headers["etag"]})
    assert r304.status_code == 304 and not r304.content

    thumb = client.get(f"/api/v1/assets/{row.id}/thumb", headers=auth)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    small = Image.open(io.BytesIO(thumb.content))
    assert max(small.size) == 256 and small.size == (256, 192)
    tb = client.post("/api/v1/verify", files={"file": ("t.webp", thumb.content, "image/webp")}, headers=auth).json()
    assert tb["implicit"]["fields"]["ProduceID"] == row.id and tb["c2pa"]["status"] == "trusted"
    r = client.get(f"/api/v1/assets/{row.id}/thumb?size=300", headers=auth)
    assert r.status_code == 422 and r.json()["error"]["field"] == "size"
    assert client.get(f"/api/v1/assets/{row.id}/thumb").status_code == 401

    # An upload is the user's own file: returned exactly as sent, no AI label.
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (10, 120, 200)).save(buf, "PNG")
    up = client.post("/api/v1/assets", files={"file": ("u.png", buf.getvalue(), "image/png")}, headers=auth).json()
    assert client.get(f"/api/v1/assets/{up['id']}/file", headers=auth).content == buf.getvalue()
