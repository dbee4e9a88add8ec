"""Pydantic types shared by operations, the API and the CLI."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

# Input images and masks are passed to operations as asset ids (upload first: POST /api/v1/assets).
# Fields Zhike fills itself are marked with core.ui.ui(..., read_only=True) (JSON Schema's readOnly).

# `format: asset-id` tells form builders (the web studio's pro mode) to offer an image picker.
AssetId = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9_-]{6,32}$", description="An asset id", json_schema_extra={"format": "asset-id"})
]
# Asset ids that are no image (the submission's image check skips them; the op checks the kind): an audio or video
# asset (`media-asset-id`: the studio offers recordings and videos) and a text asset (`text-asset-id`: a script).
MediaAssetId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_-]{6,32}$",
        description="An audio or video asset id",
        json_schema_extra={"format": "media-asset-id"},
    ),
]
TextAssetId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_-]{6,32}$", description="A text asset id", json_schema_extra={"format": "text-asset-id"}
    ),
]


class ImageOut(BaseModel):
    asset_id: str
    seed: int | None = None
    width: int
    height: int


class Note(BaseModel):
    """A warning any language can say: a stable `code` (the studio's words for it are in web/errors.js WARNINGS),
    the values its sentence names (`ctx`) and the English text for API and CLI users."""

    code: str
    message: str
    ctx: dict[str, Any] = Field(default_factory=dict)


def note(code: str, message: str, **ctx: Any) -> Note:
    """A coded warning: note("cutout_empty", "no subject was found: ...", n=2)."""
    return Note(code=code, message=message, ctx=ctx)


class ImagesResult(BaseModel):
    images: list[ImageOut]
    model: str | None = None
    warnings: list[str] = Field(default_factory=list, description="Things the user should know, e.g. a cut prompt")
    notes: list[Note] = Field(
        default_factory=list, description="The warnings that have a code, with their values, for translated display"
    )
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds spent per phase")

    def warn(self, note: Note) -> None:
        """Add a coded warning: its English text to `warnings`, the note to `notes`."""
        self.warnings.append(note.message)
        self.notes.append(note)


class TextResult(BaseModel):
    """What a words operation returns: the text asset it stored and the words themselves."""

    asset_id: str = Field(description="The stored text asset (GET /api/v1/assets/{id}/file?format=md|txt|docx|pdf)")
    text: str = Field(description="The whole output, Markdown")
    data: dict[str, Any] = Field(
        default_factory=dict, description="The op's structured fields (title, points, sections, segments...)"
    )
    llm: str | None = Field(None, description="The language model that wrote it")
    warnings: list[str] = Field(default_factory=list, description="Things the user should know")
    notes: list[Note] = Field(
        default_factory=list, description="The warnings that have a code, with their values, for translated display"
    )
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds spent per phase")

    def warn(self, note: Note) -> None:
        """Add a coded warning: its English text to `warnings`, the note to `notes`."""
        self.warnings.append(note.message)
        self.notes.append(note)


MediaKind = Literal["audio", "video", "subtitles", "image"]


class MediaResult(BaseModel):
    """What a voice, video or music operation returns: the media asset it stored (GET /api/v1/assets/{id}/file gives
    the labelled file) and the files stored beside it (the SRT of a video, the voice-over track...)."""

    asset_id: str = Field(description="The stored audio/video/subtitle asset")
    kind: MediaKind = Field(description="audio, video, subtitles, or image (an animated GIF/WebP)")
    duration_s: float | None = Field(None, description="Length in seconds (None for subtitles without cues)")
    data: dict[str, Any] = Field(
        default_factory=dict, description="The op's structured fields (voice, scenes, cues, width, height, fps...)"
    )
    extra_asset_ids: list[str] = Field(
        default_factory=list, description="Other assets the op stored with it (the SRT beside a video, the voice track)"
    )
    model: str | None = Field(None, description="The model or voice that made it")
    warnings: list[str] = Field(default_factory=list, description="Things the user should know")
    notes: list[Note] = Field(
        default_factory=list, description="The warnings that have a code, with their values, for translated display"
    )
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds spent per phase")

    def warn(self, note: Note) -> None:
        """Add a coded warning: its English text to `warnings`, the note to `notes`."""
        self.warnings.append(note.message)
        self.notes.append(note)
