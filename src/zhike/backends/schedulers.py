"""Build a diffusers scheduler from a user-facing name."""

from __future__ import annotations

from typing import Any

import diffusers

from zhike.core.samplers import SCHEDULERS


def make_scheduler(name: str, base_config: dict[str, Any]) -> Any:
    cls_name, overrides = SCHEDULERS[name]
    cls = getattr(diffusers, cls_name)
    # Stable Diffusion never clips samples; configs that omit the key would get DDIM's default (True).
    return cls.from_config({"clip_sample": False, **dict(base_config), **overrides})
