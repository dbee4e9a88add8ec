"""The `zhike` command line: serve, worker, models, keys, generate."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from zhike import __version__
from zhike.core.errors import ZhikeError
from zhike.services.container import Zhike
from zhike.settings import get_settings

app = typer.Typer(help="Zhike 智客: self-hosted AIGC studio", no_args_is_help=True, add_completion=False)
models_app = typer.Typer(help="Register, list and remove models", no_args_is_help=True)
keys_app = typer.Typer(help="API keys", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(keys_app, name="keys")

out = Console()
err = Console(stderr=True)
LOCAL_OWNER = "local"  # owner of what the CLI makes on this machine


def fail(message: str, code: int = 2) -> None:
    err.print("[bold red]error:[/]", escape(message))  # escape: paths and prompts may contain [brackets]
    raise typer.Exit(code)


# Parameter names the CLI spells differently from the API.
FLAG_FOR_PARAM = {"negative_prompt": "--negative", "batch_size": "--batch", "init_image": "--init", "prompt": "PROMPT"}


def cli_field(field: str) -> str:
    """`params.width` -> `--width`: name the flag the user typed, not the API field."""
    if not field.startswith("params."):
        return field
    name = field.removeprefix("params.")
    return FLAG_FOR_PARAM.get(name, "--" + name.replace("_", "-"))


def services() -> Zhike:
    return Zhike(get_settings())


def run_cli(fn: Any) -> Any:
    """Turn user errors into a message and a non-zero exit, never a traceback."""
    try:
        return fn()
    except ZhikeError as e:
        msg = e.message
        if e.field:
            flag = cli_field(e.field)
            msg = flag + msg.removeprefix(e.field) if msg.startswith(e.field) else f"{flag}: {msg}"
        fail(msg)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"zhike {__version__}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Run no jobs in this process")] = False,
) -> None:
    """Start the studio API (and an in-process worker)."""
    import uvicorn

    from zhike.api.app import create_app

    s = get_settings()
    z = Zhike(s)
    n_models, n_keys = len(z.catalog.list()), len(z.keys.list())
    h, p = host or s.host, port or s.port
    out.print(f"[bold]智客 Zhike {__version__}[/]  http://{h}:{p}  data: {s.home}")
    if n_keys == 0:
        out.print("[yellow]No API key yet: create one with[/] zhike keys create --name me")
    if n_models == 0:
        out.print("[yellow]No image model yet: add one with[/] zhike models add PATH  (see README: adding models)")
    uvicorn.run(create_app(s, start_worker=not no_worker), host=h, port=p, log_level="info")


@app.command()
def worker() -> None:
    """Run a worker process that executes queued jobs (beside `serve --no-worker`, or on more machines)."""
    from zhike.services.jobs.worker import Worker

    w = Worker(services())
    out.print(f"worker {w.worker_id} waiting for jobs")
    try:
        w.run_forever()
    except KeyboardInterrupt:
        w.stop.set()


# -- models ----------------------------------------------------------------------------------------------
@models_app.command("add")
def models_add(
    source: Annotated[str, typer.Argument(help="Folder, .safetensors file, or hub repo id org/name")],
    name: Annotated[str | None, typer.Option(help="Name to use (default: file/folder name)")] = None,
    config: Annotated[str | None, typer.Option(help="diffusers config folder for a custom single file")] = None,
) -> None:
    """Register a model (diffusers folder or single-file .safetensors; SD 1.5 / SDXL)."""
    z = services()
    path = Path(source)
    size = path.stat().st_size if path.is_file() else 0
    with Progress(
        TextColumn("hashing"), BarColumn(), TaskProgressColumn(), console=err, disable=size < 200_000_000
    ) as bar:
        task = bar.add_task("hash", total=size)
        spec = run_cli(
            lambda: z.catalog.add(source, name=name, config_dir=config, on_hash_bytes=lambda n: bar.advance(task, n))
        )
    out.print(
        f"added [bold]{spec.name}[/]: {spec.family} {spec.kind} ({spec.format}, {spec.variant}), "
        f"{spec.size_bytes / 1e9:.2f} GB"
    )


@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """List registered models."""
    specs = services().catalog.list()
    if as_json:
        print(json.dumps([s.public() for s in specs], ensure_ascii=False, indent=2))
        return
    if not specs:
        out.print("no models registered; add one with: zhike models add PATH")
        return
    t = Table("name", "family", "kind", "format", "size", "embedded", "path")
    for s in specs:
        t.add_row(
            s.name,
            s.family,
            s.kind,
            s.format,
            f"{s.size_bytes / 1e9:.2f} GB",
            "yes" if s.embedded else "",
            str(s.path),
        )
    out.print(t)


@models_app.command("remove")
def models_remove(name: str) -> None:
    """Unregister a model (its files stay where they are)."""
    run_cli(lambda: services().catalog.remove(name))
    out.print(f"removed {name}")


# -- keys ------------------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Option(help="A label for the key")]) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    row, key = run_cli(lambda: services().keys.create(name))
    err.print(f"API key [bold]{row['name']}[/] (id {row['id']}). Copy it now; it will not be shown again:")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    t = Table("id", "name", "prefix", "created", "last used", "revoked")
    for k in services().keys.list():
        t.add_row(
            k["id"],
            k["name"],
            k["prefix"] + "…",
            str(k["created_at"])[:19],
            str(k["last_used_at"] or "")[:19],
            "yes" if k["revoked"] else "",
        )
    out.print(t)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    run_cli(lambda: services().keys.revoke(key_id))
    out.print(f"revoked {key_id}")


# -- generate --------------------------------------------------------------------------------------------
def params_from_image(path: Path) -> tuple[str | None, dict[str, Any]]:
    """(op, params) embedded in a PNG by Zhike, or parsed from A1111 `parameters` text."""
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
    raise AssertionError


@app.command()
def generate(
    prompt: Annotated[str | None, typer.Argument(help="What to draw")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (zhike models list)")] = None,
    steps: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option(help="-1: random")] = None,
    width: Annotated[int | None, typer.Option()] = None,
    height: Annotated[int | None, typer.Option()] = None,
    negative: Annotated[str | None, typer.Option(help="Negative prompt")] = None,
    guidance: Annotated[float | None, typer.Option(help="CFG scale")] = None,
    scheduler: Annotated[str | None, typer.Option(help="e.g. 'Euler a', 'DPM++ 2M Karras'")] = None,
    batch: Annotated[int | None, typer.Option(help="Images in one run (seeds seed, seed+1, ...)")] = None,
    init: Annotated[Path | None, typer.Option(help="Input image: makes this img2img")] = None,
    strength: Annotated[float | None, typer.Option(help="img2img: 0 keeps the input, 1 ignores it")] = None,
    from_: Annotated[Path | None, typer.Option("--from", help="Re-make from a PNG's embedded parameters")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output PNG")] = Path("zhike.png"),
) -> None:
    """Generate an image (txt2img, or img2img with --init) in this process, with a progress bar."""
    z = services()
    op, params = (None, {})
    if from_ is not None:
        op, params = params_from_image(from_)
    flags = {
        "prompt": prompt,
        "model": model,
        "steps": steps,
        "seed": seed,
        "width": width,
        "height": height,
        "negative_prompt": negative,
        "guidance": guidance,
        "scheduler": scheduler,
        "batch_size": batch,
        "strength": strength,
    }
    params.update({k: v for k, v in flags.items() if v is not None})
    if init is not None:
        if not init.is_file():
            fail(f"--init: no file at {init}")
        asset = run_cli(lambda: z.assets.upload(init.read_bytes(), owner_id=LOCAL_OWNER, field="--init"))
        params["init_image"] = asset["id"]
        op = "img2img"
    op = op or ("img2img" if "init_image" in params else "txt2img")
    if op == "txt2img":
        params.pop("strength", None)
    if not params.get("prompt"):
        fail("give a prompt (or --from IMAGE)")
    job, _ = run_cli(lambda: z.submit(op, params, LOCAL_OWNER))
    row = run_job_with_progress(z, job["id"])
    if row["state"] != "succeeded":
        e = row.get("error") or {}
        fail(f"job {row['state']}: {e.get('message') or row.get('message') or ''}", code=1)
    result = row["result"]
    for w in result.get("warnings", []):
        err.print(f"[yellow]warning:[/] {w}")
    images = result["images"]
    for i, img in enumerate(images):
        dest = output if len(images) == 1 else output.with_name(f"{output.stem}-{i + 1}{output.suffix}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        asset = z.assets.get(img["asset_id"], owner_id=LOCAL_OWNER)
        dest.write_bytes(z.assets.read_bytes(asset))
        out.print(f"saved {dest}  (seed {img['seed']}, asset {img['asset_id']})")


def run_job_with_progress(z: Zhike, job_id: str) -> dict[str, Any]:
    """Run the job here with a progress bar; if a running server's worker took it first, follow that one."""
    from zhike.services.jobs.queue import TERMINAL
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
        task = bar.add_task("generating", total=None)
        worker.on_progress = lambda _jid, step, total: bar.update(task, total=total, completed=step)
        if not worker.run_one(job_id):
            row = z.jobs.get(job_id)
            while row["state"] not in TERMINAL:
                row = z.jobs.wait(job_id, None, timeout=1.0, since=row["updated_at"])
                if row["total_steps"]:
                    bar.update(task, total=row["total_steps"], completed=row["step"])
    return z.jobs.get(job_id)
