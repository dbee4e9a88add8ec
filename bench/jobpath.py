"""What Zhike's job path costs around the model, measured against raw diffusers on the same model in the same run.

Shared by bench/gpu.py (SD 1.5- and SDXL-shaped models with random weights, CUDA when present) and bench/overhead.py
(a tiny UNet at realistic output sizes on the CPU). For each case, interleaved run by run so drift hits all alike:
  raw      diffusers' own pipeline, warm, same scheduler/steps/size/seed, PIL output (the baseline)
  backend  Zhike's backend alone (zhike.backends.diffusion.generate: prompt weighting, previews hook, no job)
  generate `zhike generate -o out.png` in-process: job row, worker, PNG with parameters, labelled export written
  api      a real `zhike serve`: POST /api/v1/jobs, long-poll to the end, GET the labelled file
  queue    the same server given `--queue` jobs at once: wall time per job (stores and labels overlap sampling)
and the per-stage breakdown from the jobs' own timings (GET /api/v1/jobs/{id} -> timings).
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import torch  # noqa: E402
from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from zhike.backends.library_logs import quiet_library_logs  # noqa: E402

PROMPT = "a ceramic teapot on a wooden table, studio light"
STAGES = ("queue", "load", "encode_prompt", "denoise", "decode", "store", "label", "outputs_wait", "commit")


@dataclass(frozen=True)
class Case:
    family: str
    size: int
    steps: int
    batch: int
    compile: bool = False

    @property
    def label(self) -> str:
        name = {"sd15": "SD 1.5", "sdxl": "SDXL"}[self.family]
        return f"{name} {self.size}², {self.steps} steps, batch {self.batch}" + (", compile" if self.compile else "")

    def params(self) -> dict[str, Any]:
        return {
            "prompt": PROMPT,
            "width": self.size,
            "height": self.size,
            "steps": self.steps,
            "seed": 1,
            "model": self.family,
            "scheduler": "DPM++ 2M Karras",
            "guidance": 7.0,
            "batch_size": self.batch,
        }


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# -- models -----------------------------------------------------------------------------------------------------
def build_model(family: str, shape: str, dest: Path) -> Path:
    """A diffusers folder: `tiny` (the tests' tiny UNet/VAE/CLIP; SD 1.5 with attention only at a quarter of the
    latent size, so 512-1024 px stay fast on a CPU) or `real` (the bundled SD 1.5 / SDXL configs with random
    weights: every layer at its real size, so the GPU does the real work; fp16 on CUDA)."""
    if shape == "tiny":
        from tests.helpers.tiny_sd import build_tiny_sd15, build_tiny_sdxl

        return build_tiny_sdxl(dest) if family == "sdxl" else build_tiny_sd15(dest, fast_at_large_sizes=True)
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from zhike.backends.sd_configs import family_config_dir

    cfg = family_config_dir(family, dest.parent / "_configs")
    dtype = torch.float16 if device() == "cuda" else torch.float32
    t0 = time.perf_counter()
    with torch.device(device()):  # random init on the GPU takes seconds, not minutes
        torch.manual_seed(0)
        parts: dict[str, Any] = {
            "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(cfg / "unet")),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(cfg / "vae")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(cfg / "text_encoder")),
        }
        if family == "sdxl":
            te2 = CLIPTextConfig.from_pretrained(cfg / "text_encoder_2")
            parts["text_encoder_2"] = CLIPTextModelWithProjection(te2)
    scheduler = DPMSolverMultistepScheduler.from_pretrained(cfg / "scheduler")
    tokenizers = {"tokenizer": CLIPTokenizer.from_pretrained(cfg / "tokenizer")}
    if family == "sdxl":
        tokenizers["tokenizer_2"] = CLIPTokenizer.from_pretrained(cfg / "tokenizer_2")
        pipe: Any = StableDiffusionXLPipeline(**parts, **tokenizers, scheduler=scheduler, add_watermarker=False)
    else:
        pipe = StableDiffusionPipeline(
            **parts, **tokenizers, scheduler=scheduler, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False,
        )  # fmt: skip
    pipe.to(dtype=dtype).save_pretrained(dest, safe_serialization=True)
    print(f"  built {family} with random weights in {time.perf_counter() - t0:.1f} s -> {dest}", flush=True)
    return dest


# -- the paths ----------------------------------------------------------------------------------------------------
class Raw:
    """diffusers as a user would run it: warm pipeline, DPM++ 2M Karras, PIL images out (optionally compiled)."""

    def __init__(self, model: Path, family: str, *, compile: bool = False, compile_mode: str = "default") -> None:
        dtype = torch.float16 if device() == "cuda" else torch.float32
        cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
        extra = {"add_watermarker": False} if family == "sdxl" else {"safety_checker": None}
        self.pipe = cls.from_pretrained(model, torch_dtype=dtype, **extra).to(device())
        config = self.pipe.scheduler.config
        self.pipe.scheduler = DPMSolverMultistepScheduler.from_config(config, use_karras_sigmas=True)
        self.pipe.set_progress_bar_config(disable=True)
        if compile:
            self.pipe.unet.to(memory_format=torch.channels_last)
            self.pipe.unet = torch.compile(self.pipe.unet, mode=compile_mode, fullgraph=True)

    def run(self, case: Case) -> None:
        self.pipe(
            PROMPT,
            width=case.size,
            height=case.size,
            num_inference_steps=case.steps,
            guidance_scale=7.0,
            num_images_per_prompt=case.batch,
            generator=[torch.Generator("cpu").manual_seed(1 + i) for i in range(case.batch)],
            output_type="pil",
        )
        sync()


class Backend:
    """Zhike's pipeline code without the job around it."""

    def __init__(self, model: Path, family: str, home: Path, *, compile: bool = False) -> None:
        from zhike.backends.diffusion import load_pipeline
        from zhike.backends.speed import SpeedSettings
        from zhike.core.specs import ModelSpec

        spec = ModelSpec(name=family, path=model, format="diffusers", kind="checkpoint", family=family)
        speed = SpeedSettings(compile=compile, cache_dir=home / "cache" / "torch")
        self.loaded = load_pipeline(spec, device=device(), offload=False, configs_root=home / "_configs", speed=speed)

    def run(self, case: Case) -> None:
        from zhike.backends.diffusion import DiffusionRequest, generate

        req = DiffusionRequest(
            "txt2img", PROMPT, "", case.size, case.size, case.steps, 7.0, 1, "DPM++ 2M Karras", batch_size=case.batch
        )
        generate(self.loaded, req)
        sync()


class InProcess:
    """`zhike generate ... -o out.png` in this process against a warm Zhike: job -> PNG -> labelled file."""

    def __init__(self, model: Path, family: str, home: Path, *, compile: bool = False) -> None:
        from zhike.cli import common as cli_common
        from zhike.services.container import Zhike
        from zhike.settings import Settings

        self.z = Zhike(Settings(home=home, device=device(), compile=compile))
        self.z.catalog.add(str(model), name=family)
        cli_common.services = lambda: self.z
        self.out = home / "out.png"
        self.runner = CliRunner()

    def run(self, case: Case) -> dict[str, float]:
        from zhike.cli import main as cli

        p = case.params()
        argv = ["generate", p["prompt"], "--model", p["model"], "--width", str(case.size), "--height", str(case.size)]
        argv += ["--steps", str(case.steps), "--seed", "1", "--guidance", "7", "--batch", str(case.batch)]
        argv += ["--scheduler", "DPM++ 2M Karras", "-o", str(self.out)]
        r = self.runner.invoke(cli.app, argv, catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return getattr(self.z.jobs.list("local", limit=1)[0], "timings", None) or {}  # older Zhikes: none


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """A real `zhike serve` process with its embedded worker."""

    def __init__(self, model: Path, family: str, home: Path, *, compile: bool = False) -> None:
        env = {**os.environ, "ZHIKE_HOME": str(home), "ZHIKE_DEVICE": device(), "HF_HUB_OFFLINE": "1"}
        env |= {"ZHIKE_COMPILE": "true" if compile else "false", "ZHIKE_WARMUP": "off"}
        zhike = [sys.executable, "-m", "zhike.cli"]

        def cli(*argv: str) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run([*zhike, *argv], env=env, check=True, capture_output=True)

        cli("models", "add", str(model), "--name", family)
        key = cli("keys", "create", "--name", "bench")
        port = _free_port()
        self.server = subprocess.Popen(
            [*zhike, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key.stdout.decode().strip()}"},
            timeout=600,
        )
        for _ in range(600):
            try:
                if self.client.get("/api/v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("zhike serve did not start")

    def _finish(self, job: dict[str, Any]) -> dict[str, Any]:
        while job["state"] not in ("succeeded", "failed", "cancelled"):  # long-poll: no busy polling
            job = self.client.get(f"/api/v1/jobs/{job['id']}", params={"wait": 60}).json()
        assert job["state"] == "succeeded", job
        for out in job["outputs"]:
            assert self.client.get(out["url"]).status_code == 200
        return job

    def run(self, case: Case) -> dict[str, float]:
        job = self.client.post("/api/v1/jobs", json={"op": "txt2img", "params": case.params()}).json()
        return self._finish(job).get("timings") or {}

    def queue(self, case: Case, n: int) -> float:
        """Seconds per job with `n` jobs submitted at once (seeds differ), all files fetched."""
        t0 = time.perf_counter()
        jobs = [
            self.client.post("/api/v1/jobs", json={"op": "txt2img", "params": case.params() | {"seed": i + 1}}).json()
            for i in range(n)
        ]
        for job in jobs:
            self._finish(job)
        return (time.perf_counter() - t0) / n

    def close(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=30)


# -- measuring ----------------------------------------------------------------------------------------------------
@dataclass
class Result:
    case: Case
    seconds: dict[str, float] = field(default_factory=dict)  # path -> median seconds per run
    stages: dict[str, float] = field(default_factory=dict)  # median seconds per stage of the in-process jobs
    cold: float = 0.0  # the first in-process job: load (+ compile) included


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def measure(case: Case, model: Path, work: Path, *, runs: int, queue: int, paths: tuple[str, ...]) -> Result:
    """Every path of `paths` on `case`, warm, `runs` times interleaved; medians."""
    quiet_library_logs()
    res = Result(case)
    tag = f"{case.family}-{case.size}-{case.batch}-{'c' if case.compile else 'e'}"
    runners: dict[str, Any] = {}
    if "raw" in paths:
        runners["raw"] = Raw(model, case.family, compile=case.compile)
    if "backend" in paths:
        runners["backend"] = Backend(model, case.family, work / f"home-backend-{tag}", compile=case.compile)
    if "generate" in paths:
        runners["generate"] = InProcess(model, case.family, work / f"home-generate-{tag}", compile=case.compile)
    api = Api(model, case.family, work / f"home-api-{tag}", compile=case.compile) if "api" in paths else None
    try:
        for name, runner in runners.items():  # warm-up: loads, compiles, caches
            seconds, _ = _timed(lambda r=runner: r.run(case))
            if name == "generate":
                res.cold = seconds
        if api is not None:
            api.run(case)
        samples: dict[str, list[float]] = {p: [] for p in paths if p != "queue"}
        stage_samples: dict[str, list[float]] = {}
        for _ in range(runs):
            for name, runner in runners.items():
                seconds, timings = _timed(lambda r=runner: r.run(case))
                samples[name].append(seconds)
                if name == "generate":
                    for k, v in (timings or {}).items():
                        stage_samples.setdefault(k, []).append(v)
            if api is not None:
                samples["api"].append(_timed(lambda: api.run(case))[0])
        res.seconds = {k: statistics.median(v) for k, v in samples.items() if v}
        res.stages = {k: statistics.median(v) for k, v in stage_samples.items()}
        if api is not None and queue > 1 and "queue" in paths:
            res.seconds["queue"] = min(api.queue(case, queue) for _ in range(2))
    finally:
        if api is not None:
            api.close()
        runners.clear()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return res


def print_table(results: list[Result], queue: int) -> None:
    order = ("raw", "backend", "generate", "api", "queue")
    names = {"raw": "raw diffusers", "backend": "zhike backend", "generate": "zhike generate", "api": "API job"}
    names["queue"] = f"queue of {queue}, per job"
    print("\n| case | " + " | ".join(names[p] for p in order) + " | generate/raw | api/raw | queue/raw | first job |")
    print("|---" * (len(order) + 5) + "|")
    for r in results:
        raw = r.seconds.get("raw")
        cells = [f"{r.seconds[p] * 1000:.0f} ms" if p in r.seconds else "—" for p in order]
        ratios = [f"{r.seconds[p] / raw:.3f}" if raw and p in r.seconds else "—" for p in ("generate", "api", "queue")]
        print(f"| {r.case.label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + f" | {r.cold:.2f} s |")
    print("\nPer-stage breakdown of the `zhike generate` jobs (median seconds, from the job's own timings):")
    print("| case | " + " | ".join(STAGES) + " |")
    print("|---" * (len(STAGES) + 1) + "|")
    for r in results:
        print(f"| {r.case.label} | " + " | ".join(f"{r.stages.get(s, 0.0):.3f}" for s in STAGES) + " |")
    print(
        "store = the output pool's time on the job's outputs (PNG encoding and writing, plus the labelled export, also "
        "shown alone as label); outputs_wait = how long completion waited for it after sampling ended; a queue hides "
        "store and label behind the next job's sampling."
    )


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="zhike-bench-"))
