"""/api/v1/verify: read the provenance labels of an uploaded file (nothing is stored)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, UploadFile
from fastapi.concurrency import run_in_threadpool

from zhike.api.deps import AppDep, OwnerDep
from zhike.core.errors import InvalidInput, TooLarge

router = APIRouter(prefix="/api/v1", tags=["verify"])


@router.post("/verify", summary="Check a file's AI-content labels: TC260 XMP, C2PA, watermark (multipart `file`)")
async def verify(app: AppDep, owner: OwnerDep, file: UploadFile | None = None) -> dict[str, Any]:
    """Each label's status (valid / trusted / invalid / absent), its decoded fields, and which of **your**
    assets it came from (found by the watermark when the metadata was stripped)."""
    from zhike.provenance.service import service_for
    from zhike.provenance.verify import DbLookup, verify_file

    if file is None:
        raise InvalidInput("send the file as multipart/form-data field `file` / 请以 file 字段上传文件", field="file")
    limit = app.assets.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the file is larger than {limit / 1e6:.0f} MB", field="file", limit=limit)
    svc = service_for(app)
    return await run_in_threadpool(
        verify_file,
        data,
        svc,
        DbLookup(app.engine, owner_id=owner),  # only the caller's assets: no probing of other users' ids
        field="file",
        max_bytes=limit,
        max_pixels=app.assets.max_pixels,
    )
