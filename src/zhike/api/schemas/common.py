"""Shared pieces of the response bodies: the error body, and the base every response model uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zhike.core.errors import ErrorCode


class Out(BaseModel):
    """A response body. `extra="forbid"`: a key the model does not list fails the response (and the contract
    tests) instead of silently leaving the JSON, so the spec and the answers cannot drift apart."""

    model_config = ConfigDict(extra="forbid")


def iso_utc(when: datetime | None) -> str | None:
    """A stored (naive UTC) datetime as the jobs and assets answers write it: ISO 8601 with a `Z`."""
    return when.isoformat() + "Z" if when is not None else None


class Open(BaseModel):
    """A report section whose keys depend on what was found (e.g. a C2PA manifest): the listed keys are typed,
    others pass through as they are."""

    model_config = ConfigDict(extra="allow")


class LocalText(Out):
    """A label in both languages."""

    zh: str
    en: str


class FieldError(Out):
    field: str
    message: str


class ErrorDetail(Out):
    code: ErrorCode = Field(description="What went wrong, specifically (stable; clients translate by it)")
    type: ErrorCode = Field(description="The error's class (stable per class: not_found, invalid_input, ...)")
    message: str = Field(description="The same in English, with details (names, sizes)")
    param: str | None = Field(description="Repeats `field` (OpenAI's name)")
    field: str | None = Field(None, description="The request field it is about: `params.width`, `file`, a header")
    fields: list[str] | None = Field(None, description="Every field named, when several are wrong")
    limit: Any = Field(None, description="The limit that was passed (bytes, characters, a maximum)")
    kind: str | None = Field(None, description="For validation_failed: pydantic's error type (less_than_equal, ...)")
    ctx: dict[str, str | int | float | bool] | None = Field(
        None, description="Values the sentence names: pydantic's context ({'le': 150}) or e.g. {'name': ...}"
    )
    details: list[FieldError] | None = Field(None, description="For validation_failed: every field's problem")


class ErrorBody(Out):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "The request cannot be done: `error.code` says why"},
    "5XX": {"model": ErrorBody, "description": "The server failed (internal_error, generation_failed)"},
}


class Deleted(Out):
    deleted: str = Field(description="The id that was deleted")


class ErrorInfo(Open):
    """Why a job or a document's indexing failed, as the API's error bodies say it (code, message, field...)."""

    code: str
    type: str | None = None  # the error's class (absent in jobs that failed before it was recorded)
    message: str
    field: str | None = None
    fields: list[str] | None = None
    limit: Any = None
    kind: str | None = None
    ctx: dict[str, Any] | None = None
