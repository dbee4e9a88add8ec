"""Subtitles without models: timed words (from backends/asr.py or any recogniser) to cues that follow Chinese
line-breaking rules for a frame shape, a known script aligned onto the words, and SRT / WebVTT / ASS writers.

    cues = make_cues(words, aspect="9:16", script="今天给大家推荐……")
    srt = write(cues, "srt")
"""

from __future__ import annotations

from zhike.subtitles.align import align_script, transcript_tokens
from zhike.subtitles.cues import LAYOUTS, Cue, Token, Word, build_cues
from zhike.subtitles.writers import FORMATS, write

__all__ = ["FORMATS", "LAYOUTS", "Cue", "Token", "Word", "align_script", "build_cues", "make_cues", "write"]


def make_cues(words: list[Word], *, aspect: str = "9:16", script: str | None = None) -> list[Cue]:
    """Cues for `aspect` ("9:16", "1:1", "16:9"): the script's own text when one is given, else what was heard.
    Raises ValueError when no word was heard."""
    tokens = align_script(script, words) if script and script.strip() else transcript_tokens(words)
    return build_cues(tokens, LAYOUTS[aspect])
