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
        zhike.assets.upload(png(i), owner_id="u1", tags=["商品", "主图"] if i % 3 == 0 else ["other"]).id
        for i in range(10)
    ]
    zhike.assets.upload(png(99), owner_id="u2", tags=["商品"])
    seen, before = [], None
    while True:
        page = zhike.assets.list(owner_id="u1", limit=3, before=before)
        seen += [r.id for r in page]
        if len(page) < 3:
            break
        before = page[-1].id
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    tagged = zhike.assets.list(owner_id="u1", limit=2, tag="商品")
    assert len(tagged) == 2 and all("商品" in r.tags for r in tagged)
    assert len(zhike.assets.list(owner_id="u1", limit=50, tag="商品")) == 4
    assert zhike.assets.list(owner_id="u1", tag="商") == []  # whole tags only


def test_same_bytes_are_stored_once(zhike: Zhike) -> None:
    a = zhike.assets.upload(png(1), owner_id="u1")
    b = zhike.assets.upload(png(1), owner_id="u2")
    assert a.id != b.id and a.sha256 == b.sha256
    files = [p for p in zhike.settings.assets_dir.rglob("*.png")]
    assert len(files) == 1


def test_sideways_phone_photos_are_seen_upright(zhike: Zhike) -> None:
    """A JPEG stored 40x20 with EXIF orientation 6 (rotate 90°) is a 20x40 picture to users and operations."""
    img = Image.new("RGB", (40, 20), (200, 10, 10))
    img.paste((10, 10, 200), (0, 0, 10, 20))  # blue strip on the stored left edge
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    row = zhike.assets.upload(buf.getvalue(), owner_id="u1")
    assert (row.width, row.height) == (20, 40)
    shown = zhike.assets.open_image(row.id, owner_id="u1", field="image")
    assert shown.size == (20, 40)
    top = shown.convert("RGB").getpixel((10, 2))
    assert top[2] > 150 and top[0] < 100  # the stored left strip is on top once rotated
    assert zhike.assets.read_bytes(zhike.assets.get(row.id, owner_id="u1")) == buf.getvalue()  # file kept as is
