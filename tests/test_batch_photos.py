"""Batch design data that carries photos: the image column holds the photos' file names, the photos come as a ZIP
(or single files) over HTTP and as a folder on the CLI. A photo ZIP is refused before it is inflated when it is a
bomb (too many files, too high a ratio, too large inflated), climbs out of itself or holds another archive."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import make_settings
from tests.helpers.server import run_zhike, wait_job
from zhike.api.app import create_app


def png(colour: str, size: tuple[int, int] = (60, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def jpeg(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (60, 60), colour).save(buf, "JPEG")
    return buf.getvalue()


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path_factory.mktemp("batch-photos") / "home", zip_max_mb=1), start_worker=True)
    z = app.state.zhike
    _, key = z.keys.create("key", owner_id="owner-a")
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as c:
        yield c
    z.engine.dispose()


def send_photos(client: TestClient, name: str, data: bytes) -> Any:
    return client.post("/api/v1/templates/photos", files={"file": (name, data, "application/octet-stream")})


def error_of(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


def test_rows_name_photos_uploaded_in_a_zip_and_the_job_renders_them(client: TestClient) -> None:
    archive = make_zip(
        {
            "商品图/咖啡杯.jpg": jpeg("sienna"),
            "商品图/茶壶.PNG": png("navy"),
            "商品图/坏图.png": b"\x89PNG\r\n\x1a\n broken",
            "__MACOSX/商品图/._咖啡杯.jpg": b"resource fork",
            "说明.txt": b"not a photo",
        }
    )
    up = send_photos(client, "照片.zip", archive)
    assert up.status_code == 201, up.text
    photos = {p["name"]: p["asset_id"] for p in up.json()["photos"]}
    assert set(photos) == {"咖啡杯.jpg", "茶壶.PNG"}
    assert [(p["name"], p["code"]) for p in up.json()["problems"]] == [("坏图.png", "image_damaged")]
    single = send_photos(client, "花瓶.png", png("green"))  # a single image is one photo
    photos |= {p["name"]: p["asset_id"] for p in single.json()["photos"]}
    assert client.get(f"/api/v1/assets/{photos['咖啡杯.jpg']}").json()["name"] == "咖啡杯"

    csv_rows = "name,price,image\n拿铁杯,29,咖啡杯.jpg\n紫砂壶,128,茶壶\n花瓶,59,花瓶.PNG\n没有图,9,没有.jpg\n"
    parsed = client.post(
        "/api/v1/templates/data",
        files={"file": ("商品.csv", csv_rows.encode("utf-8"), "text/csv")},
        data={"template": "price_card", "photos": json.dumps(photos, ensure_ascii=False)},
    )
    assert parsed.status_code == 200, parsed.text
    body = parsed.json()
    rows = body["rows"]
    assert [r["image"] for r in rows[:3]] == [photos["咖啡杯.jpg"], photos["茶壶.PNG"], photos["花瓶.png"]]
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(4, "image")]
    assert "没有.jpg" in body["errors"][0]["message"]

    job = client.post(
        "/api/v1/jobs", json={"op": "batch_design", "params": {"template": "price_card", "rows": rows[:3]}}
    )
    assert job.status_code in (200, 201, 202), job.text
    done = wait_job(client, job.json()["id"], timeout=180)
    assert done["state"] == "succeeded", done
    designs = done["result"]["designs"]
    assert len(designs) == 3
    parents = [client.get(f"/api/v1/assets/{d['asset_id']}").json()["parent_id"] for d in designs]
    assert parents == [photos["咖啡杯.jpg"], photos["茶壶.PNG"], photos["花瓶.png"]]

    bad = client.post(
        "/api/v1/templates/data",
        files={"file": ("商品.csv", csv_rows.encode("utf-8"), "text/csv")},
        data={"template": "price_card", "photos": "[1, 2]"},
    )
    assert error_of(bad, 422)["field"] == "photos"


def test_unsafe_and_oversized_zips_are_refused_with_a_code(client: TestClient) -> None:
    err = error_of(send_photos(client, "a.zip", make_zip({"../../etc/evil.png": png("red")})), 422)
    assert (err["code"], err["field"], err["ctx"]["what"]) == ("archive_unsafe", "file", "path")
    err = error_of(send_photos(client, "a.zip", make_zip({"/abs/evil.png": png("red")})), 422)
    assert err["code"] == "archive_unsafe"
    inner = make_zip({"x.png": png("red")})
    err = error_of(send_photos(client, "a.zip", make_zip({"more.zip": inner})), 422)
    assert (err["code"], err["ctx"]["what"]) == ("archive_unsafe", "nested")
    err = error_of(send_photos(client, "a.zip", make_zip({"renamed.jpg": inner})), 422)  # a ZIP dressed as a photo
    assert (err["code"], err["ctx"]["what"]) == ("archive_unsafe", "nested")
    many = make_zip({f"{i}.png": b"x" for i in range(501)})
    err = error_of(send_photos(client, "a.zip", many), 413)
    assert (err["code"], err["ctx"]["what"], err["limit"]) == ("data_too_large", "zip_members", 500)
    bomb = make_zip({"bomb.png": bytes(5_000_000)})  # 5 MB of zeros deflate ~1000:1
    err = error_of(send_photos(client, "a.zip", bomb), 413)
    assert (err["code"], err["ctx"]["what"]) == ("data_too_large", "zip_ratio")
    big = make_zip({f"{i}.png": bytes(400_000) for i in range(3)}, zipfile.ZIP_STORED)  # 1.2 MB > zip_max_mb=1
    err = error_of(send_photos(client, "a.zip", big), 413)
    assert (err["code"], err["ctx"]["what"]) == ("data_too_large", "uncompressed_bytes")
    err = error_of(send_photos(client, "a.zip", b"PK\x03\x04 not really"), 422)
    assert err["code"] == "archive_invalid"


def test_cli_batch_finds_photos_by_file_name_in_a_folder(tmp_path: Path) -> None:
    photos = tmp_path / "照片"
    photos.mkdir()
    Image.new("RGB", (50, 50), "orange").save(photos / "咖啡杯.jpg")
    Image.new("RGB", (50, 50), "teal").save(photos / "茶壶.png")
    data = tmp_path / "data.csv"
    data.write_bytes("name,price,image\n拿铁杯,29,咖啡杯.jpg\n紫砂壶,128,茶壶\n".encode("gbk"))
    out = tmp_path / "out.zip"
    home = tmp_path / "home"
    proc = run_zhike(home, "batch", "price_card", str(data), "--photos", str(photos), "-o", str(out), timeout=300)
    assert "uploaded 2 images" in proc.stderr and "2 designs" in proc.stdout
    assert sum(n.endswith(".png") for n in zipfile.ZipFile(out).namelist()) == 2
    # without the folder the names are not found: reported per row, nothing made
    bad = run_zhike(home, "batch", "price_card", str(data), "-o", str(out), check=False)
    assert bad.returncode == 1 and "咖啡杯.jpg" in bad.stderr
