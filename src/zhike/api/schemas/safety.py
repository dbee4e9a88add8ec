"""/api/v1/safety: screening status, word lists, the audit log."""

from __future__ import annotations

from pydantic import Field

from zhike.api.schemas.common import LocalText, Out


class PromptFilterStatus(Out):
    enabled: bool
    policies: list[str]
    terms: int = Field(description="How many terms the lists hold")


class ImageCheckerStatus(Out):
    installed: bool
    model: str | None = Field(None, description="The checker's name, when installed")
    reason: str = Field(description="What the checker does, or why there is none")


class SafetyStatus(Out):
    prompt_filter: PromptFilterStatus
    image_checker: ImageCheckerStatus


class TermRef(Out):
    policy: str
    term: str


class Term(TermRef):
    match: str = Field(description="exact | word | variant")


class StoredTerm(Term):
    id: int
    added_by: str | None
    created_at: str


class TermList(Out):
    terms: list[StoredTerm]
    policies: dict[str, LocalText] = Field(description="Policy id -> its name")


class TermRemoved(Out):
    removed: TermRef


class AuditEvent(Out):
    id: int
    created_at: str
    owner_id: str
    op: str | None
    field: str | None
    policy: str
    term: str | None
    excerpt: str | None
    overridden: bool


class AuditLog(Out):
    events: list[AuditEvent]
