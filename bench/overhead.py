"""The job path's overhead over raw diffusers on this machine, at the output sizes users make (512² and 1024²).

A tiny UNet (the tests' SD 1.5-structured model) keeps sampling fast on a CPU, so what a GPU exposes becomes
visible here too: the job row, the worker, PNG encoding and storing, the labelled export, the API and the queue.
Same model, scheduler, steps, seed and size for every path, in one run (bench/jobpath.py says what each path is).
Prints the table and the per-stage breakdown from the jobs' own timings; generate/raw and api/raw are per single
job (encode and label are on its critical path), queue/raw is per job when several wait (they overlap sampling).

Usage: python bench/overhead.py [--sizes 512,1024] [--steps 20] [--runs 5] [--queue 4]
"""

from __future__ import annotations

import argparse

import torch
from jobpath import Case, build_model, measure, print_table, workdir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--queue", type=int, default=4)
    args = ap.parse_args()
    work = workdir()
    model = build_model("sd15", "tiny", work / "tiny")
    print(f"tiny SD 1.5-structured model on {torch.get_num_threads()} CPU threads, {args.runs} runs per path")
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        case = Case("sd15", size, args.steps, 1)
        print(f"  {case.label} ...", flush=True)
        results.append(
            measure(case, model, work, runs=args.runs, queue=args.queue, paths=("raw", "generate", "api", "queue"))
        )
    print_table(results, args.queue)


if __name__ == "__main__":
    main()
