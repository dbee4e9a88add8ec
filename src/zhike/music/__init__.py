"""Backing tracks without a model: a mood's arrangement written as MIDI (arrange, smf) and rendered with fluidsynth
and a General MIDI soundfont (render). Model-free: MusicGen lives in zhike.backends.music."""

from zhike.music.arrange import Arrangement, arrange, parse_key
from zhike.music.moods import MOODS, Mood, find_mood
from zhike.music.render import backing_track
from zhike.music.smf import Note, read_notes

__all__ = ["MOODS", "Arrangement", "Mood", "Note", "arrange", "backing_track", "find_mood", "parse_key", "read_notes"]
