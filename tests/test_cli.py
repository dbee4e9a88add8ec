"""The `zhike` CLI: models add/list/remove, keys, generate -o and --from re-makes the same image."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.cli import cli_for


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    yield from cli_for(tmp_path / "home", monkeypatch)


def test_models_add_list_remove(cli, tiny_sd15: Path, tiny_sd15_single: tuple) -> None:  # type: ignore[no-untyped-def]
    r = cli("models", "add", str(tiny_sd15), "--name", "tiny")
    assert r.exit_code == 0 and "sd15" in r.stdout
    single, cfg = tiny_sd15_single
    assert cli("models", "add", str(single), "--config", str(cfg)).exit_code == 0
    listed = [m for m in json.loads(cli("models", "list", "--json").stdout) if not m["embedded"]]
    assert {m["name"]: (m["format"], m["family"]) for m in listed} == {
        "tiny": ("diffusers", "sd15"),
        "tiny-sd15": ("single_file", "sd15"),
    }
    again = cli("models", "add", str(tiny_sd15), "--name", "tiny")
    assert again.exit_code != 0 and "exists" in again.stderr
    assert cli("models", "remove", "tiny").exit_code == 0
    names = [m["name"] for m in json.loads(cli("models", "list", "--json").stdout) if not m["embedded"]]
    assert names == ["tiny-sd15"]
    gone = cli("models", "remove", "tiny")
    assert gone.exit_code != 0 and "unknown model" in gone.stderr


def test_models_add_refuses_pickles_and_offline_repo_ids(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"\x80\x04not really a pickle")
    r = cli("models", "add", str(ckpt))
    assert r.exit_code != 0 and "safetensors" in r.stderr
    r = cli("models", "add", "someorg/some-model")
    assert r.exit_code != 0
    assert "offline" in r.stderr and "zhike models add DIR" in r.stderr.replace("\n", " ")


def test_generate_then_remake_from_png(cli, tiny_sd15: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("models", "add", str(tiny_sd15), "--name", "tiny")
    out = tmp_path / "a.png"
    r = cli(
        "generate",
        "山水画, a lake",
        "--model",
        "tiny",
        "--steps",
        "3",
        "--seed",
        "9",
        "--width",
        "64",
        "--height",
        "64",
        "--negative",
        "blurry",
        "-o",
        str(out),
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    first = Image.open(out)
    assert "Seed: 9" in first.text["parameters"] and first.size == (64, 64)
    assert b"http://www.tc260.org.cn/ns/AIGC/1.0/" in out.read_bytes()  # -o writes the labelled export
    again = tmp_path / "b.png"
    r = cli("generate", "--from", str(out), "-o", str(again))
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(first))
    # Flags override what the PNG carries.
    other = tmp_path / "c.png"
    assert cli("generate", "--from", str(out), "--seed", "10", "-o", str(other)).exit_code == 0
    assert not np.array_equal(np.asarray(Image.open(other)), np.asarray(first))


def test_generate_from_an_a1111_png(cli, tiny_sd15: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import PngImagePlugin

    cli("models", "add", str(tiny_sd15), "--name", "tiny")
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a cat\nNegative prompt: dog\nSteps: 2, Sampler: Euler a, CFG scale: 5, "
        "Seed: 3, Size: 64x64, Model hash: 0123456789, Model: tiny, Version: v1.10.1",
    )
    src = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(src, pnginfo=info)
    out = tmp_path / "out.png"
    r = cli("generate", "--from", str(src), "-o", str(out))
    assert r.exit_code == 0, r.stderr
    text = Image.open(out).text["parameters"]
    assert text.startswith("a cat\nNegative prompt: dog\n") and "Sampler: Euler a" in text and "Seed: 3" in text


def test_generate_img2img_and_bad_input(cli, tiny_sd15: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("models", "add", str(tiny_sd15), "--name", "tiny")
    init = tmp_path / "init.png"
    Image.new("RGB", (80, 64), (200, 30, 30)).save(init)
    out = tmp_path / "i2i.png"
    r = cli("img2img", "make it blue", "--init", str(init), "--strength", "0.5", "--steps", "4", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert Image.open(out).size == (80, 64)
    bad = cli("generate", "x", "--width", "65", "-o", str(tmp_path / "x.png"))
    assert bad.exit_code == 2 and "--width: must be a multiple of 8" in bad.stderr


def test_keys_create_prints_the_key_once(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("keys", "create", "--name", "shop")
    key = r.stdout.strip()
    assert r.exit_code == 0 and key.startswith("zk_") and len(key) > 40
    listed = cli("keys", "list").stdout
    assert "shop" in listed and key not in listed


def test_edit_commands_and_generic_run(cli, tiny_sd15: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "p.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(photo)
    mask = tmp_path / "m.png"
    m = Image.new("L", (64, 48))
    m.paste(255, (20, 10, 40, 30))
    m.save(mask)
    # No model registered: erase and outpaint fall back to the named classical methods.
    r = cli("erase", str(photo), "--mask", str(mask), "-o", str(tmp_path / "e.png"))
    assert r.exit_code == 0, r.stderr
    assert "classical" in r.stderr and Image.open(tmp_path / "e.png").size == (64, 48)
    r = cli("outpaint", str(photo), "--aspect", "1:1", "-o", str(tmp_path / "o.png"))
    assert r.exit_code == 0, r.stderr
    assert Image.open(tmp_path / "o.png").size == (64, 64)
    cli("models", "add", str(tiny_sd15), "--name", "tiny")
    r = cli(
        "run",
        "inpaint",
        "--image",
        f"image={photo}",
        "--image",
        f"mask={mask}",
        "-p",
        "prompt=a red ball",
        "-p",
        "steps=2",
        "-p",
        "seed=3",
        "-o",
        str(tmp_path / "i.png"),
    )
    assert r.exit_code == 0, r.stderr
    assert "a red ball" in Image.open(tmp_path / "i.png").text["parameters"]
    bad = cli("run", "inpaint", "--image", f"image={photo}", "-p", "steps=2")
    assert bad.exit_code == 2 and "mask" in bad.stderr and "required" in bad.stderr.lower()
    r = cli(
        "hires",
        "a cat",
        "--preset",
        "guofeng",
        "--hires",
        "1.5",
        "--steps",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        "-o",
        str(tmp_path / "h.png"),
    )
    assert r.exit_code == 0, r.stderr
    assert Image.open(tmp_path / "h.png").size == (96, 96)
    bad = cli("generate", "a cat", "--lora", "nope:0.5", "-o", str(tmp_path / "x.png"))
    assert bad.exit_code == 2 and "--lora #1 name" in bad.stderr and "nope" in bad.stderr


def test_presets_commands(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    listed = json.loads(cli("presets", "list", "--json").stdout)
    assert {"guofeng", "erciyuan", "youhua", "caihui", "cg"} <= {p["id"] for p in listed}
    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"id": "mine", "name": {"zh": "我的", "en": "Mine"}, "prompt": "{prompt}, pastel"}))
    assert cli("presets", "add", str(f)).exit_code == 0
    assert "mine" in {p["id"] for p in json.loads(cli("presets", "list", "--json").stdout)}
    assert cli("presets", "remove", "guofeng").exit_code == 2
    assert cli("presets", "remove", "mine").exit_code == 0


def test_run_control_with_dotted_keys(cli, tiny_sd15: Path, tiny_cn15: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("models", "add", str(tiny_sd15), "--name", "tiny")
    cli("models", "add", str(tiny_cn15), "--name", "cn")
    art = tmp_path / "art.png"
    Image.new("RGB", (64, 64), "white").save(art)
    r = cli(
        "run",
        "control",
        "-p",
        "prompt=a dancer",
        "-p",
        "steps=2",
        "-p",
        "controls.0.model=cn",
        "-p",
        "controls.0.preprocess=lineart",
        "-p",
        "controls.0.weight=0.5",
        "--image",
        f"controls.0.image={art}",
        "-o",
        str(tmp_path / "c.png"),
    )
    assert r.exit_code == 0, r.stderr
    assert Image.open(tmp_path / "c.png").size == (64, 64)


def test_preprocess_and_control_commands(cli, tiny_sd15: Path, tiny_cn15: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from skimage import data

    person = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).resize((256, 256)).save(person)
    r = cli("preprocess", str(person), "--mode", "pose", "-o", str(tmp_path / "pose.png"))
    assert r.exit_code == 0, r.stderr
    skeleton = np.asarray(Image.open(tmp_path / "pose.png").convert("RGB"))
    assert skeleton.shape == (256, 256, 3) and (skeleton.sum(-1) > 0).mean() > 0.01  # limbs drawn
    cli("models", "add", str(tiny_sd15), "--name", "tiny")
    cli("models", "add", str(tiny_cn15), "--name", "openpose")
    r = cli(
        "control",
        "an astronaut dancing",
        "--control",
        f"model=openpose,image={tmp_path / 'pose.png'}",
        "--steps",
        "2",
        "-o",
        str(tmp_path / "c.png"),
    )
    assert r.exit_code == 0, r.stderr
    bad = cli("control", "x", "--control", f"model=tiny,image={person},weight=0.5")
    assert bad.exit_code == 2 and "--control #1 model" in bad.stderr and "not a ControlNet" in bad.stderr


def test_merchant_commands_on_real_photos(cli, embedded_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from skimage import data

    person = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(person)
    cup = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(cup)
    r = cli("cutout", str(cup), "--mode", "product", "-o", str(tmp_path / "cut.png"))
    assert r.exit_code == 0, r.stderr
    cut = Image.open(tmp_path / "cut.png")
    assert cut.mode == "RGBA" and 0.1 < (np.asarray(cut)[..., 3] > 127).mean() < 0.9
    r = cli("id-photo", str(person), "--size", "1inch", "--background", "blue", "-o", str(tmp_path / "id.png"))
    assert r.exit_code == 0, r.stderr
    idp = Image.open(tmp_path / "id.png")
    assert idp.size == (295, 413) and round(idp.info["dpi"][0]) == 300
    r = cli("upscale", str(cup), "--scale", "2", "--model", "realesrgan-animevideov3-x2", "-o", str(tmp_path / "u.png"))
    assert r.exit_code == 0, r.stderr
    assert Image.open(tmp_path / "u.png").size == (1200, 800)  # coffee() is 600x400
    r = cli("resize", str(cup), "--size", "taobao", "--size", "1200x628", "-o", str(tmp_path / "r.png"))
    assert r.exit_code == 0, r.stderr
    assert [Image.open(tmp_path / f"r-{i}.png").size for i in (1, 2)] == [(800, 800), (1200, 628)]
    r = cli("swap", str(cup), "--scene", str(person), "-o", str(tmp_path / "s.png"))
    assert r.exit_code == 0, r.stderr
    assert Image.open(tmp_path / "s.png").size == (512, 512)
    no_model = cli("swap", str(cup), "--prompt", "雪山日照", "-o", str(tmp_path / "x.png"))
    assert no_model.exit_code == 2 and "zhike models add" in no_model.stderr.replace("\n", " ")


def _help(cli, command: str) -> str:  # type: ignore[no-untyped-def]
    import os

    os.environ["COLUMNS"] = "400"  # one line per flag: help text is not wrapped mid-word
    try:
        r = cli(command, "--help")
    finally:
        os.environ.pop("COLUMNS", None)
    assert r.exit_code == 0, r.stderr
    return r.stdout


def test_every_operation_has_a_generated_command_with_a_flag_per_parameter(cli) -> None:  # type: ignore[no-untyped-def]
    from zhike.cli.ops import field_specs, positional
    from zhike.core.registry import list_ops

    for op in list_ops():
        if op.cli.hidden:
            continue
        text = _help(cli, op.cli_name)
        specs = field_specs(op)
        arg = positional(specs)
        for f in specs:
            name = f.name.upper() if f is arg else f.flag
            word = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
            line = next((ln for ln in text.splitlines() if word.search(ln) and "Usage:" not in ln), None)
            assert line is not None, f"{op.name}: no {name} in --help"
            assert f.meta["label"]["en"] in line, f"{op.name} {name}: no label"
            default = f.schema.get("default")
            if default not in (None, "", [], {}) and not isinstance(default, dict | list):
                assert f"default: {default}" in line, f"{op.name} {name}: default {default!r} not shown"
            if "minimum" in f.schema and "maximum" in f.schema:
                assert "–" in line, f"{op.name} {name}: limits not shown"
        for alias in op.cli.aliases:
            assert _help(cli, alias).count("--output") == 1


def test_generated_help_says_what_the_params_model_says(cli) -> None:  # type: ignore[no-untyped-def]
    text = _help(cli, "upscale")
    scale = next(ln for ln in text.splitlines() if "--scale" in ln)
    assert "放大倍数 Scale" in scale and "default: 4.0" in scale and "1–4" in scale
    tile = next(ln for ln in text.splitlines() if "--tile" in ln)
    assert "default: 256" in tile and "64–1024" in tile
    cutout = _help(cli, "cutout")
    for flag in ("--refine", "--no-refine", "--return-mask", "--background-image"):
        assert flag in cutout  # the hand-written command lacked refine and return_mask
    id_help = _help(cli, "id-photo")
    assert "passport_cn" in id_help and "visa_us" in id_help  # the choices come from the Literal, not a help string


def test_asset_flags_take_paths_or_asset_ids(cli, embedded_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    logo = tmp_path / "logo.png"
    img = Image.new("RGB", (96, 96), "white")
    img.paste((200, 0, 0), (30, 30, 66, 66))
    img.save(logo)
    r = cli("cutout", str(logo), "--mode", "logo", "--return-mask", "-o", str(tmp_path / "cut.png"))
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "cut.png").is_file()
    asset_id = r.stdout.split("asset ")[-1].split(")")[0].strip()
    again = cli(
        "upscale", asset_id, "--scale", "1", "--model", "realesrgan-animevideov3-x2", "-o", str(tmp_path / "u.png")
    )
    assert again.exit_code == 0, again.stderr
    assert Image.open(tmp_path / "u.png").size == (96, 96)
    # --from works for ops without a seed (the PNG stores seed: null) and names the right command otherwise
    remade = cli("cutout", "--from", str(tmp_path / "cut.png"), "-o", str(tmp_path / "again.png"))
    assert remade.exit_code == 0, remade.stderr
    assert (tmp_path / "again.png").is_file()
    other = cli("upscale", "--from", str(tmp_path / "cut.png"), "-o", str(tmp_path / "y.png"))
    assert other.exit_code == 2 and "zhike cutout --from" in other.stderr
    missing = cli("upscale", str(tmp_path / "nope.png"), "-o", str(tmp_path / "x.png"))
    assert missing.exit_code == 2 and "no file at" in missing.stderr
    bad_choice = cli("cutout", str(logo), "--mode", "sideways")
    assert bad_choice.exit_code == 2 and "sideways" in (bad_choice.stderr + bad_choice.stdout)
