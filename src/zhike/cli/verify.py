"""`zhike verify FILE`: which provenance labels a file carries and which asset of this deployment it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from zhike.cli.common import fail, out, run_cli, services

STATUS_STYLE = {"valid": "green", "trusted": "green", "invalid": "red", "absent": "yellow", "not_checkable": "yellow"}
STATUS_ZH = {"valid": "有效", "trusted": "有效且可信", "invalid": "无效", "absent": "无", "not_checkable": "无法检测"}
WHERE_ZH = {"start": "开头", "end": "结尾", "middle": "文中"}
NAMES = {
    "implicit": "TC260 implicit 隐式标识",
    "c2pa": "C2PA manifest 内容凭证",
    "watermark": "watermark 水印",
    "notice": "notice 显式提示",  # text exports and audio with a notice only
}


def _details(name: str, r: dict[str, Any]) -> str:
    if name == "implicit" and r.get("fields"):
        f = r["fields"]
        text = f"Label={f.get('Label')} producer={f.get('ContentProducer')} ProduceID={f.get('ProduceID')}"
        if r.get("integrity"):
            text += f" integrity={r['integrity']}"
    elif name == "c2pa" and r["status"] not in ("absent", "not_checkable"):
        text = f"{r.get('validation_state') or ''} actions={','.join(r.get('actions') or [])} asset={r.get('asset_id')}"
        if r.get("ingredients"):
            text += " ingredients=" + ",".join(str(i.get("title")) for i in r["ingredients"])
        if r.get("failures"):
            text += " failures=" + ",".join(str(f.get("code")) for f in r["failures"])
        if r.get("errors"):
            text += " " + "; ".join(r["errors"])
    elif name == "watermark":
        text = r.get("key") and f"key={r['key']}" or r.get("reason") or r.get("recorded_skip") or ""
    elif name == "notice" and r.get("where"):
        text = f"{r['where']} {WHERE_ZH[r['where']]}: {r.get('text') or r.get('reason') or ''}"
    elif r.get("reason"):
        text = r["reason"]
    else:
        text = ""
    return "; ".join(r.get("problems") or []) + (" " if r.get("problems") else "") + text


def verify(
    file: Annotated[
        Path,
        typer.Argument(
            help="File to check: image (PNG, JPEG, WebP), text export (MD, TXT, DOCX, PDF), audio or video "
            "(WAV, MP3, M4A, MP4, WebM)"
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON")] = False,
) -> None:
    """Check a file's AI-content labels (TC260 fields, C2PA, watermark; a text's notice) / 检查文件的AI生成内容标识.

    Exit status: 0 when at least one label is valid, 1 when none is, 2 when the file cannot be read.
    """
    from zhike.provenance.verify import valid_labels
    from zhike.services.verify import DbLookup, verify_file

    if not file.is_file():
        fail(f"FILE: no file at {file} / 文件不存在")
    z = services()
    svc = z.labels
    report = run_cli(
        lambda: verify_file(
            file.read_bytes(),
            svc,
            DbLookup(z.engine),  # this machine's CLI sees every owner's assets
            field="FILE",
            max_bytes=max(z.assets.max_upload_bytes, z.assets.media_limits.max_bytes),
            max_pixels=z.assets.max_pixels,
        )
    )
    valid = bool(valid_labels(report))
    if as_json:
        out.print_json(json.dumps(report, ensure_ascii=False, default=str))
    else:
        size = f" {report['width']}x{report['height']}" if report.get("width") else ""
        length = f" {report['duration_s']:.1f}s" if report.get("duration_s") else ""
        table = Table(title=f"{escape(str(file))}  {report['mime']}{size}{length}")
        table.add_column("label 标识")
        table.add_column("status 状态")
        table.add_column("details 内容", overflow="fold")
        for name, title in NAMES.items():
            r = report.get(name)
            if r is None:  # an image (or audio without a notice) has no notice section
                continue
            st = r.get("status", "absent")
            style = STATUS_STYLE.get(st, "white")
            table.add_row(title, f"[{style}]{st} {STATUS_ZH.get(st, '')}[/]", escape(_details(name, r)))
        out.print(table)
        a = report["asset"]
        if a.get("id"):
            where = "this deployment 本站" if a.get("in_deployment") else "not found in this deployment 本站未找到"
            out.print(f"asset 作品: {escape(str(a['id']))} ({where}; from {', '.join(a['found_by'])})")
        elif a.get("watermark_key"):
            out.print(f"Zhike watermark key {a['watermark_key']}: no asset of this deployment matches / 本站无匹配作品")
        out.print(f"{report['summary']['zh']}\n{report['summary']['en']}")
    raise typer.Exit(0 if valid else 1)
