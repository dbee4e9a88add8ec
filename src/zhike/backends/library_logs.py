"""Quiet diffusers' and transformers' own logging: progress bars and casting notes mean nothing to Zhike's users."""

from __future__ import annotations


def quiet_library_logs() -> None:
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
