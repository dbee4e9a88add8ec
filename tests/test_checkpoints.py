"""Offline checkpoint loading: CLIP tokenizer, bundled family configs, inspection, single files."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import accelerate
import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, StableDiffusionInpaintPipeline, UNet2DConditionModel
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from tests.helpers.tiny_sd import build_tiny_sd15, build_tiny_sdxl, config_only_dir, write_single_file
from zhike.backends import clip_tokenizer
from zhike.backends.checkpoint_inspect import CheckpointError, inspect_checkpoint
from zhike.backends.clip_tokenizer import write_clip_tokenizer
from zhike.backends.sd_configs import SUPPORTED_FAMILIES, family_config_dir
from zhike.backends.single_file import SingleFileLoadError, load_single_file_pipeline

CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]


@pytest.fixture(scope="module", autouse=True)
def _single_thread() -> Iterator[None]:
    # Tiny convs are dominated by OpenMP hand-offs: with 2 threads on a busy 2-core box a 64x64
    # step takes seconds instead of milliseconds. Restore the setting for other test modules.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """family -> {folder, single file, weightless config folder} for the tiny sd15 and sdxl."""
    root = tmp_path_factory.mktemp("tiny")
    out: dict[str, dict[str, Path]] = {}
    for family, build in (("sd15", build_tiny_sd15), ("sdxl", build_tiny_sdxl)):
        folder = build(root / family)
        out[family] = {
            "folder": folder,
            "file": write_single_file(folder, root / f"{family}.safetensors"),
            "config": config_only_dir(folder, root / f"{family}-config"),
        }
    return out


def _write_header_only(path: Path, tensors: dict[str, list[int]], dtype: str = "F16") -> Path:
    """A valid safetensors file whose data section is sparse zeros: cheap at any declared size."""
    itemsize = {"F16": 2, "F32": 4}[dtype]
    header: dict[str, dict] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for key, shape in tensors.items():
        size = int(np.prod(shape)) * itemsize
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return path


# --------------------------------------------------------------------------- tokenizer


def test_clip_tokenizer_matches_openai_ids(tmp_path: Path) -> None:
    tok = CLIPTokenizer.from_pretrained(write_clip_tokenizer(tmp_path / "tok"))
    assert tok("a photo of a cat").input_ids == CAT_IDS
    assert len(tok) == 49408
    assert tok.model_max_length == 77
    assert tok.pad_token == "<|endoftext|>"

    tok2 = CLIPTokenizer.from_pretrained(write_clip_tokenizer(tmp_path / "tok2", pad_token="!"))
    assert tok2("a photo of a cat").input_ids == CAT_IDS
    padded = tok2("a cat", padding="max_length", max_length=6).input_ids
    assert padded == [49406, 320, 2368, 49407, 0, 0]  # "!" is id 0: SDXL's OpenCLIP padding


def test_clip_tokenizer_without_open_clip_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dist(_name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(_name)

    monkeypatch.setattr(importlib.metadata, "files", no_dist)
    monkeypatch.setattr(importlib.util, "find_spec", lambda _name: None)
    clip_tokenizer._vocab_and_merges.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="pip install --no-deps open_clip_torch"):
            write_clip_tokenizer(tmp_path / "tok")
    finally:
        clip_tokenizer._vocab_and_merges.cache_clear()


# --------------------------------------------------------------------------- bundled configs


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Parameter counts of the published models (SD1.5 UNet 0.86B, SDXL UNet 2.6B, the SD VAE 83.7M,
# CLIP ViT-L/14 text tower 123M, OpenCLIP ViT-bigG/14 text tower + projection 695M).
EXPECTED_PARAMS = {
    "sd15": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sdxl": {
        "unet": 2_567_463_684,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,
        "text_encoder_2": 694_659_840,
    },
}


@pytest.mark.parametrize("family", SUPPORTED_FAMILIES)
def test_bundled_family_config_builds_real_sized_models(family: str, tmp_path: Path) -> None:
    config_dir = family_config_dir(family, tmp_path)
    assert family_config_dir(family, tmp_path) == config_dir  # idempotent, reuses the folder
    assert not list(config_dir.rglob("*.safetensors"))

    counts: dict[str, int] = {}
    with accelerate.init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config_dir, subfolder="unet"))
        counts["unet"] = _count(unet)
        assert unet.device.type == "meta"
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(config_dir, subfolder="vae"))
        counts["vae"] = _count(vae)
        te_cfg = CLIPTextConfig.from_pretrained(config_dir, subfolder="text_encoder")
        counts["text_encoder"] = _count(CLIPTextModel(te_cfg))
        if family == "sdxl":
            te2_cfg = CLIPTextConfig.from_pretrained(config_dir, subfolder="text_encoder_2")
            counts["text_encoder_2"] = _count(CLIPTextModelWithProjection(te2_cfg))
    assert counts == EXPECTED_PARAMS[family]

    tokenizers = ["tokenizer", "tokenizer_2"] if family == "sdxl" else ["tokenizer"]
    for sub in tokenizers:
        tok = CLIPTokenizer.from_pretrained(config_dir, subfolder=sub)
        assert tok("a photo of a cat").input_ids == CAT_IDS
    if family == "sdxl":
        assert CLIPTokenizer.from_pretrained(config_dir, subfolder="tokenizer_2").pad_token == "!"
    index = json.loads((config_dir / "model_index.json").read_text())
    assert index.get("safety_checker", [None])[0] is None


def test_family_config_dir_repairs_a_stale_folder(tmp_path: Path) -> None:
    stale = tmp_path / "sd15"
    (stale / "unet").mkdir(parents=True)
    (stale / "unet" / "config.json").write_text("{}")  # e.g. an interrupted older version
    config_dir = family_config_dir("sd15", tmp_path)
    assert json.loads((config_dir / "unet" / "config.json").read_text())["cross_attention_dim"] == 768
    assert (config_dir / "tokenizer" / "vocab.json").is_file()
    with pytest.raises(ValueError, match="Unknown model family"):
        family_config_dir("sd9", tmp_path)


# --------------------------------------------------------------------------- inspection


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
@pytest.mark.parametrize("which", ["folder", "file"])
def test_inspect_tiny_checkpoints(tiny: dict[str, dict[str, Path]], family: str, which: str) -> None:
    info = inspect_checkpoint(tiny[family][which])
    assert info.kind == "checkpoint"
    assert info.family == family
    assert info.variant == "base"
    assert info.in_channels == 4
    assert info.format == ("diffusers" if which == "folder" else "single_file")


SD1_TE = "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"
UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"


@pytest.mark.parametrize(
    ("tensors", "expected"),
    [
        ({UNET_IN: [320, 9, 3, 3], SD1_TE: [77, 768]}, ("checkpoint", "sd15", "inpaint", 9)),
        (
            {
                UNET_IN: [320, 4, 3, 3],
                "cond_stage_model.model.token_embedding.weight": [49408, 1024],
                "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [320, 1024],
            },
            ("checkpoint", "sd2", "base", 4),
        ),
        (
            {
                UNET_IN: [320, 9, 3, 3],
                "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight": [77, 768],
                "conditioner.embedders.1.model.positional_embedding": [77, 1280],
            },
            ("checkpoint", "sdxl", "inpaint", 9),
        ),
        (
            {UNET_IN: [384, 4, 3, 3], "conditioner.embedders.0.model.text_projection": [1280, 1280]},
            ("checkpoint", "sdxl_refiner", "base", 4),
        ),
        (
            {UNET_IN: [320, 4, 3, 3], "model.diffusion_model.label_emb.0.0.weight": [1280, 2816]},
            ("checkpoint", "sdxl", "base", 4),
        ),
        (
            {"model.diffusion_model.joint_blocks.0.context_block.adaLN_modulation.1.bias": [9216]},
            ("checkpoint", "sd3", "base", None),
        ),
        (
            {"double_blocks.0.img_attn.norm.key_norm.scale": [128], "img_in.weight": [3072, 64]},
            ("checkpoint", "flux", "base", 64),
        ),
        (
            {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": [4, 768]},
            ("lora", "sd15", "base", None),
        ),
        (
            {
                "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": [8, 2048],
                "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": [5120, 8],
            },
            ("lora", "sdxl", "base", None),
        ),
        (
            {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": [4, 1024]},
            ("lora", "sd2", "base", None),
        ),
        (
            {
                "control_model.input_hint_block.0.weight": [16, 3, 3, 3],
                "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [320, 768],
            },
            ("controlnet", "sd15", "base", None),
        ),
        (
            {"encoder.down.0.block.0.conv1.weight": [128, 128, 3, 3], "decoder.conv_in.weight": [512, 4, 3, 3]},
            ("vae", "unknown", "base", None),
        ),
    ],
    ids=[
        "sd15-inpaint",
        "sd2",
        "sdxl-inpaint",
        "sdxl-refiner",
        "sdxl-unet-only",
        "sd3",
        "flux",
        "lora-sd15",
        "lora-sdxl",
        "lora-peft-sd2",
        "controlnet-sd15",
        "vae",
    ],
)
def test_inspect_header_only_files(
    tmp_path: Path, tensors: dict[str, list[int]], expected: tuple[str, str, str, int | None]
) -> None:
    info = inspect_checkpoint(_write_header_only(tmp_path / "model.safetensors", tensors))
    assert (info.kind, info.family, info.variant, info.in_channels) == expected
    assert info.format == "single_file"


def test_inspect_reads_only_the_header(tmp_path: Path) -> None:
    # ~3.4 GB declared (sparse, so no disk use): inspection must not touch the tensor data.
    big = {UNET_IN: [320, 4, 3, 3], SD1_TE: [77, 768], "model.diffusion_model.big": [1_700_000_000]}
    info = inspect_checkpoint(_write_header_only(tmp_path / "big.safetensors", big))
    assert (info.kind, info.family) == ("checkpoint", "sd15")


def test_inspect_refuses_pickles(tmp_path: Path) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(CheckpointError, match=r"convert it to \.safetensors"):
        inspect_checkpoint(ckpt)
    with pytest.raises(SingleFileLoadError, match="pickle"):
        load_single_file_pipeline(ckpt, "sd15", family_config_dir("sd15", tmp_path / "cfg"))


def test_inspect_truncated_safetensors(tmp_path: Path) -> None:
    full = _write_header_only(tmp_path / "full.safetensors", {UNET_IN: [320, 4, 3, 3], SD1_TE: [77, 768]})
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        inspect_checkpoint(cut)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 4)
    with pytest.raises(CheckpointError, match="not a readable"):
        inspect_checkpoint(garbage)


def test_inspect_missing_and_non_model_paths(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        inspect_checkpoint(tmp_path / "nope.safetensors")
    (tmp_path / "folder").mkdir()
    with pytest.raises(CheckpointError, match="model_index.json"):
        inspect_checkpoint(tmp_path / "folder")


# --------------------------------------------------------------------------- single-file loading


def _generate(pipe: DiffusionPipeline, **kwargs: object) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(1234)
    out = pipe(
        "a photo of a cat",
        num_inference_steps=3,
        height=64,
        width=64,
        generator=generator,
        output_type="np",
        **kwargs,
    )
    return out.images


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_single_file_matches_diffusers_folder(tiny: dict[str, dict[str, Path]], family: str) -> None:
    paths = tiny[family]
    reference = DiffusionPipeline.from_pretrained(paths["folder"], local_files_only=True)
    loaded = load_single_file_pipeline(paths["file"], family, paths["config"], torch.float32)
    assert type(loaded) is type(reference)
    if family == "sd15":
        assert loaded.safety_checker is None

    # The loader's promise: the very same weights, bit for bit, in the same layout.
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        if getattr(reference, name, None) is None:
            continue
        want, got = getattr(reference, name).state_dict(), getattr(loaded, name).state_dict()
        assert want.keys() == got.keys(), name
        assert all(torch.equal(want[k], got[k]) and want[k].stride() == got[k].stride() for k in want), name
    expected = _generate(reference)
    actual = _generate(loaded)
    assert expected.shape == (1, 64, 64, 3)
    assert expected.std() > 0.01  # a real image, not a constant the comparison would trivially pass
    # Equal weights give equal pictures up to float rounding: where two tensors of one model sit in memory can pick
    # another CPU kernel (~1e-6 apart on some AMD EPYCs); bit-equality is promised for one path on one machine.
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4)


def test_single_file_inpaint_with_text_to_image_config(tiny: dict[str, dict[str, Path]], tmp_path: Path) -> None:
    folder = build_tiny_sd15(tmp_path / "inpaint", in_channels=9)
    file = write_single_file(folder, tmp_path / "inpaint.safetensors")
    info = inspect_checkpoint(file)
    assert (info.family, info.variant, info.in_channels) == ("sd15", "inpaint", 9)

    # The stock (4-channel) config must still give a 9-channel UNet; variant comes from the header.
    loaded = load_single_file_pipeline(file, "sd15", tiny["sd15"]["config"])
    assert isinstance(loaded, StableDiffusionInpaintPipeline)
    assert loaded.unet.config.in_channels == 9
    reference = StableDiffusionInpaintPipeline.from_pretrained(folder, local_files_only=True)

    image = Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    # Two loading paths of equal weights: equal up to float rounding (see test_single_file_matches_diffusers_folder).
    np.testing.assert_allclose(
        _generate(loaded, image=image, mask_image=mask), _generate(reference, image=image, mask_image=mask), atol=1e-4
    )


def test_single_file_with_wrong_config_explains(tiny: dict[str, dict[str, Path]], tmp_path: Path) -> None:
    # The tiny file is not SD1.5-sized, so the stock SD1.5 config cannot describe it.
    with pytest.raises(SingleFileLoadError, match="pass a diffusers config folder"):
        load_single_file_pipeline(tiny["sd15"]["file"], "sd15", family_config_dir("sd15", tmp_path))
    with pytest.raises(SingleFileLoadError, match="not supported"):
        load_single_file_pipeline(tiny["sd15"]["file"], "flux", tiny["sd15"]["config"])
    with pytest.raises(SingleFileLoadError, match="looks like a sdxl checkpoint"):
        load_single_file_pipeline(tiny["sdxl"]["file"], "sd15", tiny["sd15"]["config"])
    with pytest.raises(SingleFileLoadError, match="diffusers folder"):
        load_single_file_pipeline(tiny["sd15"]["folder"], "sd15", tiny["sd15"]["config"])


def test_inspect_standalone_diffusers_controlnet_folder(tmp_path: Path) -> None:
    folder = tmp_path / "controlnet"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel", "cross_attention_dim": 2048}))
    info = inspect_checkpoint(folder)
    assert (info.format, info.kind, info.family) == ("diffusers", "controlnet", "sdxl")
