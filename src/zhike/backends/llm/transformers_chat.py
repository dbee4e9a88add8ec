"""The embedded chat backend: a transformers causal LM on this machine, as a `ChatModel` (backends/llm/base.py).

Loads a safetensors model folder, or a GGUF file through transformers' `gguf_file=`. Reading a GGUF means
de-quantising every tensor (the 1.1 GB embedded Qwen takes 44 s or more, and its tokenizer alone 25 s), so a GGUF is
converted ONCE to a bf16 safetensors folder (beside an embedded GGUF, under models/_converted for users' own) and
later loads read that folder in seconds. The conversion is written to a temporary folder and renamed into place
under a file lock: a crash leaves no half folder that a later load would trust.

Generation runs transformers' own `generate` in a thread, with a streamer that hands each token over as it comes:
the decoding is the library's (the same tokens/s as a plain `generate`), the caller's thread turns tokens into text,
looks for stop strings and asks `should_stop` between tokens. One lock per model: two callers never run it at once.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from zhike.backends.llm import int8
from zhike.backends.llm.base import ChatMessage, Chunk, FinishReason, GenerateOptions
from zhike.backends.llm.files import file_lock
from zhike.backends.loaders import LoadEnv, loader
from zhike.backends.upscale import cpu_threads
from zhike.core.errors import InvalidInput, ModelError
from zhike.core.specs import ModelSpec

MARKER = "zhike-converted.json"  # written last into a converted folder: what it was made from
EMBEDDED_CONVERTED = "bf16"  # the converted folder's name beside an embedded GGUF
_END = object()
# The same weights loaded twice in one process (two managers, e.g. tests' apps beside the shared fixture) are one
# object: 3 GB of bf16 weights are not held twice, and its lock still serialises every caller.
_LIVE: weakref.WeakValueDictionary[str, TransformersChat] = weakref.WeakValueDictionary()
_LIVE_LOCK = threading.Lock()


class _TokenQueue(BaseStreamer):
    """`generate`'s streamer: each new token id into a queue for the caller's thread; the prompt (first put) skipped."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.queue.put(value.reshape(-1).tolist())

    def end(self) -> None:
        self.queue.put(_END)


class _Halt(StoppingCriteria):
    """Stops `generate` after the current token once the caller has seen enough (cancel, a stop string)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class _Text:
    """Token ids -> text as they come. Decodes only the tokens since the last settled point (not the whole answer
    each time) and holds back an incomplete UTF-8 character (a Chinese character can span two tokens)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer
        self.settled = ""
        self.pending: list[int] = []

    def add(self, ids: list[int]) -> str | None:
        """The whole text so far, or None while it ends inside a character."""
        self.pending.extend(ids)
        tail = self.tok.decode(self.pending, skip_special_tokens=True)
        if tail.endswith("\ufffd"):
            return None
        if len(self.pending) >= 32:  # settle: later tokens decode on their own from here
            self.settled += tail
            self.pending = []
            return self.settled
        return self.settled + tail

    def whole(self) -> str:
        """All of it, an incomplete last character included (the answer has ended)."""
        return self.settled + self.tok.decode(self.pending, skip_special_tokens=True)


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many characters at the end of `text` could be the start of a stop string (not shown yet)."""
    keep = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), keep, -1):
            if text.endswith(stop[:n]):
                keep = n
                break
    return keep


class TransformersChat:
    """A loaded causal LM with its tokenizer and chat template (see the module's doc)."""

    def __init__(self, name: str, model: Any, tokenizer: Any, *, loaded_from: str, load_seconds: float) -> None:
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.loaded_from = loaded_from  # "gguf" (converted now), "int8 file" or "safetensors": what a load cost
        self.load_seconds = load_seconds
        self.lock = threading.Lock()
        self.int8 = int8.is_int8(model)  # Linear layers quantised (CPU); else float weights
        tensors = (*model.parameters(), *model.buffers())
        self.nbytes = sum(t.numel() * t.element_size() for t in tensors) + int8.packed_nbytes(model)
        self.context_length = int(getattr(model.config, "max_position_embeddings", 0) or 32768)
        self.eos_ids = self._eos_ids()
        self.device = next(model.parameters()).device
        # Threads of the generating thread only (torch's OpenMP setting is per thread): one per core this process
        # may use, whatever OMP_NUM_THREADS says to the rest (tests set 1 so tiny models do not thrash).
        self.threads = cpu_threads()

    def _eos_ids(self) -> list[int]:
        """Where an answer ends: the tokenizer's and generation config's eos, and ChatML's end of turn (a GGUF's
        generation config names only one of them)."""
        ids = {self.tokenizer.eos_token_id}
        gen = self.model.generation_config.eos_token_id
        ids.update(gen if isinstance(gen, list) else [gen])
        vocab = self.tokenizer.get_vocab()
        ids.update(vocab[t] for t in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>") if t in vocab)
        return sorted(i for i in ids if isinstance(i, int))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The conversation in the model's own chat template (a base model without one gets plain role lines)."""
        turns = [{"role": m.role, "content": m.content} for m in messages]
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
        else:
            text = "".join(f"{t['role']}: {t['content']}\n" for t in turns) + "assistant: "
        return self.tokenizer.encode(text, add_special_tokens=False)

    def generate_kwargs(self, prompt: list[int], options: GenerateOptions) -> dict[str, Any]:
        """What `generate` is given (also what bench/llm.py gives a raw `generate`, so the two compare fairly)."""
        ids = torch.tensor([prompt], device=self.device)
        kwargs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "max_new_tokens": options.max_tokens,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0],
        }
        if options.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = options.repetition_penalty
        if options.temperature <= 0:
            kwargs["do_sample"] = False
        else:
            kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p)
        return kwargs

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerateOptions,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[Chunk]:
        if options.max_tokens < 1:
            raise InvalidInput("max_tokens must be at least 1", code="validation_failed", field="max_tokens")
        prompt = self.prompt_ids(messages)
        if len(prompt) + options.max_tokens > self.context_length:
            raise InvalidInput(
                f"the text is too long for {self.name}: {len(prompt)} tokens of prompt + {options.max_tokens} to "
                f"write > its context of {self.context_length} tokens",
                code="llm_prompt_too_long",
                field="llm",
                ctx={"tokens": len(prompt), "limit": self.context_length - options.max_tokens},
            )
        return self._stream(prompt, options, should_stop)

    def _stream(
        self, prompt: list[int], options: GenerateOptions, should_stop: Callable[[], bool] | None
    ) -> Iterator[Chunk]:
        with self.lock:  # held while the caller reads: one generation at a time on these weights
            streamer, halt = _TokenQueue(), threading.Event()
            kwargs = self.generate_kwargs(prompt, options)
            kwargs.update(streamer=streamer, stopping_criteria=StoppingCriteriaList([_Halt(halt)]))
            if options.seed is not None:
                torch.manual_seed(options.seed)
            failure: list[BaseException] = []
            worker = threading.Thread(target=self._run, args=(kwargs, streamer, failure), name="llm-generate")
            worker.start()
            try:
                yield from self._read(streamer, halt, prompt, options, should_stop, failure)
            finally:
                halt.set()  # the caller stopped reading (cancel, error, closed generator): stop the model too
                worker.join()

    def _run(self, kwargs: dict[str, Any], streamer: _TokenQueue, failure: list[BaseException]) -> None:
        # A thread's set_num_threads also becomes the count every thread started later begins with: put it back, so
        # the next worker's diffusion runs with the threads it would have had (the same seed, the same pixels).
        before = torch.get_num_threads()
        try:
            if self.device.type == "cpu":
                torch.set_num_threads(self.threads)
            with torch.inference_mode():
                self.model.generate(**kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, raised there
            failure.append(e)
            streamer.end()
        finally:
            torch.set_num_threads(before)

    def _read(
        self,
        streamer: _TokenQueue,
        halt: threading.Event,
        prompt: list[int],
        options: GenerateOptions,
        should_stop: Callable[[], bool] | None,
        failure: list[BaseException],
    ) -> Iterator[Chunk]:
        text, shown, made, ended_on_eos = _Text(self.tokenizer), "", 0, False
        finish: FinishReason | None = None
        stops = tuple(s for s in options.stop if s)
        while True:
            try:  # a timeout, so that a cancel is seen during a long prompt too, before the first token
                ids = streamer.queue.get(timeout=0.25)
            except queue.Empty:
                ids = []
            if should_stop is not None and should_stop():
                finish = "cancelled"
                break
            if ids is _END:
                break
            if not ids:
                continue
            made += len(ids)
            ended_on_eos = ids[-1] in self.eos_ids
            whole = text.add([i for i in ids if i not in self.eos_ids])
            if whole is None:
                continue
            cut = min((i for s in stops if (i := whole.find(s, max(0, len(shown) - len(s)))) >= 0), default=-1)
            if cut >= 0:
                whole, finish = whole[:cut], "stop"
            safe = len(whole) if finish or ended_on_eos else len(whole) - _held_back(whole, stops)
            if safe > len(shown):
                yield Chunk(whole[len(shown) : safe])
                shown = whole[:safe]
            if finish:
                break
        halt.set()
        if failure:
            raise ModelError(
                f"{self.name} failed while writing: {type(failure[0]).__name__}: {failure[0]}",
                code="generation_failed",
                field="llm",
            ) from failure[0]
        if finish is None:  # the model ended (its end of turn, or max_tokens): what was held back belongs to the answer
            if rest := text.whole()[len(shown) :]:
                yield Chunk(rest)
            finish = "stop" if ended_on_eos or made < options.max_tokens else "length"
        yield Chunk("", finish, prompt_tokens=len(prompt), completion_tokens=made)


# --------------------------------------------------------------------------- loading and the one-time conversion


def converted_dir(spec: ModelSpec, env: LoadEnv) -> Path:
    """Where a GGUF's safetensors copy lives: beside an embedded GGUF (shared by every Zhike home on the machine,
    and by CI's cache), in this home's models/_converted for a user's file (named by its checksum)."""
    if spec.embedded:
        return spec.path.parent / EMBEDDED_CONVERTED
    st = spec.path.stat()
    key = (spec.sha256 or f"{st.st_size:x}{int(st.st_mtime):x}")[:12]
    return env.converted_root / f"{spec.name}-{key}"


def _source_id(gguf: Path) -> dict[str, Any]:
    st = gguf.stat()
    return {"source": gguf.name, "size": st.st_size, "mtime": int(st.st_mtime)}


def is_converted(folder: Path, gguf: Path, *, weights: bool = True) -> bool:
    """Whether `folder` holds `gguf`'s conversion; with `weights`, its float weights too (an int8-only conversion
    keeps just the config and tokenizer: the weights live in the int8 file)."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("size") == gguf.stat().st_size and (marker.get("weights", True) or not weights)


def _load_gguf(gguf: Path, dtype: torch.dtype, tokenizer_from: Path | None = None) -> tuple[Any, Any]:
    # dequantize=True: plain dense layers, which save as safetensors (transformers' packed GGUF layers cannot).
    # The tokenizer is read from an earlier conversion where there is one: from the GGUF it takes ~25 s.
    if tokenizer_from is not None:
        tok = AutoTokenizer.from_pretrained(tokenizer_from)
    else:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=dtype, quantization_config=GgufConfig(dequantize=True)
    )
    # Dequantised, the model is an ordinary one: forget the quantizer so it saves (and reloads) as plain weights.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tok


def convert_gguf(
    gguf: Path, target: Path, dtype: torch.dtype = torch.bfloat16, *, weights: bool = True
) -> tuple[Any, Any] | None:
    """Write `target` (a safetensors folder) from `gguf`, atomically. Returns the loaded (model, tokenizer), or None
    when another process had converted it meanwhile (then load `target`). Without `weights` only the config and
    tokenizer are written: on a CPU the model is quantised from memory and its int8 file is all that is kept
    (3.5 GB less disk for the embedded model)."""
    with file_lock(target.with_name(target.name + ".lock")):
        if is_converted(target, gguf, weights=weights):
            return None
        for stale in target.parent.glob(target.name + ".tmp-*"):  # left by a crash: never trusted, now removed
            shutil.rmtree(stale, ignore_errors=True)
        model, tok = _load_gguf(gguf, dtype)
        tmp = target.with_name(f"{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            if weights:
                model.save_pretrained(tmp)
            else:
                model.config.save_pretrained(tmp)
                model.generation_config.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            marker = {**_source_id(gguf), "dtype": str(dtype).removeprefix("torch."), "weights": weights}
            (tmp / MARKER).write_text(json.dumps(marker))
            if target.exists():  # an older conversion of a changed file
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return model, tok


def _with_threads(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn` with one torch thread per core, the loading thread's count put back after (see `_run`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(cpu_threads())
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


def _dtype(device: str) -> torch.dtype:
    return torch.bfloat16 if device != "mps" else torch.float16


def load_chat(spec: ModelSpec, env: LoadEnv) -> TransformersChat:
    """The ChatModel for a catalogue spec of kind "llm" (format "transformers" or "gguf"): int8 on a CPU unless
    `llm_cpu_quantize` is "off" (backends/llm/int8.py), else bf16 (fp16 on Apple's mps)."""
    start = time.perf_counter()
    dtype = _dtype(env.device)
    want_int8 = int8.wants_int8(env.llm_quantize, env.device)
    try:
        if spec.format == "gguf":
            folder = converted_dir(spec, env)
            int8_home = folder.parent  # beside the conversion, which is ours
            # Float weights go to disk only where they are read: for int8 the quantised file is what is kept.
            weights = not want_int8
            fresh = (
                None
                if is_converted(folder, spec.path, weights=weights)
                else convert_gguf(spec.path, folder, dtype, weights=weights)
            )
            if (
                want_int8
                and fresh is None
                and not is_converted(folder, spec.path)
                and not int8.is_cached(folder, int8_home)
            ):
                fresh = _load_gguf(spec.path, dtype, folder)  # the int8 file was removed; no float weights kept
        else:
            folder, fresh, int8_home = spec.path, None, env.converted_root  # never write into a user's folder
        key = f"{folder.resolve()}|{env.device}|{'int8' if want_int8 else dtype}"
        with _LIVE_LOCK:
            if (live := _LIVE.get(key)) is not None:
                return live
            source = "gguf" if fresh is not None else "safetensors"
            if want_int8:
                model, quantised = _with_threads(int8.load_int8, folder, int8_home, fresh[0] if fresh else None)
                source = source if quantised else "int8 file"
                tok = fresh[1] if fresh else AutoTokenizer.from_pretrained(folder)
            elif fresh is not None:
                model, tok = fresh
            else:
                model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
                tok = AutoTokenizer.from_pretrained(folder)
            del fresh  # a converted bf16 model now quantised: no other reference keeps its float weights
            model.to(env.device).eval()
            chat = TransformersChat(spec.name, model, tok, loaded_from=source, load_seconds=0.0)
            chat.load_seconds = time.perf_counter() - start
            _LIVE[key] = chat
            return chat
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001 - every failure to read the files means the same to the user
        raise ModelError(
            f"could not load language model {spec.name!r} from {spec.path.name}: {type(e).__name__}: {e}",
            code="model_load_failed",
            field="model",
            ctx={"name": spec.name},
        ) from e


@loader(kind="llm", format=("transformers", "gguf"))
def _load_llm(spec: ModelSpec, env: LoadEnv) -> TransformersChat:
    return load_chat(spec, env)
