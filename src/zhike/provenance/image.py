"""Image labels (PNG, JPEG, WebP): the MediaLabeler the LabelService uses for images."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from zhike.core import png
from zhike.provenance import visible, watermark, xmp
from zhike.provenance.labels import LabelContext, LabelKeys, Labelled
from zhike.provenance.verify import verify_image


def _reencode(img: Image.Image, original_data: bytes, mime: str) -> bytes:
    """Changed pixels in the original's format, keeping its metadata: a PNG keeps every chunk (text, ICC, DPI,
    EXIF) and is written by the fast PNG writer; JPEG and WebP keep their ICC profile, EXIF and DPI."""
    if mime == "image/png" and img.mode in png.COLOUR_TYPE:
        return png.with_pixels(original_data, img)
    original = Image.open(io.BytesIO(original_data))  # reads the header and metadata, not the pixels
    keep: dict[str, Any] = {k: original.info[k] for k in ("icc_profile", "exif", "dpi") if original.info.get(k)}
    buf = io.BytesIO()
    if mime == "image/png":  # a mode the fast writer does not take
        text = {k: v for k, v in (getattr(original, "text", None) or {}).items() if k != "XML:com.adobe.xmp"}
        return png.encode(img, text=text, **keep)
    if mime == "image/jpeg":
        img.convert("RGB").save(buf, format="JPEG", quality=95, **keep)
    else:
        lossless = b"VP8L" in original_data[12:64]  # keep a lossless WebP lossless
        img.save(buf, format="WEBP", lossless=lossless, quality=95 if not lossless else 100, **keep)
    return buf.getvalue()


class ImageLabeler:
    kind = "image"
    mimes = frozenset({"image/png", "image/jpeg", "image/webp"})

    def label(self, data: bytes | None, mime: str, ctx: LabelContext) -> Labelled:
        """`data` None: the file is made here from `ctx.pixels` with `ctx.encode`, once, after the pixel labels."""
        cfg, aid = ctx.config, ctx.asset.id
        img = ctx.pixels
        out = Labelled(b"", mime)
        if img is None and (cfg.visible or cfg.watermark):
            assert data is not None
            img = Image.open(io.BytesIO(data))
            if getattr(img, "is_animated", False):  # an animation (ctx.save_media): re-encoding would keep 1 frame
                img = None
                for name in ("visible", "watermark"):
                    if getattr(cfg, name):
                        out.skipped[name] = "animated image: its frames are kept as made"
            else:
                img.load()
        original = img
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
        if data is None:
            assert img is not None and ctx.encode is not None
            data = ctx.encode(img)
        elif img is not original:
            assert img is not None
            data = _reencode(img, data, mime)
        # 2. Implicit label into the container (no re-encode).
        if cfg.implicit:
            packet = xmp.build_packet(ctx.tc260_fields)
            if mime == "image/png":
                data = xmp.insert_png(data, packet)
            elif mime == "image/jpeg":
                data = xmp.insert_jpeg(data, packet)
            else:
                head = img if img is not None else Image.open(io.BytesIO(data))
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
