"""MusicGen (transformers' MusicgenForConditionalGeneration): music from a text description, for the `music` op when
the user has added MusicGen weights (`zhike models add DIR`, e.g. a download of facebook/musicgen-small).

A MusicGen folder is a T5 text encoder, a decoder predicting EnCodec codebooks and the EnCodec decoder that turns
them into audio, in one config.json with `MusicgenForConditionalGeneration` among its architectures, plus the T5
tokenizer. Only safetensors weights are opened (pickles can run code).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zhike.backends.loaders import LoadEnv, loader
from zhike.core.errors import InvalidInput, ModelError
from zhike.core.specs import ModelSpec

ARCHITECTURE = "MusicgenForConditionalGeneration"
_TOKENIZER_FILES = ("tokenizer.json", "spiece.model")


def is_musicgen_folder(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and ARCHITECTURE in (config.get("architectures") or [])


def musicgen_problem(folder: Path) -> str | None:
    """Why a MusicGen folder cannot be used (for `zhike models add`), or None."""
    if not any(folder.glob("*.safetensors")):
        return f"{folder.name}: a MusicGen folder without .safetensors weights (Zhike does not open pickles)"
    if not any((folder / n).is_file() for n in _TOKENIZER_FILES):
        return f"{folder.name}: a MusicGen folder without its T5 tokenizer (tokenizer.json or spiece.model)"
    return None


def max_seconds(folder: Path) -> float:
    """The longest music a MusicGen folder makes at once, from its config alone (checked at submission): the
    decoder's positions, less the codebook delay pattern's extra steps, at EnCodec's frame rate."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    audio, decoder = config["audio_encoder"], config["decoder"]
    frame_rate = math.ceil(audio["sampling_rate"] / math.prod(audio["upsampling_ratios"]))
    return (decoder["max_position_embeddings"] - decoder["num_codebooks"]) / frame_rate


@dataclass
class Music:
    samples: np.ndarray  # float32, (channels, frames)
    sample_rate: int
    seconds: float  # wall time of the generation


class MusicGen:
    """A loaded MusicGen model; `generate` runs one description at a time (the manager hands it to one job)."""

    def __init__(self, name: str, model: Any, tokenizer: Any, device: str, nbytes: int, longest: float) -> None:
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.nbytes = nbytes
        audio = model.config.audio_encoder
        self.sample_rate = int(audio.sampling_rate)
        self.frame_rate = float(audio.frame_rate)  # codebook frames per second of audio
        self.max_seconds = longest

    def generate(
        self, prompt: str, *, seconds: float, seed: int, guidance: float = 3.0, field: str = "params.duration"
    ) -> Music:
        import torch

        if seconds > self.max_seconds:
            raise InvalidInput(
                f"{field}: {self.name} makes at most {self.max_seconds:.0f} s of music at once",
                code="music_too_long",
                field=field,
                ctx={"seconds": seconds, "limit": math.floor(self.max_seconds)},
            )
        t0 = time.perf_counter()
        torch.manual_seed(seed)  # sampling is the only randomness: the same seed gives the same music
        inputs = self.tokenizer([prompt], return_tensors="pt", padding=True).to(self.device)
        tokens = math.ceil(seconds * self.frame_rate) + 1  # the first step is the start token
        with torch.inference_mode():
            audio = self.model.generate(
                **inputs, max_new_tokens=tokens, do_sample=True, guidance_scale=guidance if guidance > 1 else None
            )
        samples = audio[0].float().cpu().numpy()
        return Music(np.asarray(samples, dtype=np.float32), self.sample_rate, time.perf_counter() - t0)


@loader(kind="music", family="musicgen", format="transformers")
def _load_musicgen(spec: ModelSpec, env: LoadEnv) -> MusicGen:
    import torch
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration

    folder = Path(spec.path)
    problem = musicgen_problem(folder) if folder.is_dir() else f"{spec.name}: no folder at its path"
    if problem:
        raise ModelError(problem, field="model", ctx={"name": spec.name})
    dtype = torch.float16 if env.device == "cuda" else torch.float32
    try:
        model = MusicgenForConditionalGeneration.from_pretrained(folder, dtype=dtype, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as e:
        raise ModelError(
            f"{spec.name}: MusicGen could not be loaded: {e}", field="model", ctx={"name": spec.name}
        ) from e
    model.to(env.device).eval()
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return MusicGen(spec.name, model, tokenizer, env.device, nbytes, max_seconds(folder))
