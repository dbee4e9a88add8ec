"""The `zhike` command line: one generated command per operation (cli/ops.py), `run`, batch, admin commands."""

from __future__ import annotations

import signal
import threading
from enum import StrEnum
from typing import Annotated, Any, cast

import typer

from zhike import __version__
from zhike.cli import admin, batch, common, db, ops, product_photos, safety
from zhike.cli import kb as kb_cli
from zhike.cli.common import out
from zhike.cli.run import run as run_command
from zhike.cli.verify import verify as verify_command
from zhike.core.registry import LANES, Lane
from zhike.services.container import Zhike
from zhike.settings import get_settings

app = typer.Typer(help="Zhike 智客: self-hosted AIGC studio", no_args_is_help=True, add_completion=False)
app.add_typer(admin.models_app, name="models")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(admin.users_app, name="users")
app.add_typer(admin.presets_app, name="presets")
app.add_typer(safety.safety_app, name="safety")
app.add_typer(db.db_app, name="db")
app.add_typer(kb_cli.kb_app, name="kb")
app.command(name="run")(run_command)
app.command(name="verify")(verify_command)
app.command(name="batch")(batch.batch)
app.command(name="product-photos")(product_photos.product_photos)


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
    common.run_cli(lambda: z.engine)  # opening the database migrates it; a newer one is an error, not a traceback
    # Embedded models (cutout, upscale) are always there; the hint is about image-generation checkpoints.
    n_models = sum(1 for m in z.catalog.list() if m.kind == "checkpoint")
    n_keys = len(z.keys.list())
    h, p = host or s.host, port or s.port
    out.print(f"[bold]智客 Zhike {__version__}[/]  http://{h}:{p}  data: {s.home}")
    first_password = z.users.ensure_first_admin()
    if first_password is not None:
        out.print(
            f"[bold green]Created the first user[/] admin with password: {first_password}\n"
            "  It is shown only this once. Log in and change it: zhike users set-password admin"
        )
    if n_keys == 0:
        out.print("[yellow]No API key yet: create one with[/] zhike keys create --name me")
    if n_models == 0:  # cutout, ID photo, upscale and resize work without one
        out.print("[yellow]No image model yet: add one with[/] zhike models add PATH  (see README: adding models)")
    # proxy_headers off: uvicorn would believe X-Forwarded-For from any local peer; the app believes it only from
    # the `trusted_proxies` setting (api/deps.py client_ip).
    api = create_app(s, start_worker=not no_worker)
    config = uvicorn.Config(
        api,
        host=h,
        port=p,
        log_level="info",
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = _stopping_server(uvicorn.Server, api.state)(config)
    server.run()
    if not server.started:
        raise typer.Exit(3)  # as uvicorn.run: the server did not start (port in use...)


# After SIGTERM or Ctrl-C, requests still open this long are cancelled (event streams and long polls end at once, see
# _stopping_server); then the worker has api/app.py's WORKER_STOP_SECONDS. Within 5 s in all.
GRACEFUL_SHUTDOWN_SECONDS = 2


def _stopping_server(base: type, state: Any) -> type:
    """uvicorn's Server, telling the app at the signal that it is stopping (`app.state.stopping`, set by its
    lifespan): uvicorn itself waits for open connections to close before the app hears of the shutdown, and event
    streams and long polls stay open as long as their jobs run."""

    class Server(base):  # type: ignore[misc, valid-type]
        def handle_exit(self, sig: int, frame: Any) -> None:
            stopping = getattr(state, "stopping", None)
            if stopping is not None and not self.should_exit:  # a thread: it takes locks, not for a signal handler
                threading.Thread(target=stopping, name="zhike-stopping", daemon=True).start()
            super().handle_exit(sig, frame)

    return Server


LaneName = StrEnum("LaneName", LANES)  # type: ignore[misc]  # --lane's choices: the registry's lanes


@app.command()
def worker(
    lane: Annotated[
        list[LaneName] | None,
        typer.Option(
            "--lane",
            metavar="LANE",
            help="Run only jobs of this lane (repeatable): gpu (diffusion), cpu (heavy CPU work), quick (cutout, "
            "ID photo...); default: all",
        ),
    ] = None,
) -> None:
    """Run a worker process that executes queued jobs (beside `serve --no-worker`, or on more machines)."""
    from zhike.services.jobs.worker import Worker

    z = common.services()
    common.run_cli(lambda: z.engine)
    from zhike.services.warmup import start_warmup

    w = Worker(z, lanes=[cast(Lane, x.value) for x in lane] if lane else None)
    out.print(f"worker {w.worker_id} waiting for jobs (lanes: {', '.join(w.lanes)})")
    if "gpu" in w.lanes:  # warming up loads the default checkpoint: only for a worker that runs diffusion
        start_warmup(z)
    # SIGTERM (systemd, docker stop) as Ctrl-C: the running job stops at its next step and goes back to the queue
    # at once, for the next worker, instead of waiting out its lease.
    signal.signal(signal.SIGTERM, lambda *_: w.interrupt())
    try:
        w.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        w.shutdown(timeout=3.0)  # hands back what is still held (an op between steps)


# Last: the operations' commands, so one whose name a command above already has is refused, not shadowed.
ops.register(app)
