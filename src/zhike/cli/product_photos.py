"""`zhike product-photos DIR`: batch main images (批量主图) from a folder of product photos, into one ZIP.

Hand-written beside the generated commands (like `zhike batch`): it uploads a folder of files first and writes the
job's ZIP. The options' help comes from the op's Params (ops/product_photos.py), where the op is described once.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from zhike.cli import common
from zhike.cli.common import LOCAL_OWNER, err, fail, out, run_cli, run_job_with_progress
from zhike.core.errors import ZhikeError
from zhike.design.photo_archive import IMAGE_SUFFIXES
from zhike.ops.product_photos import MAX_PHOTOS, ProductPhotosParams
from zhike.services.container import Zhike


def _help(name: str) -> str:
    return ProductPhotosParams.model_fields[name].description or ""


def image_files(paths: Iterable[Path]) -> list[Path]:
    """Image files among `paths`: folders are scanned (not recursively, by name); files are taken as given."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                (
                    p
                    for p in path.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                ),
                key=lambda p: p.name,
            )
        elif path.is_file():
            found.append(path)
        else:
            fail(f"{path}: no such file or folder")
    return found


def upload_photos(z: Zhike, files: list[Path]) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """Upload each file as an asset named after it: ([(file, asset id)], [(file, problem)]); a file that is not a
    usable image is a problem, the others go on."""
    done: list[tuple[Path, str]] = []
    bad: list[tuple[Path, str]] = []
    for path in files:
        try:
            row = z.assets.upload(path.read_bytes(), owner_id=LOCAL_OWNER, field=path.name, name=path.name)
        except (ZhikeError, OSError) as e:
            bad.append((path, getattr(e, "message", None) or str(e)))
        else:
            done.append((path, row.id))
    return done, bad


def product_photos(
    photos: Annotated[
        list[Path],
        typer.Argument(metavar="PHOTOS", help="A folder of product photos (jpg, png, webp, heic...) or files"),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The ZIP to write")] = Path("main-images.zip"),
    size: Annotated[list[str] | None, typer.Option(help=_help("sizes") + "; repeat for more (default taobao)")] = None,
    background: Annotated[str, typer.Option(help=_help("background"))] = "white",
    color: Annotated[str, typer.Option(help=_help("color"))] = "#ffffff",
    gradient: Annotated[list[str] | None, typer.Option(help=_help("gradient") + "; repeat")] = None,
    angle: Annotated[int, typer.Option("--angle", help=_help("gradient_angle"))] = 90,
    scene: Annotated[Path | None, typer.Option(help="background=image: the scene image file")] = None,
    scene_prompt: Annotated[str, typer.Option(help=_help("scene_prompt"))] = "",
    margin: Annotated[float, typer.Option(help=_help("margin"))] = 0.08,
    shadow: Annotated[float, typer.Option(help=_help("shadow"))] = 0.5,
    matting_model: Annotated[str | None, typer.Option(help=_help("matting_model"))] = None,
) -> None:
    """Batch main images (批量主图): cut out each product photo, put it on a clean background with a soft shadow,
    centred at marketplace sizes, into one ZIP named by the photos' own file names.

    Photos that cannot be used are listed; the exit status is non-zero only when none worked."""
    z = common.services()
    files = image_files(photos)
    if not files:
        fail("no image files found (jpg, png, webp, heic...)")
    if len(files) > MAX_PHOTOS:
        fail(f"{len(files)} photos: at most {MAX_PHOTOS} a run")
    uploaded, bad = upload_photos(z, files)
    for path, message in bad:
        err.print(f"[red]problem:[/] {escape(path.name)}: {escape(message)}")
    if not uploaded:
        fail("none of the photos could be read", code=1)
    params: dict[str, Any] = {
        "photos": [aid for _, aid in uploaded],
        "sizes": size or ["taobao"],
        "background": background,
        "color": color,
        "gradient_angle": angle,
        "scene_prompt": scene_prompt,
        "margin": margin,
        "shadow": shadow,
        "matting_model": matting_model,
    }
    if gradient:
        params["gradient"] = gradient
    if scene is not None:
        params["scene_image"] = common.upload_file(z, scene, "--scene")
    flags = {"sizes": "--size", "gradient_angle": "--angle", "scene_image": "--scene"}
    job, _ = run_cli(lambda: z.submit("product_photos", params, LOCAL_OWNER), flags)
    row = run_job_with_progress(z, job.id)
    if row.state != "succeeded":
        e = row.error or {}
        fail(f"job {row.state}: {e.get('message') or row.message or ''}", code=1)
    result = row.result or {}
    for pr in result["problems"]:
        err.print(f"[red]problem:[/] {escape(pr.get('name') or pr['photo'])}: {escape(pr['message']['en'])}")
    from zhike.services.templates import write_archive

    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as f:
        count = write_archive(row, z.assets, z.exports, f)
    failed = len(bad) + result["photos_failed"]
    out.print(f"saved {output}  ({count} images: {result['photos_ok']} photos ok, {failed} failed; job {row.id})")
    if result["photos_ok"] == 0:
        raise typer.Exit(1)
