"""The limits a knowledge-base document is read within, and the errors that name them (field "file").

Documents come from anyone: a 10 KB PDF can inflate to gigabytes, a DOCX is a ZIP of XML that can declare entities
expanding without end, and a binary file can be named .txt. Every reader spends against one `Budget` (time, inflated
bytes, characters) and stops with a clear 4xx the studio can word (`ctx.name` is the file's name)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zhike.core.errors import InvalidInput, TooLarge, ZhikeError

if TYPE_CHECKING:
    from zhike.settings import Settings

FIELD = "file"
MB = 1_000_000


@dataclass(frozen=True)
class DocumentLimits:
    max_bytes: int = 20 * MB  # the file as uploaded
    max_pages: int = 500  # PDF pages
    max_chars: int = 2_000_000  # text the document yields
    max_inflated: int = 200 * MB  # bytes a PDF's streams / a DOCX's parts inflate to
    max_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DocumentLimits:
        return cls(
            max_bytes=int(settings.kb_max_document_mb * MB),
            max_pages=settings.kb_max_pages,
            max_chars=settings.kb_max_chars,
            max_inflated=int(settings.kb_max_inflated_mb * MB),
            max_seconds=settings.kb_max_parse_seconds,
        )


class Budget:
    """One document's reading: its name (for messages), limits, deadline and the characters read so far."""

    def __init__(self, name: str, limits: DocumentLimits) -> None:
        self.name, self.limits = name, limits
        self.deadline = time.monotonic() + limits.max_seconds
        self.chars = 0

    def refuse(
        self, code: str, message: str, *, ctx: dict[str, Any] | None = None, limit: int | None = None
    ) -> ZhikeError:
        """The error for `code` (document_*): 413 for too large, else 422; ctx carries the file's name."""
        cls = TooLarge if code == "document_too_large" else InvalidInput
        return cls(
            f"{self.name}: {message}", code=code, field=FIELD, limit=limit, ctx={"name": self.name, **(ctx or {})}
        )

    def too_large(self, what: str, limit: int, message: str) -> ZhikeError:
        return self.refuse("document_too_large", f"{message} (the limit is {limit:,})", ctx={"what": what}, limit=limit)

    def bomb(self, what: str, message: str) -> ZhikeError:
        return self.refuse("document_bomb", message, ctx={"what": what})

    def tick(self) -> None:
        """Called between pages / parts: a document that takes too long is refused as a bomb."""
        if time.monotonic() > self.deadline:
            raise self.bomb("seconds", f"reading takes over {self.limits.max_seconds:g} s")

    def add_text(self, text: str) -> str:
        self.chars += len(text)
        if self.chars > self.limits.max_chars:
            raise self.too_large("chars", self.limits.max_chars, "the document holds more characters")
        return text
