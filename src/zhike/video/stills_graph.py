"""The one ffmpeg pass that renders a script video: each still moved on its Ken Burns path (zoompan), cross-fades
(xfade), the subtitles burnt in (libass, the bundled CJK font), the visible AI mark overlaid, the voice track and the
background music ducked under it (sidechaincompress keyed by the voice), H.264 + AAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zhike.video.stills import Motion

# Ducking: the voice, once above about -34 dBFS, pushes the music down by up to ratio:1 on what is over it. A voice
# at -20 dBFS takes ~13 dB off the music; attack/release fast enough to come back in the pauses between scenes.
DUCK = "threshold=0.02:ratio=20:attack=20:release=250:knee=2"


@dataclass(frozen=True)
class SceneInput:
    image: Path  # already cut to the scene's widest window, at `oversample` times the frame size
    frames: int
    motion: Motion  # in that image's pixels


@dataclass(frozen=True)
class RenderSpec:
    frame: tuple[int, int]
    fps: int
    scenes: list[SceneInput]
    starts: list[float]  # each scene's start in the video (the offsets of the cross-fades)
    crossfade: float
    duration: float
    subtitles: Path | None  # an ASS file
    fonts_dir: Path | None
    mark: Path | None  # a transparent PNG of the frame's size
    voice: Path
    voice_delay: float  # seconds of silence before the voice file starts
    music: Path | None = None
    music_volume: float = 0.3


def quote(value: str | Path) -> str:
    """A filter option value escaped for both levels ffmpeg parses: the filter's options (`\\`, `:` and `'`
    escaped) inside the graph's single quotes (where only `'` needs care)."""
    text = str(value).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")
    return "'" + text.replace("'", "'\\''") + "'"


def _num(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".")


def _zoompan(s: SceneInput, frame: tuple[int, int], fps: int, iw: int) -> str:
    """zoompan moving the window linearly in size and centre: zoom = image width / window width."""
    (x0, y0, w0, h0), (x1, y1, w1, h1) = s.motion.start, s.motion.end
    m = max(s.frames - 1, 1)
    t = f"(on/{m})"
    w = f"({_num(w0)}+({_num(w1 - w0)})*{t})"
    h = f"({_num(h0)}+({_num(h1 - h0)})*{t})"
    cx = f"({_num(x0 + w0 / 2)}+({_num(x1 + w1 / 2 - x0 - w0 / 2)})*{t})"
    cy = f"({_num(y0 + h0 / 2)}+({_num(y1 + h1 / 2 - y0 - h0 / 2)})*{t})"
    return (
        f"zoompan=z='{iw}/{w}':x='{cx}-{w}/2':y='{cy}-{h}/2':d={s.frames}:s={frame[0]}x{frame[1]}:fps={fps}"
        ",setsar=1,format=yuv420p"
    )


def filter_graph(spec: RenderSpec, widths: list[int]) -> tuple[list[str | Path], str]:
    """(ffmpeg input options, filter_complex) for `spec`; `widths` are the scene images' widths. Outputs are the
    labels [vout] and [aout]."""
    inputs: list[str | Path] = []
    parts: list[str] = []
    for i, (s, iw) in enumerate(zip(spec.scenes, widths, strict=True)):
        inputs += ["-i", s.image]
        parts.append(f"[{i}:v]{_zoompan(s, spec.frame, spec.fps, iw)}[s{i}]")
    last = "s0"
    for i in range(1, len(spec.scenes)):
        parts.append(
            f"[{last}][s{i}]xfade=transition=fade:duration={_num(spec.crossfade)}:offset={_num(spec.starts[i])}[x{i}]"
        )
        last = f"x{i}"
    video = last
    if spec.subtitles is not None:
        fonts = f":fontsdir={quote(spec.fonts_dir)}" if spec.fonts_dir else ""
        parts.append(f"[{video}]subtitles=filename={quote(spec.subtitles)}{fonts}[sub]")
        video = "sub"
    n = len(spec.scenes)
    if spec.mark is not None:
        inputs += ["-i", spec.mark]
        parts.append(f"[{video}][{n}:v]overlay=0:0:format=auto,format=yuv420p[vout]")
        n += 1
    else:
        parts.append(f"[{video}]format=yuv420p[vout]")
    inputs += ["-i", spec.voice]
    ms = round(spec.voice_delay * 1000)
    stereo = "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo"
    voice = f"[{n}:a]{stereo},adelay={ms}:all=1,apad=whole_dur={_num(spec.duration)}"
    if spec.music is None:
        parts.append(f"{voice},atrim=0:{_num(spec.duration)}[aout]")
        return inputs, ";".join(parts)
    inputs += ["-stream_loop", "-1", "-i", spec.music]
    parts += [
        f"{voice},atrim=0:{_num(spec.duration)},asplit=2[va][vkey]",
        f"[{n + 1}:a]{stereo},volume={_num(spec.music_volume)},atrim=0:{_num(spec.duration)}[mus]",
        f"[mus][vkey]sidechaincompress={DUCK}[duck]",
        "[va][duck]amix=inputs=2:duration=first:normalize=0[aout]",
    ]
    return inputs, ";".join(parts)
