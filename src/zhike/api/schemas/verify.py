"""POST /api/v1/verify: the provenance report of a file."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from zhike.api.schemas.common import LocalText, Open, Out

LabelStatus = Literal["valid", "trusted", "invalid", "absent", "not_checkable"]


class ImplicitLabel(Open):
    """TC260 XMP: `fields` as read, `meaning` of Label, `integrity` of our own HMAC codes."""

    status: LabelStatus
    fields: dict[str, Any] | None = None
    meaning: str | None = None
    problems: list[str] | None = None
    integrity: Literal["ok", "mismatch"] | None = None


class C2paLabel(Open):
    """The active C2PA manifest: actions, generation record, ingredients, signer, validation failures."""

    status: LabelStatus
    asset_id: str | None = None


class WatermarkLabel(Open):
    status: LabelStatus
    key: str | None = None
    bit_errors: int | None = None
    reason: str | None = None
    recorded_skip: str | None = None


class VerifiedAsset(Out):
    id: str
    op: str | None
    created_at: str | None


class AssetIdentity(Out):
    id: str | None = Field(description="The asset the labels name")
    in_deployment: bool | None = Field(description="Whether it is one of your assets here")
    found_by: list[str] = Field(description="Which labels name it: implicit, c2pa, watermark")
    consistent: bool = Field(description="False when the labels name different assets (tampering)")
    watermark_key: str | None = None
    asset: VerifiedAsset | None = None


class NoticeLabel(Open):
    """A text's explicit notice (本内容由人工智能生成 / AI-generated content): where it stands in the words."""

    status: LabelStatus
    where: Literal["start", "end", "middle"] | None = None
    text: str | None = None


class VerifyReport(Out):
    mime: str
    width: int | None = Field(None, description="Images and video: pixels")
    height: int | None = Field(None, description="Images and video: pixels")
    duration_s: float | None = Field(None, description="Audio and video: length in seconds")
    streams: list[str] | None = Field(None, description="Audio and video: the kinds of its streams (video, audio...)")
    implicit: ImplicitLabel
    c2pa: C2paLabel
    watermark: WatermarkLabel
    visible: dict[str, bool] = Field(description="{'recorded': true} when the C2PA record says a visible mark")
    notice: NoticeLabel | None = Field(
        None,
        description="Text exports (MD, TXT, DOCX, PDF): where the words carry it; audio: where the C2PA record says "
        "the spoken notice was put (not_checkable: the sound is not listened to)",
    )
    asset: AssetIdentity
    summary: LocalText
