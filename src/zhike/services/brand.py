"""Brand kits (品牌), one per owner: Zhike has no teams, so a user's kit is theirs (their API keys share it).

The kit is design/brand.py's BrandKit stored as JSON. A bad value is a 422 naming its field (`colors.primary`)
with a code the studio words: `colour_invalid`, `font_unknown`, or `validation_failed`; a logo must be one of the
owner's own assets.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from zhike.core.context import Assets
from zhike.core.errors import InvalidInput, plain_ctx
from zhike.design.brand import DEFAULT_COLOURS, DEFAULT_FONT, BrandKit, font_choices
from zhike.services.db import brand_kits, utcnow

CODES = {"colors": "colour_invalid", "fonts": "font_unknown"}  # the first part of a bad field's path -> its code


def parse_kit(body: Any, *, prefix: str = "") -> BrandKit:
    """A BrandKit from a request body; InvalidInput naming the first bad field (after `prefix`)."""
    if not isinstance(body, dict):
        raise InvalidInput("a brand kit is a JSON object", code="validation_failed", field=prefix.rstrip(".") or None)
    try:
        return BrandKit.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        loc = prefix + ".".join(str(p) for p in err["loc"])
        code = CODES.get(str(err["loc"][0]), "validation_failed") if err["type"] == "value_error" else None
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InvalidInput(
            f"{loc}: {msg}",
            code=code or "validation_failed",
            field=loc,
            kind=err["type"],
            ctx={**(plain_ctx(err.get("ctx")) or {}), "value": str(err.get("input"))[:100]},
        ) from None


class BrandStore:
    def __init__(self, engine: Engine, assets: Assets) -> None:
        self.engine = engine
        self.assets = assets

    def get(self, owner_id: str) -> BrandKit | None:
        """The owner's kit, or None when they have not saved one (templates then use their fallbacks)."""
        with self.engine.connect() as conn:
            kit = conn.execute(select(brand_kits.c.kit).where(brand_kits.c.owner_id == owner_id)).scalar()
        return BrandKit.model_validate(kit) if kit is not None else None

    def put(self, owner_id: str, body: Any) -> BrandKit:
        kit = parse_kit(body)
        if kit.logo is not None and not self.assets.exists(kit.logo, owner_id=owner_id):
            raise InvalidInput(
                f"logo: asset {kit.logo!r} not found among your images",
                code="asset_not_found",
                field="logo",
                ctx={"id": kit.logo},
            )
        if kit.logo is not None:
            self.assets.require_images([("logo", kit.logo)], owner_id=owner_id)  # not a text asset
        values = {"kit": kit.model_dump(mode="json"), "updated_at": utcnow()}
        for _ in range(2):  # two first saves at once: the loser's insert fails, its second try updates
            try:
                with self.engine.begin() as conn:
                    done = conn.execute(update(brand_kits).where(brand_kits.c.owner_id == owner_id).values(**values))
                    if done.rowcount == 0:
                        conn.execute(insert(brand_kits).values(owner_id=owner_id, **values))
                return kit
            except IntegrityError:
                continue
        return kit

    def delete(self, owner_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(brand_kits).where(brand_kits.c.owner_id == owner_id))

    def view(self, owner_id: str) -> dict[str, Any]:
        """What GET /api/v1/brand answers: the kit (or null), the defaults a template falls back to, the fonts."""
        kit = self.get(owner_id)
        return {
            "kit": kit.model_dump(mode="json") if kit else None,
            "defaults": {"colors": DEFAULT_COLOURS, "font": DEFAULT_FONT},
            "fonts": font_choices(),
        }
