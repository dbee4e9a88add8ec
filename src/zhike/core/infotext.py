"""A1111-compatible `parameters` text ("infotext"), written into PNGs and read back.

Format (what A1111, Civitai, ComfyUI loaders and image browsers read):
    <prompt>
    Negative prompt: <negative>
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, Model: name, ...
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

# Zhike scheduler name -> (A1111 "Sampler", A1111 "Schedule type"). A1111 >= 1.9 splits Karras off the sampler.
_KARRAS = " Karras"


def _quote(value: str) -> str:
    if "," in value or ":" in value or '"' in value or "\n" in value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return value


def format_infotext(
    params: dict[str, Any], *, seed: int | None, model: str | None, model_hash: str | None, version: str
) -> str:
    prompt = params.get("prompt", "")
    for lora in params.get("loras") or []:  # A1111 reproduces LoRAs from tags in the prompt
        prompt += f" <lora:{lora['name']}:{lora['weight']:g}>"
    lines = [prompt]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    fields: list[tuple[str, Any]] = [("Steps", params.get("steps"))]
    sched = params.get("scheduler")
    if sched:
        if sched.endswith(_KARRAS):
            fields += [("Sampler", sched[: -len(_KARRAS)]), ("Schedule type", "Karras")]
        else:
            fields.append(("Sampler", sched))
    fields += [
        ("CFG scale", params.get("guidance")),
        ("Clip skip", params.get("clip_skip") if (params.get("clip_skip") or 1) > 1 else None),
        ("Seed", seed),
        ("Size", f"{params.get('width')}x{params.get('height')}" if params.get("width") else None),
        ("Model hash", model_hash),
        ("Model", model),
        ("Denoising strength", params.get("strength")),
        ("Version", f"zhike-{version}"),
    ]
    lines.append(", ".join(f"{k}: {_quote(str(v))}" for k, v in fields if v is not None))
    return "\n".join(lines)


_FIELD_RE = re.compile(r'\s*([\w ]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def parse_infotext(text: str) -> dict[str, Any]:
    """Parse A1111 infotext into Zhike txt2img/img2img params (unknown fields are kept under `extra`)."""
    lines = text.strip().split("\n")
    last = lines[-1] if lines else ""
    fields: dict[str, str] = {}
    if len(_FIELD_RE.findall(last)) >= 3:
        for key, value in _FIELD_RE.findall(last):
            value = value.strip()
            if value.startswith('"') and value.endswith('"'):
                value = value[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            fields[key.strip()] = value
        lines = lines[:-1]
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if line.startswith("Negative prompt:"):
            target = negative_lines
            line = line[len("Negative prompt:") :].strip()
        target.append(line)
    out: dict[str, Any] = {"prompt": "\n".join(prompt_lines).strip()}
    if negative_lines:
        out["negative_prompt"] = "\n".join(negative_lines).strip()
    conv = {
        "Clip skip": ("clip_skip", int),
        "Steps": ("steps", int),
        "CFG scale": ("guidance", float),
        "Seed": ("seed", int),
        "Denoising strength": ("strength", float),
    }
    for key, (name, cast) in conv.items():
        if key in fields:
            with contextlib.suppress(ValueError):
                out[name] = cast(float(fields[key])) if cast is int else cast(fields[key])
    if "Size" in fields and "x" in fields["Size"]:
        w, _, h = fields["Size"].partition("x")
        if w.isdigit() and h.isdigit():
            out["width"], out["height"] = int(w), int(h)
    if "Sampler" in fields:
        sampler = fields["Sampler"]
        if fields.get("Schedule type") == "Karras" and not sampler.endswith(_KARRAS):
            sampler += _KARRAS
        out["scheduler"] = sampler
    if "Model" in fields:
        out["model"] = fields["Model"]
    known = {
        "Clip skip",
        "Steps",
        "CFG scale",
        "Seed",
        "Size",
        "Sampler",
        "Schedule type",
        "Model",
        "Denoising strength",
    }
    extra = {k: v for k, v in fields.items() if k not in known}
    if extra:
        out["extra"] = extra
    return out
