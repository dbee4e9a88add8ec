"""Commands that make images: generate, hires, erase, inpaint, outpaint, restyle, and `run` for any operation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from zhike.cli import common
from zhike.cli.common import fail, submit_and_save, upload_file

Output = Annotated[Path, typer.Option("-o", "--output", help="Output PNG (several images: OUT-1.png, ...)")]
Model = Annotated[str | None, typer.Option(help="Model name (zhike models list)")]
Seed = Annotated[int | None, typer.Option(help="-1: random")]
Steps = Annotated[int | None, typer.Option()]


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


def parse_loras(values: list[str] | None) -> list[dict[str, Any]] | None:
    """`--lora name:0.8` (weight optional) -> [{"name", "weight"}]."""
    if not values:
        return None
    out = []
    for v in values:
        name, _, weight = v.rpartition(":") if ":" in v else (v, "", "")
        try:
            out.append({"name": name or v, "weight": float(weight) if weight else 1.0})
        except ValueError:
            fail(f"--lora: {v!r} is not NAME or NAME:WEIGHT")
    return out


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def generate(
    prompt: Annotated[
        str | None, typer.Argument(help="What to draw (A1111 syntax: (word:1.3), BREAK, <lora:x:0.8>)")
    ] = None,
    model: Model = None,
    preset: Annotated[str | None, typer.Option(help="Style preset (zhike presets list), e.g. guofeng")] = None,
    steps: Steps = None,
    seed: Seed = None,
    width: Annotated[int | None, typer.Option()] = None,
    height: Annotated[int | None, typer.Option()] = None,
    negative: Annotated[str | None, typer.Option(help="Negative prompt")] = None,
    guidance: Annotated[float | None, typer.Option(help="CFG scale")] = None,
    scheduler: Annotated[str | None, typer.Option(help="e.g. 'Euler a', 'DPM++ 2M Karras'")] = None,
    batch: Annotated[int | None, typer.Option(help="Images in one run (seeds seed, seed+1, ...)")] = None,
    clip_skip: Annotated[int | None, typer.Option(help="A1111 'Clip skip' (2 for most anime models)")] = None,
    lora: Annotated[list[str] | None, typer.Option(help="LoRA as NAME or NAME:WEIGHT; repeat for several")] = None,
    init: Annotated[Path | None, typer.Option(help="Input image: makes this img2img")] = None,
    strength: Annotated[float | None, typer.Option(help="img2img: 0 keeps the input, 1 ignores it")] = None,
    hires: Annotated[float | None, typer.Option(help="Hires fix: upscale factor, e.g. 2 (txt2img only)")] = None,
    from_: Annotated[Path | None, typer.Option("--from", help="Re-make from a PNG's embedded parameters")] = None,
    output: Output = Path("zhike.png"),
) -> None:
    """Generate images (txt2img; img2img with --init; hires fix with --hires) with a progress bar."""
    z = common.services()
    op, params = (None, {})
    if from_ is not None:
        op, params = params_from_image(from_)
    params.update(
        drop_none(
            {
                "prompt": prompt,
                "model": model,
                "preset": preset,
                "steps": steps,
                "seed": seed,
                "width": width,
                "height": height,
                "negative_prompt": negative,
                "guidance": guidance,
                "scheduler": scheduler,
                "batch_size": batch,
                "clip_skip": clip_skip,
                "loras": parse_loras(lora),
                "strength": strength,
                "hires_scale": hires,
            }
        )
    )
    if init is not None:
        params["init_image"] = upload_file(z, init, "--init")
        op = "img2img"
    op = op or ("img2img" if "init_image" in params else "hires" if "hires_scale" in params else "txt2img")
    if op != "img2img":
        params.pop("strength", None)
    if not params.get("prompt") and op != "img2img":
        fail("give a prompt (or --from IMAGE)")
    submit_and_save(z, op, params, output)


def parse_assignments(pairs: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"{flag}: expected KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


def run(
    op: Annotated[str, typer.Argument(help="Operation name (the API's GET /api/v1/ops lists them)")],
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="KEY=VALUE (JSON values allowed)")] = None,
    image: Annotated[
        list[str] | None, typer.Option("--image", help="FIELD=PATH: upload a file for an asset field")
    ] = None,
    params_json: Annotated[str | None, typer.Option("--json", help="All params as one JSON object")] = None,
    output: Output = Path("zhike.png"),
) -> None:
    """Run any operation: `zhike run erase --image image=a.png --image mask=m.png -o out.png`."""
    z = common.services()
    params: dict[str, Any] = {}
    if params_json:
        try:
            params = json.loads(params_json)
        except ValueError as e:
            fail(f"--json: not valid JSON: {e}")
    for key, raw in parse_assignments(param, "--param").items():
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw  # plain text, e.g. -p prompt=a cat
        set_path(params, key, value)
    for key, path in parse_assignments(image, "--image").items():
        set_path(params, key, upload_file(z, Path(path), f"--image {key}"))
    submit_and_save(z, op, params, output)


def set_path(params: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `controls.0.image` style keys, creating the lists and objects on the way."""
    parts = dotted.split(".")
    node: Any = params
    for part, nxt in zip(parts, parts[1:], strict=False):
        child: Any = [] if nxt.isdigit() else {}
        if isinstance(node, list):
            i = int(part)
            while len(node) <= i:
                node.append(None)
            node[i] = node[i] if node[i] is not None else child
            node = node[i]
        else:
            node = node.setdefault(part, child)
    last = parts[-1]
    if isinstance(node, list):
        i = int(last)
        while len(node) <= i:
            node.append(None)
        node[i] = value
    else:
        node[last] = value


def erase(
    image: Annotated[Path, typer.Argument(help="Photo to clean up")],
    mask: Annotated[Path, typer.Option(help="Mask: white where the object is")],
    method: Annotated[str, typer.Option(help="auto | diffusion | classical")] = "auto",
    model: Model = None,
    prompt: Annotated[str | None, typer.Option(help="What should be there instead (optional)")] = None,
    seed: Seed = None,
    steps: Steps = None,
    output: Output = Path("erased.png"),
) -> None:
    """Smart erase (智能消除): remove what the mask covers; the rest of the photo is kept exactly."""
    z = common.services()
    params = drop_none(
        {
            "image": upload_file(z, image, "IMAGE"),
            "mask": upload_file(z, mask, "--mask"),
            "method": method,
            "model": model,
            "prompt": prompt,
            "seed": seed,
            "steps": steps,
        }
    )
    submit_and_save(z, "erase", params, output)


def inpaint(
    image: Annotated[Path, typer.Argument(help="Image to edit")],
    mask: Annotated[Path, typer.Option(help="Mask: white = redraw")],
    prompt: Annotated[str, typer.Option(help="What to draw in the mask")] = "",
    model: Model = None,
    preset: Annotated[str | None, typer.Option(help="Style preset")] = None,
    strength: Annotated[float | None, typer.Option()] = None,
    seed: Seed = None,
    steps: Steps = None,
    output: Output = Path("inpainted.png"),
) -> None:
    """Inpaint (局部重绘): redraw the masked area from a prompt; outside the mask is kept exactly."""
    z = common.services()
    params = drop_none(
        {
            "image": upload_file(z, image, "IMAGE"),
            "mask": upload_file(z, mask, "--mask"),
            "prompt": prompt,
            "model": model,
            "preset": preset,
            "strength": strength,
            "seed": seed,
            "steps": steps,
        }
    )
    submit_and_save(z, "inpaint", params, output)


def outpaint(
    image: Annotated[Path, typer.Argument(help="Image to extend")],
    aspect: Annotated[str | None, typer.Option(help="Target aspect, e.g. 16:9 (or use the side options)")] = None,
    anchor: Annotated[str, typer.Option(help="center | left | right | top | bottom")] = "center",
    left: Annotated[int, typer.Option(help="New pixels on the left")] = 0,
    right: Annotated[int, typer.Option()] = 0,
    top: Annotated[int, typer.Option()] = 0,
    bottom: Annotated[int, typer.Option()] = 0,
    prompt: Annotated[str, typer.Option(help="What the new area shows (optional)")] = "",
    method: Annotated[str, typer.Option(help="auto | diffusion | classical")] = "auto",
    model: Model = None,
    seed: Seed = None,
    steps: Steps = None,
    output: Output = Path("extended.png"),
) -> None:
    """Smart extend (智能外拓): grow the canvas; the original pixels are kept exactly."""
    z = common.services()
    params = drop_none(
        {
            "image": upload_file(z, image, "IMAGE"),
            "aspect": aspect,
            "anchor": anchor,
            "left": left,
            "right": right,
            "top": top,
            "bottom": bottom,
            "prompt": prompt,
            "method": method,
            "model": model,
            "seed": seed,
            "steps": steps,
        }
    )
    submit_and_save(z, "outpaint", params, output)


def restyle(
    image: Annotated[Path, typer.Argument(help="Image to restyle")],
    preset: Annotated[str, typer.Option(help="Target style preset, e.g. youhua, guofeng, erciyuan")] = "youhua",
    prompt: Annotated[str, typer.Option(help="Describe the subject (helps the model keep it)")] = "",
    strength: Annotated[float | None, typer.Option(help="Higher: more style, less of the input")] = None,
    model: Model = None,
    seed: Seed = None,
    output: Output = Path("restyled.png"),
) -> None:
    """Style change (风格修改): redraw the image in another style, keeping its layout."""
    z = common.services()
    params = drop_none(
        {
            "init_image": upload_file(z, image, "IMAGE"),
            "preset": preset,
            "prompt": prompt,
            "strength": strength,
            "model": model,
            "seed": seed,
        }
    )
    submit_and_save(z, "restyle", params, output)


def preprocess(
    image: Annotated[Path, typer.Argument(help="Photo or drawing")],
    mode: Annotated[str, typer.Option(help="canny | softedge | scribble | lineart | pose")] = "canny",
    output: Output = Path("map.png"),
) -> None:
    """Make a control map (edges, soft edges, line art, pose skeleton) to look at or edit before `control`."""
    z = common.services()
    submit_and_save(z, "preprocess", {"image": upload_file(z, image, "IMAGE"), "mode": mode}, output)


def control(
    prompt: Annotated[str, typer.Argument(help="What to draw")],
    control_model: Annotated[str, typer.Option("--control-model", help="A registered ControlNet")],
    control_image: Annotated[Path, typer.Option("--control-image", help="Photo to preprocess, or a ready map")],
    preprocess_mode: Annotated[
        str, typer.Option("--preprocess", help="none | canny | softedge | scribble | lineart | pose")
    ] = "none",
    weight: Annotated[float, typer.Option(help="Control strength")] = 1.0,
    init: Annotated[
        Path | None, typer.Option(help="img2img from this image (line-art colouring: the line art)")
    ] = None,
    strength: Annotated[float | None, typer.Option(help="With --init: how far it may move")] = None,
    model: Model = None,
    preset: Annotated[str | None, typer.Option(help="Style preset")] = None,
    seed: Seed = None,
    steps: Steps = None,
    output: Output = Path("controlled.png"),
) -> None:
    """Generate following a control image (one ControlNet; use `zhike run control` for several)."""
    z = common.services()
    unit = {
        "model": control_model,
        "image": upload_file(z, control_image, "--control-image"),
        "preprocess": preprocess_mode,
        "weight": weight,
    }
    params = drop_none(
        {
            "prompt": prompt,
            "controls": [unit],
            "model": model,
            "preset": preset,
            "seed": seed,
            "steps": steps,
            "strength": strength,
            "init_image": upload_file(z, init, "--init") if init else None,
        }
    )
    submit_and_save(z, "control", params, output)


COMMANDS = (generate, run, erase, inpaint, outpaint, restyle, preprocess, control)
