"""The rows that cross layers: what the services hand out for a job, an asset, a user, a session and an API key.

Frozen, slotted dataclasses mirroring the tables in services/db.py, with the types SQLAlchemy returns (naive UTC
datetimes, epoch floats where the table stores them, JSON columns as dicts and lists). Each is built from a database
row in one place, `from_row`, which takes every field by its column name: a new column is one new field here, and a
row without it fails loudly. They live in core because operations (PrepareEnv.assets) and the provenance labels read
asset rows; the API shapes its answers from them in api/schemas (`JobPublic.from_row`, ...).

Secrets stay in their service: UserRow has no password hash and KeyRow no key hash.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, Self

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL: tuple[JobState, ...] = ("succeeded", "failed", "cancelled")
Origin = Literal["generated", "upload"]
# Text assets (words ops' outputs): UTF-8 Markdown, or JSON for structured outputs.
TEXT_MIMES = ("text/markdown", "application/json")
# Media assets (voice, video, music ops' outputs and uploaded recordings; RunContext.save_media). Animated GIF and
# WebP are images (Pillow reads them, viewers show them); everything not listed here or above is an image.
AUDIO_MIMES = ("audio/wav", "audio/mpeg", "audio/mp4")
VIDEO_MIMES = ("video/mp4", "video/webm")
SUBTITLE_MIMES = ("application/x-subrip", "text/vtt", "text/x-ass")
MEDIA_MIMES = (*AUDIO_MIMES, *VIDEO_MIMES, *SUBTITLE_MIMES)
AssetKind = Literal["image", "text", "audio", "video", "subtitles"]


def kind_of(mime: str) -> AssetKind:
    """What an asset of this mime type is: text, audio, video, subtitles, else image."""
    if mime in TEXT_MIMES:
        return "text"
    if mime in AUDIO_MIMES:
        return "audio"
    if mime in VIDEO_MIMES:
        return "video"
    return "subtitles" if mime in SUBTITLE_MIMES else "image"


Role = Literal["admin", "user"]


def new_asset_id() -> str:
    """16 URL-safe characters; made before an output is stored, so its watermark and labels can name it."""
    return secrets.token_urlsafe(12).replace("-", "a").replace("_", "b")


class _Row:
    """`from_row`: the dataclass from a mapping with (at least) one key per field, e.g. a SQLAlchemy RowMapping."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**{f.name: row[f.name] for f in fields(cls)})  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        """The column values, for an INSERT or a JSON record (shallow: JSON columns are not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class JobRow(_Row):
    id: str
    owner_id: str
    op: str
    op_version: int
    params: dict[str, Any]
    state: JobState
    idempotency_key: str | None
    request_hash: str | None  # SHA-256 of the request as sent
    progress: float
    step: int
    total_steps: int
    message: str | None
    preview: bytes | None  # small JPEG of the current latents
    preview_step: int | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None  # ZhikeError.to_dict()
    cancel_requested: bool
    attempts: int
    lease_owner: str | None
    lease_expires_at: float | None  # epoch seconds
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: float  # epoch seconds
    watched_until: float | None  # epoch seconds: someone follows the job (SSE, preview polls) until then
    timings: dict[str, float] | None  # seconds per stage (queue, load, denoise, decode, save, label, commit...)
    lane: str  # gpu | cpu | quick: the workers that may run it (core/registry.py Lane)
    partial_text: str | None  # the words a running words op has written so far (cleared when it succeeds)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True, slots=True)
class AssetRow(_Row):
    id: str
    owner_id: str
    sha256: str
    mime: str
    width: int | None
    height: int | None
    size_bytes: int
    origin: Origin
    op: str | None
    params: dict[str, Any] | None
    model: str | None
    seed: int | None
    zhike_version: str | None
    parent_id: str | None
    job_id: str | None
    tags: list[str]
    created_at: datetime
    # What the user calls it: an upload's file name without its extension ("咖啡杯"); an output inherits its
    # source's. Downloads and ZIPs are named from it.
    name: str | None

    @property
    def is_text(self) -> bool:
        return self.mime in TEXT_MIMES

    @property
    def kind(self) -> AssetKind:
        return kind_of(self.mime)

    @property
    def is_image(self) -> bool:
        return self.kind == "image"


@dataclass(frozen=True, slots=True)
class UserRow(_Row):
    id: str
    username: str
    role: Role
    created_at: datetime
    disabled: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class SessionRow(_Row):
    id: str  # SHA-256 of the session token
    user_id: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class KeyRow(_Row):
    id: str
    name: str
    prefix: str
    owner_id: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class Blobs(Protocol):
    """Where an output's bytes are stored (services/assets/blobs.py BlobStore)."""

    def put(self, data: bytes, mime: str) -> tuple[str, Path]: ...


@dataclass
class StagedAsset:
    """An output whose bytes are stored but whose row is written only when its job completes (exactly once)."""

    row: AssetRow
    extra: dict[str, Any] = field(default_factory=dict)
    # Kept until the row is written: a delete of another asset with the same bytes may remove the shared file
    # while the job runs, and the commit puts it back (see AssetService.delete).
    data: bytes | None = None
    blobs: Blobs | None = None
