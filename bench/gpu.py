"""The job path at raw-diffusers speed? SD 1.5- and SDXL-shaped models with random weights, on CUDA when present.

Builds each model from the configs bundled with Zhike (every layer at its real size; random fp16 weights: the GPU
does the real work, the pictures are noise) and times, on the same model in one run: raw diffusers, Zhike's
backend alone, `zhike generate` (job -> PNG -> labelled export), the API job and a queue of jobs (bench/jobpath.py),
with and without torch.compile, batch 1 and 4. Prints the table and each case's per-stage breakdown from the jobs'
own timings (load, encode_prompt, denoise, decode, store, label, queue, commit).

Runs anywhere: without CUDA the real shapes would take minutes per image, so it defaults to the tiny model
(`--shape tiny`) and no compile, which checks the machinery; `--shape real` forces the real shapes.

Usage: python bench/gpu.py [--families sd15,sdxl] [--batches 1,4] [--runs 3] [--queue 4] [--compile both|on|off]
                           [--shape auto|real|tiny] [--steps-sd15 20] [--steps-sdxl 30] [--size N]
A CPU smoke run of the machinery: python bench/gpu.py --size 256 --steps-sd15 4 --steps-sdxl 4 --runs 1 --queue 2
"""

from __future__ import annotations

import argparse

import torch
from jobpath import Case, build_model, device, measure, print_table, workdir

SIZES = {"sd15": 512, "sdxl": 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--families", default="sd15,sdxl")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--queue", type=int, default=4)
    ap.add_argument("--compile", choices=("both", "on", "off"), default="both")
    ap.add_argument("--shape", choices=("auto", "real", "tiny"), default="auto")
    ap.add_argument("--steps-sd15", type=int, default=20)
    ap.add_argument("--steps-sdxl", type=int, default=30)
    ap.add_argument("--paths", default="raw,backend,generate,api,queue")
    ap.add_argument("--size", type=int, default=0, help="one size for every family (default: 512 / 1024)")
    args = ap.parse_args()
    shape = args.shape if args.shape != "auto" else ("real" if device() == "cuda" else "tiny")
    compiles = {"both": (False, True), "on": (True,), "off": (False,)}[args.compile]
    if device() != "cuda" and args.compile != "off":
        print("no CUDA: torch.compile is skipped (Zhike compiles on CUDA only); eager cases only")
        compiles = (False,)
    name = torch.cuda.get_device_name() if device() == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; shapes: {shape}")
    work = workdir()
    results = []
    for family in args.families.split(","):
        model = build_model(family, shape, work / f"{family}-{shape}")
        steps = args.steps_sdxl if family == "sdxl" else args.steps_sd15
        for compiled in compiles:
            for batch in (int(b) for b in args.batches.split(",")):
                case = Case(family, args.size or SIZES[family], steps, batch, compile=compiled)
                print(f"  {case.label} ...", flush=True)
                paths = tuple(args.paths.split(","))
                results.append(measure(case, model, work, runs=args.runs, queue=args.queue, paths=paths))
    print_table(results, args.queue)


if __name__ == "__main__":
    main()
