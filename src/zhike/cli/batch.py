"""`zhike batch`: fill a design template from a data file (批量设计), all rows and sizes in one job, into a ZIP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from zhike.cli import common
from zhike.cli.common import LOCAL_OWNER, err, fail, out, run_cli, run_job_with_progress
from zhike.services.container import Zhike


def _list_templates(z: Zhike) -> None:
    from zhike.services.templates import TemplateStore

    table = Table("id", "name", "size", "columns (* required)", "")
    for t in TemplateStore(z.engine).list(LOCAL_OWNER):
        v = t.view(full=False)
        cols = [f"{c}*" for c in v["columns"]["required"]] + v["columns"]["optional"]
        table.add_row(
            v["id"],
            f"{v['name']['zh']} {v['name']['en']}",
            f"{v['width']}x{v['height']}",
            ", ".join(cols),
            "bundled" if v["bundled"] else f"v{v['version']}",
        )
    out.print(table)


def _template_params(z: Zhike, template: str) -> tuple[dict[str, Any], Any]:
    """TEMPLATE as job params (`template` id or `template_json` from a file) and the parsed Template."""
    from zhike.services.templates import TemplateStore, parse_or_invalid

    path = Path(template)
    if path.suffix.lower() == ".json" or path.is_file():
        if not path.is_file():
            fail(f"TEMPLATE: no file at {path}")
        try:
            body = json.loads(path.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            fail(f"TEMPLATE: {path.name} is not JSON: {e}")
        tpl = run_cli(lambda: parse_or_invalid(body, field="TEMPLATE"))
        return {"template_json": tpl.model_dump(mode="json")}, tpl
    stored = run_cli(lambda: TemplateStore(z.engine).get(template, LOCAL_OWNER, field="TEMPLATE"))
    return {"template": template}, stored.template


def _upload_images(
    z: Zhike, rows: list[dict[str, str]], columns: set[str], base: Path, photos: Path | None = None
) -> int:
    """Image cells that are local files (relative to the data file), or photos in the `photos` folder named by
    their file name (with or without the extension, any case) -> uploaded asset ids; others stay as typed (asset
    ids and /api/v1/assets/ID/file URLs are checked by the job, per row)."""
    from zhike.cli.product_photos import image_files
    from zhike.design.data import photo_key

    in_folder = {photo_key(p.name): p for p in image_files([photos])} if photos is not None else {}
    uploaded: dict[Path, str] = {}
    for row in rows:
        for col in columns:
            value = row.get(col, "").strip()
            if not value or "://" in value or value.startswith("/api/"):
                continue
            path = Path(value).expanduser()
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                path = in_folder.get(photo_key(value), path)
            if path.is_file():
                key = path.resolve()
                if key not in uploaded:
                    uploaded[key] = run_cli(
                        lambda p=path: z.assets.upload(
                            p.read_bytes(), owner_id=LOCAL_OWNER, field=f"DATA: {p.name}", name=p.name
                        )
                    ).id
                row[col] = uploaded[key]
    return len(uploaded)


def batch(
    template: Annotated[
        str | None, typer.Argument(help="Template: a bundled or saved id (see --list-templates) or a .json file")
    ] = None,
    data: Annotated[
        Path | None, typer.Argument(help="Rows: .csv (UTF-8 or GBK), .xlsx (first sheet) or .json; header = columns")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The ZIP to write (designs + manifest.csv)")] = Path(
        "designs.zip"
    ),
    size: Annotated[
        list[str] | None,
        typer.Option(help="'template' (default), a preset (taobao, douyin, xiaohongshu, ...) or WxH; repeat for more"),
    ] = None,
    photos: Annotated[
        Path | None,
        typer.Option(help="A folder of the photos the image columns name by file name (咖啡杯.jpg or 咖啡杯)"),
    ] = None,
    list_templates: Annotated[bool, typer.Option("--list-templates", help="List the templates and exit")] = False,
) -> None:
    """Batch design (批量设计): one design per data row and size from a template, into one ZIP with a manifest.

    Image columns may hold local image files (uploaded first; with --photos DIR, a photo's file name), asset ids or
    /api/v1/assets/ID/file URLs. Rows with problems are listed and skipped; the exit status is non-zero only when
    no design was made."""
    from zhike.design import data as batch_data
    from zhike.services.templates import write_archive

    z = common.services()
    if list_templates:
        _list_templates(z)
        return
    if template is None or data is None:
        fail("give TEMPLATE and DATA (or --list-templates)")
    params, tpl = _template_params(z, template)
    table = run_cli(lambda: batch_data.parse_path(data))
    enc = f", {table.encoding}" if table.encoding else ""
    err.print(f"{data.name}: {len(table.rows)} rows, columns {', '.join(table.columns)} ({table.format}{enc})")
    required, _ = tpl.columns()
    missing = sorted(required - set(table.columns))
    if missing:
        err.print(f"[yellow]warning:[/] the data has no column {', '.join(map(repr, missing))} that {tpl.id} needs")
    if photos is not None and not photos.is_dir():
        fail(f"--photos: no folder at {photos}")
    n_up = _upload_images(z, table.rows, batch_data.image_columns(tpl), data.parent, photos)
    if n_up:
        err.print(f"uploaded {n_up} images")
    params |= {"rows": table.rows, "sizes": size or ["template"]}
    job, _ = run_cli(lambda: z.submit("batch_design", params, LOCAL_OWNER))
    row = run_job_with_progress(z, job.id)
    if row.state != "succeeded":
        e = row.error or {}
        fail(f"job {row.state}: {e.get('message') or row.message or ''}", code=1)
    result = row.result or {}
    for e in result["errors"]:
        err.print("[red]row error:[/]", escape(e["message"]))
    for w in result.get("warnings", []):
        err.print("[yellow]warning:[/]", escape(w))
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as f:
        count = write_archive(row, z.assets, z.exports, f)
    out.print(
        f"saved {output}  ({count} designs: {result['rows_ok']} rows ok, {result['rows_failed']} failed; job {row.id})"
    )
    if result["designs_ok"] == 0:
        raise typer.Exit(1)
