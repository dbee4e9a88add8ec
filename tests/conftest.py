"""Shared fixtures: tiny random SD models in real on-disk formats, and a Zhike instance in a temp home."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test that touches the network is a bug
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One torch thread per process: tests run a server or worker process beside the test process on 2 cores,
# and oversubscribed torch threads make tiny-model steps 100x slower. Inherited by subprocesses.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Real embedded weights (ISNet, Real-ESRGAN) fetched by `make embedded`; tests never fetch anything.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("ZHIKE_EMBEDDED_DIR", os.path.join(REPO, ".cache", "embedded"))

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from zhike.services.container import Zhike  # noqa: E402
from zhike.settings import Settings  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_sd15(models_root: Path) -> Path:
    """A tiny random SD 1.5-structured diffusers folder (deterministic weights)."""
    from tests.helpers.tiny_sd import build_tiny_sd15

    return build_tiny_sd15(models_root / "tiny-sd15")


@pytest.fixture(scope="session")
def tiny_sd15_single(tiny_sd15: Path, models_root: Path) -> tuple[Path, Path]:
    """The same weights as one A1111-layout .safetensors file, plus its config-only folder."""
    from tests.helpers.tiny_sd import config_only_dir, write_single_file

    single = write_single_file(tiny_sd15, models_root / "tiny-sd15.safetensors")
    return single, config_only_dir(tiny_sd15, models_root / "tiny-sd15-config")


@pytest.fixture(scope="session")
def tiny_sdxl(models_root: Path) -> Path:
    from tests.helpers.tiny_sd import build_tiny_sdxl

    return build_tiny_sdxl(models_root / "tiny-sdxl")


@pytest.fixture(scope="session")
def tiny_cn15(tiny_sd15: Path, models_root: Path) -> Path:
    """A tiny random ControlNet for the tiny SD 1.5 model (diffusers folder)."""
    from tests.helpers.tiny_controlnet import build_tiny_controlnet

    return build_tiny_controlnet(tiny_sd15, models_root / "cn-sd15")


@pytest.fixture(scope="session")
def embedded_dir() -> Path:
    """Where `make embedded` put the real weights; a clear failure (not a skip) when they are missing."""
    from zhike.models.embedded import EMBEDDED, is_present

    path = Path(os.environ["ZHIKE_EMBEDDED_DIR"])
    missing = [m.name for m in EMBEDDED if m.pack == "default" and not is_present(m, path)]
    if missing:
        pytest.fail(f"embedded weights missing in {path}: {missing}; run `make embedded`")
    return path


@pytest.fixture(scope="session")
def tiny_llm(models_root: Path) -> Path:
    """A tiny random Qwen2 chat model: safetensors folder with the real Qwen tokenizer and chat template
    (tests/helpers/tiny_llm.py; register it with `register_tiny_llm(zhike.catalog, tiny_llm)` as "tiny-qwen")."""
    from tests.helpers.tiny_llm import make_tiny_qwen2

    return make_tiny_qwen2(models_root / "llm", gguf=False)


@pytest.fixture(scope="session")
def tiny_llm_gguf(models_root: Path) -> Path:
    """A tiny model of the same shape as a .gguf file (Q8_0, tokenizer and chat template in its metadata), with a
    4,096-token cut of Qwen's BPE: transformers reads a GGUF's vocabulary in Python, ~70 s for the whole 151k."""
    from tests.helpers.tiny_llm import make_tiny_qwen2

    return make_tiny_qwen2(models_root / "llm", gguf=True)


@pytest.fixture(scope="session")
def tiny_llm_app(tmp_path_factory: pytest.TempPathFactory, tiny_llm: Path) -> Iterator[Zhike]:
    """One Zhike for the words ops' tests, its default LLM the tiny model as "tiny-qwen": the model and the safety
    lists load once per run, not once per module. Tests find their own jobs by id; settings they change are undone."""
    from tests.helpers.tiny_llm import words_app

    yield from words_app(tmp_path_factory.mktemp("words"), tiny_llm)


@pytest.fixture(scope="session")
def real_llm():  # noqa: ANN201 - a backends.llm.transformers_chat.TransformersChat (a ChatModel)
    """The embedded chat model (Qwen2.5-Coder-1.5B-Instruct), loaded once per test run. Apps in tests that open it
    by name ("qwen2.5-coder-1.5b-instruct") get this same loaded object. Skips when the pack is not fetched."""
    from zhike.models.embedded import BY_NAME, EMBEDDED_LLM, embedded_specs, is_present

    path = Path(os.environ["ZHIKE_EMBEDDED_DIR"])
    if not is_present(BY_NAME[EMBEDDED_LLM], path):
        pytest.skip(f"the embedded LLM pack is not in {path}: run `make embedded` (fetches it with --pack llm)")
    from zhike.backends.llm.transformers_chat import load_chat
    from zhike.backends.loaders import LoadEnv

    spec = next(s for s in embedded_specs(path) if s.name == EMBEDDED_LLM)
    return load_chat(spec, LoadEnv(device="cpu"))


def make_settings(home: Path, **overrides: object) -> Settings:
    # Chinese prompts are not translated unless a test asks: translating loads the default LLM, the real 1.5B model
    # where the pack is fetched, into every image test with a Chinese prompt (tests/test_translate.py turns it on).
    overrides.setdefault("translate_prompts", False)
    return Settings(home=home, device="cpu", **overrides)


@pytest.fixture
def zhike(tmp_path: Path, tiny_sd15: Path) -> Iterator[Zhike]:
    """A Zhike with its own temp home and the tiny SD 1.5 model registered as `tiny`."""
    z = Zhike(make_settings(tmp_path / "home"))
    z.catalog.add(str(tiny_sd15), name="tiny")
    yield z
    z.engine.dispose()
