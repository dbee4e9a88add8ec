"""Model-free voice text: Chinese normalisation for speech (normalize.py), scripts cut into sentences with pauses
(split.py). The voices themselves are in zhike.backends.tts."""

from zhike.voice.normalize import normalize_zh
from zhike.voice.split import Piece, split_script, strip_pauses

__all__ = ["Piece", "normalize_zh", "split_script", "strip_pauses"]
