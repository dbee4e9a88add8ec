"""Every error leaves the API as JSON naming what was wrong: {"error": {"code", "type", "message", "field", ...}}.

`code` is the specific reason (`asset_not_found`), `type` the error's class (`not_found`), both from
`zhike.core.errors.ErrorCode`; `param` repeats `field`. Those are the names OpenAI's clients read, so they show
our message. The body's schema is `zhike.api.schemas.ErrorBody`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from zhike.core.errors import ErrorCode, ZhikeError, plain_ctx, storage_full

log = logging.getLogger("zhike.api")


def error_body(
    code: str, message: str, field: str | None = None, *, type: str | None = None, **extra: Any
) -> dict[str, Any]:
    err: dict[str, Any] = {"code": str(code), "message": message, "type": str(type or code), "param": field}
    if field is not None:
        err["field"] = field
    err.update({k: v for k, v in extra.items() if v is not None})
    return {"error": err}


class RequestTooLarge(HTTPException):
    """Raised while a request body is being received once it passes the limit (bodies without Content-Length)."""

    def __init__(self, max_bytes: int, field: str = "body") -> None:
        super().__init__(413, f"request body over {max_bytes / 1e6:.0f} MB")
        self.field = field
        self.limit = max_bytes


def _loc_name(loc: tuple[Any, ...]) -> str:
    # ("body", "params", "width") -> "params.width"; ("header", "idempotency-key") -> "Idempotency-Key"
    parts = [str(p) for p in loc]
    if parts and parts[0] == "header":
        return "-".join(w.capitalize() for w in parts[-1].split("-"))
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def zhike_response(e: ZhikeError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else {}
    headers.update(getattr(e, "headers", None) or {})
    return JSONResponse(
        error_body(e.code, e.message, e.field, type=e.type, fields=e.fields, limit=e.limit, kind=e.kind, ctx=e.ctx),
        status_code=e.status,
        headers=headers or None,
    )


def internal_response(e: Exception) -> JSONResponse:
    """A failure the user cannot fix: 507 when the disk (or SQLite's file) is full, else a 500 naming only the
    exception's class (the traceback goes to the log)."""
    full = storage_full(e)
    if full is not None:
        log.error("storage full: %s", e)
        return zhike_response(full)
    log.error("unhandled error", exc_info=e)
    return JSONResponse(error_body(ErrorCode.INTERNAL_ERROR, f"internal error: {type(e).__name__}"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ZhikeError)
    async def _zhike(_: Request, e: ZhikeError) -> JSONResponse:
        return zhike_response(e)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = e.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            # loc is ("body", <character offset>): name the body, and say where the JSON broke.
            loc = first.get("loc", ())
            pos = loc[1] if len(loc) > 1 else None
            why = (first.get("ctx") or {}).get("error") or first.get("msg", "JSON decode error")
            where = f" at character {pos}" if isinstance(pos, int) else ""
            return JSONResponse(
                error_body(
                    ErrorCode.INVALID_JSON,
                    f"the request body is not valid JSON: {why}{where}",
                    "body",
                    type=ErrorCode.INVALID_INPUT,
                ),
                status_code=400,
            )
        field = _loc_name(tuple(first.get("loc", ())))
        msg = "this field is required" if first.get("type") == "missing" else first.get("msg", "invalid")
        details = [{"field": _loc_name(tuple(x.get("loc", ()))), "message": x.get("msg")} for x in errors]
        names = list(dict.fromkeys(d["field"] for d in details))
        body = error_body(
            ErrorCode.VALIDATION_FAILED,
            f"{field}: {msg}",
            field,
            type=ErrorCode.INVALID_INPUT,
            fields=names if len(names) > 1 else None,
            details=details,
            kind=first.get("type"),
            ctx=plain_ctx(first.get("ctx")),
        )
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, e: HTTPException) -> JSONResponse:
        if isinstance(e, RequestTooLarge):
            body = error_body(
                ErrorCode.REQUEST_TOO_LARGE, str(e.detail), e.field, type=ErrorCode.TOO_LARGE, limit=e.limit
            )
            return JSONResponse(body, status_code=413)
        code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(e.status_code, ErrorCode.HTTP_ERROR)
        return JSONResponse(error_body(code, str(e.detail)), status_code=e.status_code, headers=e.headers)

    # Where a full disk shows: writing a file, SQLite writing its database or journal. Handled by class: the
    # catch-all below runs in Starlette's outermost middleware, which re-raises the error after answering.
    @app.exception_handler(OSError)
    @app.exception_handler(OperationalError)
    async def _io(_: Request, e: Exception) -> JSONResponse:
        return internal_response(e)

    @app.exception_handler(Exception)
    async def _internal(_: Request, e: Exception) -> JSONResponse:
        return internal_response(e)
