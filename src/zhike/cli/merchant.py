"""Merchant tools on the command line: cutout, id-photo, upscale, resize, swap (real embedded models)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zhike.cli import common
from zhike.cli.common import submit_and_save, upload_file
from zhike.cli.create import Model, Output, Seed, drop_none


def cutout(
    image: Annotated[Path, typer.Argument(help="Photo of a person, product or logo")],
    mode: Annotated[str, typer.Option(help="auto | person | product | logo")] = "auto",
    background: Annotated[str | None, typer.Option(help="Hex colour like #ffffff (default: transparent)")] = None,
    background_image: Annotated[Path | None, typer.Option(help="Put the subject on this image")] = None,
    feather: Annotated[int, typer.Option(help="Soften the edge, px")] = 0,
    shadow: Annotated[bool, typer.Option(help="Add a soft shadow")] = False,
    model: Annotated[str | None, typer.Option(help="Matting model (default: isnet-medium)")] = None,
    output: Output = Path("cutout.png"),
) -> None:
    """Cutout (智能抠图): the subject on transparency (RGBA PNG), or on a new background."""
    z = common.services()
    params = drop_none(
        {
            "image": upload_file(z, image, "IMAGE"),
            "mode": mode,
            "background": background,
            "feather": feather,
            "shadow": shadow,
            "model": model,
            "background_image": upload_file(z, background_image, "--background-image") if background_image else None,
        }
    )
    submit_and_save(z, "cutout", params, output)


def id_photo(
    image: Annotated[Path, typer.Argument(help="A portrait with one face")],
    size: Annotated[str, typer.Option(help="1inch | 2inch | small1inch | big1inch | passport_cn | visa_us")] = "1inch",
    background: Annotated[str, typer.Option(help="white | blue | red | #RRGGBB")] = "white",
    sheet: Annotated[bool, typer.Option(help="Also make a 6-inch print sheet")] = False,
    output: Output = Path("id.png"),
) -> None:
    """ID photo (证件照): exact size, face centred and scaled by landmarks, plain background."""
    z = common.services()
    params = {
        "image": upload_file(z, image, "IMAGE"),
        "size": size,
        "background": background,
        "sheet": "6inch" if sheet else "none",
    }
    submit_and_save(z, "id_photo", params, output)


def upscale(
    image: Annotated[Path, typer.Argument(help="Image to enlarge")],
    scale: Annotated[float, typer.Option(help="1-4")] = 4.0,
    model: Annotated[str | None, typer.Option(help="realesrgan-x4plus (photos), realesrgan-x4plus-anime, ...")] = None,
    tile: Annotated[int, typer.Option(help="Tile size: smaller uses less memory")] = 256,
    output: Output = Path("upscaled.png"),
) -> None:
    """Upscale (图片超分) with Real-ESRGAN, tiled so large images fit in memory."""
    z = common.services()
    submit_and_save(
        z,
        "upscale",
        drop_none({"image": upload_file(z, image, "IMAGE"), "scale": scale, "model": model, "tile": tile}),
        output,
    )


def resize(
    image: Annotated[Path, typer.Argument(help="Image or design to adapt")],
    size: Annotated[
        list[str],
        typer.Option(help="Preset (taobao, jd, douyin, xiaohongshu, banner, wechat_cover) or WxH; repeat for several"),
    ],
    mode: Annotated[str, typer.Option(help="crop (keep the subject whole) | fit | extend")] = "crop",
    output: Output = Path("resized.png"),
) -> None:
    """Design size change (设计尺寸变换): many marketplace sizes in one job, the subject kept whole."""
    z = common.services()
    submit_and_save(z, "resize_design", {"image": upload_file(z, image, "IMAGE"), "sizes": size, "mode": mode}, output)


def swap(
    image: Annotated[Path, typer.Argument(help="Product photo")],
    prompt: Annotated[
        str, typer.Option(help="The scene, e.g. '雪山日照 snowy mountain in sunshine' (needs a model)")
    ] = "",
    scene: Annotated[
        Path | None, typer.Option(help="A scene photo to place the product in (works without a model)")
    ] = None,
    scale: Annotated[float, typer.Option(help="Product size relative to the canvas")] = 0.6,
    model: Model = None,
    seed: Seed = None,
    output: Output = Path("scene.png"),
) -> None:
    """Product in scene (主体迁移): the product kept pixel for pixel, with a contact shadow."""
    z = common.services()
    params = drop_none(
        {
            "image": upload_file(z, image, "IMAGE"),
            "prompt": prompt,
            "model": model,
            "seed": seed,
            "scene_image": upload_file(z, scene, "--scene") if scene else None,
            "placement": {"scale": scale},
        }
    )
    submit_and_save(z, "subject_swap", params, output)


COMMANDS = (cutout, id_photo, upscale, resize, swap)
