"""Overhead of Zhike's job path over a raw diffusers call, measured in one run on the same tiny model.

(a) raw diffusers pipeline call (warm pipeline, same scheduler, size, steps, seed, PIL output)
(b) `zhike generate` in-process: CLI -> job row -> worker -> pipeline -> PNG with metadata -> asset -> file
(c) the API job path: a real server process; POST /api/v1/jobs, wait for completion, download the file
Prints b/a, c/a and the API+queue overhead per job in ms (targets: b/a <= 1.05, overhead <= 50 ms).

Usage: python bench/overhead.py [--size 256] [--steps 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import torch  # noqa: E402
from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from tests.helpers.tiny_sd import build_tiny_sd15  # noqa: E402
from zhike.backends.library_logs import quiet_library_logs  # noqa: E402
from zhike.cli import common as cli_common  # noqa: E402
from zhike.cli import main as cli  # noqa: E402
from zhike.services.container import Zhike  # noqa: E402
from zhike.settings import Settings  # noqa: E402

PROMPT = "a ceramic teapot on a wooden table, studio light"


def timed(fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    quiet_library_logs()
    work = Path(tempfile.mkdtemp(prefix="zhike-bench-"))
    model_dir = build_tiny_sd15(work / "tiny")
    size, steps, runs = args.size, args.steps, args.runs
    params = {
        "prompt": PROMPT,
        "width": size,
        "height": size,
        "steps": steps,
        "seed": 1,
        "model": "tiny",
        "scheduler": "DPM++ 2M Karras",
        "guidance": 7.0,
    }
    print(
        f"tiny SD1.5-structured model, {size}x{size}, {steps} steps, {runs} runs each, "
        f"torch threads {torch.get_num_threads()}"
    )

    # (a) raw diffusers
    t0 = time.perf_counter()
    pipe = StableDiffusionPipeline.from_pretrained(str(model_dir), safety_checker=None, requires_safety_checker=False)
    raw_load = time.perf_counter() - t0
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=True)
    pipe.set_progress_bar_config(disable=True)

    def raw() -> None:
        pipe(
            PROMPT,
            width=size,
            height=size,
            num_inference_steps=steps,
            guidance_scale=7.0,
            generator=[torch.Generator("cpu").manual_seed(1)],
            output_type="pil",
        )

    raw()  # warm-up
    # (b) zhike generate, in-process, warm model cache
    z = Zhike(Settings(home=work / "home-b", device="cpu"))
    z.catalog.add(str(model_dir), name="tiny")
    cli_common.services = lambda: z  # the CLI command runs against this (warm) instance
    runner = CliRunner()
    argv = [
        "generate",
        PROMPT,
        "--model",
        "tiny",
        "--width",
        str(size),
        "--height",
        str(size),
        "--steps",
        str(steps),
        "--seed",
        "1",
        "--scheduler",
        "DPM++ 2M Karras",
        "--guidance",
        "7",
        "-o",
        str(work / "b.png"),
    ]

    def in_process() -> None:
        r = runner.invoke(cli.app, argv, catch_exceptions=False)
        assert r.exit_code == 0, r.output

    t0 = time.perf_counter()
    in_process()  # cold: includes the model load
    zhike_cold = time.perf_counter() - t0

    # (c) API job path against a real server process
    home_c = work / "home-c"
    env = {**os.environ, "ZHIKE_HOME": str(home_c), "ZHIKE_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"}
    zhike_bin = [sys.executable, "-m", "zhike.cli"]
    subprocess.run(
        [*zhike_bin, "models", "add", str(model_dir), "--name", "tiny"], env=env, check=True, capture_output=True
    )
    key = subprocess.run(
        [*zhike_bin, "keys", "create", "--name", "bench"], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [*zhike_bin, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120)
    try:
        for _ in range(300):
            try:
                if client.get("/api/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)

        def api() -> None:
            job = client.post("/api/v1/jobs", json={"op": "txt2img", "params": params}).json()
            while job["state"] not in ("succeeded", "failed", "cancelled"):  # long-poll: no busy polling
                job = client.get(f"/api/v1/jobs/{job['id']}", params={"wait": 60}).json()
            assert job["state"] == "succeeded", job
            assert client.get(job["outputs"][0]["url"]).status_code == 200

        api()  # warm-up (model load in the server)
        # Interleave the three so drift (thermal, other load) hits all alike.
        a, b, c = [], [], []
        for _ in range(runs):
            a += timed(raw, 1)
            b += timed(in_process, 1)
            c += timed(api, 1)
    finally:
        server.terminate()
        server.wait(timeout=20)
    ma, mb, mc = statistics.median(a), statistics.median(b), statistics.median(c)
    print(f"(a) raw diffusers      median {ma * 1000:8.1f} ms   (load {raw_load:.2f} s)")
    print(f"(b) zhike generate     median {mb * 1000:8.1f} ms   (first run with load {zhike_cold:.2f} s)")
    print(f"(c) API job path       median {mc * 1000:8.1f} ms")
    print(f"b/a = {mb / ma:.3f}   (target <= 1.05)")
    print(f"c/a = {mc / ma:.3f}")
    print(f"API + queue overhead per job: {(mc - ma) * 1000:.1f} ms   (target <= 50 ms)")
    print(f"in-process overhead per job:  {(mb - ma) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
