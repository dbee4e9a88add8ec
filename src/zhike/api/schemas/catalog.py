"""Models (the catalogue), presets and sizes: what this deployment can use."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from zhike.api.schemas.common import LocalText, Out


class ModelPublic(Out):
    name: str
    format: str = Field(description="diffusers | single_file | onnx | ...")
    kind: str = Field(description="checkpoint | lora | controlnet | vae | upscaler | matting")
    family: str = Field(description="sd15 | sdxl | isnet | ... | unknown")
    variant: str = Field(description="base | inpaint")
    size_bytes: int
    embedded: bool = Field(description="Shipped with Zhike (cannot be removed)")
    source: str | None = Field(description="The hub repo id it came from; local paths only for admins")
    sha256: str | None
    short_hash: str | None = Field(description="A1111's model hash: the SHA-256's first 10 hex digits")
    loaded: bool = Field(description="In this server process's model cache now")


class ModelList(Out):
    models: list[ModelPublic]
    defaults: dict[str, str | None] = Field(
        default_factory=dict, description="Per kind: the model a request that names none uses (None: none installed)"
    )


class ModelRemoved(Out):
    name: str
    removed: bool


class Health(Out):
    status: Literal["ok"]
    version: str


class SizePreset(Out):
    id: str
    width: int
    height: int
    name: LocalText


class SizeList(Out):
    sizes: list[SizePreset]


class PresetLoraPublic(Out):
    name: str
    weight: float


class PresetPublic(Out):
    id: str
    name: dict[str, str] = Field(description="Display names by language: zh, en")
    description: dict[str, str]
    prompt: str = Field(description="Template; {prompt} is the user's prompt")
    negative_prompt: str
    params: dict[str, Any]
    loras: list[PresetLoraPublic]
    builtin: bool


class PresetList(Out):
    presets: list[PresetPublic]
