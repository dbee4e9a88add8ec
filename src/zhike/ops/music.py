"""music (配乐): a backing track by mood, tempo, key and length; or music from a description with a MusicGen model.

Without a model (the default, any CPU, no weights) the track is arranged here (zhike.music: the mood's chord
progression, bass, drums on the General MIDI kit, a pad or arpeggio; seeded), written as MIDI and rendered with
fluidsynth and the General MIDI soundfont. With `model` naming a MusicGen the user added, the model makes it from the
description (`prompt`, else the mood's words). Either way ffmpeg cuts it to the second, normalises its loudness and
fades it out.
"""

from __future__ import annotations

import secrets
import time
import wave
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput
from zhike.core.registry import Lane, operation
from zhike.core.specs import ModelSpec
from zhike.core.types import MediaResult
from zhike.core.ui import Studio, ui
from zhike.music import MOODS, find_mood, parse_key
from zhike.music.render import MIMES, SAMPLE_RATE, AudioFormat, backing_track, finish, soundfont

MAX_SECONDS = 600.0  # ten minutes: a long live-stream loop; longer beds are loops of this
MAX_SEED = 2**31 - 1
MOOD_NAMES = ", ".join(f"{m.id} ({m.zh})" for m in MOODS.values())
MoodId = Literal["upbeat", "warm", "energetic", "calm", "epic"]  # the ids of zhike.music.MOODS (a test checks)


class MusicParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mood: MoodId = Field(
        "upbeat",
        description=f"One of {MOOD_NAMES}",
        json_schema_extra=ui(
            "风格",
            "Mood",
            choices={m.id: (m.zh, m.en) for m in MOODS.values()},
            order=0,
            cli_argument=True,
        ),
    )
    duration: float = Field(
        30.0,
        gt=0,
        le=MAX_SECONDS,
        description="Length in seconds",
        json_schema_extra=ui("时长（秒）", "Length (s)", step=1, order=1),
    )
    tempo: int | None = Field(
        None,
        ge=40,
        le=220,
        description="Beats per minute; empty: the mood's own (upbeat 116, warm 84, energetic 128, calm 72, epic 92)",
        json_schema_extra=ui("速度（BPM）", "Tempo (BPM)", order=2, help_zh="留空使用风格默认速度"),
    )
    key: str | None = Field(
        None,
        max_length=12,
        description="Key, e.g. C, F#, Bb, Am (m: minor); empty: the mood's own",
        json_schema_extra=ui("调式", "Key", group="more", placeholder=("如 C、Am", "e.g. C, Am")),
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_SEED,
        description="The same seed gives the same track; empty: a new one",
        json_schema_extra=ui("随机种子", "Seed", group="more"),
    )
    format: AudioFormat = Field(
        "mp3",
        description="Audio file format",
        json_schema_extra=ui(
            "格式",
            "Format",
            group="more",
            choices={"mp3": ("MP3", "MP3"), "m4a": ("M4A (AAC)", "M4A (AAC)"), "wav": ("WAV", "WAV")},
        ),
    )
    fade: float = Field(
        2.0,
        ge=0,
        le=10,
        description="Fade-out at the end, in seconds",
        json_schema_extra=ui("淡出（秒）", "Fade-out (s)", group="more", step=0.5),
    )
    loudness: float = Field(
        -16.0,
        ge=-30,
        le=-8,
        description="Integrated loudness in LUFS (-16: online video; lower leaves room for a voice-over)",
        json_schema_extra=ui("响度（LUFS）", "Loudness (LUFS)", group="more", step=1),
    )
    model: str | None = Field(
        None,
        description="A MusicGen model you added; empty: arranged and rendered from MIDI (no model)",
        json_schema_extra=ui("音乐模型", "Music model", widget="model", model_kind="music", group="more"),
    )
    prompt: str | None = Field(
        None,
        max_length=500,
        description="For a MusicGen model: the music described in English; empty: the mood's description",
        json_schema_extra=ui("音乐描述（模型用）", "Description (for a model)", widget="textarea", group="more"),
    )

    @field_validator("mood", mode="before")
    @classmethod
    def _mood_alias(cls, v: object) -> object:
        mood = find_mood(v) if isinstance(v, str) else None  # 欢快 -> upbeat; the rest is refused by the enum
        return mood.id if mood else v

    @field_validator("key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None and v.strip():
            parse_key(v)  # ValueError says how keys are written
            return v.strip()
        return None


class MusicResult(MediaResult):
    """An audio asset; `data` holds the mood, tempo, key, chords (one per bar) and seed, or the model's prompt."""


def resolve_music_model(catalog: Any, name: str) -> ModelSpec:
    spec: ModelSpec = catalog.get(name, field="params.model")
    if spec.kind != "music":
        raise InvalidInput(
            f"model {name!r} is a {spec.kind}, not a music model (MusicGen)",
            field="params.model",
            code="model_wrong_kind",
            ctx={"name": name, "kind": spec.kind, "expected": "music"},
        )
    return spec


def prepare_music(env: PrepareEnv, p: MusicParams) -> MusicParams:
    updates: dict[str, Any] = {}
    if p.seed is None:
        updates["seed"] = secrets.randbelow(MAX_SEED)
    if p.model:
        from zhike.backends.music import max_seconds

        spec = resolve_music_model(env.catalog, p.model)
        longest = max_seconds(spec.path)  # the config alone: refused now rather than after the model loaded
        if p.duration > longest:
            raise InvalidInput(
                f"params.duration: {spec.name} makes at most {longest:.0f} s of music at once",
                code="music_too_long",
                field="params.duration",
                ctx={"seconds": p.duration, "limit": int(longest)},
            )
        updates["model"] = spec.name
    return p.model_copy(update=updates)


def music_lane(p: MusicParams) -> Lane:
    return "gpu" if p.model else "cpu"


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """(channels, frames) float32 in [-1, 1] -> 16-bit PCM WAV."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.T.tobytes())


@operation(
    "music",
    lane="cpu",
    lane_for=music_lane,
    version=1,
    params=MusicParams,
    result=MusicResult,
    prepare=prepare_music,
    title={"en": "Background music", "zh": "配乐"},
    tags=("audio", "music"),
    studio=Studio(
        tool=True,
        help=(
            "按风格、速度和时长生成背景音乐（MIDI 编曲，通用音色库渲染，无需模型）；添加 MusicGen 模型后可按描述生成。",
            "Background music by mood, tempo and length (arranged MIDI rendered with a General MIDI soundfont, no "
            "model); with a MusicGen model you added, from a description.",
        ),
    ),
)
def music(ctx: RunContext, p: MusicParams) -> MusicResult:
    """Arrange and render a backing track (or generate one with MusicGen), then trim, normalise and fade it."""
    t0 = time.perf_counter()
    seed = p.seed or 0
    mood = MOODS[p.mood]
    out = ctx.work_dir / f"music.{p.format}"
    timings: dict[str, float] = {}

    def progress(done: float) -> None:  # 0..1; raises JobCancelled, which stops ffmpeg
        ctx.progress(int(100 * done), 100)

    progress(0)
    if p.model:
        spec = resolve_music_model(ctx.models.catalog, p.model)
        prompt = (p.prompt or "").strip() or mood.prompt + (f", {p.tempo} bpm" if p.tempo else "")
        with ctx.models.use(spec) as gen:
            timings["load"] = time.perf_counter() - t0
            made = gen.generate(prompt, seconds=p.duration, seed=seed)
        timings["generate"] = made.seconds
        raw = ctx.work_dir / "music.raw.wav"
        _write_wav(raw, made.samples, made.sample_rate)
        progress(0.5)
        t = time.perf_counter()
        finish(
            raw,
            out,
            seconds=p.duration,
            fade_s=p.fade,
            lufs=p.loudness,
            fmt=p.format,
            sample_rate=made.sample_rate,
            channels=made.samples.shape[0],
            progress=lambda s: progress(0.5 + 0.5 * s / p.duration),
        )
        timings["finish"] = time.perf_counter() - t
        rate, model = made.sample_rate, spec.name
        data: dict[str, Any] = {"engine": "musicgen", "prompt": prompt, "seed": seed}
    else:
        song = backing_track(
            mood,
            out,
            seconds=p.duration,
            bpm=p.tempo,
            key=p.key,
            seed=seed,
            fade_s=p.fade,
            lufs=p.loudness,
            font=soundfont(ctx.settings.music_soundfont),
            progress=progress,
        )
        timings["render"] = time.perf_counter() - t0
        rate, model = SAMPLE_RATE, None
        data = {
            "engine": "fluidsynth",
            "mood": mood.id,
            "tempo": song.bpm,
            "key": song.key,
            "bars": song.bars,
            "chords": list(song.chords),
            "seed": seed,
        }
    asset_id = ctx.save_media(out, mime=MIMES[p.format], params=p.model_dump(mode="json"), model=model)
    progress(1)
    data |= {"sample_rate": rate, "loudness": p.loudness, "format": p.format}
    return MusicResult(asset_id=asset_id, kind="audio", duration_s=p.duration, model=model, data=data, timings=timings)
