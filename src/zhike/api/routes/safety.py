"""/api/v1/safety: the content-policy status (everyone), word lists and the refusal audit log (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from zhike.api.deps import AdminDep, AppDep, OwnerDep
from zhike.api.schemas import AuditLog, SafetyStatus, Term, TermList, TermRemoved
from zhike.safety.matcher import MATCH_MODES

router = APIRouter(prefix="/api/v1/safety", tags=["safety"])


class TermBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: str = Field(..., max_length=64, examples=["fraud"])
    term: str = Field(..., max_length=200, examples=["假公章"])
    match: str = Field("variant", description=f"one of {', '.join(MATCH_MODES)}")


@router.get(
    "",
    summary="Whether prompts and images are screened, and by what",
    response_model=SafetyStatus,
    response_model_exclude_unset=True,  # image_checker.model only when one is installed
)
def status(app: AppDep, _: OwnerDep) -> dict[str, Any]:
    return app.safety.status()


@router.get("/terms", summary="The word lists (admins only)", response_model=TermList)
def list_terms(app: AppDep, _: AdminDep, policy: str | None = None) -> dict[str, Any]:
    rows = app.safety.terms(policy)
    for r in rows:
        r["created_at"] = r["created_at"].isoformat() + "Z"
    return {"terms": rows, "policies": {k: v.name for k, v in app.safety.policies.items()}}


@router.post("/terms", status_code=201, summary="Add a term to a policy (admins only)", response_model=Term)
def add_term(body: TermBody, app: AppDep, admin: AdminDep) -> dict[str, Any]:
    return app.safety.add_term(body.policy, body.term, body.match, added_by=admin.username)


@router.delete("/terms", summary="Remove a term from a policy (admins only)", response_model=TermRemoved)
def remove_term(
    app: AppDep,
    _: AdminDep,
    policy: Annotated[str, Query(max_length=64)],
    term: Annotated[str, Query(max_length=200)],
) -> dict[str, Any]:
    app.safety.remove_term(policy, term)
    return {"removed": {"policy": policy, "term": term}}


@router.get(
    "/audit", summary="Refused (and admin-overridden) requests, newest first (admins only)", response_model=AuditLog
)
def audit(app: AppDep, _: AdminDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    return {"events": app.safety.audit(limit)}
