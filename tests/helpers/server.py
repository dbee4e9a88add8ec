"""A real `zhike serve` process for end-to-end tests.

`running_server(model_dir, root)` prepares a fresh ZHIKE_HOME under `root` with the CLI (registers the model as
`tiny`, creates API keys `a` and `b`), starts the server on a free port, waits for /api/v1/health and yields a
`Server(base_url, key_a, key_b, home)`. The server is stopped on exit; its log is printed when the block fails.

`server_fixture(...)` is the same as a pytest (module-scoped) fixture body that also prints the server's log
when any test that used it failed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

BIN = Path(sys.executable).parent
ZHIKE = str(BIN / "zhike")
LOG_TAIL_LINES = 200
# A healthy `zhike serve` answers in seconds; importing Zhike alone takes 20+ s on a loaded 2-core machine.
START_TIMEOUT = 180


class Server(NamedTuple):
    base_url: str
    key_a: str
    key_b: str
    home: Path

    @property
    def log_path(self) -> Path:
        return log_path(self.home)

    def log_text(self) -> str:
        return read_log(self.home)


def log_path(home: Path) -> Path:
    return home.parent / f"{home.name}-server.log"


def read_log(home: Path, tail: int = LOG_TAIL_LINES) -> str:
    path = log_path(home)
    if not path.exists():
        return "(no server log)"
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(lines[-tail:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zhike_env(home: Path, **settings: Any) -> dict[str, str]:
    """The environment for a zhike process using `home`: offline, CPU; `settings` become ZHIKE_<NAME>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHIKE_")}
    env.update(
        ZHIKE_HOME=str(home),
        ZHIKE_DEVICE="cpu",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        COLUMNS="200",  # rich wraps at 80 columns without a terminal; keep messages on one line
        NO_COLOR="1",
        ZHIKE_TRANSLATE_PROMPTS="false",  # as make_settings: no real LLM loaded for a Chinese prompt unless asked
    )
    env.update({f"ZHIKE_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def run_zhike(home: Path, *args: str, check: bool = True, timeout: float = 120, **settings: Any):
    """Run the `zhike` CLI against `home`; returns the CompletedProcess (text)."""
    proc = subprocess.run(
        [ZHIKE, *args],
        env=zhike_env(home, **settings),
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"zhike {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_cli_inprocess(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Like `run_zhike`, but the CLI's own code (the Typer app) runs in this process, with the same environment
    and working directory: no Python start and Zhike import (~4 s CPU each; fixtures ran ~150 such subprocesses
    per suite). For commands that load no model; the `zhike` entry point itself runs for every `zhike serve`."""
    from typer.testing import CliRunner

    from zhike.cli.main import app
    from zhike.services.engine import get_engine
    from zhike.settings import get_settings

    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ZHIKE_")}
    env.update(zhike_env(home))
    home.parent.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(home.parent)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
        db = home / "zhike.db"  # the default database_url (zhike_env sets no other)
        if db.exists():  # no pooled connection of ours stays open on the server's database
            get_engine(f"sqlite:///{db}").dispose()
    finally:
        get_settings.cache_clear()
        os.chdir(cwd)
    proc = subprocess.CompletedProcess(["zhike", *args], result.exit_code, result.stdout, result.stderr)
    if check and proc.returncode != 0:
        raise RuntimeError(f"zhike {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def create_key(home: Path, name: str) -> str:
    """`zhike keys create --name NAME` prints the key alone on stdout."""
    out = run_cli_inprocess(home, "keys", "create", "--name", name).stdout.strip().splitlines()
    assert out and out[-1].startswith("zk_"), f"no key on stdout: {out!r}"
    return out[-1]


def start_worker(home: Path, log: Path, **settings: Any) -> subprocess.Popen[bytes]:
    """A separate `zhike worker` process on `home` (settings as in zhike_env, e.g. lease_seconds=2), its output
    in `log`: for tests that kill it mid-job."""
    out = log.open("w")
    return subprocess.Popen([ZHIKE, "worker"], env=zhike_env(home, **settings), stdout=out, stderr=out)


def create_user(home: Path, name: str, password: str, *, admin: bool = False) -> None:
    """`zhike users create NAME --password P`: a user who can sign in to the web studio."""
    run_cli_inprocess(home, "users", "create", name, "--password", password, *(["--admin"] if admin else []))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _start(home: Path, port: int, settings: dict[str, Any], timeout: float) -> subprocess.Popen[bytes]:
    """Start `zhike serve` and wait until it answers /api/v1/health; raise with its log if it does not."""
    with log_path(home).open("ab") as log:
        proc = subprocess.Popen(
            [ZHIKE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=zhike_env(home, **settings),
            cwd=home.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}/api/v1/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"zhike serve exited with {proc.returncode} before it was healthy:\n{read_log(home)}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    _stop(proc)
    raise RuntimeError(f"zhike serve did not answer {url} within {timeout:.0f} s:\n{read_log(home)}")


def _start_on_free_port(home: Path, settings: dict[str, Any], timeout: float) -> tuple[subprocess.Popen[bytes], int]:
    """Start `zhike serve` on a free port, retrying when the port was taken between probing and binding it."""
    for attempt in range(3):
        port = free_port()
        try:
            return _start(home, port, settings, timeout), port
        except RuntimeError:
            if attempt == 2 or "address already in use" not in read_log(home).lower():
                raise
    raise AssertionError("unreachable")


@contextmanager
def running_server(
    model_dir: Path, root: Path, *, model_name: str = "tiny", timeout: float = START_TIMEOUT, **settings: Any
) -> Iterator[Server]:
    """A `zhike serve` process with a fresh home in `root`, model `model_name` and keys `a`, `b`.

    `settings` are passed as ZHIKE_<NAME> environment variables, e.g. max_upload_mb=1.
    """
    home = root / "home"
    run_cli_inprocess(home, "models", "add", str(model_dir), "--name", model_name)
    key_a, key_b = create_key(home, "a"), create_key(home, "b")
    proc, port = _start_on_free_port(home, settings, timeout)
    try:
        yield Server(f"http://127.0.0.1:{port}", key_a, key_b, home)
    except BaseException:
        print(f"\n----- zhike server log ({log_path(home)}) -----\n{read_log(home)}", file=sys.stderr)
        raise
    finally:
        _stop(proc)


@contextmanager
def serve_process(home: Path, *, timeout: float = START_TIMEOUT, **settings: Any) -> Iterator[str]:
    """One more `zhike serve` on an existing home (e.g. a second start); yields its base URL. Its output is
    appended to the same log as the first server's."""
    proc, port = _start_on_free_port(home, settings, timeout)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


FIRST_ADMIN_RE = re.compile(r"Created the first user\S* admin with password: (\S+)")


def first_admin_passwords(log_text: str) -> list[str]:
    """Every first-run admin password `zhike serve` printed in a log (a fresh home prints exactly one)."""
    return FIRST_ADMIN_RE.findall(log_text)


def server_fixture(request: pytest.FixtureRequest, root: Path, model_dir: Path, **settings: Any) -> Iterator[Server]:
    """Body of a server fixture: like `running_server`, and prints the log when a test using it failed."""
    failed_before = request.session.testsfailed
    with running_server(model_dir, root, **settings) as server:
        yield server
        if request.session.testsfailed > failed_before:
            text = f"----- zhike server log ({server.log_path}) -----\n{server.log_text()}"
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line("")
                reporter.write_line(text)
            else:
                print(text, file=sys.stderr)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Long-poll a job until it ends (the API's `?wait=`), or fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", params={"wait": min(10.0, timeout)}).json()
        if job.get("state") in ("succeeded", "failed", "cancelled"):
            return job
    raise AssertionError(f"job {job_id} not finished after {timeout} s: {job}")
