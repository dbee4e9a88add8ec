"""Shared FastAPI dependencies: the app's services and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from zhike.core.errors import ZhikeError
from zhike.services.container import Zhike


class Unauthorized(ZhikeError):
    status = 401
    code = "unauthorized"


def get_app(request: Request) -> Zhike:
    return request.app.state.zhike


AppDep = Annotated[Zhike, Depends(get_app)]


def get_owner(app: AppDep, authorization: Annotated[str | None, Header()] = None) -> str:
    """The owner id of the API key in `Authorization: Bearer KEY`."""
    if not authorization:
        raise Unauthorized(
            "missing API key: send `Authorization: Bearer KEY` (create one: `zhike keys create`)",
            field="Authorization",
        )
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("the Authorization header must be `Bearer KEY`", field="Authorization")
    row = app.keys.verify(key.strip())
    if row is None:
        raise Unauthorized("unknown or revoked API key", field="Authorization")
    return row["owner_id"]


OwnerDep = Annotated[str, Depends(get_owner)]
