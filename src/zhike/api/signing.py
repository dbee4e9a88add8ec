"""Signed, expiring asset URLs (for OpenAI-style `url` responses that clients fetch without a key).

A link is valid while its signature matches, it has not expired, and its asset's owner is still active (checked
where the link is served: api/routes/assets.py)."""

from __future__ import annotations

import hashlib
import hmac
import time

from starlette.requests import Request

DEFAULT_PORTS = {"http": 80, "https": 443}


def sign(secret: bytes, asset_id: str, expires: int) -> str:
    return hmac.new(secret, f"{asset_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def signed_path(secret: bytes, asset_id: str, ttl: int = 3600) -> str:
    expires = int(time.time()) + ttl
    return f"/api/v1/assets/{asset_id}/file?expires={expires}&sig={sign(secret, asset_id, expires)}"


def check(secret: bytes, asset_id: str, expires: int, sig: str) -> bool:
    return expires >= time.time() and hmac.compare_digest(sign(secret, asset_id, expires), sig)


def base_url(request: Request, public_url: str | None) -> str:
    """Where clients reach this server: `public_url` when set, else the address and port the client connected to
    (the server socket's own; empty, so links are relative, on a unix socket). Never the Host header or
    X-Forwarded-Host: anyone can send any, and a link built from them hands its holder to the sender's server."""
    if public_url:
        return public_url.rstrip("/")
    server = request.scope.get("server")
    if not server or server[1] is None:
        return ""
    host, port = str(server[0]), int(server[1])
    scheme = str(request.scope.get("scheme", "http"))
    host = f"[{host}]" if ":" in host else host  # IPv6
    return f"{scheme}://{host}" + ("" if DEFAULT_PORTS.get(scheme) == port else f":{port}")
