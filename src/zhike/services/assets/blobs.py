"""Content-addressed blob store on the local disk: the file name is the SHA-256 of its bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from zhike.core.files import write_atomic

EXT_BY_MIME = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "text/markdown": ".md",
    "application/json": ".json",
}


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str, mime: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}{EXT_BY_MIME.get(mime, '.bin')}"

    def put(self, data: bytes, mime: str) -> tuple[str, Path]:
        """Store bytes once; storing the same bytes again is free. Returns (sha256, path)."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha, mime)
        if not path.exists():
            write_atomic(path, data)
        return sha, path

    def read(self, sha256: str, mime: str) -> bytes:
        return self.path_for(sha256, mime).read_bytes()
