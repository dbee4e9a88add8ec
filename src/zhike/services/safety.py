"""Prompt safety: screen the text of every job against the deployment's word lists before it is queued.

The lists live in the database (seeded once from src/zhike/safety/policies.json), so admins edit them through the
API or CLI without touching files. A refusal names the policy, never the term, and is written to the audit log with
the term for admins. Admins may override a refusal for a job (logged too); nobody else can.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from pydantic import BaseModel
from sqlalchemy import Engine, delete, func, insert, select

from zhike.core.errors import Conflict, ContentRefused, InvalidInput, NotFound
from zhike.core.specs import ModelSpec
from zhike.safety.matcher import MATCH_MODES, CompiledTerm, Term, find
from zhike.services.db import safety_audit, safety_terms

if TYPE_CHECKING:
    from zhike.models.manager import ModelManager

RELOAD_SECONDS = 10.0  # other processes' edits show up within this time
NEGATIVE = "negative_prompt"  # lists of what to avoid ("nsfw, nude") are never screened


@dataclass(frozen=True)
class Policy:
    id: str
    name: dict[str, str]


def _bundled() -> dict[str, Any]:
    return json.loads(resources.files("zhike.safety").joinpath("policies.json").read_text(encoding="utf-8"))


def screened_fields(params: BaseModel) -> list[tuple[str, str]]:
    """(field, text) pairs to screen: the prompt and every other free-text instruction, not the negative prompt."""
    out = []
    for name, value in params:
        if (
            isinstance(value, str)
            and name != NEGATIVE
            and (name == "prompt" or name.endswith("_prompt") or name == "material")
        ):
            out.append((name, value))
    # Operations whose prompts are built from other fields (batch templates filled from data rows) list them.
    more = getattr(params, "screened_texts", None)
    if callable(more):
        out += more()
    return out


class PromptSafety:
    def __init__(self, engine: Engine, *, enabled: bool = True, image_checker: Path | None = None) -> None:
        self.engine = engine
        self.enabled = enabled
        self.image_checker = image_checker
        self.policies = {p["id"]: Policy(p["id"], p["name"]) for p in _bundled()["policies"]}
        self._lock = threading.Lock()
        self._compiled: list[CompiledTerm] | None = None
        self._loaded_at = 0.0

    # -- lists -------------------------------------------------------------------------------------------
    def _seed(self) -> None:
        """Copy the bundled lists into an empty table (the first run of a deployment)."""
        with self.engine.begin() as conn:
            if conn.execute(select(func.count()).select_from(safety_terms)).scalar_one():
                return
            rows = [
                {"policy": p["id"], "term": term, "match": match, "added_by": "bundled"}
                for p in _bundled()["policies"]
                for term, match in p["terms"]
            ]
            conn.execute(insert(safety_terms), rows)

    def terms(self, policy: str | None = None) -> list[dict[str, Any]]:
        self._seed()
        q = select(safety_terms).order_by(safety_terms.c.policy, safety_terms.c.term)
        if policy:
            q = q.where(safety_terms.c.policy == policy)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def add_term(self, policy: str, term: str, match: str = "variant", added_by: str | None = None) -> dict[str, Any]:
        term = term.strip()
        if not term or len(term) > 200:
            raise InvalidInput("a term must be 1-200 characters", code="term_invalid", field="term", limit=200)
        if match not in MATCH_MODES:
            raise InvalidInput(
                f"match must be one of {', '.join(MATCH_MODES)}",
                code="choice_invalid",
                field="match",
                ctx={"choices": ", ".join(MATCH_MODES)},
            )
        if not policy or len(policy) > 64 or not policy.replace("_", "").replace("-", "").isalnum():
            raise InvalidInput(
                "policy must be 1-64 letters, digits, '-' or '_'", code="policy_name_invalid", field="policy", limit=64
            )
        self._seed()
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(safety_terms.c.id).where(safety_terms.c.policy == policy, safety_terms.c.term == term)
            ).first()
            if exists:
                raise Conflict(
                    f"policy {policy} already lists this term", code="term_exists", field="term", ctx={"name": policy}
                )
            conn.execute(insert(safety_terms).values(policy=policy, term=term, match=match, added_by=added_by))
        self._compiled = None
        return {"policy": policy, "term": term, "match": match}

    def remove_term(self, policy: str, term: str) -> None:
        self._seed()
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(safety_terms).where(safety_terms.c.policy == policy, safety_terms.c.term == term)
            ).rowcount
        if not gone:
            raise NotFound(
                f"policy {policy} does not list this term", code="term_not_found", field="term", ctx={"name": policy}
            )
        self._compiled = None

    def _matchers(self) -> list[CompiledTerm]:
        with self._lock:
            if self._compiled is None or time.monotonic() - self._loaded_at > RELOAD_SECONDS:
                self._compiled = [CompiledTerm(Term(r["policy"], r["term"], r["match"])) for r in self.terms()]
                self._loaded_at = time.monotonic()
            return self._compiled

    def policy_name(self, policy: str) -> dict[str, str]:
        p = self.policies.get(policy)
        return p.name if p else {"zh": policy, "en": policy}

    # -- screening ---------------------------------------------------------------------------------------
    def check_text(self, text: str) -> Term | None:
        return find(self._matchers(), text) if self.enabled else None

    def screen(self, op: str, params: BaseModel, owner_id: str, *, override: bool = False) -> None:
        """Raise ContentRefused (naming the policy) when a screened field matches; log refusals and overrides."""
        if not self.enabled:
            return
        for field, text in screened_fields(params):
            hit = self.check_text(text)
            if hit is None:
                continue
            self._audit(owner_id, op, field, hit.policy, hit.term, text, overridden=override)
            if override:
                continue
            name = self.policy_name(hit.policy)
            raise ContentRefused(
                f"refused under the content policy “{name['en']}” ({hit.policy}).",
                code="content_refused",
                field=f"params.{field}",
                limit=hit.policy,
                ctx={"policy_zh": name["zh"], "policy_en": name["en"]},
            )

    def screen_output(self, owner_id: str, op: str, field: str, text: str) -> None:
        """Screen what a words op generated (before it is stored or shown as the result): a match is audited like
        an input refusal and raises ContentRefused naming the policy, never the term. No override: an admin's
        override covers what was asked, not what the model answered."""
        hit = self.check_text(text)
        if hit is None:
            return
        self._audit(owner_id, op, f"output.{field}", hit.policy, hit.term, text, overridden=False)
        name = self.policy_name(hit.policy)
        raise ContentRefused(
            f"the generated text was withheld under the content policy “{name['en']}” ({hit.policy}).",
            code="content_refused",
            field=field,
            limit=hit.policy,
            ctx={"policy_zh": name["zh"], "policy_en": name["en"], "output": True},
        )

    def _audit(
        self, owner_id: str, op: str, field: str, policy: str, term: str | None, text: str, *, overridden: bool
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(safety_audit).values(
                    owner_id=owner_id,
                    op=op,
                    field=field,
                    policy=policy,
                    term=term,
                    excerpt=text[:500],
                    overridden=overridden,
                )
            )

    def screen_images(self, models: ModelManager, images: list[Image.Image], owner_id: str, op: str) -> list[bool]:
        """Which finished images the installed checker flags (none when no checker is installed); logs withheld."""
        if self.image_checker is None or not images:
            return [False] * len(images)
        # A diffusers safety_checker folder named by the settings, loaded and cached like the catalogue's models.
        spec = ModelSpec(
            name="image-safety-checker", path=self.image_checker, format="diffusers", kind="safety_checker", family="sd"
        )
        with models.use(spec) as checker:
            flags = checker.flag(images)
        if any(flags):
            withheld = f"{sum(flags)} of {len(flags)} images withheld"
            self._audit(owner_id, op, "image", "image_checker", None, withheld, overridden=False)
        return flags

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        q = select(safety_audit).order_by(safety_audit.c.id.desc()).limit(max(1, min(limit, 1000)))
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(q).mappings()]
        for r in rows:
            r["created_at"] = r["created_at"].isoformat() + "Z"
        return rows

    def status(self) -> dict[str, Any]:
        terms = self.terms()
        return {
            "prompt_filter": {
                "enabled": self.enabled,
                "policies": sorted({t["policy"] for t in terms}),
                "terms": len(terms),
            },
            "image_checker": self._image_status(),
        }

    def _image_status(self) -> dict[str, Any]:
        if self.image_checker is not None:
            return {
                "installed": True,
                "model": self.image_checker.name,
                "reason": "generated images the checker flags are withheld (被图像安全检测标记的生成图片不会保存)",
            }
        # No checker model can be installed from a package registry; say so instead of screening nothing quietly.
        return {
            "installed": False,
            "reason": "no image safety-checker model is installed: generated images are not screened; set "
            "image_safety_checker to a diffusers safety_checker folder "
            "(未安装图像安全检测模型：生成的图片未经过图像审核)",
        }
