"""Parameters and steps shared by the Stable Diffusion operations (txt2img, img2img)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.samplers import SchedulerName
from zhike.core.types import ImageOut, ImagesResult

MAX_SIDE = 2048
MAX_SEED = 2**32 - 1


class DiffusionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(..., min_length=1, max_length=4000, description="What to draw / 画面描述")
    negative_prompt: str = Field("", max_length=4000, description="What to avoid / 反向提示词")
    model: str | None = Field(None, max_length=200, description="Registered model name; default: first installed")
    width: int = Field(512, ge=64, le=MAX_SIDE, description="Multiple of 8")
    height: int = Field(512, ge=64, le=MAX_SIDE, description="Multiple of 8")
    steps: int = Field(25, ge=1, le=150)
    guidance: float = Field(7.0, ge=0.0, le=30.0, description="CFG scale")
    seed: int | None = Field(None, ge=-1, le=MAX_SEED, description="-1 or empty: random (recorded)")
    scheduler: SchedulerName = "DPM++ 2M Karras"
    batch_size: int = Field(1, ge=1, le=8)

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, v: int) -> int:
        if v % 8:
            raise ValueError(f"must be a multiple of 8 (got {v}; nearest: {round(v / 8) * 8})")
        return v

    @field_validator("seed")
    @classmethod
    def _random_is_none(cls, v: int | None) -> int | None:
        return None if v == -1 else v  # -1 and empty both mean "random": one spelling, one request hash

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


def prepare_diffusion(env: PrepareEnv, p: DiffusionParams) -> DiffusionParams:
    """Fix the random seed and the default model at submission, so the job row re-makes the same image."""
    updates: dict[str, Any] = {}
    if p.seed is None:
        updates["seed"] = secrets.randbelow(MAX_SEED)
    if p.model is None:
        updates["model"] = env.catalog.default_checkpoint(field="params.model").name
    else:
        env.catalog.get(p.model, field="params.model")
    return p.model_copy(update=updates)


def run_diffusion(
    ctx: RunContext,
    p: DiffusionParams,
    *,
    mode: str,
    init_image: Any = None,
    strength: float | None = None,
    parent_id: str | None = None,
) -> ImagesResult:
    from zhike.backends import diffusion

    assert p.model is not None and p.seed is not None
    t0 = time.perf_counter()
    ctx.progress(0, 1)
    with ctx.models.use_pipeline(p.model) as loaded:
        t_loaded = time.perf_counter()
        gen = diffusion.generate(
            loaded,
            mode=mode,
            prompt=p.prompt,
            negative_prompt=p.negative_prompt,
            width=p.width,
            height=p.height,
            steps=p.steps,
            guidance=p.guidance,
            seed=p.seed,
            scheduler=p.scheduler,
            batch_size=p.batch_size,
            init_image=init_image,
            strength=strength,
            on_step=lambda i, n, preview: ctx.progress(i, n, preview),
        )
        spec = loaded.spec
    t_run = time.perf_counter()
    params = p.model_dump(mode="json", exclude={"seed"})
    images = []
    for img, seed in zip(gen.images, gen.seeds, strict=True):
        aid = ctx.save_image(
            img, params=params, seed=seed, model=spec.name, model_hash=spec.short_hash, parent_id=parent_id
        )
        images.append(ImageOut(asset_id=aid, seed=seed, width=img.width, height=img.height))
    t_end = time.perf_counter()
    return ImagesResult(
        images=images,
        model=spec.name,
        warnings=gen.warnings,
        timings={
            "load": round(t_loaded - t0, 4),
            "generate": round(t_run - t_loaded, 4),
            "save": round(t_end - t_run, 4),
        },
    )
