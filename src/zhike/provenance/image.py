"""Image labels (PNG, JPEG, WebP): the MediaLabeler the LabelService uses for images."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, PngImagePlugin

from zhike.provenance import visible, watermark, xmp
from zhike.provenance.labels import LabelContext, LabelKeys, Labelled
from zhike.provenance.verify import verify_image


def _reencode(img: Image.Image, original: Image.Image, original_data: bytes, mime: str) -> bytes:
    """Save changed pixels in the original format, keeping its text chunks, DPI, ICC profile and EXIF."""
    buf = io.BytesIO()
    keep: dict[str, Any] = {}
    for key in ("icc_profile", "exif", "dpi"):
        if original.info.get(key):
            keep[key] = original.info[key]
    if mime == "image/png":
        info = PngImagePlugin.PngInfo()
        for k, v in (getattr(original, "text", None) or {}).items():
            if k != "XML:com.adobe.xmp":  # ours replaces it
                info.add_text(k, v)
        img.save(buf, format="PNG", pnginfo=info, compress_level=4, **keep)
    elif mime == "image/jpeg":
        img.convert("RGB").save(buf, format="JPEG", quality=95, **keep)
    else:
        lossless = b"VP8L" in original_data[12:64]  # keep a lossless WebP lossless
        img.save(buf, format="WEBP", lossless=lossless, quality=95 if not lossless else 100, **keep)
    return buf.getvalue()


class ImageLabeler:
    kind = "image"
    mimes = frozenset({"image/png", "image/jpeg", "image/webp"})

    def label(self, data: bytes, mime: str, ctx: LabelContext) -> Labelled:
        cfg, aid = ctx.config, ctx.asset.id
        out = Labelled(data, mime)
        original = img = None
        if cfg.visible or cfg.watermark:
            original = Image.open(io.BytesIO(data))
            original.load()
            img = original
        # 1. Pixels: the explicit mark first, so the watermark also covers it.
        if cfg.visible and img is not None:
            img = visible.apply(img, cfg.visible_text, position=cfg.visible_position, fraction=cfg.visible_size)
            out.applied.append("visible")
        if cfg.watermark and img is not None:
            reason = watermark.too_small(*img.size)
            if reason:
                out.skipped["watermark"] = reason
            else:
                img = watermark.embed(img, aid)
                out.applied.append("watermark")
        if img is not None and img is not original and original is not None:
            data = _reencode(img, original, data, mime)
        # 2. Implicit label into the container (no re-encode).
        if cfg.implicit:
            packet = xmp.build_packet(ctx.tc260_fields)
            if mime == "image/png":
                data = xmp.insert_png(data, packet)
            elif mime == "image/jpeg":
                data = xmp.insert_jpeg(data, packet)
            else:
                head = img or Image.open(io.BytesIO(data))
                alpha = head.mode in ("RGBA", "LA") or "transparency" in head.info
                data = xmp.insert_webp(data, packet, width=head.width, height=head.height, has_alpha=alpha)
            out.applied.append("implicit")
        # 3. C2PA last: it hashes the final bytes.
        if cfg.c2pa:
            record = {"applied": [*out.applied, "c2pa"], "skipped": out.skipped}
            data = ctx.sign_c2pa(data, mime, labels=record)
            out.applied.append("c2pa")
        out.data = data
        return out

    def verify(self, data: bytes, mime: str, keys: LabelKeys, lookup: Any) -> dict[str, Any]:
        return verify_image(data, mime, keys, lookup)
