"""User-facing errors. Each carries the field it is about so the API and CLI can name it."""

from __future__ import annotations

from typing import Any


class ZhikeError(Exception):
    """An error whose message is meant for the user. `status` is the HTTP status the API answers with."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, limit: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.limit = limit

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.limit is not None:
            out["limit"] = self.limit
        return out


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


class JobCancelled(Exception):
    """Raised inside an operation when its job was cancelled; not an error for the user."""
