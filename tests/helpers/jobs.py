"""Running one job on the real job path (submit, one worker run, the stored row): what op tests share."""

from __future__ import annotations

from typing import Any

from zhike.core.rows import JobRow
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker


def run(z: Zhike, op: str, params: dict[str, Any], owner: str = "u1", **worker: Any) -> JobRow:
    """Submit `op` as `owner`, run it in a Worker (`worker` are its keyword arguments), and return its row, which
    must have succeeded (the job's error is the assertion's message)."""
    job, _ = z.submit(op, params, owner)
    assert Worker(z, **worker).run_one(job.id)
    row = z.jobs.get(job.id)
    assert row.state == "succeeded", row.error
    return row
