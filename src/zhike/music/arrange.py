"""A backing track arranged from a mood, tempo, key and length: chords a bar each, the mood's parts playing their
patterns over them, drums on the General MIDI kit, a fill closing every 4-bar phrase, the tonic held at the end.

Everything random comes from one `random.Random(seed)`, so a seed gives the same notes (and MIDI bytes) every time.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from zhike.music.moods import DRUMS, Mood, Part
from zhike.music.smf import DRUM_CHANNEL, Note, Track, write_smf

TPB = 480  # ticks per beat
STEP = TPB // 4  # one sixteenth
BAR = 16 * STEP
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_KEY = re.compile(r"^([A-Ga-g])([#b♯♭]?)\s*(m|min|minor|maj|major)?$")
_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_key(key: str) -> tuple[int, bool | None]:
    """'C', 'F#', 'Bb', 'Am', 'C# minor' -> (pitch class, minor or None when the key does not say). ValueError else."""
    m = _KEY.match(key.strip())
    if not m:
        raise ValueError(f"{key!r} is not a key: write a note name (C, F#, Bb) with m for minor (Am)")
    pc = _LETTER[m.group(1).upper()] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(m.group(2), 0)
    quality = m.group(3)
    return pc % 12, None if quality is None else quality.startswith("m") and not quality.startswith("maj")


@dataclass(frozen=True)
class Arrangement:
    mood: str
    bpm: int
    key: str  # e.g. "A minor"
    bars: int
    chords: tuple[str, ...]  # one chord name per bar, e.g. ("C", "G", "Am", "F")
    tracks: tuple[Track, ...]

    def midi(self) -> bytes:
        return write_smf(list(self.tracks), bpm=self.bpm, ticks_per_beat=TPB, title=f"{self.mood} {self.key}")


def _voice(tones: list[int], center: int) -> list[int]:
    """The inversion of a chord (pitch classes, root first) whose notes sit closest around `center`."""
    best: list[int] = []
    for inv in range(len(tones)):
        pcs = tones[inv:] + tones[:inv]
        notes = [pcs[0] + 12 * round((center - 4 - pcs[0]) / 12)]
        for pc in pcs[1:]:
            n = notes[-1] + (pc - notes[-1]) % 12
            notes.append(n)
        if not best or abs(sum(notes) / len(notes) - center) < abs(sum(best) / len(best) - center):
            best = notes
    return best


def _play(
    part: Part, pattern: str, start: int, chord: list[int], root: int, vel: int, rng: random.Random
) -> list[Note]:
    notes: list[Note] = []
    voiced = _voice(chord, part.center)
    low = voiced[0]
    bass = root + 12 * round((part.center - root) / 12)
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        j = i + 1
        while j < len(pattern) and pattern[j] == "-":
            j += 1
        if ch != "." and ch != "-":
            if ch == "c":
                pitches = voiced
            elif ch in "0123":
                pitches = [low + 12 if ch == "3" else voiced[int(ch) % len(voiced)]]
            else:
                pitches = [bass + {"r": 0, "5": 7, "8": 12}[ch]]
            v = max(1, min(127, vel + rng.randint(-6, 6) + (8 if i % 4 == 0 else 0)))
            length = (j - i) * STEP - STEP // 8  # a hair short so repeated notes re-strike
            notes += [Note(start + i * STEP, length, p, v) for p in pitches]
        i = j
    return notes


def _drums(pattern: dict[str, str], start: int, vel: int, rng: random.Random) -> list[Note]:
    notes = []
    for name, steps in pattern.items():
        for i, ch in enumerate(steps):
            if ch in "xX":
                v = vel + (14 if ch == "X" else 0) - (18 if name in ("hat", "ohat", "tamb", "ride") else 0)
                v += (6 if i % 4 == 0 else 0) + rng.randint(-5, 5)
                notes.append(Note(start + i * STEP, STEP, DRUMS[name], max(1, min(127, v)), DRUM_CHANNEL))
    return notes


def chord_name(root_pc: int, tones: list[int]) -> str:
    third = (tones[1] - tones[0]) % 12
    fifth = (tones[2] - tones[0]) % 12
    return NAMES[root_pc] + ("dim" if fifth == 6 else "m" if third == 3 else "")


def arrange(
    mood: Mood, *, seconds: float, bpm: int | None = None, key: str | None = None, seed: int = 0
) -> Arrangement:
    """The notes of a backing track at least `seconds` long (the renderer trims and fades it to the second)."""
    rng = random.Random(seed)
    bpm = bpm or mood.bpm
    tonic, minor = parse_key(key or mood.key)
    minor = mood.minor if minor is None else minor
    scale = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)
    bars = max(1, math.ceil(seconds * bpm / 60 / 4))
    progression = rng.choice(mood.progressions)
    patterns = {p.name: rng.choice(p.patterns) for p in mood.parts}
    groove = rng.choice(mood.drums)
    by_part: dict[str, list[Note]] = {p.name: [] for p in mood.parts}
    drums: list[Note] = []
    names = []
    for bar in range(bars):
        last = bar == bars - 1
        degree = 0 if last and bars > 1 else progression[bar % len(progression)]
        tones = [(tonic + scale[(degree + k) % 7]) % 12 for k in (0, 2, 4)]
        names.append(chord_name(tones[0], tones))
        start = bar * BAR
        for part in mood.parts:
            pattern = "c" + "-" * 15 if last and bars > 1 else patterns[part.name]
            if last and bars > 1 and part.center < 48:
                pattern = "r" + "-" * 15  # low parts hold the root under the final chord
            by_part[part.name] += _play(part, pattern, start, tones, tones[0], part.velocity, rng)
        if last and bars > 1:
            drums += _drums({"kick": "x", "crash": "X"}, start, mood.drum_velocity, rng)
            continue
        phrase_end = bar % 4 == 3 and rng.random() < 0.85
        drums += _drums(mood.fill if phrase_end else groove, start, mood.drum_velocity, rng)
        if bar % 4 == 0 and bar > 0 and mood.drum_velocity >= 90:
            drums += _drums({"crash": "x"}, start, mood.drum_velocity, rng)
    tracks = [
        Track(p.name, ch, p.program, tuple(sorted(by_part[p.name])), p.volume)
        for ch, p in enumerate(mood.parts)  # channels 0..n-1: never the drum channel 9
    ]
    tracks.append(Track("drums", DRUM_CHANNEL, 0, tuple(sorted(drums)), 110))
    key_name = f"{NAMES[tonic]} {'minor' if minor else 'major'}"
    return Arrangement(mood.id, bpm, key_name, bars, tuple(names), tuple(tracks))
