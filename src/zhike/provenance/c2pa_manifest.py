"""C2PA manifests with c2pa-python: build the Zhike claim, sign it (always the last step: it hashes the bytes),
and read + validate one back.

The manifest says what made the asset (`c2pa.actions`: created, or opened + edited for operations on an input,
with digitalSourceType trainedAlgorithmicMedia), the model and parameters, and for edits the input image as a
`parentOf` ingredient: when that input carries its own manifest (an earlier labelled export, a camera), the
chain is kept inside ours.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zhike.provenance.certs import SigningCredentials

if TYPE_CHECKING:
    from zhike.core.rows import AssetRow

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENERATION_ASSERTION = "org.zhike.generation"
FORMATS = {"image/png", "image/jpeg", "image/webp"}  # what we sign; c2pa-rs supports more (audio/video later)


@dataclass(frozen=True)
class Ingredient:
    data: bytes
    mime: str
    title: str
    asset_id: str | None = None


def build_manifest(
    *,
    asset: AssetRow,
    producer: str,
    version: str,
    title: str,
    parent: Ingredient | None,
    labels: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`labels`: what else was applied or skipped and why (e.g. the watermark on a small image), kept in the
    signed record so `verify` can tell "skipped, too small" from "removed"."""
    params = asset.params if isinstance(asset.params, dict) else {}
    op = asset.op
    agent = {"name": producer, "version": version}
    described = {"op": op, "model": asset.model}
    actions: list[dict[str, Any]] = []
    if parent is not None:
        # v2 claims: an edit starts with `c2pa.opened` naming the parentOf ingredient.
        actions.append({"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}})
        actions.append(
            {"action": "c2pa.edited", "digitalSourceType": TRAINED, "softwareAgent": agent, "parameters": described}
        )
    else:
        actions.append(
            {"action": "c2pa.created", "digitalSourceType": TRAINED, "softwareAgent": agent, "parameters": described}
        )
    generation = {
        "asset_id": asset.id,
        "op": op,
        "model": asset.model,
        "seed": asset.seed,
        "params": params,
        "parent_id": asset.parent_id,
        "labels": labels or {},
    }
    return {
        "claim_generator_info": [{"name": "Zhike", "version": version}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            {"label": GENERATION_ASSERTION, "data": json.loads(json.dumps(generation, default=str))},
        ],
    }


class C2paSigner:
    """Signs manifests into PNG/JPEG/WebP bytes with the deployment's credentials (thread-safe)."""

    def __init__(self, creds: SigningCredentials) -> None:
        self.creds = creds
        self._lock = threading.Lock()
        self._context: Any = None
        self._signer: Any = None  # parsed once: the key and chain are the same for every export

    def _ctx(self) -> Any:
        import c2pa

        if self._context is None:
            # No claim thumbnail: it would add a JPEG copy of the image to every export (size, time).
            settings = {"builder": {"thumbnail": {"enabled": False}}}
            if self.creds.ca_pem:
                settings["trust"] = {"user_anchors": self.creds.ca_pem.decode()}
            self._context = c2pa.Context(c2pa.Settings.from_dict(settings))
        return self._context

    def sign(self, data: bytes, mime: str, manifest: dict[str, Any], parent: Ingredient | None = None) -> bytes:
        import c2pa

        with self._lock:
            if self._signer is None:
                self._signer = c2pa.Signer.from_info(
                    c2pa.C2paSignerInfo(b"es256", self.creds.chain_pem, self.creds.key_pem, None)
                )
            with c2pa.Builder(manifest, context=self._ctx()) as builder:
                if parent is not None:
                    ingredient = {
                        "title": parent.title,
                        "relationship": "parentOf",
                        "label": "parent",
                        "instance_id": f"zhike:asset:{parent.asset_id}" if parent.asset_id else None,
                    }
                    ingredient = {k: v for k, v in ingredient.items() if v is not None}
                    builder.add_ingredient(ingredient, parent.mime, io.BytesIO(parent.data))
                out = io.BytesIO()
                builder.sign(self._signer, mime, io.BytesIO(data), out)
        return out.getvalue()


def read(data: bytes, mime: str, trust_pem: bytes | None = None) -> dict[str, Any]:
    """{"status": absent|valid|trusted|invalid, ...}: the active manifest's actions, generation record,
    ingredients, signer and the validator's failures. Trusted = chains to `trust_pem` (this deployment's CA)."""
    import c2pa

    settings: dict[str, Any] = {}
    if trust_pem:
        settings["trust"] = {"user_anchors": trust_pem.decode()}
    try:
        ctx = c2pa.Context(c2pa.Settings.from_dict(settings)) if settings else None
        reader = (
            c2pa.Reader.try_create(mime, io.BytesIO(data), None, ctx)
            if ctx
            else c2pa.Reader.try_create(mime, io.BytesIO(data))
        )
    except c2pa.C2paError as e:
        return {"status": "invalid", "errors": [str(e)]}
    if reader is None:
        return {"status": "absent"}
    with reader:
        state = reader.get_validation_state() or ""
        results = reader.get_validation_results() or {}
        manifest = reader.get_active_manifest() or {}
    failures = [
        {"code": f.get("code"), "explanation": f.get("explanation")}
        for f in (results.get("activeManifest") or {}).get("failure", [])
    ]
    # An untrusted signer is not damage: anyone can verify integrity, trust needs the issuer's CA.
    damaging = [f for f in failures if f["code"] not in ("signingCredential.untrusted",)]
    status = "trusted" if state == "Trusted" else "valid" if state == "Valid" and not damaging else "invalid"
    assertions = {a.get("label"): a.get("data") for a in manifest.get("assertions", [])}
    actions = (assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}).get("actions", [])
    generation = assertions.get(GENERATION_ASSERTION) or {}
    sig = manifest.get("signature_info") or {}
    return {
        "status": status,
        "validation_state": state,
        "failures": failures,
        "actions": [a.get("action") for a in actions],
        "digital_source_type": next((a["digitalSourceType"] for a in actions if a.get("digitalSourceType")), None),
        "asset_id": generation.get("asset_id"),
        "model": generation.get("model"),
        "op": generation.get("op"),
        "params": generation.get("params"),
        "labels": generation.get("labels") or {},
        "ingredients": [
            {
                "title": i.get("title"),
                "relationship": i.get("relationship"),
                "instance_id": i.get("instance_id"),
                "has_manifest": bool(i.get("active_manifest")),
            }
            for i in manifest.get("ingredients", [])
        ],
        "signer": {"issuer": sig.get("issuer"), "common_name": sig.get("common_name")},
        "claim_generator": (manifest.get("claim_generator_info") or [{}])[0].get("name"),
    }
