"""The embedded LLM on this machine: Zhike's streaming backend against a raw transformers `generate` on the same
weights in the same run (the int8 model a CPU runs, backends/llm/int8.py), then the bf16 model (`llm_cpu_quantize`
off) on the same prompt: int8's speed-up. Load times: GGUF de-quantised on every load, the safetensors folder
converted once, the int8 file quantised once. Not a test.

Tokens/s count every generated token over the whole call (prompt included, as a user waits for it); both paths get
the same prompt, the same greedy settings and the same thread count, alternating run by run so drift in a shared
machine's load hits both. Time to first token: Zhike's first streamed piece; raw = a `generate` of one token.
The goal is Zhike/raw >= 0.95. Timings on a shared 2-core machine are noisy: read the medians.

Usage: python bench/llm.py [--max-tokens 64] [--runs 3] [--skip-gguf-load] [--no-bf16] [--no-kb]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("ZHIKE_EMBEDDED_DIR", str(REPO / ".cache" / "embedded"))

import torch  # noqa: E402

from zhike.backends.llm import int8  # noqa: E402
from zhike.backends.llm.base import ChatMessage, GenerateOptions  # noqa: E402
from zhike.backends.llm.transformers_chat import (  # noqa: E402
    TransformersChat,
    _load_gguf,
    convert_gguf,
    converted_dir,
    is_converted,
    load_chat,
)
from zhike.backends.loaders import LoadEnv  # noqa: E402
from zhike.models.embedded import BY_NAME, EMBEDDED_LLM, embedded_specs, is_present  # noqa: E402

PROMPT = [
    ChatMessage("system", "你是一名电商文案写手，用简体中文回答。"),
    ChatMessage("user", "为一款 500 毫升的不锈钢保温杯写三条卖点，每条一句话，价格 89 元。"),
]


def _loads(spec, env: LoadEnv, skip_gguf: bool) -> TransformersChat:  # noqa: ANN001 - a ModelSpec
    target = converted_dir(spec, env)
    if not skip_gguf:
        t = time.perf_counter()
        model, _ = _load_gguf(spec.path, torch.bfloat16)
        print(f"  load from the GGUF (every load, without conversion): {time.perf_counter() - t:6.1f} s", flush=True)
        del model
        gc.collect()
    # With int8 the conversion keeps no float weights: load_chat converts and quantises in one go (timed below).
    if not int8.wants_int8(env.llm_quantize, env.device) and not is_converted(target, spec.path):
        t = time.perf_counter()
        convert_gguf(spec.path, target)
        print(f"  one-time conversion (GGUF load + save):             {time.perf_counter() - t:6.1f} s", flush=True)
        gc.collect()
    quantized, t = int8.quantised_count, time.perf_counter()
    chat = load_chat(spec, env)
    how = f"{chat.loaded_from}, quantised now" if int8.quantised_count > quantized else "read from its int8 file"
    print(f"  int8 load ({how}):                    {time.perf_counter() - t:6.1f} s")
    return chat


def _raw(chat: TransformersChat, prompt: list[int], options: GenerateOptions) -> tuple[float, int]:
    kwargs = chat.generate_kwargs(prompt, options)
    t = time.perf_counter()
    with torch.inference_mode():
        out = chat.model.generate(**kwargs)
    return time.perf_counter() - t, out.shape[1] - len(prompt)


def _zhike(chat: TransformersChat, options: GenerateOptions) -> tuple[float, float, int]:
    t = time.perf_counter()
    first, made = 0.0, 0
    for chunk in chat.stream(PROMPT, options):
        if chunk.text and not first:
            first = time.perf_counter() - t
        made = chunk.completion_tokens or made
    return time.perf_counter() - t, first, made


def throughput(chat: TransformersChat, max_tokens: int, runs: int) -> tuple[float, float]:
    torch.set_num_threads(chat.threads)  # the raw path runs here, with the threads Zhike's generating thread uses
    options = GenerateOptions(max_tokens=max_tokens, temperature=0)
    prompt = chat.prompt_ids(PROMPT)
    _raw(chat, prompt, GenerateOptions(max_tokens=4, temperature=0))  # warm up both paths
    _zhike(chat, GenerateOptions(max_tokens=4, temperature=0))
    raw_tps, zk_tps, raw_ttft, zk_ttft = [], [], [], []
    for i in range(runs):
        seconds, made = _raw(chat, prompt, options)
        raw_tps.append(made / seconds)
        raw_ttft.append(_raw(chat, prompt, GenerateOptions(max_tokens=1, temperature=0))[0])
        seconds, first, zk_made = _zhike(chat, options)
        zk_tps.append(zk_made / seconds)
        zk_ttft.append(first)
        print(
            f"  run {i + 1}: raw {raw_tps[-1]:5.2f} tok/s ({made} tokens)   zhike {zk_tps[-1]:5.2f} tok/s "
            f"({zk_made} tokens), first token raw {raw_ttft[-1]:.2f} s / zhike {zk_ttft[-1]:.2f} s",
            flush=True,
        )
    raw, zk = statistics.median(raw_tps), statistics.median(zk_tps)
    print(f"\n  median tokens/s: raw generate {raw:.2f}, Zhike stream {zk:.2f}   ratio {zk / raw:.3f} (goal >= 0.95)")
    print(
        f"  median time to first token: raw {statistics.median(raw_ttft):.2f} s, "
        f"Zhike {statistics.median(zk_ttft):.2f} s ({len(prompt)} prompt tokens)"
    )
    return raw, statistics.median(raw_ttft)


def bf16_baseline(spec, int8_speed: tuple[float, float], max_tokens: int, runs: int) -> None:  # noqa: ANN001
    """The plain bf16 model (`llm_cpu_quantize` off), raw `generate` like above: what int8 gains."""
    t = time.perf_counter()
    chat = load_chat(spec, LoadEnv(device="cpu", llm_quantize="off"))
    print(f"  bf16 load: {time.perf_counter() - t:.1f} s")
    torch.set_num_threads(chat.threads)
    prompt, options = chat.prompt_ids(PROMPT), GenerateOptions(max_tokens=max_tokens, temperature=0)
    _raw(chat, prompt, GenerateOptions(max_tokens=4, temperature=0))
    tps, ttft = [], []
    for _ in range(runs):
        seconds, made = _raw(chat, prompt, options)
        tps.append(made / seconds)
        ttft.append(_raw(chat, prompt, GenerateOptions(max_tokens=1, temperature=0))[0])
    bf16, first = statistics.median(tps), statistics.median(ttft)
    (q, q_first) = int8_speed
    print(f"  median tokens/s: bf16 {bf16:.2f}, int8 {q:.2f}   int8 speed-up {q / bf16:.2f}x")
    print(f"  median time to first token: bf16 {first:.2f} s, int8 {q_first:.2f} s   ({first / q_first:.2f}x faster)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-gguf-load", action="store_true", help="do not time a load straight from the GGUF")
    ap.add_argument("--no-bf16", action="store_true", help="skip the bf16 baseline")
    ap.add_argument("--no-kb", action="store_true", help="skip the knowledge-base section")
    args = ap.parse_args()
    home = Path(os.environ["ZHIKE_EMBEDDED_DIR"])
    if not is_present(BY_NAME[EMBEDDED_LLM], home):
        sys.exit(f"the LLM pack is not in {home}: `zhike models fetch-embedded --pack llm` (or make embedded)")
    spec = next(s for s in embedded_specs(home) if s.name == EMBEDDED_LLM)
    print(f"{EMBEDDED_LLM} ({spec.size_bytes / 1e9:.2f} GB GGUF), int8 on CPU, {os.cpu_count()} cores")
    print("\nLoad")
    chat = _loads(spec, LoadEnv(device="cpu", llm_quantize="int8"), args.skip_gguf_load)
    print(f"\nGeneration, int8 ({args.max_tokens} tokens max, greedy, {chat.threads} threads)")
    speed = throughput(chat, args.max_tokens, args.runs)
    if not args.no_bf16:
        print("\nbf16 baseline (llm_cpu_quantize off)")
        bf16_baseline(spec, speed, args.max_tokens, args.runs)
    if not args.no_kb:
        kb_section()


# ------------------------------------------------------------------------------------------------------------------
# KB section: owned by the KB-SERVICE helper (knowledge base ingest pages/s and ask latency: retrieval ms, generation
# ms). Fill in kb_section(); main() calls it last, with the embedded LLM already loaded in this process.
# ------------------------------------------------------------------------------------------------------------------
def kb_section() -> None:
    """bench/kb.py: ingest pages/s of the five fixture documents, then asks split into retrieval and generation ms
    on the embedded LLM (the process's loaded copy)."""
    from bench.kb import run_kb_bench

    print("\nKnowledge base (tests/fixtures/kb)")
    run_kb_bench(llm=EMBEDDED_LLM)


if __name__ == "__main__":
    main()
