"""English phonemes for Kokoro from Debian's `espeak-ng` program, run as a child process.

espeak-ng is GPL-3.0: Zhike links no part of it (Piper's Python binding would load it into our process), it only
runs the program and reads its IPA, the same string Piper's own binding gives (`--ipa`, US English)."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache

from zhike.core.errors import ModelError

# Punctuation Kokoro's vocabulary knows: kept between the phoneme runs for its pauses and intonation.
_CHUNKS = re.compile(r"([^,.!?;:]+)|([,.!?;:]+)")


@cache
def _program() -> str | None:
    return shutil.which("espeak-ng")


def espeak_available() -> bool:
    return _program() is not None


def _ipa(text: str) -> str:
    exe = _program()
    if exe is None:
        raise ModelError(
            "English words need the espeak-ng program for their phonemes: install the system package espeak-ng "
            "(scripts/system-packages.sh)",
            code="model_not_installed",
            field="voice",
            ctx={"name": "espeak-ng"},
        )
    # the text goes in on stdin (never as an argument: a script line starting with "-" is no option)
    out = subprocess.run(
        [exe, "-q", "--ipa", "-v", "en-us"], input=text, capture_output=True, text=True, timeout=30, check=True
    )
    return " ".join(line.strip() for line in out.stdout.splitlines() if line.strip())


def english_phonemes(text: str) -> str:
    """`text`'s IPA with its sentence punctuation kept (espeak-ng drops it from `--ipa` output)."""
    parts = []
    for words, marks in _CHUNKS.findall(text):
        if words.strip():
            parts.append(_ipa(words))
        elif marks:
            parts.append(marks)
    return re.sub(r" +([,.!?;:])", r"\1", " ".join(parts)).strip()
