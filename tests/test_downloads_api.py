"""GET /api/v1/assets/{id}/file as a download: format and marketplace size (labelled, cached per variant), file names
from what the file is (op title in the user's language, the asset's name, its size), fallbacks and bad values."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import make_settings
from zhike.api.app import create_app
from zhike.core.rows import AssetRow
from zhike.services.assets.service import AssetService
from zhike.services.container import Zhike
from zhike.services.file_names import content_disposition, row_name, safe_part, unique
from zhike.services.templates import write_archive


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Zhike, dict[str, str]]]:
    application = create_app(make_settings(tmp_path / "home"), start_worker=False)
    with TestClient(application) as client:
        z = application.state.zhike
        _, key = z.keys.create("a", owner_id="owner-a")
        yield client, z, {"Authorization": f"Bearer {key}"}


def cutout_of(z: Zhike, name: str | None, size: tuple[int, int] = (400, 300)) -> AssetRow:
    """A generated RGBA asset like a cutout: a red product (the centre half) on transparency, stored the way jobs
    store them."""
    img = Image.new("RGBA", size, (200, 40, 40, 0))
    img.paste((200, 40, 40, 255), (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4))
    staged = z.assets.stage_image(
        img, owner_id="owner-a", job_id="j1", op="cutout", params={}, name=name, seed=None, model=None
    )
    with z.engine.begin() as conn:
        AssetService.commit_staged(conn, [staged])
    return z.assets.get(staged.row.id, owner_id="owner-a")


def filename_star(r: object) -> str:
    cd = r.headers["content-disposition"]  # type: ignore[attr-defined]
    return cd.split("filename*=UTF-8''")[1]


def test_jpeg_at_a_marketplace_size_is_padded_white_labelled_named_and_cached(api) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    row = cutout_of(z, "咖啡杯")
    url = f"/api/v1/assets/{row.id}/file?download=1&format=jpeg&size=800x800&lang=zh"
    r = client.get(url, headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(r.content))
    assert img.format == "JPEG" and img.size == (800, 800)
    # contain: the whole 4:3 image scaled to 800 wide and centred; the bands and the cutout's transparency are white.
    # (JPEG and the invisible watermark move a value by a few levels.) The 4:3 image fills 800x600 at the centre.
    white = [img.getpixel(xy) for xy in [(400, 20), (400, 780), (60, 400)]]  # bands; the cutout's clear part
    assert all(min(px) > 240 for px in white), white
    red = img.getpixel((400, 400))
    assert red[0] > 170 and red[1] < 80 and red[2] < 80  # the product
    cd = r.headers["content-disposition"]
    assert cd.startswith("attachment; filename=") and filename_star(r) == quote("抠图-咖啡杯-800x800.jpg")
    body = client.post("/api/v1/verify", files={"file": ("x.jpg", r.content, "image/jpeg")}, headers=auth).json()
    assert body["implicit"]["status"] == "valid" and body["asset"]["id"] == row.id
    assert body["c2pa"]["status"] == "trusted"
    again = client.get(url, headers=auth)  # kept per variant: the same bytes and ETag
    assert again.content == r.content and again.headers["etag"] == r.headers["etag"]
    png = client.get(f"/api/v1/assets/{row.id}/file?format=png&size=taobao", headers=auth)
    assert png.headers["etag"] != r.headers["etag"]
    pimg = Image.open(io.BytesIO(png.content))
    assert pimg.size == (800, 800) and pimg.mode == "RGBA" and pimg.getpixel((400, 20))[3] == 0  # padded clear


def test_cover_fills_and_crops_and_webp_keeps_alpha(api) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    row = cutout_of(z, "mug")
    r = client.get(f"/api/v1/assets/{row.id}/file?format=webp&size=douyin&fit=cover&lang=en", headers=auth)
    img = Image.open(io.BytesIO(r.content))
    assert img.format == "WEBP" and img.size == (1080, 1920) and img.mode == "RGBA"
    assert img.getpixel((540, 960))[3] == 255  # no padding band: the centre of the image fills the height
    assert filename_star(r) == "Cutout-mug-1080x1920.webp" and r.headers["content-disposition"].startswith("inline")


def test_names_follow_the_language_and_fall_back(api) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    row = cutout_of(z, "咖啡杯")
    r = client.get(f"/api/v1/assets/{row.id}/file", headers={**auth, "Accept-Language": "en-US,en;q=0.9"})
    assert r.headers["content-type"] == "image/png" and filename_star(r) == quote("Cutout-咖啡杯-400x300.png")
    # Old clients get an ASCII fallback that still says what it is.
    assert 'filename="Cutout-400x300.png"' in r.headers["content-disposition"]
    r = client.get(f"/api/v1/assets/{row.id}/file", headers={**auth, "Accept-Language": "zh-CN,zh;q=0.9"})
    assert filename_star(r) == quote("抠图-咖啡杯-400x300.png")
    nameless = cutout_of(z, None)
    r = client.get(f"/api/v1/assets/{nameless.id}/file?lang=zh", headers=auth)
    assert filename_star(r) == quote(f"抠图-{nameless.id[:8]}-400x300.png")
    # An upload keeps its own name; its size appears only when resized.
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 120, 200)).save(buf, "JPEG")
    up = client.post("/api/v1/assets", files={"file": ("咖啡杯.jpg", buf.getvalue(), "image/jpeg")}, headers=auth)
    uid = up.json()["id"]
    r = client.get(f"/api/v1/assets/{uid}/file?lang=zh", headers=auth)
    assert r.content == buf.getvalue() and filename_star(r) == quote("咖啡杯.jpg")
    r = client.get(f"/api/v1/assets/{uid}/file?lang=zh&size=jd&format=png", headers=auth)
    assert Image.open(io.BytesIO(r.content)).size == (800, 800) and filename_star(r) == quote("咖啡杯-800x800.png")


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("format=gif", "format_invalid", "format"),
        ("size=huge", "size_invalid", "size"),
        ("size=9000x10", "size_invalid", "size"),
        ("fit=stretch", "fit_invalid", "fit"),
    ],
)
def test_bad_values_name_the_field(api, query: str, code: str, field: str) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    row = cutout_of(z, "x", (64, 48))
    r = client.get(f"/api/v1/assets/{row.id}/file?{query}", headers=auth)
    err = r.json()["error"]
    assert r.status_code == 422 and err["code"] == code and err["field"] == field and err["ctx"]["value"]


def test_name_helpers_are_safe_and_unique() -> None:
    assert safe_part('a/b:c*?"<>|.') == "a_b_c" and safe_part("  ..x.. ") == "x" and safe_part(None) == ""
    assert row_name({"SKU": "1", "商品名": "双十一/爆款"}) == "双十一_爆款" and row_name({"名称 ": "茶"}) == "茶"
    assert row_name({"price": "9"}) == ""
    taken: set[str] = set()
    assert [unique(n, taken) for n in ("a.png", "A.png", "a.png", "b")] == ["a.png", "A-2.png", "a-3.png", "b"]
    assert (
        content_disposition("attachment", "抠图.png")
        == "attachment; filename=\"download.png\"; filename*=UTF-8''%E6%8A%A0%E5%9B%BE.png"
    )


def test_batch_zip_members_are_named_by_the_name_column_deduplicated_and_safe(tmp_path: Path) -> None:
    from tests.test_batch_job import CARD, run

    z = Zhike(make_settings(tmp_path / "home"))
    try:
        rows = [
            {"商品名": "双十一/爆款", "price": 1},
            {"商品名": "双十一/爆款", "price": 2},  # the same name: -2
            {"商品名": "", "price": 3},  # no name: its row number, as before
        ]
        name_layer = {**CARD["layers"][1], "text": "{{商品名}}", "optional": True}
        template = {**CARD, "layers": [name_layer, CARD["layers"][2]]}
        job = run(z, {"template_json": template, "rows": rows, "sizes": ["taobao"]})
        buf = io.BytesIO()
        assert write_archive(job, z.assets, z.exports, buf) == 3
        names = zipfile.ZipFile(buf).namelist()
        assert names[:3] == [
            "designs/双十一_爆款-taobao.png",
            "designs/双十一_爆款-taobao-2.png",
            "designs/00003-taobao.png",
        ]
    finally:
        z.engine.dispose()
