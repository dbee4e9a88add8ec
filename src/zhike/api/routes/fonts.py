"""/api/v1/fonts: the font families the design renderer has, and their files for the studio's @font-face, so the
design editor draws text with the very faces the server renders with."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import Field

from zhike import fonts
from zhike.api.deps import OwnerDep
from zhike.api.schemas.common import Out
from zhike.core.errors import NotFound

router = APIRouter(prefix="/api/v1/fonts", tags=["templates"])
# Browsers load single-face files only (no .ttc collections); a family in a collection is still offered by name:
# the editor falls back to a local face and the server preview shows the exact result.
MEDIA = {".otf": "font/otf", ".ttf": "font/ttf", ".woff": "font/woff", ".woff2": "font/woff2"}


class FontFamily(Out):
    family: str
    bundled: bool = Field(description="Zhike's own Source Han Sans SC")
    regular: str | None = Field(description="URL of the regular face's file, when a browser can load it")
    bold: str | None = Field(description="URL of the bold face's file; null: bold is drawn as faux bold")


class FontList(Out):
    fonts: list[FontFamily]


def _files(family: str) -> dict[str, Path]:
    faces = fonts.installed().get(family)
    out: dict[str, Path] = {}
    if faces is None:
        return out
    for weight, face in zip(("regular", "bold"), faces, strict=True):
        if face is not None and Path(face.path).suffix.lower() in MEDIA:
            out[weight] = Path(face.path)
    return out


@router.get("", summary="Font families the design renderer has", response_model=FontList)
def list_fonts(_: OwnerDep) -> dict[str, Any]:
    out = []
    for family in fonts.installed():
        files = _files(family)
        url = {w: f"/api/v1/fonts/{family}/{w}" for w in files}
        out.append(
            {
                "family": family,
                "bundled": family == fonts.BUNDLED_FAMILY,
                "regular": url.get("regular"),
                "bold": url.get("bold"),
            }
        )
    return {"fonts": out}


@router.get(
    "/{family}/{weight}",
    summary="A font file (for @font-face)",
    response_class=FileResponse,
    responses={200: {"content": {m: {} for m in dict.fromkeys(MEDIA.values())}, "description": "The font file"}},
)
def font_file(family: str, weight: Literal["regular", "bold"], _: OwnerDep) -> FileResponse:
    path = _files(family).get(weight)
    if path is None:
        raise NotFound(f"no {weight} font file of {family!r}", code="font_not_found", field="family")
    return FileResponse(
        path, media_type=MEDIA[path.suffix.lower()], headers={"Cache-Control": "private, max-age=86400"}
    )
