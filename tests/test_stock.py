"""The stock library API (素材库): folders, moves, tags, names and search over a user's own uploads, each user
alone (bob never sees or moves alice's images or folders); and the bundled stock, listed with its licence, every
item a real image, usable in a template as `stock:ID`."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.test_library_api import Lib, lib  # noqa: F401 (the fixture: alice and bob signed in, one app)
from zhike.design import stock


def png(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def upload(c: TestClient, filename: str, colour: tuple[int, int, int] = (200, 30, 30), tags: str = "") -> str:
    r = c.post("/api/v1/assets", files={"file": (filename, png(colour), "image/png")}, data={"tags": tags})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def listed(c: TestClient, **params: Any) -> list[str]:
    r = c.get("/api/v1/stock/assets", params=params)
    assert r.status_code == 200, r.text
    return [a["name"] for a in r.json()["assets"]]


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


def test_folders_moves_tags_names_and_search(lib: Lib) -> None:  # noqa: F811
    a = lib.alice
    cup = upload(a, "咖啡杯.png", tags="杯子,白底")
    box = upload(a, "礼盒.jpg.png", (30, 160, 40))
    logo = upload(a, "logo.png", (20, 20, 200), tags="品牌")
    r = a.post("/api/v1/stock/folders", json={"name": " 双十一  主图 "})
    assert r.status_code == 201, r.text
    folder = r.json()
    assert folder["name"] == "双十一 主图" and folder["count"] == 0
    assert error(a.post("/api/v1/stock/folders", json={"name": "双十一 主图"}), 409)["code"] == "folder_name_taken"
    assert error(a.post("/api/v1/stock/folders", json={"name": "  "}), 422)["field"] == "name"

    r = a.post("/api/v1/stock/assets/move", json={"assets": [cup, box], "folder_id": folder["id"]})
    assert r.json() == {"moved": 2}
    assert sorted(listed(a, folder=folder["id"])) == ["咖啡杯", "礼盒.jpg"]
    assert listed(a, folder="none") == ["logo"]
    assert sorted(listed(a)) == ["logo", "咖啡杯", "礼盒.jpg"]
    folders = a.get("/api/v1/stock/folders").json()
    assert folders["unfiled"] == 1 and [(f["name"], f["count"]) for f in folders["folders"]] == [("双十一 主图", 2)]

    # Tags: add and remove, filter by a whole tag, search finds names and tags (Chinese too), case-insensitive.
    r = a.post("/api/v1/stock/assets/tags", json={"assets": [cup, logo], "add": ["新品", "杯子"], "remove": ["白底"]})
    assert r.json()["tags"] == {cup: ["杯子", "新品"], logo: ["品牌", "新品", "杯子"]}
    assert sorted(listed(a, tag="新品")) == ["logo", "咖啡杯"]
    assert listed(a, tag="白底") == []
    assert listed(a, q="品牌") == ["logo"] and listed(a, q="LOGO") == ["logo"] and listed(a, q="礼盒") == ["礼盒.jpg"]
    tags = a.get("/api/v1/stock/tags").json()["tags"]
    assert {t["tag"]: t["count"] for t in tags} == {"杯子": 2, "新品": 2, "品牌": 1}

    # Rename keeps dots in the new name; an empty name is refused.
    assert a.patch(f"/api/v1/stock/assets/{box}", json={"name": "礼盒 1.5 版"}).json()["name"] == "礼盒 1.5 版"
    assert error(a.patch(f"/api/v1/stock/assets/{box}", json={"name": " . "}), 422)["field"] == "name"
    assert a.get(f"/api/v1/assets/{box}").json()["name"] == "礼盒 1.5 版"

    # Rename the folder; deleting it moves its images to the top level and deletes none.
    assert a.patch(f"/api/v1/stock/folders/{folder['id']}", json={"name": "主图"}).json()["name"] == "主图"
    assert a.delete(f"/api/v1/stock/folders/{folder['id']}").json() == {"deleted": folder["id"], "moved": 2}
    assert sorted(listed(a, folder="none")) == ["logo", "咖啡杯", "礼盒 1.5 版"]
    assert error(a.get("/api/v1/stock/assets", params={"folder": folder["id"]}), 404)["code"] == "folder_not_found"
    assert a.get(f"/api/v1/assets/{cup}/file").status_code == 200


def test_bob_cannot_see_or_move_alices_images_or_folders(lib: Lib) -> None:  # noqa: F811
    a, b = lib.alice, lib.bob
    cup = upload(a, "咖啡杯.png")
    mine = upload(b, "bob.png")
    folder = a.post("/api/v1/stock/folders", json={"name": "私人"}).json()
    bobs = b.post("/api/v1/stock/folders", json={"name": "私人"}).json()  # the same name is fine for another user
    assert bobs["id"] != folder["id"]

    assert listed(b) == ["bob"] and listed(b, q="咖啡") == []
    assert [f["name"] for f in b.get("/api/v1/stock/folders").json()["folders"]] == ["私人"]
    assert b.get("/api/v1/stock/folders").json()["folders"][0]["id"] == bobs["id"]
    # alice's folder does not exist for bob: listing, renaming, deleting or moving into it is a 404
    assert error(b.get("/api/v1/stock/assets", params={"folder": folder["id"]}), 404)["code"] == "folder_not_found"
    assert (
        error(b.patch(f"/api/v1/stock/folders/{folder['id']}", json={"name": "x"}), 404)["code"] == "folder_not_found"
    )
    assert error(b.delete(f"/api/v1/stock/folders/{folder['id']}"), 404)["code"] == "folder_not_found"
    r = b.post("/api/v1/stock/assets/move", json={"assets": [mine], "folder_id": folder["id"]})
    assert error(r, 404)["code"] == "folder_not_found"
    # alice's image cannot be moved, tagged or renamed by bob, not even along with his own (nothing changes)
    r = b.post("/api/v1/stock/assets/move", json={"assets": [mine, cup], "folder_id": bobs["id"]})
    assert error(r, 404) == error(r, 404) and r.json()["error"]["ctx"] == {"id": cup}
    assert listed(b, folder=bobs["id"]) == []
    assert error(b.post("/api/v1/stock/assets/tags", json={"assets": [cup], "add": ["x"]}), 404)["code"] == (
        "asset_not_found"
    )
    assert error(b.patch(f"/api/v1/stock/assets/{cup}", json={"name": "mine"}), 404)["code"] == "asset_not_found"
    a_cup = a.get(f"/api/v1/assets/{cup}").json()
    assert a_cup["name"] == "咖啡杯" and a_cup["tags"] == []
    assert listed(a, folder="none") == ["咖啡杯"]


def test_bundled_stock_is_listed_with_its_licence_and_every_image_decodes(lib: Lib) -> None:  # noqa: F811
    r = lib.bob.get("/api/v1/stock/bundled")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["licence"]["id"] == "CC0-1.0"
    items = body["items"]
    by_cat: dict[str, int] = {}
    for it in items:
        by_cat[it["category"]] = by_cat.get(it["category"], 0) + 1
        assert it["licence"] == "CC0-1.0" and it["name"]["zh"] and it["name"]["en"] and it["ref"] == f"stock:{it['id']}"
    assert by_cat["badge"] >= 20 and {"price_tag", "ribbon", "frame", "shape", "background"} <= set(by_cat)
    zh = {it["name"]["zh"] for it in items}
    assert {"包邮", "新品", "限时", "热卖", "折扣", "秒杀", "满减"} <= zh
    for it in items:
        r = lib.alice.get(it["thumb_url"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png", it["id"]
        img = Image.open(io.BytesIO(r.content))
        img.load()
        assert max(img.size) <= 256
    full = Image.open(io.BytesIO(lib.alice.get("/api/v1/stock/bundled/badge-baoyou/file").content))
    assert full.size == (256, 256) and full.mode == "RGBA"
    px = np.asarray(full)
    assert px[0, 0, 3] == 0 and px[128, 40, 3] == 255  # a round badge: clear corners, solid inside
    # the word is drawn: white ink in the middle of the red disc
    middle = px[100:156, 70:186, :3].reshape(-1, 3)
    assert (middle.min(axis=1) > 230).sum() > 300
    assert error(lib.alice.get("/api/v1/stock/bundled/nope/file"), 404)["code"] == "stock_not_found"
    assert TestClient(lib.alice.app).get("/api/v1/stock/bundled").status_code == 401  # signed in only


def test_a_template_draws_bundled_stock_by_its_ref(lib: Lib) -> None:  # noqa: F811
    tpl = {
        "id": "badge_demo",
        "name": {"zh": "角标", "en": "Badge"},
        "width": 300,
        "height": 300,
        "background": "#ffffff",
        "layers": [{"type": "image", "src": "stock:badge-baoyou", "box": [100, 100, 100, 100], "fit": "contain"}],
    }
    r = lib.alice.post("/api/v1/templates/preview", json={"template_json": tpl})
    assert r.status_code == 200, r.text
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(int)
    assert (img[110:190, 110:190] - [228, 57, 60]).__abs__().sum(axis=2).min() < 30  # the badge's red, in its box
    assert (img[:90, :90] == 255).all() and (img[210:, 210:] == 255).all()  # nothing outside it
    bad = {**tpl, "layers": [{**tpl["layers"][0], "src": "stock:nope"}]}
    e = error(lib.alice.post("/api/v1/templates/preview", json={"template_json": bad}), 422)
    assert e["field"] == "template_json.layers.0.src"
    assert set(stock.items()) == {it["id"] for it in stock.manifest()["items"]}
