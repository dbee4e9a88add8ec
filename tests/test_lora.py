"""LoRA adapters on warm base pipelines (backend level, tiny random SD1.5/SDXL models, CPU, exact pixels)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    DiffusionPipeline,
    ModelMixin,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel

from tests.helpers.tiny_lora import write_kohya_ldm_lora, write_kohya_lora, write_not_a_lora, write_peft_lora
from zhike.backends.checkpoint_inspect import inspect_checkpoint
from zhike.backends.diffusion import DiffusionRequest, Interrupted, LoadedPipeline, generate
from zhike.backends.library_logs import quiet_library_logs
from zhike.backends.lora import (
    LoraError,
    activate_loras,
    deactivate_loras,
    loaded_loras,
    lora_nbytes,
    loras_applied,
)
from zhike.core.errors import ModelError
from zhike.core.specs import ModelSpec
from zhike.services.container import Zhike

FORMATS = {"kohya": write_kohya_lora, "kohya_ldm": write_kohya_ldm_lora, "peft": write_peft_lora}


def load(model_dir: Path) -> DiffusionPipeline:
    quiet_library_logs()
    if (model_dir / "text_encoder_2").is_dir():
        pipe = StableDiffusionXLPipeline.from_pretrained(str(model_dir), local_files_only=True)
    else:
        pipe = StableDiffusionPipeline.from_pretrained(
            str(model_dir), safety_checker=None, requires_safety_checker=False, local_files_only=True
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render(pipe: DiffusionPipeline, seed: int = 7) -> np.ndarray:
    with torch.inference_mode():
        out = pipe(
            prompt="a red fox in the snow",
            num_inference_steps=3,
            width=64,
            height=64,
            guidance_scale=5.0,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="np",
        )
    return out.images


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b)


def changed(a: np.ndarray, b: np.ndarray) -> bool:
    # A LoRA must visibly change the image, not flip a few low bits.
    return float(np.abs(a - b).max()) > 0.05


@pytest.fixture(scope="module")
def loras(tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path, tiny_sdxl: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("loras")
    files = {
        # Three formats of one adapter (seed 1): they must make the same pixels.
        **{f"sd15_{fmt}": w(tiny_sd15, d / f"sd15_{fmt}.safetensors", seed=1) for fmt, w in FORMATS.items()},
        **{f"sdxl_{fmt}": w(tiny_sdxl, d / f"sdxl_{fmt}.safetensors", seed=1) for fmt, w in FORMATS.items()},
        # A second, UNet-only adapter: switching from A (UNet + text encoder) must leave no text-encoder residue.
        "sd15_b": write_kohya_lora(tiny_sd15, d / "sd15_b.safetensors", seed=2, scale=3.0, text_encoder=False),
        "not_lora": write_not_a_lora(tiny_sd15, d / "unet_weights.safetensors"),
    }
    lycoris = d / "loha.safetensors"  # LyCORIS LoHa: kohya-style names, other factor tensors
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    save_file({f"{key}.hada_w1_a": torch.ones(32, 4), f"{key}.hada_w1_b": torch.ones(4, 32)}, str(lycoris))
    files["lycoris"] = lycoris
    truncated = d / "truncated.safetensors"
    truncated.write_bytes(files["sd15_kohya"].read_bytes()[:-100])
    files["truncated"] = truncated
    return files


@pytest.fixture(scope="module")
def warm_sd15(tiny_sd15: Path) -> tuple[DiffusionPipeline, np.ndarray]:
    """One SD1.5 pipe shared by the tests (like the model cache) and its output before any LoRA touched it."""
    pipe = load(tiny_sd15)
    return pipe, render(pipe)


def forbid_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, any model load from disk (other than LoRA files) fails the test."""

    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("the base model was reloaded")

    for cls in (DiffusionPipeline, ModelMixin, PreTrainedModel):
        monkeypatch.setattr(cls, "from_pretrained", classmethod(forbidden))


# --------------------------------------------------------------------------- files and inspection


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_written_files_inspect_as_lora(loras: dict[str, Path], family: str, fmt: str) -> None:
    info = inspect_checkpoint(loras[f"{family}_{fmt}"])
    assert info.kind == "lora"
    assert info.family == family  # the tiny widths are unknown: the block structure decides


# --------------------------------------------------------------------------- on / off / weights


def test_lora_changes_pixels_and_deactivate_restores_base_exactly(
    warm_sd15: tuple[DiffusionPipeline, np.ndarray], loras: dict[str, Path], tiny_sd15: Path
) -> None:
    pipe, base = warm_sd15
    assert same(render(load(tiny_sd15)), base)  # a second never-LoRA pipe agrees: the reference is stable
    activate_loras(pipe, [("a", loras["sd15_kohya"], 1.0)])
    on = render(pipe)
    assert changed(on, base)
    deactivate_loras(pipe)
    assert same(render(pipe), base)
    assert loaded_loras(pipe)  # still loaded for the next job
    assert lora_nbytes(pipe) > 0
    activate_loras(pipe, [("a", loras["sd15_kohya"], 1.0)])  # cached re-activation
    assert same(render(pipe), on)
    deactivate_loras(pipe)


def test_weights(warm_sd15: tuple[DiffusionPipeline, np.ndarray], loras: dict[str, Path]) -> None:
    pipe, base = warm_sd15
    with loras_applied(pipe, [("a", loras["sd15_kohya"], 0.0)]):
        assert same(render(pipe), base)
    with loras_applied(pipe, [("a", loras["sd15_kohya"], 0.5)]):
        half = render(pipe)
    with loras_applied(pipe, [("a", loras["sd15_kohya"], 1.0)]):
        full = render(pipe)
    assert changed(half, base) and changed(full, half)
    assert same(render(pipe), base)


def test_switching_on_warm_pipe_matches_fresh_pipes_without_reload(
    warm_sd15: tuple[DiffusionPipeline, np.ndarray],
    loras: dict[str, Path],
    tiny_sd15: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = ("a", loras["sd15_kohya"], 1.0), ("b", loras["sd15_b"], 0.8)
    expected = {}
    for key, job in {"a": [a], "b": [b], "ab": [a, b]}.items():
        fresh = load(tiny_sd15)
        with loras_applied(fresh, job):
            expected[key] = render(fresh)
    assert changed(expected["a"], expected["b"]) and changed(expected["ab"], expected["a"])

    pipe, base = warm_sd15
    unet, te = pipe.unet, pipe.text_encoder
    forbid_reload(monkeypatch)
    for key, job in [("a", [a]), ("b", [b]), ("ab", [a, b]), ("a", [a]), ("b", [b])]:
        with loras_applied(pipe, job):
            assert same(render(pipe), expected[key]), key
        assert same(render(pipe), base)
    assert pipe.unet is unet and pipe.text_encoder is te


def test_lru_keeps_at_most_max_loaded(warm_sd15: tuple[DiffusionPipeline, np.ndarray], loras: dict[str, Path]) -> None:
    pipe, base = warm_sd15
    jobs = [[(f"lru{i}", loras["sd15_b"], 1.0)] for i in range(3)]
    for job in jobs:
        activate_loras(pipe, job, max_loaded=2)
    first = render(pipe)
    assert len(loaded_loras(pipe)) == 2 and len({n for ns in pipe.get_list_adapters().values() for n in ns}) == 2
    activate_loras(pipe, jobs[0], max_loaded=2)  # evicted earlier: loaded again, same adapter
    assert same(render(pipe), first)
    deactivate_loras(pipe)
    assert same(render(pipe), base)


def test_exception_inside_job_still_deactivates(
    warm_sd15: tuple[DiffusionPipeline, np.ndarray], loras: dict[str, Path]
) -> None:
    pipe, base = warm_sd15
    with pytest.raises(Interrupted), loras_applied(pipe, [("a", loras["sd15_kohya"], 1.0)]):
        raise Interrupted  # what a cancelled job's step callback raises
    assert same(render(pipe), base)


# --------------------------------------------------------------------------- formats, families, derived pipes


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_formats_load_to_the_same_adapter(
    family: str, loras: dict[str, Path], tiny_sd15: Path, tiny_sdxl: Path, warm_sd15: tuple
) -> None:
    if family == "sd15":
        pipe, base = warm_sd15
    else:
        pipe = load(tiny_sdxl)
        base = render(pipe)
    outs = {}
    for fmt in FORMATS:
        with loras_applied(pipe, [(f"fmt_{fmt}", loras[f"{family}_{fmt}"], 1.0)]):
            outs[fmt] = render(pipe)
        # SDXL's linear proj_in is where PEFT's parameter freezing used to leak into the base model's numerics.
        assert same(render(pipe), base), fmt
    assert changed(outs["kohya"], base)
    assert same(outs["kohya"], outs["kohya_ldm"]) and same(outs["kohya"], outs["peft"])


def test_img2img_pipe_from_pipe_sees_active_lora(
    warm_sd15: tuple[DiffusionPipeline, np.ndarray], loras: dict[str, Path], tiny_sd15: Path
) -> None:
    pipe, _ = warm_sd15
    loaded = LoadedPipeline(
        pipe=pipe,
        spec=ModelSpec(name="tiny", path=tiny_sd15, format="diffusers", kind="checkpoint", family="sd15"),
        device="cpu",
        base_nbytes=0,
        load_seconds=0.0,
    )
    init = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))

    def img2img(loras: list[tuple[str, Path, float]]) -> np.ndarray:
        req = DiffusionRequest(
            mode="img2img",
            prompt="a red fox",
            negative_prompt="",
            width=64,
            height=64,
            steps=4,
            guidance=5.0,
            seed=3,
            scheduler="Euler",
            init_image=init,
            strength=0.75,
            loras=loras,
        )
        return np.asarray(generate(loaded, req).images[0])

    lora = [("a", loras["sd15_kohya"], 1.0)]
    with loras_applied(pipe, lora):  # activated on the cached base pipe, seen by the pipe derived from it
        derived = StableDiffusionImg2ImgPipeline.from_pipe(pipe)
        assert derived.unet is pipe.unet and derived.get_active_adapters() == pipe.get_active_adapters() != []
    base = img2img([])
    with_lora = img2img(lora)  # generate() derives the img2img pipe and applies the job's LoRAs on the base
    assert np.abs(with_lora.astype(int) - base.astype(int)).max() > 10
    assert np.array_equal(img2img([]), base)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("model", "lora", "message"),
    [
        ("sdxl", "sd15_kohya", "is for SD 1.5 models and cannot be applied to this SDXL model"),
        ("sdxl", "sd15_peft", "is for SD 1.5 models and cannot be applied to this SDXL model"),
        ("sd15", "sdxl_kohya", "is for SDXL models and cannot be applied to this SD 1.5 model"),
        ("sd15", "not_lora", "is not a LoRA"),
        ("sd15", "truncated", "not a readable .safetensors file"),
        ("sd15", "lycoris", "is a LyCORIS adapter"),
    ],
)
def test_unusable_files_raise_lora_error_and_leave_base_intact(
    model: str, lora: str, message: str, loras: dict[str, Path], tiny_sd15: Path, tiny_sdxl: Path, warm_sd15: tuple
) -> None:
    pipe, base = warm_sd15 if model == "sd15" else (load(tiny_sdxl), None)
    ok = loras["sd15_b" if model == "sd15" else "sdxl_kohya"]  # a good LoRA listed first must not stay active
    before = loaded_loras(pipe)
    with (
        pytest.raises(LoraError) as err,
        loras_applied(pipe, [("ok", ok, 1.0), ("bad", loras[lora], 1.0)]),
    ):
        pytest.fail("activation should have failed")
    assert message in str(err.value) and loras[lora].name in str(err.value)
    assert isinstance(err.value, ModelError) and err.value.field == "params.loras"
    assert "bad" not in " ".join(loaded_loras(pipe)) and set(before) <= set(loaded_loras(pipe))
    if base is not None:
        assert same(render(pipe), base)


def test_missing_pickle_and_corrupt_tensor_files(
    warm_sd15: tuple[DiffusionPipeline, np.ndarray], loras: dict[str, Path], tmp_path: Path
) -> None:
    pipe, base = warm_sd15
    pickle = tmp_path / "old.ckpt"
    pickle.write_bytes(b"not opened")
    with pytest.raises(LoraError, match="file not found"):
        activate_loras(pipe, [("x", tmp_path / "nope.safetensors", 1.0)])
    with pytest.raises(LoraError, match="pickle"):
        activate_loras(pipe, [("x", pickle, 1.0)])
    # Valid header and LoRA names, but a rank that does not fit: diffusers/PEFT fail; the error names the file.
    state = load_file(str(loras["sd15_b"]))
    key = next(k for k in state if k.endswith("attn1_to_q.lora_up.weight"))
    state[key] = torch.zeros(state[key].shape[0], state[key].shape[1] + 1)
    bad = tmp_path / "bad_rank.safetensors"
    save_file(state, str(bad))
    with pytest.raises(LoraError, match="bad_rank.safetensors"):
        activate_loras(pipe, [("bad_rank", bad, 1.0)])
    assert not any("bad_rank" in n for ns in pipe.get_list_adapters().values() for n in ns)
    assert same(render(pipe), base)  # a failed activate_loras leaves the base model, no deactivate needed


def test_diffusers_lora_folder(
    warm_sd15: tuple[DiffusionPipeline, np.ndarray], loras: dict[str, Path], tiny_sd15: Path, tmp_path: Path
) -> None:
    pipe, _ = warm_sd15
    folder = write_peft_lora(tiny_sd15, tmp_path / "peft_dir", seed=1).parent
    assert (folder / "pytorch_lora_weights.safetensors").is_file()
    with loras_applied(pipe, [("folder", folder, 1.0)]):
        from_folder = render(pipe)
    with loras_applied(pipe, [("file", loras["sd15_peft"], 1.0)]):
        assert same(render(pipe), from_folder)


def test_file_replaced_under_the_same_name_is_reloaded(
    warm_sd15: tuple[DiffusionPipeline, np.ndarray], loras: dict[str, Path], tmp_path: Path
) -> None:
    pipe, _ = warm_sd15
    path = tmp_path / "style.safetensors"
    outs = []
    for source in (loras["sd15_b"], loras["sd15_kohya"]):
        path.write_bytes(source.read_bytes())  # e.g. the user downloaded a new version of the LoRA
        with loras_applied(pipe, [("style", path, 1.0)]):
            outs.append(render(pipe))
        with loras_applied(pipe, [("reference", source, 1.0)]):
            assert same(render(pipe), outs[-1])
    assert changed(outs[0], outs[1])


def test_job_path_lora_switch_on_the_cached_model(zhike: Zhike, loras: dict[str, Path]) -> None:
    """Through the catalog, the job queue and the model cache: LoRA jobs change pixels, never reload the model."""
    from zhike.services.jobs.worker import Worker

    def run(params: dict) -> np.ndarray:
        job, _ = zhike.submit(
            "txt2img",
            {"prompt": "a red apple", "width": 64, "height": 64, "steps": 3, "seed": 42, "model": "tiny", **params},
            "local",
        )
        assert Worker(zhike).run_one(job.id)
        row = zhike.jobs.get(job.id)
        assert row.state == "succeeded", row.error
        asset = zhike.assets.get(row.result["images"][0]["asset_id"], owner_id=None)
        return np.asarray(Image.open(io.BytesIO(zhike.assets.read_bytes(asset))).convert("RGB"), dtype=np.int16)

    zhike.catalog.add(str(loras["sd15_kohya"]), name="style.a")  # a dot: adapter names must be sanitised
    zhike.catalog.add(str(loras["sd15_b"]), name="style-b")
    base = run({})
    with_a = run({"loras": [{"name": "style.a", "weight": 1.0}]})
    with_b = run({"prompt": "a red apple <lora:style-b:0.8>"})  # A1111 prompt tag
    again = run({})
    assert np.abs(with_a - base).max() > 10 and np.abs(with_b - base).max() > 10 and np.abs(with_a - with_b).max() > 10
    assert np.array_equal(again, base)
    assert (zhike.models.stats.misses, zhike.models.stats.hits) == (1, 3)
