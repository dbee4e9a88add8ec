"""Content-addressed blob store on the local disk: the file name is the SHA-256 of its bytes."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from zhike.core.files import write_atomic

EXT_BY_MIME = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "text/markdown": ".md",
    "application/json": ".json",
    "audio/wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "image/gif": ".gif",
    "application/x-subrip": ".srt",
    "text/vtt": ".vtt",
    "text/x-ass": ".ass",
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

    def put_file(self, src: Path, mime: str) -> tuple[str, Path]:
        """Store a finished file (a rendered video, a voice track) by copying it, without holding it in memory.
        Copied, not linked: the op may rewrite its work file in place (ffmpeg -y) after storing it."""
        digest = hashlib.sha256()
        with open(src, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        sha = digest.hexdigest()
        path = self.path_for(sha, mime)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            os.close(fd)
            try:
                shutil.copyfile(src, tmp)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return sha, path

    def read(self, sha256: str, mime: str) -> bytes:
        return self.path_for(sha256, mime).read_bytes()
