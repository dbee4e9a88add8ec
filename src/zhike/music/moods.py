"""The moods a backing track can have, as data: tempo, scale, chord progressions and the parts that play them.

Patterns are one 4/4 bar in sixteenth-note steps. Pitched parts: `c` the whole chord, `0`-`3` one chord tone from the
bottom (`3` the lowest an octave up), `r` the root, `5` its fifth, `8` the root an octave up, `-` holds the note
before, `.` rests. Drums: `x` a hit, `X` an accented one. Each part lists alternatives; the seed picks one, so two
seeds give two arrangements of the same mood. Programs are General MIDI (0-based), as FluidR3_GM numbers them.
"""

from __future__ import annotations

from dataclasses import dataclass

DRUMS = {"kick": 36, "side": 37, "snare": 38, "clap": 39, "hat": 42, "ohat": 46, "crash": 49, "ride": 51, "tamb": 54}
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)


@dataclass(frozen=True)
class Part:
    name: str
    program: int
    center: int  # the MIDI pitch the part's notes gather around (bass ~40, pads ~62, arpeggios ~67)
    patterns: tuple[str, ...]
    velocity: int
    volume: int = 100


@dataclass(frozen=True)
class Mood:
    id: str
    zh: str
    en: str
    bpm: int
    minor: bool
    key: str  # default tonic
    progressions: tuple[tuple[int, ...], ...]  # scale degrees 0-6, one chord a bar
    parts: tuple[Part, ...]
    drums: tuple[dict[str, str], ...]  # alternatives; each drum -> its 16-step pattern
    fill: dict[str, str]  # the last bar of every 4-bar phrase
    drum_velocity: int
    prompt: str  # the words a MusicGen model is given for this mood when no prompt is

    @property
    def scale(self) -> tuple[int, ...]:
        return MINOR if self.minor else MAJOR


MOODS: dict[str, Mood] = {
    m.id: m
    for m in (
        Mood(
            "upbeat",
            "欢快",
            "Upbeat",
            bpm=116,
            minor=False,
            key="C",
            progressions=((0, 4, 5, 3), (0, 5, 3, 4), (3, 4, 0, 5)),
            parts=(
                Part("piano", 0, 64, ("c.c.c.c.c.c.c.c.", "c--.c-.c--.c-.c.", "c---c---c---c-c-"), 78),
                Part("bass", 33, 40, ("r-.rr-.r5-.58-.5", "r---r-.rr---5-8-", "r.r.r.r.5.5.8.5."), 92),
                Part("pluck", 25, 72, ("0.1.2.3.2.1.0.1.", "0-2-1-3-0-2-1-3-"), 60, 85),
            ),
            drums=(
                {
                    "kick": "x.....x.x.......",
                    "snare": "....x.......x...",
                    "hat": "x.x.x.x.x.x.x.x.",
                    "tamb": "....x.......x...",
                },
                {"kick": "x.......x.x.....", "clap": "....x.......x...", "hat": "x.xxx.x.x.xxx.x."},
            ),
            fill={"kick": "x.......x.......", "snare": "....x.....x.xxxx", "hat": "x.x.x.x.x......."},
            drum_velocity=96,
            prompt="upbeat cheerful pop, bright piano, bass and drums, happy shopping vibe",
        ),
        Mood(
            "warm",
            "温馨",
            "Warm",
            bpm=84,
            minor=False,
            key="F",
            progressions=((0, 5, 3, 4), (0, 2, 3, 4), (3, 0, 4, 5)),
            parts=(
                Part("pad", 89, 60, ("c---------------",), 64, 90),
                Part("guitar", 24, 64, ("0.1.2.3.2.1.2.1.", "0-2-3-2-1-2-3-2-", "0..20..21..20.3."), 74),
                Part("bass", 32, 40, ("r-------5-------", "r-----r-5---8---"), 84),
            ),
            drums=({"kick": "x.......x.......", "side": "....x.......x...", "hat": "x...x...x...x..."},),
            fill={"kick": "x.......x.......", "side": "....x.......x.x.", "hat": "x...x...x.x.x.x."},
            drum_velocity=70,
            prompt="warm gentle acoustic guitar and soft pads, cozy family moment",
        ),
        Mood(
            "energetic",
            "动感",
            "Energetic",
            bpm=128,
            minor=True,
            key="A",
            progressions=((0, 5, 2, 6), (0, 3, 5, 4), (0, 6, 5, 6)),
            parts=(
                Part("synth bass", 38, 40, ("r.r.r.r.r.r.r.r.", "8rr.8rr.8rr.8r5."), 96),
                Part("saw arp", 81, 67, ("0123012301230123", "0.1.2.3.2.1.0.1.", "3210321032103210"), 62, 80),
                Part("strings", 48, 60, ("c---------------", "c-------c-------"), 58, 80),
            ),
            drums=(
                {
                    "kick": "x...x...x...x...",
                    "clap": "....x.......x...",
                    "hat": "x.x.x.x.x.x.x.x.",
                    "ohat": "..x...x...x...x.",
                },
                {"kick": "x...x...x...x..x", "snare": "....x.......x...", "hat": "xxxxxxxxxxxxxxxx"},
            ),
            fill={"kick": "x...x...x...x...", "snare": "....x...xxxxXXXX", "hat": "x.x.x.x........."},
            drum_velocity=104,
            prompt="energetic electronic dance track, driving synth bass, four on the floor beat, 128 bpm",
        ),
        Mood(
            "calm",
            "舒缓",
            "Calm",
            bpm=72,
            minor=False,
            key="D",
            progressions=((0, 2, 5, 3), (0, 3, 0, 4), (3, 4, 2, 5)),
            parts=(
                Part("pad", 88, 62, ("c---------------",), 58, 90),
                Part("piano", 0, 69, ("0...1...2...1...", "0.1.2.3.2.1.2.1.", "0...2...3...2..."), 56),
                Part("bass", 35, 40, ("r---------------", "r-------5-------"), 70),
            ),
            drums=({"kick": "x...............", "ride": "x...x...x...x..."},),
            fill={"kick": "x.......x.......", "ride": "x...x...x...x.x."},
            drum_velocity=56,
            prompt="calm relaxing ambient piano with soft pads, slow and peaceful",
        ),
        Mood(
            "epic",
            "大气",
            "Epic",
            bpm=92,
            minor=True,
            key="D",
            progressions=((0, 5, 2, 6), (0, 3, 5, 4), (5, 6, 0, 0)),
            parts=(
                Part("strings", 48, 60, ("c---------------", "c-------c-------"), 80),
                Part("brass", 61, 60, ("c-----c-c-------", "c-------c---c---", "c---------------"), 74, 88),
                Part("cellos", 42, 45, ("r.r.r.r.r.r.r.r.", "r-r-r-r-r-r-5-5-"), 86),
                Part("timpani", 47, 40, ("r.......r.......", "r.........r.r..."), 96),
            ),
            drums=({"kick": "x.......x.......", "snare": "........x.......", "hat": "x...x...x...x..."},),
            fill={"kick": "x.......x.......", "snare": "........x.xxXXXX", "hat": "x...x...x...x..."},
            drum_velocity=100,
            prompt="epic cinematic orchestral music, strings, brass and timpani, grand and inspiring",
        ),
    )
}

# The Chinese names users type are aliases of the ids
ALIASES = {m.zh: m.id for m in MOODS.values()}


def find_mood(name: str) -> Mood | None:
    key = name.strip()
    return MOODS.get(ALIASES.get(key, key.lower()))
