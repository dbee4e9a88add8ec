"""The shapes every media labeler shares: the deployment's label settings, one export's context, the result.

`LabelService` (service.py) builds them; labelers (image.py; audio and video later) only read them, so no labeler
imports the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from PIL import Image

    from zhike.core.rows import AssetRow
    from zhike.provenance.c2pa_manifest import Ingredient
    from zhike.provenance.visible import Position
    from zhike.settings import Settings


@dataclass(frozen=True)
class LabelConfig:
    producer_name: str = "Zhike"
    producer_code: str = ""
    implicit: bool = True
    c2pa: bool = True
    watermark: bool = True
    visible: bool = False
    visible_text: str = "AI生成"
    visible_position: Position = "bottom-right"
    visible_size: float = 0.05
    cert_path: Path | None = None
    key_path: Path | None = None
    text_notice: str = "end"  # start | end | none: the explicit notice of text exports (provenance/text.py)
    video_mark: bool = True  # the visible mark on exported video (provenance/media.py)
    audio_notice: str = "none"  # start | end | none: the explicit notice on exported audio (provenance/media.py)

    @classmethod
    def from_settings(cls, s: Settings) -> LabelConfig:
        return cls(
            producer_name=s.label_producer_name,
            producer_code=s.label_producer_code,
            implicit=s.label_implicit,
            c2pa=s.label_c2pa,
            watermark=s.label_watermark,
            visible=s.label_visible,
            visible_text=s.label_visible_text,
            visible_position=s.label_visible_position,
            visible_size=s.label_visible_size,
            cert_path=s.label_cert_path,
            key_path=s.label_key_path,
            text_notice=s.label_text_notice,
            video_mark=s.label_video_mark,
            audio_notice=s.label_audio_notice,
        )

    @property
    def any(self) -> bool:
        return self.implicit or self.c2pa or self.watermark or self.visible

    @property
    def code(self) -> str:
        return self.producer_code or self.producer_name


@dataclass
class Labelled:
    data: bytes
    mime: str
    applied: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # label -> why it was not applied


@dataclass
class LabelContext:
    """What a MediaLabeler needs for one export (built by LabelService)."""

    asset: AssetRow
    parent: AssetRow | None
    config: LabelConfig
    tc260_fields: dict[str, str]
    parent_ingredient: Callable[[], Ingredient | None]
    sign: Callable[[bytes, str, LabelContext, dict[str, Any]], bytes]  # the LabelService's C2PA signer
    # The picture the caller already holds decoded (saves a decode), and how to write it when the file is made from
    # the pixels here (a thumbnail: encoded once, after the pixel labels). Both optional.
    pixels: Image.Image | None = None
    encode: Callable[[Image.Image], bytes] | None = None

    def sign_c2pa(self, data: bytes, mime: str, *, labels: dict[str, Any] | None = None) -> bytes:
        return self.sign(data, mime, self, labels or {})


class LabelKeys(Protocol):
    """What reading labels back needs from the LabelService: this deployment's config, secret and CA."""

    config: LabelConfig
    secret: bytes | None

    def reserved_code(self, role: str, code: str, content_id: str) -> str: ...

    @property
    def trust_pem(self) -> bytes | None: ...


class MediaLabeler(Protocol):
    kind: str  # "image", "audio", "video"
    mimes: frozenset[str]

    def label(self, data: bytes | None, mime: str, ctx: LabelContext) -> Labelled: ...

    def verify(self, data: bytes, mime: str, keys: LabelKeys, lookup: Any) -> dict[str, Any]: ...
