"""Standard MIDI files (SMF type 1), written and read back: the few events a backing track needs.

Written by hand rather than with a MIDI library: a type-1 file is a header and one chunk of delta-timed events per
track, and owning the bytes keeps the output byte-identical for the same arrangement (the seed test relies on it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

DRUM_CHANNEL = 9  # General MIDI channel 10 (0-based 9) is the drum kit


@dataclass(frozen=True, order=True)
class Note:
    start: int  # ticks from the start
    length: int  # ticks
    pitch: int  # MIDI note number 0-127
    velocity: int  # 1-127
    channel: int = 0


@dataclass(frozen=True)
class Track:
    name: str
    channel: int
    program: int  # General MIDI program 0-127 (ignored on the drum channel)
    notes: tuple[Note, ...]
    volume: int = 100  # controller 7


def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack(">I", len(body)) + body


def _events(events: list[tuple[int, int, bytes]]) -> bytes:
    """(tick, order, message) events -> a track chunk; at one tick note-offs (order 0) go before note-ons."""
    body, now = b"", 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        body += _varlen(tick - now) + msg
        now = tick
    return _chunk(b"MTrk", body + b"\x00\xff\x2f\x00")


def write_smf(tracks: list[Track], *, bpm: float, ticks_per_beat: int = 480, title: str = "") -> bytes:
    """A type-1 MIDI file: a conductor track (tempo, 4/4, title) and one track per part."""
    tempo = round(60_000_000 / bpm)
    conductor = [
        (0, 0, b"\xff\x03" + _varlen(len(title.encode())) + title.encode()),
        (0, 1, b"\xff\x51\x03" + tempo.to_bytes(3, "big")),
        (0, 2, b"\xff\x58\x04\x04\x02\x18\x08"),
    ]
    chunks = [_events(conductor)]
    for t in tracks:
        ch = t.channel
        name = t.name.encode()
        ev: list[tuple[int, int, bytes]] = [(0, 0, b"\xff\x03" + _varlen(len(name)) + name)]
        ev.append((0, 1, bytes([0xB0 | ch, 7, t.volume])))
        if ch != DRUM_CHANNEL:
            ev.append((0, 2, bytes([0xC0 | ch, t.program])))
        for n in t.notes:
            ev.append((n.start, 3, bytes([0x90 | ch, n.pitch, n.velocity])))
            ev.append((n.start + n.length, 0, bytes([0x80 | ch, n.pitch, 0])))
        chunks.append(_events(ev))
    header = _chunk(b"MThd", struct.pack(">HHH", 1, len(chunks), ticks_per_beat))
    return header + b"".join(chunks)


def read_notes(data: bytes) -> tuple[int, int, list[Note]]:
    """(ticks per beat, microseconds per beat, every note) of a MIDI file: what the tests and the op's data read."""
    if data[:4] != b"MThd":
        raise ValueError("not a MIDI file")
    _, ntracks, tpb = struct.unpack(">HHH", data[8:14])
    pos, tempo, notes = 14, 500_000, []
    for _ in range(ntracks):
        size = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        i, end, tick, status = pos + 8, pos + 8 + size, 0, 0
        on: dict[tuple[int, int], tuple[int, int]] = {}
        while i < end:
            delta = 0
            while True:
                b = data[i]
                i += 1
                delta = (delta << 7) | (b & 0x7F)
                if b < 0x80:
                    break
            tick += delta
            if data[i] == 0xFF:
                kind, length = data[i + 1], data[i + 2]  # meta lengths here are < 128
                if kind == 0x51:
                    tempo = int.from_bytes(data[i + 3 : i + 6], "big")
                i += 3 + length
                continue
            if data[i] & 0x80:
                status = data[i]
                i += 1
            hi, ch = status & 0xF0, status & 0x0F
            if hi in (0xC0, 0xD0):
                i += 1
                continue
            a, b = data[i], data[i + 1]
            i += 2
            if hi == 0x90 and b > 0:
                on[(ch, a)] = (tick, b)
            elif hi in (0x80, 0x90) and (ch, a) in on:
                start, vel = on.pop((ch, a))
                notes.append(Note(start, tick - start, a, vel, ch))
        pos = end
    return tpb, tempo, sorted(notes)
