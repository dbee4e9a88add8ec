"""Asset library: uploads, keyset paging, tag filter (Chinese too), owner isolation, content addressing."""

from __future__ import annotations

import io

from PIL import Image

from zhike.services.container import Zhike


def png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def test_paging_visits_every_asset_once_and_tags_filter_in_sql(zhike: Zhike) -> None:
    ids = [
        zhike.assets.upload(png(i), owner_id="u1", tags=["商品", "主图"] if i % 3 == 0 else ["other"])["id"]
        for i in range(10)
    ]
    zhike.assets.upload(png(99), owner_id="u2", tags=["商品"])
    seen, before = [], None
    while True:
        page = zhike.assets.list(owner_id="u1", limit=3, before=before)
        seen += [r["id"] for r in page]
        if len(page) < 3:
            break
        before = page[-1]["id"]
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    tagged = zhike.assets.list(owner_id="u1", limit=2, tag="商品")
    assert len(tagged) == 2 and all("商品" in r["tags"] for r in tagged)
    assert len(zhike.assets.list(owner_id="u1", limit=50, tag="商品")) == 4
    assert zhike.assets.list(owner_id="u1", tag="商") == []  # whole tags only


def test_same_bytes_are_stored_once(zhike: Zhike) -> None:
    a = zhike.assets.upload(png(1), owner_id="u1")
    b = zhike.assets.upload(png(1), owner_id="u2")
    assert a["id"] != b["id"] and a["sha256"] == b["sha256"]
    files = [p for p in zhike.settings.assets_dir.rglob("*.png")]
    assert len(files) == 1
