"""User-facing errors. Each carries the field it is about so the API and CLI can name it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

_ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+([\w.@+-]+)")


class ZhikeError(Exception):
    """An error whose message is meant for the user. `status` is the HTTP status the API answers with."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        limit: Any = None,
        kind: str | None = None,
        ctx: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.limit = limit
        # For validation errors: pydantic's error type and its context (e.g. "less_than_equal", {"le": 2048}),
        # so clients can say it in the user's language.
        self.kind = kind
        self.ctx = ctx

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        for name in ("field", "limit", "kind", "ctx"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


def plain_ctx(ctx: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON-safe part of a pydantic error context (limits, expected values; not exception objects)."""
    if not ctx:
        return None
    out = {k: v for k, v in ctx.items() if isinstance(v, str | int | float | bool)}
    return out or None


class InvalidInput(ZhikeError):
    status = 422
    code = "invalid_input"


class NotFound(ZhikeError):
    status = 404
    code = "not_found"


class TooLarge(ZhikeError):
    status = 413
    code = "too_large"


class UnsupportedMedia(ZhikeError):
    status = 415
    code = "unsupported_media_type"


class ModelError(ZhikeError):
    """A model cannot be registered or loaded (bad file, unsupported family, offline download)."""

    status = 422
    code = "model_error"


class Conflict(ZhikeError):
    status = 409
    code = "conflict"


class ContentRefused(ZhikeError):
    """A request or its result falls under a content policy; `limit` names the policy, never the matched term."""

    status = 422
    code = "content_policy"


class JobCancelled(Exception):
    """Raised inside an operation when its job was cancelled; not an error for the user."""


def hide_paths(message: str) -> str:
    """A message for users without the server's directory layout: absolute paths become their last part."""
    return _ABS_PATH.sub(lambda m: m.group(1), message)


def validation_message(e: ValidationError, prefix: str) -> InvalidInput:
    """The first pydantic error as a user error naming its field, e.g. `params.width`."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    msg = err["msg"].removeprefix("Value error, ")
    if err.get("type") == "missing":
        msg = "this field is required"
    limit = (err.get("ctx") or {}).get("le") or (err.get("ctx") or {}).get("max_length")
    return InvalidInput(f"{loc}: {msg}", field=loc, limit=limit, kind=err.get("type"), ctx=plain_ctx(err.get("ctx")))
