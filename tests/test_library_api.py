"""The library's API in process: search by prompt text, filters, paging with filters, lineage, delete, download.

Generated assets are written the way a finished job writes them (stage_image + commit_staged) with chosen
params, so the filters are tested without running models.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import update

from tests.conftest import make_settings
from zhike.services.container import Zhike
from zhike.services.db import assets
from zhike.services.users import owner_id

PW = "correct horse battery"


@dataclass
class Lib:
    z: Zhike
    alice: TestClient
    bob: TestClient
    alice_owner: str
    bob_owner: str


def _login(app: Any, username: str) -> TestClient:
    c = TestClient(app, base_url="http://testserver")
    c.__enter__()
    r = c.post("/api/v1/auth/login", json={"username": username, "password": PW})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Lib]:
    from zhike.api.app import create_app

    app = create_app(make_settings(tmp_path / "home"), start_worker=False)
    z: Zhike = app.state.zhike
    a = z.users.create_user("alice", PW)
    b = z.users.create_user("bob", PW)
    alice, bob = _login(app, "alice"), _login(app, "bob")
    yield Lib(z, alice, bob, owner_id(a), owner_id(b))
    for c in (alice, bob):
        c.__exit__(None, None, None)
    z.engine.dispose()


def generated(
    z: Zhike,
    owner: str,
    prompt: str,
    *,
    op: str = "txt2img",
    model: str = "tiny",
    seed: int = 1,
    parent: str | None = None,
    negative: str = "",
    tags: list[str] | None = None,
    colour: tuple[int, int, int] = (10, 20, 30),
    created: datetime | None = None,
) -> str:
    """A generated asset as a finished job stores it; returns its id."""
    params: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative, "steps": 2, "width": 8, "height": 8}
    if parent:
        params["init_image"] = parent
    staged = z.assets.stage_image(
        Image.new("RGB", (8, 8), colour),
        owner_id=owner,
        job_id="job-" + prompt[:8],
        op=op,
        params=params,
        seed=seed,
        model=model,
        parent_id=parent,
        tags=tags,
    )
    with z.engine.begin() as conn:
        z.assets.commit_staged(conn, [staged])
        if created is not None:
            conn.execute(update(assets).where(assets.c.id == staged.row.id).values(created_at=created))
    return staged.row.id


def png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i, 100, 200)).save(buf, "PNG")
    return buf.getvalue()


def upload(c: TestClient, data: bytes, tags: str | None = None) -> dict[str, Any]:
    r = c.post("/api/v1/assets", files={"file": ("x.png", data, "image/png")}, data={"tags": tags} if tags else {})
    assert r.status_code == 201, r.text
    return r.json()


def ids(c: TestClient, **params: Any) -> list[str]:
    r = c.get("/api/v1/assets", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()["assets"]]


def assert_error(r: Any, status: int, field: str) -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field and err["message"], err


def test_search_by_prompt_text_chinese_and_english(lib: Lib) -> None:
    z, me = lib.z, lib.alice_owner
    fox = generated(z, me, "A Red FOX in snow, 50% off")
    teapot = generated(z, me, "青花瓷茶壶，放在木桌上", negative="模糊, blurry")
    plain = generated(z, me, "a lighthouse at dusk", negative="low_quality")
    upload(lib.alice, png(1))
    generated(z, lib.bob_owner, "bob's red fox")

    assert ids(lib.alice, q="fox") == [fox]  # any case, and never another user's
    assert ids(lib.alice, q="red fox") == [fox]
    assert ids(lib.alice, q="茶壶") == [teapot]
    assert ids(lib.alice, q="模糊") == [teapot]  # the negative prompt counts too
    assert ids(lib.alice, q="BLURRY") == [teapot]
    # LIKE wildcards are plain characters: "50%" is not "50 then anything", "_" is not "any one character".
    assert ids(lib.alice, q="50%") == [fox]
    assert ids(lib.alice, q="t_d") == []  # would match "lighthouse at dusk" if "_" were a wildcard
    assert ids(lib.alice, q="t d") == [plain]
    assert ids(lib.alice, q="low_quality") == [plain]
    # The JSON keys and other parameters are not searched ("prompt", "steps" occur in every row's JSON).
    assert ids(lib.alice, q="prompt") == []
    assert ids(lib.alice, q="steps") == []
    assert ids(lib.alice, q="u8336") == []  # nor the \uXXXX escapes the JSON text may hold
    assert ids(lib.alice, q="  ") == ids(lib.alice)  # blank: no filter
    assert_error(lib.alice.get("/api/v1/assets", params={"q": "x" * 501}), 422, "q")


def test_filters_op_model_tag_origin_dates_and_parent(lib: Lib) -> None:
    z, me = lib.z, lib.alice_owner
    old = generated(z, me, "old one", created=datetime(2024, 1, 10, 23, 30))
    mid = generated(z, me, "mid one", model="other", tags=["商品", "主图"], created=datetime(2024, 3, 1, 12))
    child = generated(z, me, "child", op="img2img", parent=mid, created=datetime(2024, 3, 2, 8))
    up = upload(lib.alice, png(2), tags="商品")["id"]

    assert ids(lib.alice, op="img2img") == [child]
    assert ids(lib.alice, op="txt2img") == [mid, old]
    assert ids(lib.alice, model="other") == [mid]
    assert ids(lib.alice, tag="商品") == [up, mid]
    assert ids(lib.alice, tag="商") == []
    assert ids(lib.alice, origin="upload") == [up]
    assert ids(lib.alice, origin="generated") == [child, mid, old]
    assert_error(lib.alice.get("/api/v1/assets", params={"origin": "stolen"}), 422, "origin")
    assert ids(lib.alice, parent=mid) == [child]
    assert ids(lib.alice, parent=old) == []
    assert ids(lib.bob, parent=mid) == []  # another user's lineage is not visible

    # A date `until` includes that whole day; a date `since` starts at its midnight (UTC).
    assert ids(lib.alice, until="2024-01-10") == [old]
    assert ids(lib.alice, since="2024-01-11", until="2024-03-01") == [mid]
    assert ids(lib.alice, since="2024-03-01T12:00:00", until="2024-03-02T08:00:00") == [mid]  # until: before it
    # An offset is converted: 2024-03-02 09:30+02:00 is 07:30 UTC, before the child's 08:00 UTC.
    assert ids(lib.alice, since="2024-03-02T09:30:00+02:00", op="img2img") == [child]
    assert ids(lib.alice, since="2024-03-02T10:30:00+02:00", op="img2img") == []
    assert ids(lib.alice, since="2024-03-02T07:00:00Z", origin="generated") == [child]
    assert ids(lib.alice, op="txt2img", tag="商品", model="other", since="2024-02-01") == [mid]  # combined

    for name, bad in (("since", "yesterday"), ("since", "2024-13-01"), ("until", "2024-02-30"), ("until", "3/1/24")):
        r = lib.alice.get("/api/v1/assets", params={name: bad})
        assert_error(r, 422, name)
        assert bad in r.json()["error"]["message"]


def test_paging_with_filters_visits_each_match_once(lib: Lib) -> None:
    z, me = lib.z, lib.alice_owner
    cats = [generated(z, me, f"cat number {i}", seed=i, colour=(i, 0, 0)) for i in range(7)]
    for i in range(5):
        generated(z, me, f"dog number {i}", seed=i, colour=(0, i, 0))
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        r = lib.alice.get("/api/v1/assets", params={"limit": 3, "q": "CAT", **({"before": before} if before else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [a["id"] for a in body["assets"]]
        pages += 1
        before = body["next"]
        if before is None:
            break
        assert before == body["assets"][-1]["id"]
    assert seen == list(reversed(cats)) and pages == 3  # newest first, each once
    r = lib.alice.get("/api/v1/assets", params={"before": "nope-nope-nope"})
    assert_error(r, 404, "before")


def test_detail_has_lineage_and_survives_a_deleted_parent(lib: Lib) -> None:
    z, me = lib.z, lib.alice_owner
    parent = generated(z, me, "parent", colour=(1, 1, 1))
    kids = [generated(z, me, f"kid {i}", op="img2img", parent=parent, colour=(2, i, 2)) for i in range(2)]
    d = lib.alice.get(f"/api/v1/assets/{parent}").json()
    assert d["children_count"] == 2 and d["parent"] is None
    k = lib.alice.get(f"/api/v1/assets/{kids[0]}").json()
    assert k["parent"] == {"id": parent, "exists": True} and k["children_count"] == 0
    assert k["params"]["prompt"] == "kid 0" and k["seed"] == 1 and k["model"] == "tiny" and k["op"] == "img2img"

    assert lib.alice.delete(f"/api/v1/assets/{parent}").json() == {"deleted": parent}
    for kid in kids:  # the children stay, readable, with their files; the parent shows as deleted
        r = lib.alice.get(f"/api/v1/assets/{kid}")
        assert r.status_code == 200, r.text
        assert r.json()["parent"] == {"id": parent, "exists": False}
        assert lib.alice.get(f"/api/v1/assets/{kid}/file").status_code == 200
    assert sorted(ids(lib.alice)) == sorted(kids)
    assert lib.bob.get(f"/api/v1/assets/{kids[0]}").status_code == 404


def test_delete_is_owner_only_and_keeps_shared_and_other_files(lib: Lib) -> None:
    z = lib.z
    shared = png(7)
    mine = upload(lib.alice, shared)
    mine_again = upload(lib.alice, shared)  # same bytes, another row: one file
    bobs = upload(lib.bob, shared)
    others = [upload(lib.alice, png(i)) for i in range(3)] + [
        lib.alice.get(f"/api/v1/assets/{generated(z, lib.alice_owner, 'kept')}").json()
    ]
    before = {a["id"]: z.assets.blobs.path_for(a["sha256"], a["mime"]).read_bytes() for a in others}
    path = z.assets.blobs.path_for(mine["sha256"], "image/png")
    assert path.read_bytes() == shared

    # Another user's id, and a missing id, are the same 404; nothing is removed.
    r = lib.bob.delete(f"/api/v1/assets/{mine['id']}")
    assert_error(r, 404, "asset_id")
    assert_error(lib.alice.delete("/api/v1/assets/nope-nope"), 404, "asset_id")
    # A cookie request that changes something needs the CSRF header.
    token = lib.alice.headers.pop("X-CSRF-Token")
    assert lib.alice.delete(f"/api/v1/assets/{mine['id']}").status_code == 403
    lib.alice.headers["X-CSRF-Token"] = token
    assert lib.alice.get(f"/api/v1/assets/{mine['id']}").status_code == 200

    assert lib.alice.delete(f"/api/v1/assets/{mine['id']}").json() == {"deleted": mine["id"]}
    assert lib.alice.get(f"/api/v1/assets/{mine['id']}").status_code == 404
    assert lib.alice.get(f"/api/v1/assets/{mine['id']}/file").status_code == 404
    assert lib.alice.delete(f"/api/v1/assets/{mine['id']}").status_code == 404  # only once
    assert path.read_bytes() == shared  # still used by alice's second row and bob's row
    assert lib.alice.get(f"/api/v1/assets/{mine_again['id']}/file").content == shared

    assert lib.alice.delete(f"/api/v1/assets/{mine_again['id']}").status_code == 200
    assert path.exists() and lib.bob.get(f"/api/v1/assets/{bobs['id']}/file").content == shared  # bob's stays
    assert lib.bob.delete(f"/api/v1/assets/{bobs['id']}").status_code == 200
    assert not path.exists()  # the last row that had these bytes is gone: so is the file
    assert not list(path.parent.glob(".deleted-*"))  # nothing left aside

    # Nothing else was lost: every other asset is still listed and its file is byte-identical.
    assert sorted(ids(lib.alice)) == sorted(before)
    for aid, data in before.items():
        row = lib.z.assets.get(aid, owner_id=lib.alice_owner)
        assert lib.z.assets.read_bytes(row) == data and hashlib.sha256(data).hexdigest() == row.sha256
        assert same_image(lib.alice.get(f"/api/v1/assets/{aid}/file").content, data)

    # Uploading the same bytes again after the file was removed stores it again.
    again = upload(lib.bob, shared)
    assert lib.bob.get(f"/api/v1/assets/{again['id']}/file").content == shared


def same_image(exported: bytes, stored: bytes) -> bool:
    """A generated image leaves with its provenance labels added: the same pixels (these are too small to carry
    a watermark), other bytes."""
    a, b = (np.asarray(Image.open(io.BytesIO(x)).convert("RGBA")) for x in (exported, stored))
    return a.shape == b.shape and bool((a == b).all())


def test_a_job_that_made_the_same_bytes_keeps_its_file(lib: Lib) -> None:
    """A job stages its output (file written), the only other asset with those bytes is deleted meanwhile,
    then the job commits: its row must still have its file."""
    z, me = lib.z, lib.alice_owner
    first = generated(z, me, "same", colour=(5, 5, 5))
    staged = z.assets.stage_image(
        Image.new("RGB", (8, 8), (5, 5, 5)),
        owner_id=me,
        job_id="job-same",
        op="txt2img",
        params={"prompt": "same", "negative_prompt": "", "steps": 2, "width": 8, "height": 8},
        seed=1,
        model="tiny",
    )
    assert staged.row.sha256 == lib.alice.get(f"/api/v1/assets/{first}").json()["sha256"]
    assert lib.alice.delete(f"/api/v1/assets/{first}").status_code == 200
    path = z.assets.blobs.path_for(staged.row.sha256, "image/png")
    assert not path.exists()  # removed with the only row that had it
    with z.engine.begin() as conn:
        z.assets.commit_staged(conn, [staged])
    r = lib.alice.get(f"/api/v1/assets/{staged.row.id}/file")
    assert r.status_code == 200 and same_image(r.content, staged.data)


def test_download_header_and_embedded_parameters(lib: Lib) -> None:
    aid = generated(lib.z, lib.alice_owner, "青花瓷茶壶 teapot", seed=42)
    r = lib.alice.get(f"/api/v1/assets/{aid}/file", params={"download": 1})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    # named from what it is (services/file_names.py): the op's title, the short id (no name), the size
    named = f"filename=\"Text_to_image-{aid[:8]}-8x8.png\"; filename*=UTF-8''Text%20to%20image-{aid[:8]}-8x8.png"
    assert r.headers["content-disposition"] == f"attachment; {named}"
    img = Image.open(io.BytesIO(r.content))
    assert "青花瓷茶壶 teapot" in img.text["parameters"] and "Seed: 42" in img.text["parameters"]
    shown = lib.alice.get(f"/api/v1/assets/{aid}/file")
    assert shown.headers["content-disposition"] == f"inline; {named}"
    assert shown.content == r.content
    assert lib.bob.get(f"/api/v1/assets/{aid}/file", params={"download": 1}).status_code == 404
