"""A job's work folder: checkpoints a later attempt of the same job reuses (`ctx.work`), model-free.

A long op records each finished piece under a key (`record`), or that it failed (`failed`); when a worker dies and
another one retries the job, the op asks `done(key)` / `error(key)` first and does only what is missing. Records are
small JSON objects written atomically (a crash leaves the old state or the whole record, never half of one); the
bytes of staged outputs are already in the content-addressed blob store, so a record holds what the op needs to
rebuild its staged asset (see `RunContext.record_staged` / `RunContext.restage`) and its part of the result.

Layout: `<root>/<job_id>/<key>.json` (done) and `<key>.err.json` (failed); ops may keep their own files in `dir`
(a log, partial outputs). The worker removes the folder when the job succeeds or is cancelled; folders of jobs that
failed or were abandoned are swept once untouched for `keep_seconds` (when any job first opens its folder).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from zhike.core.files import write_atomic

log = logging.getLogger("zhike.work")

KEEP_SECONDS = 7 * 24 * 3600
# Safe file names: no path separators, no leading dot (temporary files start with one), no dot at all (so no key
# can look like another key's `.err.json`).
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_DONE, _FAILED = ".json", ".err.json"


def check_key(key: str, *, what: str = "work key") -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(
            f"bad {what} {key!r}: letters, digits, '-' and '_' only (at most 128, not starting with - or _)"
        )
    return key


def sweep(root: Path, keep_seconds: float, *, keep: str | None = None) -> int:
    """Remove job folders under `root` untouched for `keep_seconds` (except `keep`); returns how many."""
    if not root.is_dir():
        return 0
    cutoff = time.time() - keep_seconds
    removed = 0
    for d in root.iterdir():
        try:
            if d.name != keep and d.is_dir() and d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        except OSError:
            pass
    return removed


class JobWork:
    """The work folder of one job (`root/job_id`), created on first use."""

    def __init__(self, root: Path, job_id: str, *, keep_seconds: float = KEEP_SECONDS) -> None:
        self.root = Path(root)
        self.job_id = check_key(job_id, what="job id")
        self.keep_seconds = keep_seconds
        self.path = self.root / job_id  # where the folder is (or will be); `dir` creates it
        self._lock = threading.Lock()
        self._opened = False
        self.closed = False  # removed: the job is over, later records are dropped

    @property
    def dir(self) -> Path:
        """The folder, created (and older folders swept) on first use; opening it marks it fresh."""
        if not self._opened:
            with self._lock:
                if not self._opened:
                    self.path.mkdir(parents=True, exist_ok=True)
                    os.utime(self.path)  # a resumed attempt's folder counts from now, not from its first attempt
                    sweep(self.root, self.keep_seconds, keep=self.job_id)
                    self._opened = True
        return self.path

    def _file(self, key: str, suffix: str) -> Path:
        return self.path / f"{check_key(key)}{suffix}"

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # unreadable (a disk fault, not a crash: writes are atomic): do it again
            log.warning("job %s: ignoring unreadable work record %s", self.job_id, path.name)
            return None
        return data if isinstance(data, dict) else None

    def _write(self, path: Path, data: dict[str, Any]) -> bool:
        if self.closed:
            return False
        self.dir  # noqa: B018 - creates the folder
        # default=str: datetimes (and other non-JSON values) are written as their str()
        write_atomic(path, json.dumps(data, ensure_ascii=False, default=str).encode())
        return True

    def done(self, key: str) -> dict[str, Any] | None:
        """What `record(key, ...)` stored in this or an earlier attempt of the job, or None."""
        return self._read(self._file(key, _DONE))

    def record(self, key: str, data: dict[str, Any]) -> None:
        """`key` is finished: store `data` (a JSON object) for a later attempt; clears an earlier failure of it."""
        if not isinstance(data, dict):
            raise TypeError(f"work record {key!r}: a dict, not {type(data).__name__}")
        if self._write(self._file(key, _DONE), data):
            self._file(key, _FAILED).unlink(missing_ok=True)

    def failed(self, key: str, error: str) -> None:
        """`key` failed for good (bad input, not a crash): a later attempt reports `error` instead of redoing it."""
        self._write(self._file(key, _FAILED), {"message": str(error)})

    def error(self, key: str) -> str | None:
        """The message `failed(key, ...)` stored, or None."""
        rec = self._read(self._file(key, _FAILED))
        return None if rec is None else str(rec.get("message", ""))

    def _keys(self, suffix: str) -> list[str]:
        if not self.path.is_dir():
            return []
        out = []
        for f in self.path.iterdir():
            name = f.name
            if name.endswith(suffix) and (suffix == _FAILED or not name.endswith(_FAILED)):
                key = name[: -len(suffix)]
                if _KEY.fullmatch(key):
                    out.append(key)
        return sorted(out)

    def keys(self) -> list[str]:
        """Keys with a record (done), sorted."""
        return self._keys(_DONE)

    def failed_keys(self) -> list[str]:
        """Keys recorded as failed, sorted."""
        return self._keys(_FAILED)

    def remove(self) -> None:
        """Delete the folder (the job is over); later writes are dropped."""
        self.closed = True
        shutil.rmtree(self.path, ignore_errors=True)
