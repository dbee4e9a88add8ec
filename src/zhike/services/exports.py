"""What leaves Zhike: every file download, API file/b64 response and CLI output goes through `ExportService`, which
adds the provenance labels (zhike.provenance) to generated images and serves thumbnails.

Labelling costs about half a PNG save (1 MP: decode, watermark, write, sign: bench/labels.py) and a C2PA signature
differs on every call, so each export is made once per (asset, label settings) and kept under
`$ZHIKE_HOME/exports/`: repeated views are free and the ETag stays stable. Changing the label settings changes the
key, so old exports are simply not used again. New outputs get theirs made by the worker (`prepare`) while the
pixels are still in memory, on its output pool, so the first view does not wait for the labels.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from zhike.core.errors import InvalidInput, NotFound
from zhike.core.files import write_atomic
from zhike.core.rows import AssetRow
from zhike.imaging.text_card import CARD_VERSION, text_card
from zhike.provenance.service import EXT, LabelService
from zhike.provenance.text import TEXT_FORMATS
from zhike.services.assets.service import AssetService

THUMB_SIZES = (128, 256, 512)
# Download formats (GET .../file?format=) and how a download fits a size (?fit=): `contain` (default) keeps the
# whole image, centred, padded white for JPEG and transparent for PNG/WebP (a product is never cut); `cover` fills
# the size and crops the overflow, centred.
FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
FITS = ("contain", "cover")
EXPORT_VERSION = "2"  # bump when the labelled output of the same settings changes (2: grid-QIM watermark)


@dataclass(frozen=True)
class Export:
    data: bytes
    mime: str
    etag: str  # quoted, for the ETag header

    @property
    def ext(self) -> str:
        return EXT.get(self.mime, "bin")


class ExportService:
    def __init__(self, assets: AssetService, labels: LabelService, cache_dir: Path) -> None:
        self.assets = assets
        self.labels = labels
        self.cache_dir = cache_dir
        self._fingerprint = hashlib.sha256(
            json.dumps({"v": EXPORT_VERSION, **asdict(labels.config)}, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]

    def file(self, row: AssetRow) -> Export:
        """The asset's file as it leaves Zhike: labelled when it is generated (uploads are returned as stored); a
        text asset as Markdown with its notice and front matter; audio and video with their metadata label, C2PA
        manifest and the video's corner mark (provenance/media.py)."""
        if row.is_text:
            return self.text(row, "md")
        if not self._labelled(row):
            return Export(self.assets.read_bytes(row), row.mime, f'"{row.sha256}"')
        return self._cached(row, "file", row.mime, lambda: self.assets.read_bytes(row))

    def files(self, rows: Iterable[AssetRow], *, threads: int = 0) -> Iterator[Export]:
        """`file()` of each row, in order, with up to `threads` labelled in parallel (a batch's ZIP: exports made
        before the labels changed, or by an older Zhike, are labelled again here, not one after the other)."""
        threads = threads or max(2, min(4, os.cpu_count() or 2))
        with ThreadPoolExecutor(threads, thread_name_prefix="export") as pool:
            ahead: deque[Future[Export]] = deque()
            for row in rows:
                ahead.append(pool.submit(self.file, row))
                if len(ahead) > 2 * threads:  # bounded: a ZIP of thousands must not hold them all in memory
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()

    def prepare(self, row: AssetRow, data: bytes | None, pixels: Image.Image) -> None:
        """Make and keep the labelled file export of a new output from its pixels (no decode). `data`: its stored
        bytes (their metadata is kept); None reads them from the store."""
        if not self._labelled(row):
            return
        path = self._path(self._key(row, "file"), row.mime)
        if path.exists():
            return
        stored = data if data is not None else self.assets.read_bytes(row)
        write_atomic(path, self.labels.label_image(stored, row.mime, row, self._parent(row), pixels=pixels))

    def variant(self, row: AssetRow, mime: str, size: tuple[int, int] | None, fit: str = "contain") -> Export:
        """The asset converted to `mime` and fitted to `size` (None: its own), labelled like the file and kept per
        variant. The same format at its own size is the file itself."""
        if (size is None or size == (row.width, row.height)) and mime == row.mime:
            return self.file(row)

        def pixels() -> Image.Image:
            img = self.assets.shown(row).convert("RGBA")
            if size is not None and size != img.size:
                if fit == "cover":
                    img = ImageOps.fit(img, size, Image.Resampling.LANCZOS)
                else:
                    img = ImageOps.pad(img, size, Image.Resampling.LANCZOS, color=(0, 0, 0, 0))
            if mime == "image/jpeg":  # no alpha in JPEG: transparency (a cutout's, the padding) becomes white
                white = Image.new("RGB", img.size, (255, 255, 255))
                white.paste(img, mask=img.getchannel("A"))
                return white
            return img if img.getchannel("A").getextrema()[0] < 255 else img.convert("RGB")

        def encode(img: Image.Image) -> bytes:
            out = io.BytesIO()
            if mime == "image/jpeg":
                img.save(out, "JPEG", quality=92, optimize=True)
            elif mime == "image/webp":
                img.save(out, "WEBP", quality=90, method=4)
            else:
                img.save(out, "PNG", optimize=False, compress_level=6)
            return out.getvalue()

        w, h = size or (row.width, row.height)
        name = f"{EXT.get(mime, 'bin')}-{w}x{h}-{fit}"
        if not self._labelled(row):
            key = hashlib.sha256(f"{row.sha256}:{name}".encode()).hexdigest()[:32]
            return self._from_cache(key, mime, lambda: encode(pixels()))
        # Labelled from the pixels and encoded once, after the watermark (like thumbnails).
        return self._from_cache(
            self._key(row, name),
            mime,
            lambda: self.labels.label(None, mime, row, self._parent(row), pixels=pixels(), encode=encode).data,
        )

    def text(self, row: AssetRow, fmt: str, notice: str | None = None) -> Export:
        """A text asset as md, txt, docx or pdf with its labels (the notice where `notice` says, default the label
        settings'; the implicit label in the format's metadata), made once per (asset, format, notice, labels)."""
        placement = notice or self.labels.config.text_notice
        mime = TEXT_FORMATS[fmt]
        return self._from_cache(
            self._key(row, f"text-{fmt}-{placement}"),
            mime,
            lambda: self.labels.label_text(self.assets.read_text(row), row, fmt, notice=placement).data,
        )

    def thumbnail(self, row: AssetRow, size: int) -> Export:
        """A WebP no larger than size x size (labelled like the file: it is a copy of the asset too); a text asset's
        is a card with its first lines (so grids show words too)."""
        if size not in THUMB_SIZES:
            choices = ", ".join(map(str, THUMB_SIZES))
            raise InvalidInput(
                f"size must be one of {choices}", code="choice_invalid", field="size", ctx={"choices": choices}
            )
        if row.is_text:  # a picture of AI words: labelled like an image thumbnail (XMP, watermark, C2PA)
            return self._from_cache(
                self._key(row, f"card{size}-{CARD_VERSION}"),
                "image/webp",
                lambda: (
                    self.labels.label(None, "image/webp", row, None, pixels=self._card(row, size), encode=_webp).data
                ),
            )

        def pixels() -> Image.Image:
            img = self.assets.shown(row, fit=size) if row.is_image else self._media_picture(row, size)
            img.thumbnail((size, size), Image.Resampling.LANCZOS)
            return img if img.mode in ("RGB", "RGBA") else img.convert("RGBA" if "A" in img.getbands() else "RGB")

        def webp(img: Image.Image) -> bytes:
            out = io.BytesIO()
            img.save(out, "WEBP", quality=82, method=4)
            return out.getvalue()

        if not self._labelled(row):
            key = hashlib.sha256(f"{row.sha256}:thumb{size}".encode()).hexdigest()[:32]
            return self._from_cache(key, "image/webp", lambda: webp(pixels()))
        # Labelled from the pixels and encoded once, after the watermark (not encoded, decoded and encoded again).
        return self._from_cache(
            self._key(row, f"thumb{size}"),
            "image/webp",
            lambda: self.labels.label(None, "image/webp", row, self._parent(row), pixels=pixels(), encode=webp).data,
        )

    def _media_picture(self, row: AssetRow, size: int) -> Image.Image:
        """A video's frame at 1 s, an audio file's waveform, or a card with a subtitle file's first lines."""
        from zhike.media.poster import poster_frame, waveform

        path = self.assets.blobs.path_for(row.sha256, row.mime)
        if row.kind == "video":
            return poster_frame(path, at_s=1.0, max_side=size)
        if row.kind == "audio":
            return waveform(path, size=size)
        lines = [ln.strip() for ln in self.assets.read_text(row).splitlines()]
        if row.mime == "text/x-ass":  # Dialogue: layer,start,end,style,name,marginL,marginR,marginV,effect,text
            cues = [re.sub(r"\{[^}]*\}", "", ln.split(",", 9)[-1]) for ln in lines if ln.startswith("Dialogue:")]
        else:
            cues = [ln for ln in lines if ln and "-->" not in ln and not ln.isdigit() and ln != "WEBVTT"]
        return text_card("\n".join(c.replace("\\N", " ") for c in cues[:12]), size)

    def _card(self, row: AssetRow, size: int) -> Image.Image:
        from zhike.provenance.text import body_of, plain

        return text_card(plain(body_of(self.assets.read_text(row), row.mime)), size)

    def _labelled(self, row: AssetRow) -> bool:
        return self.labels.config.any and row.origin != "upload"

    def _key(self, row: AssetRow, variant: str) -> str:
        return hashlib.sha256(f"{row.id}:{row.sha256}:{variant}:{self._fingerprint}".encode()).hexdigest()[:32]

    def _path(self, key: str, mime: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.{EXT.get(mime, 'bin')}"

    def _parent(self, row: AssetRow) -> AssetRow | None:
        if not row.parent_id:
            return None
        try:
            return self.assets.get(row.parent_id, owner_id=None)
        except NotFound:  # deleted meanwhile: label without the ingredient
            return None

    def _cached(self, row: AssetRow, variant: str, mime: str, source: Any) -> Export:
        return self._from_cache(
            self._key(row, variant), mime, lambda: self.labels.label_image(source(), mime, row, self._parent(row))
        )

    def _from_cache(self, key: str, mime: str, make: Any) -> Export:
        path = self._path(key, mime)
        try:
            return Export(path.read_bytes(), mime, f'"{key}"')
        except FileNotFoundError:
            pass
        data = make()
        write_atomic(path, data)  # two requests racing both write a valid file; the last one stays
        return Export(data, mime, f'"{key}"')


def _webp(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "WEBP", quality=85, method=4)
    return out.getvalue()
