"""Bundled stock (内置素材): badges, price tags, ribbons, frames, shapes and backgrounds, made for Zhike and
dedicated to the public domain (CC0 1.0, see LICENSE.md here).

`manifest.json` lists each item (id, category, zh/en name, licence) with the spec `draw.py` draws it from; nothing
is stored as a picture. Every user may read them; templates use one as an image source with `stock:ID`
(e.g. `stock:badge-baoyou`).
"""

from __future__ import annotations

import io
import json
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from PIL import Image

from zhike.core.errors import NotFound

REF_PREFIX = "stock:"


@cache
def manifest() -> dict[str, Any]:
    return json.loads((resources.files("zhike.design.stock") / "manifest.json").read_text(encoding="utf-8"))


@cache
def items() -> dict[str, dict[str, Any]]:
    """Item id -> its manifest entry, in manifest order."""
    return {it["id"]: it for it in manifest()["items"]}


def ref(value: str) -> str | None:
    """The stock id a template image source names (`stock:ID`), or None when it names none."""
    v = value.strip()
    return v[len(REF_PREFIX) :] if v.startswith(REF_PREFIX) else None


def get(stock_id: str, *, field: str = "stock_id") -> dict[str, Any]:
    item = items().get(stock_id)
    if item is None:
        raise NotFound(f"no bundled stock item {stock_id!r}", code="stock_not_found", field=field, ctx={"id": stock_id})
    return item


@lru_cache(maxsize=128)
def _drawn(stock_id: str) -> Image.Image:
    from zhike.design.stock.draw import draw

    return draw(get(stock_id)["draw"])


def image(stock_id: str) -> Image.Image:
    """The item's pixels (RGBA, or RGB for backgrounds): a copy, drawn once per process."""
    return _drawn(stock_id).copy()


@lru_cache(maxsize=256)
def png(stock_id: str, size: int | None = None) -> bytes:
    """The item as PNG; `size`: longest side of a thumbnail (never larger than the item)."""
    img = _drawn(stock_id)
    if size is not None and max(img.size) > size:
        img = img.copy()
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def view(item: dict[str, Any]) -> dict[str, Any]:
    """An item as the API lists it (without its drawing spec)."""
    w, h = item["draw"].get("size", (256, 256))
    return {
        "id": item["id"],
        "ref": REF_PREFIX + item["id"],
        "category": item["category"],
        "name": item["name"],
        "licence": item["licence"],
        "width": w,
        "height": h,
    }
