"""Start-up warm-up: the default checkpoint is loaded, and run once, in the background when the server starts, so
the first job pays neither the load nor the device's start-up (nor, with `compile = true`, the compile of the
bucket most jobs use: native size, batch 1). `warmup = auto` does it on CUDA only: on the CPU it would hold
gigabytes of RAM for a server that may only cut out photos."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from zhike.core.errors import ZhikeError

if TYPE_CHECKING:
    from zhike.services.container import Zhike

log = logging.getLogger("zhike.warmup")


def warm_up(app: Zhike) -> float | None:
    """Load and run the default checkpoint once; its seconds, or None when there is nothing to warm."""
    setting, device = app.settings.warmup, app.settings.device
    if setting == "off" or (setting == "auto" and (device == "cpu" or app.models.device != "cuda")):
        return None
    try:
        spec = app.catalog.default_checkpoint()
    except ZhikeError:
        log.info("warm-up: no checkpoint installed yet")
        return None
    from zhike.backends.diffusion import warm_up as run_once

    started = time.perf_counter()
    with app.models.use(spec) as loaded:
        ran = run_once(loaded)
        state = loaded.compiled
    total = time.perf_counter() - started
    compiled = "compiled" if state.active else f"eager ({state.reason})"
    log.info("warm-up: %s loaded and run in %.1f s (one generation %.1f s), %s", spec.name, total, ran, compiled)
    return total


def start_warmup(app: Zhike) -> threading.Thread:
    def run() -> None:
        try:
            warm_up(app)
        except Exception:  # a broken default model shows up in its first job too; the server stays up
            log.exception("warm-up failed")

    thread = threading.Thread(target=run, name="zhike-warmup", daemon=True)
    thread.start()
    return thread
