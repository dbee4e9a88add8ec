"""Templates and batch design over HTTP (in-process app with its embedded worker) and the `zhike batch` CLI:
CRUD with validation errors naming the field, owner isolation, bundled read-only, preview PNG, data-file parsing,
the job and its ZIP; the CLI end to end with a GBK CSV and a local image, and --list-templates."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import make_settings
from tests.helpers.server import run_zhike, wait_job
from tests.test_batch_job import CARD
from zhike.api.app import create_app


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestClient]]:
    app = create_app(make_settings(tmp_path_factory.mktemp("batch-api") / "home"), start_worker=True)
    z = app.state.zhike
    out = {}
    for name in ("alice", "bob"):
        _, key = z.keys.create(f"{name}-key", owner_id=f"owner-{name}")
        out[name] = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    with TestClient(app):
        yield out
    z.engine.dispose()


def error_of(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


def test_template_crud_validation_and_isolation(clients: dict[str, TestClient]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    listed = alice.get("/api/v1/templates").json()["templates"]
    assert {"price_card", "coupon"} <= {t["id"] for t in listed} and all(t["bundled"] for t in listed)
    price = alice.get("/api/v1/templates/price_card").json()
    assert {"name", "price"} <= set(price["columns"]["required"]) and price["template"]["width"] == 1080

    bad = {**CARD, "layers": [{**CARD["layers"][1], "font_size": 1}]}
    err = error_of(alice.post("/api/v1/templates", json=bad), 422)
    assert err["field"] == "template.layers.0.font_size" and "font_size" in err["message"]

    made = alice.post("/api/v1/templates", json=CARD)
    assert made.status_code == 201, made.text
    tid = made.json()["id"]
    assert tid.startswith("my_") and made.json()["version"] == 1
    assert tid in {t["id"] for t in alice.get("/api/v1/templates").json()["templates"]}
    updated = alice.put(f"/api/v1/templates/{tid}", json={**CARD, "width": 400})
    assert updated.status_code == 200 and updated.json()["version"] == 2 and updated.json()["width"] == 400

    # bob sees none of it and cannot change it
    assert tid not in {t["id"] for t in bob.get("/api/v1/templates").json()["templates"]}
    error_of(bob.get(f"/api/v1/templates/{tid}"), 404)
    error_of(bob.put(f"/api/v1/templates/{tid}", json=CARD), 404)
    error_of(bob.delete(f"/api/v1/templates/{tid}"), 404)
    # bundled templates are read-only for everyone
    error_of(alice.put("/api/v1/templates/price_card", json=CARD), 403)
    error_of(alice.delete("/api/v1/templates/price_card"), 403)

    assert alice.delete(f"/api/v1/templates/{tid}").status_code == 200
    error_of(alice.get(f"/api/v1/templates/{tid}"), 404)


def test_preview_is_a_png_of_the_template_size(clients: dict[str, TestClient]) -> None:
    alice = clients["alice"]
    r = alice.post(
        "/api/v1/templates/preview", json={"template": "price_card", "row": {"name": "青花瓷杯", "price": 19}}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (1080, 1080)
    r = alice.post("/api/v1/templates/preview", json={"template_json": CARD, "row": {"name": "a", "price": 1}})
    assert Image.open(io.BytesIO(r.content)).size == (320, 240)
    err = error_of(alice.post("/api/v1/templates/preview", json={"template": "price_card", "row": {"price": 1}}), 422)
    assert err["field"] == "name"


def test_data_file_then_job_then_zip(clients: dict[str, TestClient]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), "teal").save(buf, "PNG")
    photo = alice.post("/api/v1/assets", files={"file": ("p.png", buf.getvalue(), "image/png")}).json()["id"]
    csv_bytes = f"name,price,image\n青花瓷杯,19.9,/api/v1/assets/{photo}/file\n,5,\n紫砂壶,128,\n".encode("gbk")
    r = alice.post(
        "/api/v1/templates/data", files={"file": ("d.csv", csv_bytes, "text/csv")}, data={"template": "price_card"}
    )
    assert r.status_code == 200, r.text
    parsed = r.json()
    assert parsed["encoding"] == "gb18030" and parsed["columns"] == ["name", "price", "image"]
    assert parsed["rows"][0]["image"] == photo and parsed["row_count"] == 3 and parsed["rows_ok"] == 2
    assert [(e["row"], e["column"]) for e in parsed["errors"]] == [(2, "name")]

    job = alice.post(
        "/api/v1/jobs",
        json={"op": "batch_design", "params": {"template": "price_card", "rows": parsed["rows"], "sizes": ["taobao"]}},
    )
    assert job.status_code == 201, job.text
    done = wait_job(alice, job.json()["id"])
    assert done["state"] == "succeeded" and done["result"]["designs_ok"] == 2 and len(done["outputs"]) == 2
    error_of(bob.get(f"/api/v1/jobs/{done['id']}/archive"), 404)
    z = alice.get(f"/api/v1/jobs/{done['id']}/archive")
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(z.content))
    manifest = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode("utf-8-sig"))))
    assert [m["status"] for m in manifest] == ["ok", "failed", "ok"] and manifest[2]["name"] == "紫砂壶"
    assert len([n for n in zf.namelist() if n.endswith(".png")]) == 2


def test_cli_batch_with_gbk_csv_and_a_local_image(tmp_path: Path) -> None:
    home = tmp_path / "home"
    listed = run_zhike(home, "batch", "--list-templates").stdout
    assert "price_card" in listed and "价格卡" in listed
    Image.new("RGB", (50, 50), "orange").save(tmp_path / "cup.png")
    (tmp_path / "data.csv").write_bytes("name,price,image\n青花瓷杯,19.9,cup.png\n,5,\n".encode("gbk"))
    out = tmp_path / "out.zip"
    proc = run_zhike(home, "batch", "price_card", str(tmp_path / "data.csv"), "-o", str(out), "--size", "taobao")
    assert "row 2" in proc.stderr and "1 designs" in proc.stdout
    zf = zipfile.ZipFile(out)
    assert "designs/青花瓷杯-taobao.png" in zf.namelist() and "manifest.csv" in zf.namelist()
    # no row rendered: non-zero exit, the errors printed
    (tmp_path / "bad.csv").write_bytes("name,price\n,1\n".encode("gbk"))
    bad = run_zhike(home, "batch", "price_card", str(tmp_path / "bad.csv"), "-o", str(out), check=False)
    assert bad.returncode == 1 and "required value is empty" in bad.stderr
    missing = run_zhike(home, "batch", "nope", str(tmp_path / "bad.csv"), check=False)
    assert missing.returncode == 2 and "not found" in missing.stderr
