"""`zhike safety`: content-policy status, word lists and the refusal audit log."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from zhike.cli import common
from zhike.cli.common import out, run_cli
from zhike.safety.matcher import MATCH_MODES

safety_app = typer.Typer(help="Prompt safety: word lists per policy, audit log", no_args_is_help=True)


@safety_app.command("status")
def safety_status() -> None:
    """Whether prompts and generated images are screened."""
    out.print_json(json.dumps(common.services().safety.status(), ensure_ascii=False))


@safety_app.command("list")
def safety_list(
    policy: Annotated[str | None, typer.Option(help="Only this policy")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """The word lists."""
    rows = common.services().safety.terms(policy)
    if as_json:
        out.print_json(json.dumps([{k: r[k] for k in ("policy", "term", "match")} for r in rows], ensure_ascii=False))
        return
    table = Table("policy", "term", "match", "added by")
    for r in rows:
        table.add_row(r["policy"], r["term"], r["match"], r["added_by"] or "")
    out.print(table)


@safety_app.command("add")
def safety_add(
    policy: str,
    term: str,
    match: Annotated[str, typer.Option(help=f"How to match: {', '.join(MATCH_MODES)}")] = "variant",
) -> None:
    """Add a term to a policy (a new policy id creates the policy)."""
    added = run_cli(lambda: common.services().safety.add_term(policy, term, match, added_by="cli"))
    out.print(f"added to {added['policy']}: {added['term']} ({added['match']})")


@safety_app.command("remove")
def safety_remove(policy: str, term: str) -> None:
    """Remove a term from a policy."""
    run_cli(lambda: common.services().safety.remove_term(policy, term))
    out.print(f"removed from {policy}: {term}")


@safety_app.command("audit")
def safety_audit(limit: Annotated[int, typer.Option(min=1, max=1000)] = 50) -> None:
    """Refused and admin-overridden requests, newest first."""
    table = Table("time", "owner", "op", "policy", "term", "overridden", "excerpt")
    for e in common.services().safety.audit(limit):
        table.add_row(
            e["created_at"],
            e["owner_id"],
            e["op"] or "",
            e["policy"],
            e["term"] or "",
            str(e["overridden"]),
            e["excerpt"][:60],
        )
    out.print(table)
