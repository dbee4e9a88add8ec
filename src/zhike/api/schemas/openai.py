"""POST /v1/images/generations in OpenAI's shape (the `openai` client reads it)."""

from __future__ import annotations

from pydantic import Field

from zhike.api.schemas.common import Out


class ImageData(Out):
    url: str | None = Field(None, description="A signed URL of the image (response_format=url)")
    b64_json: str | None = Field(None, description="The image as base64 (response_format=b64_json)")
    revised_prompt: str | None


class ImagesResponse(Out):
    created: int = Field(description="Unix time")
    data: list[ImageData]
