"""`zhike kb`: product knowledge bases on this machine: create, add documents, ask, list, remove.

A knowledge base is named by its id or its name. What the CLI makes belongs to the local owner (as its jobs do);
the server's users have their own knowledge bases (API: /api/v1/kb).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from zhike.cli import common
from zhike.cli.common import LOCAL_OWNER, err, fail, out, run_cli
from zhike.core.errors import ZhikeError

kb_app = typer.Typer(help="Product knowledge bases (商品知识库): documents and questions", no_args_is_help=True)
KbArg = Annotated[str, typer.Argument(help="The knowledge base's id or name")]
STAGES = {"read": "reading", "embed": "indexing", "store": "saving"}


@kb_app.command("create")
def kb_create(name: str) -> None:
    """Create a knowledge base."""
    kb = run_cli(lambda: common.services().kb.create(LOCAL_OWNER, name))
    out.print(f"created {kb.id}  {escape(kb.name)}")


@kb_app.command("list")
def kb_list(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False) -> None:
    """Your knowledge bases."""
    kbs = common.services().kb.list(LOCAL_OWNER)
    if as_json:
        out.print_json(json.dumps([k.view() for k in kbs], ensure_ascii=False))
        return
    table = Table("id", "name", "documents", "passages", "updated")
    for k in kbs:
        table.add_row(k.id, escape(k.name), str(k.documents), str(k.chunks), k.view()["updated_at"])
    out.print(table)


@kb_app.command("docs")
def kb_docs(kb: KbArg, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The documents of a knowledge base."""
    z = common.services()
    docs = run_cli(lambda: z.kb.documents(LOCAL_OWNER, z.kb.find(LOCAL_OWNER, kb).id))
    if as_json:
        out.print_json(json.dumps([d.view() for d in docs], ensure_ascii=False))
        return
    table = Table("id", "name", "kind", "pages", "passages", "size", "status")
    for d in docs:
        status = d.status
        if d.status == "indexing":
            status += f" {d.progress_done}/{d.progress_total}"
        elif d.status == "failed" and d.error:
            status += f": {d.error.get('message', '')}"
        table.add_row(
            d.id, escape(d.name), d.kind, str(d.pages), str(d.chunk_count), f"{d.size_bytes:,} B", escape(status)
        )
    out.print(table)


@kb_app.command("add")
def kb_add(kb: KbArg, files: Annotated[list[Path], typer.Argument(help="TXT, Markdown, PDF, DOCX, XLSX, CSV")]) -> None:
    """Add documents (a file named like one already there replaces it), each indexed before the next with a
    progress bar (while a server on this database indexes it, its progress is followed). Every file is tried; a
    file that cannot be read or indexed is reported and the others are still added (exit status 1 if any
    failed)."""
    z = common.services()
    kb_id = run_cli(lambda: z.kb.find(LOCAL_OWNER, kb).id)
    failed = 0
    for path in files:
        if not path.is_file():
            err.print(f"[red]✗[/] {escape(str(path))}: no such file")
            failed += 1
            continue
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            console=err,
            disable=not sys.stderr.isatty(),
        ) as bar:
            task = bar.add_task(escape(path.name), total=None)

            def tick(stage: str, done: int, total: int, task: int = task, name: str = path.name) -> None:
                bar.update(
                    task, description=f"{escape(name)} · {STAGES.get(stage, stage)}", total=total, completed=done
                )

            try:
                done = z.kb.add_document(LOCAL_OWNER, kb_id, path.name, path.read_bytes(), progress=tick)
            except ZhikeError as e:
                bar.stop()
                err.print(f"[red]✗[/] {escape(path.name)}: {escape(e.message)}")
                failed += 1
                continue
        d = done.document
        what = "unchanged" if done.unchanged else "replaced" if done.replaced else "added"
        speed = f", {d.view()['pages_per_second']} pages/s" if d.ingest_seconds and not done.unchanged else ""
        out.print(f"[green]✓[/] {escape(d.name)}: {what} ({d.pages} pages, {d.chunk_count} passages{speed})")
    if failed:
        raise typer.Exit(1)


@kb_app.command("ask")
def kb_ask(
    kb: KbArg,
    question: str,
    conversation: Annotated[str | None, typer.Option("--conversation", "-c", help="Continue this conversation")] = None,
    llm: Annotated[str | None, typer.Option(help="The language model (default: the deployment's)")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, max=4096, help="Longest answer")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer as JSON at the end")] = False,
) -> None:
    """Ask a question: the answer streams as it is written, then its sources."""
    from zhike.services.kb_ask import Answer  # numpy, jieba: only for this command

    z = common.services()

    def run() -> Answer | None:
        kb_id = z.kb.find(LOCAL_OWNER, kb).id
        answers = z.kb_answers
        answer = None
        for piece in answers.stream(
            LOCAL_OWNER, kb_id, question, conversation_id=conversation, llm=llm, max_tokens=max_tokens
        ):
            if isinstance(piece, Answer):
                answer = piece
            elif not as_json:
                sys.stdout.write(piece)  # as it is written
                sys.stdout.flush()
        return answer

    answer = run_cli(run)
    assert answer is not None
    if as_json:
        out.print_json(json.dumps(answer.view(), ensure_ascii=False))
        return
    sys.stdout.write("\n")
    for c in answer.citations:
        where = f" · {c['where']}" if c["where"] else ""
        out.print(escape(f"[{c['n']}] {c['document']}{where}: {_short(c['text'])}"), highlight=False)
    t = answer.timings
    gen = f", generation {t['generation_ms']:.0f} ms" if "generation_ms" in t else ""
    err.print(f"conversation {answer.conversation_id} · retrieval {t.get('retrieval_ms', 0):.0f} ms{gen}")


def _short(text: str, n: int = 80) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


@kb_app.command("rm")
def kb_rm(
    kb: KbArg,
    document: Annotated[str | None, typer.Argument(help="A document's id or file name: remove only it")] = None,
) -> None:
    """Remove a knowledge base (with its documents and conversations), or one of its documents."""
    z = common.services()

    def remove() -> str:
        found = z.kb.find(LOCAL_OWNER, kb)
        if document is None:
            z.kb.delete(LOCAL_OWNER, found.id)
            return f"removed knowledge base {found.id} {found.name}"
        docs = z.kb.documents(LOCAL_OWNER, found.id)
        match = [d for d in docs if document in (d.id, d.name)]
        if not match:
            fail(f"{document}: no such document in {found.name}")
        z.kb.delete_document(LOCAL_OWNER, found.id, match[0].id)
        return f"removed {match[0].name} from {found.name}"

    out.print(escape(run_cli(remove)))
