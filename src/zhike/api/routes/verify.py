"""/api/v1/verify: read the provenance labels of an uploaded file (nothing is stored)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, UploadFile

from zhike.api.deps import AppDep, OwnerDep
from zhike.api.heavy import HeavyDep
from zhike.api.routes.assets import read_upload
from zhike.api.schemas import VerifyReport

router = APIRouter(prefix="/api/v1", tags=["verify"])


@router.post(
    "/verify",
    summary="Check a file's AI-content labels: TC260 XMP, C2PA, watermark; a text export's TC260 fields and notice "
    "(multipart `file`)",
    response_model=VerifyReport,
    response_model_exclude_unset=True,  # each label section has only the keys its status has
)
async def verify(app: AppDep, owner: OwnerDep, heavy: HeavyDep, file: UploadFile | None = None) -> dict[str, Any]:
    """Each label's status (valid / trusted / invalid / absent), its decoded fields, and which of **your**
    assets it came from (found by the watermark when the metadata was stripped). Runs in the heavy-work threads:
    429 when you have `heavy_per_user` such requests under way, 503 when the server is saturated."""
    from zhike.services.verify import DbLookup, verify_file

    async with heavy.slot(owner, field="file"):
        data = await read_upload(app, file)
        return await heavy.run(
            verify_file,
            data,
            app.labels,
            DbLookup(app.engine, owner_id=owner),  # only the caller's assets: no probing of other users' ids
            field="file",
            max_bytes=app.assets.max_upload_bytes,
            max_pixels=app.assets.max_pixels,
        )
