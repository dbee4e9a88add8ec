"""Style presets as data: a prompt template, a negative prompt, parameter defaults and optional LoRAs.

Bundled presets ship in `zhike/presets/*.json`; users add their own as JSON files in `$ZHIKE_HOME/presets`
(`zhike presets add FILE`). A user file with a bundled preset's id replaces it.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from zhike.core.errors import InvalidInput

# Parameters a preset may set as defaults (the user's explicit values always win).
PRESETTABLE = {
    "steps",
    "guidance",
    "scheduler",
    "clip_skip",
    "width",
    "height",
    "strength",
    "hires_scale",
    "hires_strength",
    "hires_steps",
}


class PresetLora(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=200)
    weight: float = Field(1.0, ge=-4, le=4)


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: dict[str, str] = Field(..., description="Display names by language: zh, en")
    description: dict[str, str] = Field(default_factory=dict)
    prompt: str = Field("{prompt}", max_length=2000, description="Template; {prompt} is the user's prompt")
    negative_prompt: str = Field("", max_length=2000)
    params: dict[str, Any] = Field(default_factory=dict)
    loras: list[PresetLora] = Field(default_factory=list, max_length=8)
    builtin: bool = False

    @field_validator("prompt")
    @classmethod
    def _has_slot(cls, v: str) -> str:
        if "{prompt}" not in v:
            raise ValueError("the template must contain {prompt}")
        return v

    @field_validator("params")
    @classmethod
    def _known_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = set(v) - PRESETTABLE
        if unknown:
            raise ValueError(f"presets cannot set {sorted(unknown)}; allowed: {sorted(PRESETTABLE)}")
        return v

    def expand(self, prompt: str, negative: str) -> tuple[str, str]:
        neg = ", ".join(x for x in (self.negative_prompt.strip(), negative.strip()) if x)
        return self.prompt.replace("{prompt}", prompt), neg


def parse_preset(data: bytes | str, *, source: str) -> Preset:
    try:
        return Preset.model_validate(json.loads(data))
    except (ValueError, ValidationError) as e:
        raise InvalidInput(f"preset {source}: {e}", field="preset") from e


class PresetStore:
    def __init__(self, user_dir: Path) -> None:
        self.user_dir = user_dir

    def list(self) -> list[Preset]:
        found: dict[str, Preset] = {}
        for entry in sorted(resources.files("zhike.presets").iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".json"):
                found[entry.name[:-5]] = parse_preset(entry.read_text("utf-8"), source=entry.name).model_copy(
                    update={"builtin": True}
                )
        if self.user_dir.is_dir():
            for path in sorted(self.user_dir.glob("*.json")):
                preset = parse_preset(path.read_text("utf-8"), source=str(path))
                found[preset.id] = preset
        return sorted(found.values(), key=lambda p: (not p.builtin, p.id))

    def get(self, preset_id: str, *, field: str = "preset") -> Preset:
        for preset in self.list():
            if preset.id == preset_id:
                return preset
        known = ", ".join(p.id for p in self.list())
        raise InvalidInput(
            f"unknown preset {preset_id!r}; available: {known}",
            code="preset_unknown",
            field=field,
            ctx={"name": preset_id},
        )

    def add(self, path: Path) -> Preset:
        preset = parse_preset(path.read_bytes(), source=str(path))
        self.user_dir.mkdir(parents=True, exist_ok=True)
        (self.user_dir / f"{preset.id}.json").write_text(
            preset.model_dump_json(indent=2, exclude={"builtin"}), encoding="utf-8"
        )
        return preset

    def remove(self, preset_id: str) -> None:
        path = self.user_dir / f"{preset_id}.json"
        if not path.is_file():
            raise InvalidInput(
                f"{preset_id!r} is not a user preset (bundled presets cannot be removed)",
                code="preset_read_only",
                field="id",
            )
        path.unlink()
