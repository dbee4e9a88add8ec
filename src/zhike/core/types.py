"""Pydantic types shared by operations, the API and the CLI."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

# Input images and masks are passed to operations as asset ids (upload first: POST /api/v1/assets).
# Fields Zhike fills itself are marked with core.ui.ui(..., read_only=True) (JSON Schema's readOnly).

# `format: asset-id` tells form builders (the web studio's pro mode) to offer an image picker.
AssetId = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9_-]{6,32}$", description="An asset id", json_schema_extra={"format": "asset-id"})
]


class ImageOut(BaseModel):
    asset_id: str
    seed: int | None = None
    width: int
    height: int


class ImagesResult(BaseModel):
    images: list[ImageOut]
    model: str | None = None
    warnings: list[str] = Field(default_factory=list, description="Things the user should know, e.g. a cut prompt")
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds spent per phase")
