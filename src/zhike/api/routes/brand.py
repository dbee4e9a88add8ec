"""/api/v1/brand: your brand kit (品牌): name, logo, colours and fonts that templates' `brand.*` references use."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from zhike.api.deps import AppDep, OwnerDep
from zhike.api.schemas.common import Out
from zhike.design.brand import BrandKit

router = APIRouter(prefix="/api/v1/brand", tags=["brand"])


class BrandDefaults(Out):
    colors: dict[str, str]
    font: str


class BrandView(Out):
    kit: BrandKit | None
    defaults: BrandDefaults
    fonts: list[str]


@router.get("", summary="Your brand kit (null until saved), the fallbacks and the fonts a kit may use")
def get_brand(app: AppDep, owner: OwnerDep) -> BrandView:
    return BrandView.model_validate(app.brand.view(owner))


@router.put("", summary="Save your brand kit")
def put_brand(
    body: Annotated[dict[str, Any], Body(description="name, logo (an asset id), colors {primary...}, fonts")],
    app: AppDep,
    owner: OwnerDep,
) -> BrandView:
    """Colours are #rrggbb (`colour_invalid` naming e.g. `colors.primary`), fonts one of `fonts`
    (`font_unknown`), the logo one of your images (`asset_not_found`). Missing fields take the defaults."""
    app.brand.put(owner, body)
    return BrandView.model_validate(app.brand.view(owner))


@router.delete("", summary="Remove your brand kit (templates use their fallbacks again)")
def delete_brand(app: AppDep, owner: OwnerDep) -> BrandView:
    app.brand.delete(owner)
    return BrandView.model_validate(app.brand.view(owner))
