"""Signed, expiring asset URLs (for OpenAI-style `url` responses that clients fetch without a key)."""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: bytes, asset_id: str, expires: int) -> str:
    return hmac.new(secret, f"{asset_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def signed_path(secret: bytes, asset_id: str, ttl: int = 3600) -> str:
    expires = int(time.time()) + ttl
    return f"/api/v1/assets/{asset_id}/file?expires={expires}&sig={sign(secret, asset_id, expires)}"


def check(secret: bytes, asset_id: str, expires: int, sig: str) -> bool:
    return expires >= time.time() and hmac.compare_digest(sign(secret, asset_id, expires), sig)
