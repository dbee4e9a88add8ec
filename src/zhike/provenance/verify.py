"""Read back the labels of a file: which are present and valid, what they say, and which asset they name.

The asset is identified from the TC260 ProduceID, the C2PA record and, when metadata was stripped (most
platforms do), from the watermark key looked up among this deployment's assets (`AssetLookup`).
"""

from __future__ import annotations

import hmac
import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from zhike.provenance import watermark, xmp

if TYPE_CHECKING:
    from zhike.provenance.labels import LabelKeys


class AssetLookup(Protocol):
    """How verify finds assets of this deployment. `by_watermark` gets the 64 decoded bits (16 hex chars) and
    returns the asset whose payload is within MAX_BIT_ERRORS (`watermark.best_match`), with "bit_errors" set."""

    def by_id(self, asset_id: str) -> dict[str, Any] | None: ...

    def by_watermark(self, payload: str) -> dict[str, Any] | None: ...


class IdIndex:
    """An AssetLookup over known ids (tests; small deployments): the watermark key is computed from each id."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = set(ids)

    def by_id(self, asset_id: str) -> dict[str, Any] | None:
        return {"id": asset_id} if asset_id in self.ids else None

    def by_watermark(self, payload: str) -> dict[str, Any] | None:
        found = watermark.best_match(payload, sorted(self.ids))
        return {"id": found[0], "bit_errors": found[1]} if found else None


def _implicit(data: bytes, keys: LabelKeys) -> dict[str, Any]:
    return check_label(xmp.read_label(data), keys)


def check_label(found: dict[str, Any] | None, keys: LabelKeys) -> dict[str, Any]:
    """The implicit label's report from what a reader found (`xmp.read_label`'s shape; None: absent): the seven
    fields present, Label a known value, and this deployment's own HMAC codes intact."""
    if found is None:
        return {"status": "absent"}
    if found["error"]:
        return {"status": "invalid", "problems": [found["error"]], "raw": found["raw"]}
    fields = found["fields"]
    problems = [f"missing field {k}" for k in xmp.FIELDS if k not in fields]
    label = str(fields.get("Label", ""))
    if label not in xmp.LABEL_VALUES:
        problems.append(f"Label {label!r} is not 1, 2 or 3")
    out: dict[str, Any] = {
        "status": "invalid" if problems else "valid",
        "fields": fields,
        "meaning": xmp.LABEL_VALUES.get(label),
    }
    if problems:
        out["problems"] = problems
    # Our own labels carry HMAC reserved codes: check them when the producer is this deployment.
    if keys.secret and fields.get("ContentProducer") == keys.config.code:
        want = keys.reserved_code("producer", keys.config.code, str(fields.get("ProduceID", "")))
        ok = hmac.compare_digest(want, str(fields.get("ReservedCode1", "")))
        out["integrity"] = "ok" if ok else "mismatch"
        if not ok:
            out["status"] = "invalid"
            out.setdefault("problems", []).append("ReservedCode1 does not match: the label was altered or copied")
    return out


def _watermark(img: Any, lookup: AssetLookup | None) -> dict[str, Any]:
    """valid: the check bits match, or the bits are within MAX_BIT_ERRORS of a known asset's payload. The current
    method is read first; files exported before it (version 1, DWT-DCT-SVD) are read with the old decoder."""
    reason = watermark.too_small_to_read(*img.size)
    if reason:
        return {"status": "not_checkable", "reason": reason}
    for decode in (watermark.decode, watermark.decode_v1):
        payload = decode(img)
        if payload is None:  # version 1 needs the full size
            continue
        key = watermark.exact_key(payload)
        found = lookup.by_watermark(payload) if lookup is not None else None
        if found:
            out = {"status": "valid", "key": watermark.watermark_key(found["id"]), "bit_errors": found["bit_errors"]}
            return out | {"asset": {k: v for k, v in found.items() if k != "bit_errors"}}
        if key:
            return {"status": "valid", "key": key, "bit_errors": 0}
    return {"status": "absent"}


def verify_image(data: bytes, mime: str, keys: LabelKeys, lookup: AssetLookup | None) -> dict[str, Any]:
    """The report for an image file that already passed the upload checks (see `decode_checked`)."""
    from PIL import Image

    from zhike.provenance.c2pa_manifest import read as read_c2pa

    img = Image.open(io.BytesIO(data))
    img.load()
    report: dict[str, Any] = {"mime": mime, "width": img.width, "height": img.height}
    report["implicit"] = _implicit(data, keys)
    report["c2pa"] = read_c2pa(data, mime, keys.trust_pem)
    report["watermark"] = _watermark(img, lookup)
    recorded = report["c2pa"].get("labels") or {}
    if report["watermark"]["status"] != "valid" and "watermark" in (recorded.get("skipped") or {}):
        report["watermark"]["recorded_skip"] = recorded["skipped"]["watermark"]
    report["visible"] = {"recorded": "visible" in (recorded.get("applied") or [])} if recorded else {}
    report["asset"] = identify(report, lookup)
    report["summary"] = summary(report)
    return report


def identify(report: dict[str, Any], lookup: AssetLookup | None) -> dict[str, Any]:
    """Which asset the labels name, from each source; `consistent` is False when they disagree (tampering)."""
    claims: dict[str, str] = {}
    fields = report["implicit"].get("fields") or {}
    if fields.get("ProduceID"):
        claims["implicit"] = str(fields["ProduceID"])
    if report["c2pa"].get("asset_id") and report["c2pa"]["status"] != "invalid":
        claims["c2pa"] = str(report["c2pa"]["asset_id"])
    key = report["watermark"].get("key")
    found: dict[str, Any] | None = report["watermark"].pop("asset", None)
    if found:
        claims["watermark"] = found["id"]
    if found is None and lookup is not None:
        for aid in claims.values():
            found = lookup.by_id(aid)
            if found:
                break
    out: dict[str, Any] = {"id": found["id"] if found else next(iter(claims.values()), None)}
    out["in_deployment"] = found is not None if lookup is not None else None
    out["found_by"] = sorted(claims)
    if key and "watermark" not in claims:
        out["watermark_key"] = key  # a Zhike watermark, but of an asset this lookup does not know
    ids = set(claims.values())
    out["consistent"] = len(ids) <= 1
    if found:
        out["asset"] = found
    return out


LABELS = ("implicit", "c2pa", "watermark", "notice")  # a text's explicit notice is read too (text_verify.py)


def valid_labels(report: dict[str, Any]) -> list[str]:
    """The labels of a report that were found valid."""
    return [n for n in LABELS if (report.get(n) or {}).get("status") in ("valid", "trusted")]


def summary(report: dict[str, Any]) -> dict[str, str]:
    ok = valid_labels(report)
    aid = report["asset"].get("id")
    if not ok:
        return {"en": "no valid AI-content label found", "zh": "未发现有效的AI生成内容标识"}
    names = ", ".join(ok)
    where = f"; asset {aid}" if aid else ""
    if report["asset"].get("in_deployment"):
        where += " of this deployment"
    tail = "" if report["asset"]["consistent"] else " (labels name different assets: possible tampering)"
    zh_tail = "" if report["asset"]["consistent"] else "（各标识指向不同作品，可能被篡改）"
    zh_where = f"；作品 {aid}" + ("（本站）" if report["asset"].get("in_deployment") else "") if aid else ""
    return {"en": f"AI-generated: valid {names}{where}{tail}", "zh": f"AI生成内容：有效标识 {names}{zh_where}{zh_tail}"}
