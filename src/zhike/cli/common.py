"""Shared by the CLI commands: consoles, errors as messages, services, running a job with a progress bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from zhike.core.errors import ZhikeError
from zhike.services.container import Zhike
from zhike.settings import get_settings

if TYPE_CHECKING:
    from zhike.core.rows import JobRow

out = Console()
err = Console(stderr=True)
LOCAL_OWNER = "local"  # owner of what the CLI makes on this machine


def fail(message: str, code: int = 2) -> NoReturn:
    err.print("[bold red]error:[/]", escape(message))  # escape: paths and prompts may contain [brackets]
    raise typer.Exit(code)


def cli_field(field: str, flags: dict[str, str] | None = None) -> str:
    """`params.width` -> `--width`, `params.controls.0.image` -> `--control #1 image`: the flag the user typed.

    `flags` maps a top-level param to its flag (from the op's metadata); without it, `-p NAME` (zhike run).
    """
    if not field.startswith("params."):
        return field
    top, _, rest = field.removeprefix("params.").partition(".")
    flag = (flags or {}).get(top) or (f"-p {top}" if flags is None else "--" + top.replace("_", "-"))
    if not rest:
        return flag
    index, _, sub = rest.partition(".")
    return f"{flag} #{int(index) + 1} {sub}".strip() if index.isdigit() else f"{flag} {rest}"


def services() -> Zhike:
    return Zhike(get_settings())


def run_cli(fn: Any, flags: dict[str, str] | None = None) -> Any:
    """Turn user errors into a message and a non-zero exit, never a traceback."""
    try:
        return fn()
    except ZhikeError as e:
        msg = e.message
        if e.field:
            flag = cli_field(e.field, flags)
            msg = flag + msg.removeprefix(e.field) if msg.startswith(e.field) else f"{flag}: {msg}"
        fail(msg)


def scalar(text: str) -> Any:
    """A command-line value as JSON when it reads as JSON (numbers, true/false, null, lists), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def assignment(text: str, flag: str) -> tuple[str, str]:
    """`KEY=VALUE` -> (KEY, VALUE); the value may contain '='."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        fail(f"{flag}: expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def json_object(text: str, flag: str) -> dict[str, Any]:
    """`--json` text as a JSON object, or a message naming the flag."""
    try:
        value = json.loads(text)
    except ValueError as e:
        fail(f"{flag}: not valid JSON: {e}")
    if not isinstance(value, dict):
        fail(f"{flag}: expected a JSON object {{...}}, got {type(value).__name__}")
    return value


def params_from_image(path: Path) -> tuple[str | None, dict[str, Any]]:
    """(op, params) embedded in a PNG by Zhike, or parsed from A1111 `parameters` text (op unknown: None)."""
    from PIL import Image

    from zhike.core.infotext import parse_infotext
    from zhike.services.images import read_png_text

    try:
        with Image.open(path) as img:
            meta = read_png_text(img)
    except OSError as e:
        fail(f"--from: cannot read {path}: {e}")
    if "zhike" in meta:
        z = meta["zhike"]
        return z.get("op"), dict(z.get("params") or {})
    if "parameters" in meta:
        p = parse_infotext(meta["parameters"])
        p.pop("extra", None)
        return None, p
    fail(f"--from: {path} carries no generation parameters (no `parameters` or `zhike` text chunk)")


def upload_file(z: Zhike, path: Path, flag: str) -> str:
    """Store a local image as an asset (inputs to operations are asset ids)."""
    if not path.is_file():
        fail(f"{flag}: no file at {path}")
    return run_cli(lambda: z.assets.upload(path.read_bytes(), owner_id=LOCAL_OWNER, field=flag, name=path.name)).id


def run_job_with_progress(z: Zhike, job_id: str) -> JobRow:
    """Run the job here with a progress bar; if a running server's worker took it first, follow that one."""
    from zhike.services.jobs.worker import Worker

    worker = Worker(z)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task("working", total=None)
        worker.on_progress = lambda _jid, step, total: bar.update(task, total=total, completed=step)
        try:
            ran = worker.run_one(job_id)
        finally:
            worker.close()  # waits for the outputs to be stored and the job committed
        if not ran:
            row = z.jobs.get(job_id)
            while not row.done:
                row = z.jobs.wait(job_id, None, timeout=1.0, since=row.updated_at)
                if row.total_steps:
                    bar.update(task, total=row.total_steps, completed=row.step)
    return z.jobs.get(job_id)


def submit_and_save(
    z: Zhike, op: str, params: dict[str, Any], output: Path, *, flags: dict[str, str] | None = None
) -> JobRow:
    """Submit, run with progress, print warnings, write every output image (OUT, or OUT-1, OUT-2...)."""
    job, _ = run_cli(lambda: z.submit(op, params, LOCAL_OWNER), flags)
    row = run_job_with_progress(z, job.id)
    if row.state != "succeeded":
        e = row.error or {}
        where = f"{cli_field(e['field'], flags)}: " if e.get("field") else ""
        fail(f"job {row.state}: {where}{e.get('message') or row.message or ''}", code=1)
    result = row.result or {}
    for w in result.get("warnings", []):
        err.print("[yellow]warning:[/]", escape(w))
    if result.get("kind") in MEDIA_KINDS and isinstance(result.get("asset_id"), str):  # a MediaResult
        save_media_output(z, result, output)
        return row
    if isinstance(result.get("asset_id"), str) and "images" not in result:  # a words op's TextResult
        save_text_output(z, result, output)
        return row
    images = result.get("images", [])
    for i, img in enumerate(images):
        dest = output if len(images) == 1 else output.with_name(f"{output.stem}-{i + 1}{output.suffix}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        asset = z.assets.get(img["asset_id"], owner_id=LOCAL_OWNER)
        dest.write_bytes(z.exports.file(asset).data)  # with its provenance labels, like every export
        seed = f"seed {img['seed']}, " if img.get("seed") is not None else ""
        out.print(f"saved {dest}  ({seed}asset {img['asset_id']})")
    return row


MEDIA_KINDS = ("audio", "video", "subtitles", "image")  # MediaResult.kind (image: an animated GIF/WebP)


def save_media_output(z: Zhike, result: dict[str, Any], output: Path) -> None:
    """Write a voice/video/music op's file, labelled like every export, as OUT with the suffix of what it is (a
    `-o music.mp4` for an MP3 becomes music.mp3, said so); the files stored beside it (a video's SRT) as OUT's stem
    with their own suffix."""
    from zhike.services.assets.blobs import EXT_BY_MIME

    output.parent.mkdir(parents=True, exist_ok=True)
    written: set[Path] = set()
    for i, asset_id in enumerate([result["asset_id"], *result.get("extra_asset_ids", [])]):
        asset = z.assets.get(asset_id, owner_id=LOCAL_OWNER)
        ext = EXT_BY_MIME.get(asset.mime, ".bin")
        dest = output.with_suffix(ext)
        if dest in written:  # two files of one type: never one over the other
            dest = output.with_name(f"{output.stem}-{i}{ext}")
        if i == 0 and output.suffix and output.suffix.lower() != ext:
            err.print(f"[yellow]note:[/] the result is {ext[1:].upper()}: saved as {dest.name}")
        dest.write_bytes(z.exports.file(asset).data)
        written.add(dest)
        err.print(f"saved {dest}  (asset {asset_id})")


def save_text_output(z: Zhike, result: dict[str, Any], output: Path) -> None:
    """Print a words op's text and write its labelled export: OUT's suffix picks md, txt, docx or pdf (else .md)."""
    from zhike.provenance.text import TEXT_FORMATS

    out.print(escape(result.get("text", "")))
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in TEXT_FORMATS:
        fmt, output = "md", output.with_suffix(".md")
    output.parent.mkdir(parents=True, exist_ok=True)
    asset = z.assets.get(result["asset_id"], owner_id=LOCAL_OWNER)
    output.write_bytes(z.exports.text(asset, fmt).data)  # with the notice and the implicit label
    err.print(f"saved {output}  (asset {result['asset_id']})")
