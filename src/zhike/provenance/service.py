"""LabelService: every exported file gets its provenance labels here, one entry point per media kind.

Images (this module): visible mark -> invisible watermark (both change pixels, so they come first) -> TC260 XMP
(inserted into the container, no re-encode) -> C2PA manifest (signed last: it hashes the final bytes).

Audio and video: provenance/media.py (WAV, MP3, M4A, MP4, WebM: the AIGC tag + XMP, C2PA, the video's corner mark,
the optional audio notice). Another media kind plugs in the same way, through `MediaLabeler`: a class with `kind`,
`mimes`, `label()` and `verify()`, `register()`ed here. It gets the same `LabelContext` images get, so the pieces
stay shared: `ctx.tc260_fields` (the seven GB 45438 fields), `ctx.sign_c2pa(data, mime)` (call it last), the
config's explicit-label settings, and `Labelled.skipped` for anything it could not apply, with the reason.
`label()` (any mime) and `verify()` dispatch on the mime, so export paths and `zhike verify` need no change.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhike import __version__
from zhike.provenance.image import ImageLabeler
from zhike.provenance.labels import LabelConfig, LabelContext, LabelKeys, Labelled, MediaLabeler
from zhike.provenance.media import AudioVideoLabeler

if TYPE_CHECKING:
    from PIL.Image import Image

    from zhike.core.rows import AssetRow
    from zhike.provenance.c2pa_manifest import C2paSigner, Ingredient
    from zhike.settings import Settings

log = logging.getLogger("zhike.provenance")

EXT = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "text/markdown": "md",
    "text/plain": "txt",
    "application/json": "json",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "image/gif": "gif",
    "application/x-subrip": "srt",
    "text/vtt": "vtt",
    "text/x-ass": "ass",
}
__all__ = ["EXT", "LabelConfig", "LabelContext", "LabelKeys", "LabelService", "Labelled", "MediaLabeler"]


class LabelService:
    """Build once per process (cheap; certificates are loaded or generated on the first signature).

    `secret`: the deployment secret (Zhike.secret) keys the TC260 ReservedCode integrity codes; `read_bytes`
    (AssetService.read_bytes) lets edits take their input image as a C2PA ingredient.
    """

    def __init__(
        self,
        config: LabelConfig,
        *,
        labels_dir: Path,
        secret: bytes | None = None,
        read_bytes: Callable[[AssetRow], bytes] | None = None,
    ) -> None:
        self.config = config
        self.labels_dir = labels_dir
        self.secret = secret
        self.read_bytes = read_bytes
        self._signer: C2paSigner | None = None
        self._signer_lock = threading.Lock()
        self.labelers: list[MediaLabeler] = []
        self.register(ImageLabeler())
        # Audio and video (provenance/media.py); the TTS voices set `media.spoken_notice` to speak the audio notice.
        self.media = AudioVideoLabeler()
        self.register(self.media)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        secret: bytes | None = None,
        read_bytes: Callable[[AssetRow], bytes] | None = None,
    ) -> LabelService:
        return cls(
            LabelConfig.from_settings(settings), labels_dir=settings.labels_dir, secret=secret, read_bytes=read_bytes
        )

    def register(self, labeler: MediaLabeler) -> None:
        self.labelers.insert(0, labeler)  # later registrations win (a better image labeler, tests)

    def labeler_for(self, mime: str) -> MediaLabeler | None:
        return next((lb for lb in self.labelers if mime in lb.mimes), None)

    # -- entry points ----------------------------------------------------------------------------------
    def label_image(
        self, data: bytes, mime: str, asset: AssetRow, parent: AssetRow | None = None, *, pixels: Image | None = None
    ) -> bytes:
        """The export bytes of a stored image: labelled if it is generated and any label is on, else `data`.
        `pixels`: the decoded picture, when the caller holds it (saves decoding `data` again)."""
        return self.label(data, mime, asset, parent, pixels=pixels).data

    def label(
        self,
        data: bytes | None,
        mime: str,
        asset: AssetRow,
        parent: AssetRow | None = None,
        *,
        pixels: Image | None = None,
        encode: Callable[[Image], bytes] | None = None,
    ) -> Labelled:
        """Label a file for export (any media kind with a registered labeler); reports what was skipped.

        `data` None, with `pixels` and `encode`: the file is made here, encoded once after the pixel labels."""
        if data is None and (pixels is None or encode is None):
            raise ValueError("label() needs data, or pixels and encode")

        def unlabelled(why: str) -> Labelled:
            return Labelled(data if data is not None else encode(pixels), mime, skipped={"all": why})  # type: ignore[misc]

        if not self.config.any:
            return unlabelled("labels are turned off in this deployment's settings")
        if asset.origin == "upload":
            # An upload is the user's own file, not AI output: labelling it "AI生成" would be false.
            return unlabelled("uploaded file, not AI-generated / 用户上传，非AI生成")
        labeler = self.labeler_for(mime)
        if labeler is None:
            return unlabelled(f"no labeler for {mime}")
        ctx = LabelContext(
            asset=asset,
            parent=parent,
            config=self.config,
            tc260_fields=self.tc260_fields(asset),
            parent_ingredient=lambda: self._parent_ingredient(parent),
            sign=self._sign,
            pixels=pixels,
            encode=encode,
        )
        out = labeler.label(data, mime, ctx)
        for name, why in out.skipped.items():
            log.info("asset %s: %s label skipped: %s", asset.id, name, why)
        return out

    def label_text(self, text: str, asset: AssetRow, fmt: str, *, notice: str | None = None) -> Labelled:
        """A text asset exported as `fmt` (md, txt, docx, pdf: provenance/text.py): the explicit notice where
        `notice` (start | end | none; default the config's `text_notice`) puts it, the TC260 fields in the format's
        metadata when the implicit label is on. The same fields and content id (the asset id) as its images."""
        from zhike.provenance.text import TEXT_FORMATS, TextLabel, notice_lang
        from zhike.provenance.text_export import export

        placement = notice or self.config.text_notice
        implicit = self.config.implicit and asset.origin != "upload"
        label = TextLabel(
            fields=self.tc260_fields(asset) if implicit else {},
            notice=placement,  # type: ignore[arg-type]
            lang=notice_lang(text),
            title=asset.name or asset.id,
            producer=self.config.producer_name,
            generator=f"Zhike {__version__}",
            model=asset.model,
            created=asset.created_at,
        )
        out = Labelled(export(text, asset.mime, fmt, label), TEXT_FORMATS[fmt])
        if placement != "none":
            out.applied.append(f"notice-{placement}")
        if implicit:
            out.applied.append("implicit")
        else:
            out.skipped["implicit"] = "turned off in this deployment's settings"
        return out

    def verify(self, data: bytes, mime: str, lookup: Any = None) -> dict[str, Any]:
        """Each label's status, decoded fields and the asset it names (see verify.py for the report shape; text
        exports: text_verify.py, `mime` from its `sniff`)."""
        from zhike.provenance import text_verify

        if mime in text_verify.MIMES:
            return text_verify.verify_text(data, mime, self, lookup)
        labeler = self.labeler_for(mime)
        if labeler is None:
            return {"mime": mime, "error": f"no verifier for {mime}"}
        return labeler.verify(data, mime, self, lookup)

    # -- shared pieces ---------------------------------------------------------------------------------
    def reserved_code(self, role: str, code: str, content_id: str) -> str:
        """HMAC of who + which content: lets this deployment tell its own intact label from an edited one."""
        if not self.secret:
            return ""
        msg = f"zhike-tc260\x00{role}\x00{code}\x00{content_id}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()[:32]

    def tc260_fields(self, asset: AssetRow) -> dict[str, str]:
        aid = asset.id
        code = self.config.code
        return {
            "Label": "1",  # AI-generated (TC260-PG-20258A); 2/3 are for platforms that only suspect it
            "ContentProducer": code,
            "ProduceID": aid,
            "ReservedCode1": self.reserved_code("producer", code, aid),
            # Zhike also serves the file, so it is the propagator of this copy too.
            "ContentPropagator": code,
            "PropagateID": aid,
            "ReservedCode2": self.reserved_code("propagator", code, aid),
        }

    @property
    def signer(self) -> C2paSigner:
        with self._signer_lock:
            if self._signer is None:
                from zhike.provenance.c2pa_manifest import C2paSigner
                from zhike.provenance.certs import load_or_create

                creds = load_or_create(
                    self.labels_dir,
                    cert_path=self.config.cert_path,
                    key_path=self.config.key_path,
                    producer=self.config.producer_name,
                )
                self._signer = C2paSigner(creds)
            return self._signer

    @property
    def trust_pem(self) -> bytes | None:
        """This deployment's development CA, so its own manifests read as trusted (None with a user cert: their
        CA is public or installed system-wide). Reading never generates a certificate when signing is off."""
        if self.config.c2pa:
            return self.signer.creds.ca_pem
        ca = self.labels_dir / "c2pa-ca.pem"
        return ca.read_bytes() if ca.is_file() else None

    def _parent_ingredient(self, parent: AssetRow | None) -> Ingredient | None:
        """The input image as an ingredient; a generated parent is given its own manifest first (the chain)."""
        from zhike.provenance.c2pa_manifest import FORMATS, Ingredient

        if parent is None or self.read_bytes is None or parent.mime not in FORMATS:
            return None
        try:
            data = self.read_bytes(parent)
        except (OSError, KeyError) as e:
            log.warning("parent %s unreadable for the C2PA ingredient: %s", parent.id, e)
            return None
        if parent.origin != "upload":
            ctx = LabelContext(parent, None, self.config, {}, lambda: None, self._sign)
            data = self._sign(data, parent.mime, ctx, {})
        return Ingredient(data, parent.mime, f"{parent.id}.{EXT[parent.mime]}", parent.id)

    def _sign(self, data: bytes, mime: str, ctx: LabelContext, labels: dict[str, Any]) -> bytes:
        import c2pa

        from zhike.provenance.c2pa_manifest import build_manifest

        parent = ctx.parent_ingredient() if ctx.parent is not None else None
        title = f"{ctx.asset.id}.{EXT.get(mime, 'bin')}"

        def manifest(p: Ingredient | None) -> dict[str, Any]:
            return build_manifest(
                asset=ctx.asset,
                producer=self.config.producer_name,
                version=__version__,
                title=title,
                parent=p,
                labels=labels,
            )

        try:
            return self.signer.sign(data, mime, manifest(parent), parent)
        except c2pa.C2paError as e:
            if parent is None:
                raise
            # A parent c2pa cannot ingest (damaged manifest of a re-uploaded file) must not block the export:
            # sign without it; the generation record still names parent_id.
            log.warning("asset %s: parent %s not usable as a C2PA ingredient: %s", ctx.asset.id, parent.asset_id, e)
            return self.signer.sign(data, mime, manifest(None), None)
