"""script_video (图片成片): a script becomes a video of library images with a voice-over and burnt-in subtitles.

The script is cut into scenes (blocks between blank or `---` lines, else one sentence each); scene i shows image
i (the list reused in turn when shorter). Each scene's voice is synthesised by the tts op's voices and checkpointed
in the job's work folder, so a killed render never says a finished scene again; an uploaded recording may stand in
for the voice (the scenes then share its length by their characters). The subtitles carry the script's exact
characters, timed by each scene's own voice (zhike.subtitles: cues, line breaking, ASS/SRT). One ffmpeg pass then
moves each still on a Ken Burns path that keeps its salient subject in frame (zhike.video), cross-fades the scenes,
burns the subtitles in with the bundled CJK font, draws the visible AI mark and ducks the music under the voice.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput, asset_wrong_kind
from zhike.core.registry import operation
from zhike.core.types import AssetId, MediaAssetId, MediaResult, note
from zhike.core.ui import Studio, ui
from zhike.ops.tts import VOICE_IDS, TtsParams, _open_voice, write_wav
from zhike.ops.tts import prepare as prepare_voice

MAX_CHARS = 10_000  # ~40 minutes of speech: far beyond a short video, well under what one job should hold
MAX_SCENES = 60
FPS = 30
PAUSE = 0.3  # seconds between the sentences of one scene


class ScriptVideoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    script: str = Field(
        ...,
        min_length=1,
        max_length=MAX_CHARS,
        description="The script: one scene per sentence, or per block when blank lines or `---` lines separate them",
        json_schema_extra=ui(
            "文案",
            "Script",
            help_zh="每句一个镜头；用空行或 --- 分隔时每段一个镜头",
            widget="textarea",
            order=0,
            cli_argument=True,
        ),
    )
    images: list[AssetId] = Field(
        ...,
        min_length=1,
        max_length=MAX_SCENES,
        description="Library images for the scenes, in order (reused in turn when there are fewer than scenes)",
        json_schema_extra=ui("镜头图片", "Scene images", order=1, cli_flag="--image"),
    )
    voice: str = Field(
        "auto",
        max_length=200,
        description=f"Voice of the tts op: {VOICE_IDS}",
        json_schema_extra=ui("音色", "Voice", placeholder=("auto", "auto"), order=2),
    )
    recording: MediaAssetId | None = Field(
        None,
        description="Your own recording of the script, used instead of a synthetic voice",
        json_schema_extra=ui("使用我的录音", "Use my recording", order=3),
    )
    aspect: Literal["9:16", "16:9", "1:1"] = Field(
        "9:16",
        description="Frame: 9:16 = 1080x1920, 16:9 = 1920x1080, 1:1 = 1080x1080",
        json_schema_extra=ui("画面比例", "Aspect ratio", order=4),
    )
    style: Literal["douyin", "xiaohongshu"] = Field(
        "douyin",
        description="Subtitle look: douyin = bold yellow with a black stroke; xiaohongshu = clean white, soft shadow",
        json_schema_extra=ui(
            "字幕样式",
            "Subtitle style",
            order=5,
            choices={
                "douyin": ("抖音（黄字黑边）", "Douyin (yellow, stroke)"),
                "xiaohongshu": ("小红书（简洁白字）", "Xiaohongshu (clean white)"),
            },
        ),
    )
    music: MediaAssetId | None = Field(
        None,
        description="Background music (an audio asset), looped and ducked under the voice",
        json_schema_extra=ui("背景音乐", "Background music", order=6),
    )
    music_volume: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Music level where nobody speaks (1 = as uploaded)",
        json_schema_extra=ui("音乐音量", "Music volume", widget="slider", step=0.05, group="more"),
    )
    language: Literal["auto", "zh", "en"] = Field(
        "auto",
        description="Language of the script (auto: Chinese when it has Chinese characters)",
        json_schema_extra=ui(
            "语言",
            "Language",
            group="more",
            choices={"auto": ("自动", "Auto"), "zh": ("中文", "Chinese"), "en": ("英文", "English")},
        ),
    )
    speed: float = Field(
        1.0, ge=0.5, le=2.0, description="Voice speed", json_schema_extra=ui("语速", "Speed", step=0.05, group="more")
    )
    padding: float = Field(
        1.0,
        ge=0.2,
        le=5.0,
        description="Seconds each scene lasts beyond its voice (half before it, half after)",
        json_schema_extra=ui("镜头留白（秒）", "Scene padding (s)", step=0.1, group="more"),
    )
    crossfade: float = Field(
        0.4,
        ge=0.1,
        le=2.0,
        description="Seconds two scenes fade into each other (less than the padding)",
        json_schema_extra=ui("转场时长（秒）", "Cross-fade (s)", step=0.1, group="more"),
    )
    zoom: float = Field(
        1.15,
        ge=1.0,
        le=1.5,
        description="How far the camera moves in or out over a scene (1 = still)",
        json_schema_extra=ui("镜头推拉幅度", "Camera zoom", step=0.05, group="more"),
    )

    @field_validator("script")
    @classmethod
    def _speakable(cls, v: str) -> str:
        if not any(c.isalnum() for c in v):
            raise ValueError("the script has nothing to say")
        return v


def split_scenes(script: str) -> list[str]:
    """The script's scenes: its blocks between blank or `---` lines, else one sentence each (as the voice cuts
    them: long sentences at a comma), each with its exact characters."""
    from zhike.video.stills import split_blocks
    from zhike.voice import split_script

    blocks = split_blocks(script)
    return blocks if len(blocks) > 1 else [piece.text for piece in split_script(script)]


def _field(e: InvalidInput) -> InvalidInput:
    if e.field and not e.field.startswith("params."):
        e.field = f"params.{e.field}"
    return e


def _check_media(env: PrepareEnv, asset_id: str, field: str) -> None:
    row = env.assets.get(asset_id, owner_id=env.owner_id, field=field)
    if row.kind not in ("audio", "video"):
        raise asset_wrong_kind(asset_id, field, row.kind, "audio")


def prepare(env: PrepareEnv, p: ScriptVideoParams) -> ScriptVideoParams:
    """Scenes counted, recording/music kinds checked, the voice fixed for the script's language (as tts does)."""
    n = len(split_scenes(p.script))
    if n > MAX_SCENES:
        raise InvalidInput(
            f"params.script: {n} scenes; a video may have at most {MAX_SCENES}: merge sentences into blocks",
            code="too_many_scenes",
            field="params.script",
            limit=MAX_SCENES,
            ctx={"scenes": n, "limit": MAX_SCENES},
        )
    for k, image in enumerate(p.images):  # the kinds were checked at submission; here that they exist (404)
        env.assets.get(image, owner_id=env.owner_id, field=f"params.images.{k}")
    if p.music:
        _check_media(env, p.music, "params.music")
    if p.recording:
        _check_media(env, p.recording, "params.recording")
        return p
    if p.crossfade >= p.padding:
        raise InvalidInput(
            f"params.crossfade: the cross-fade ({p.crossfade:g} s) must be shorter than the padding ({p.padding:g} s)",
            field="params.crossfade",
        )
    try:
        tp = prepare_voice(env, TtsParams(text=p.script, voice=p.voice, language=p.language))
    except InvalidInput as e:
        raise _field(e) from e
    return p.model_copy(update={"voice": tp.voice, "language": tp.language})


def _scene_voices(ctx: RunContext, p: ScriptVideoParams, texts: list[str], steps: int) -> tuple[list[Any], int, int]:
    """Each scene's (samples, pieces timed in it), the sample rate, and how many scenes a former attempt made."""
    from zhike.voice import normalize_zh, split_script

    tp = TtsParams(text=p.script, voice=p.voice, language=p.language, speed=p.speed)
    manager, _info, speaker = _open_voice(ctx, tp)
    out: list[Any] = []
    resumed, rate = 0, 0
    with manager as voice:
        for i, text in enumerate(texts):
            key, file = f"scene{i:03d}", ctx.work_dir / f"scene{i:03d}.npy"
            pieces = split_script(text, pause=PAUSE)
            spoken = [normalize_zh(x.text) if p.language == "zh" else x.text for x in pieces]
            rec = ctx.work.done(key)
            if rec is not None and rec.get("spoken") == spoken and file.is_file():
                samples, rate, timed = np.load(file), int(rec["rate"]), rec["timed"]
                resumed += 1
            else:
                chunks, timed, at = [], [], 0.0
                for j, (piece, words) in enumerate(zip(pieces, spoken, strict=True)):
                    s, rate = voice.synthesize(words, speed=p.speed, pitch=0.0, speaker=speaker)
                    s = np.asarray(s, np.float32)
                    gap = np.zeros(round(piece.pause * rate) if j < len(pieces) - 1 else 0, np.float32)
                    timed.append([piece.text, at, at + len(s) / rate])
                    at += (len(s) + len(gap)) / rate
                    chunks += [s, gap]
                samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
                np.save(file, samples)
                ctx.work.record(key, {"spoken": spoken, "rate": rate, "timed": timed})
            out.append((samples, timed))
            ctx.progress((i + 1) * 10, steps)
    return out, rate, resumed


def _cues(texts: list[str], timed: list[list[Any]], starts: list[float], aspect: str) -> list[Any]:
    """The scenes' cues on the video's clock: each scene's exact text spread over its own voice's pieces."""
    from zhike.subtitles import Word, make_cues
    from zhike.voice import strip_pauses

    cues: list[Any] = []
    for text, pieces, at in zip(texts, timed, starts, strict=True):
        words = [Word(t, at + a, at + b) for t, a, b in pieces if b > a]
        if words:
            cues += make_cues(words, aspect=aspect, script=strip_pauses(text))
    return cues


@operation(
    "script_video",
    lane="cpu",
    version=1,
    params=ScriptVideoParams,
    result=MediaResult,
    prepare=prepare,
    title={"en": "Script to video", "zh": "图片成片"},
    tags=("video", "voice", "subtitles"),
    studio=Studio(
        order=22,
        help=(
            "把文案变成短视频：每句配一张图，自动配音、逐字字幕、镜头推拉、转场和背景音乐，可断点续做。",
            "A script becomes a short video: an image per sentence, voice-over, word-exact subtitles, camera moves, "
            "cross-fades and music; resumable.",
        ),
        run=("生成视频", "Make the video"),
    ),
)
def script_video(ctx: RunContext, p: ScriptVideoParams) -> MediaResult:
    """Scenes → voice per scene (checkpointed) → subtitles → Ken Burns stills, cross-fades, mark, ducked music."""
    from zhike.media import MediaLimits, check_input, run_ffmpeg
    from zhike.ops.placement import saliency_box
    from zhike.provenance.labels import LabelConfig
    from zhike.provenance.media import MARKED_ARGS, mark_overlay
    from zhike.subtitles.writers import to_ass, to_srt
    from zhike.video.stills import FRAMES, ken_burns, still, timeline, total_duration
    from zhike.video.stills_graph import RenderSpec, SceneInput, filter_graph

    t0 = time.perf_counter()
    texts = split_scenes(p.script)
    n, frame = len(texts), FRAMES[p.aspect]
    steps = n * 10 + 100
    result = MediaResult(asset_id="", kind="video", model=None if p.recording else p.voice)
    limits = MediaLimits.from_settings(ctx.settings)
    resumed = 0
    if p.recording:  # the scenes share the recording by their characters
        _, rec_path = ctx.media_file(p.recording, field="params.recording")
        length = check_input(rec_path, field="params.recording", want="audio", limits=limits).duration_s or 0.0
        chars = [max(1, sum(c.isalnum() for c in t)) for t in texts]
        voices = [length * c / sum(chars) for c in chars]
        timed = [[[t, 0.0, v]] for t, v in zip(texts, voices, strict=True)]
        plan = timeline(voices, padding=p.padding, crossfade=p.crossfade, continuous=True)
        voice_path, delay = rec_path, p.padding / 2
    else:
        said, rate, resumed = _scene_voices(ctx, p, texts, steps)
        voices = [len(s) / rate for s, _ in said]
        timed = [t for _, t in said]
        plan = timeline(voices, padding=p.padding, crossfade=p.crossfade)
        track = np.zeros(round(total_duration(plan) * rate) + 1, np.float32)
        for (samples, _), sc in zip(said, plan, strict=True):
            at = round(sc.voice_start * rate)
            track[at : at + len(samples)] = samples[: len(track) - at]
        voice_path, delay = ctx.work_dir / "voice.wav", 0.0
        write_wav(voice_path, track, rate)
        for i, v in enumerate(voices):
            if v == 0:
                result.warn(note("tts_sentence_silent", f"scene {i + 1} could not be spoken", n=i + 1))
    t_voice = time.perf_counter()
    duration = total_duration(plan)
    music = None
    if p.music:
        _, music = ctx.media_file(p.music, field="params.music")
        check_input(music, field="params.music", want="audio", limits=limits)

    cues = _cues(texts, timed, [s.voice_start for s in plan], p.aspect)
    srt, ass = ctx.work_dir / "subtitles.srt", ctx.work_dir / "subtitles.ass"
    srt.write_text(to_srt(cues), encoding="utf-8")
    family, fonts_dir = _font()
    ass.write_text(to_ass(cues, aspect=p.aspect, style=p.style, font=family), encoding="utf-8")

    scenes, widths, subjects = [], [], {}
    for i, sc in enumerate(plan):
        k = i % len(p.images)
        image = ctx.load_image(p.images[k], field=f"params.images.{k}").convert("RGB")
        if k not in subjects:  # spectral-residual saliency: cheap, no model (ISNet would cost seconds an image)
            subjects[k] = saliency_box(image)
        cut, motion = still(image, frame, ken_burns(image.size, frame, subjects[k], zoom=p.zoom, inward=i % 2 == 0))
        path = ctx.work_dir / f"still{i:03d}.png"
        cut.save(path, compress_level=1)
        scenes.append(SceneInput(path, math.ceil(sc.duration * FPS), motion))  # never shorter than its fades
        widths.append(cut.width)
    mark = None
    if ctx.settings.label_video_mark:
        mark = ctx.work_dir / "mark.png"
        mark_overlay(frame[0], frame[1], LabelConfig.from_settings(ctx.settings)).save(mark)
    spec = RenderSpec(
        frame,
        FPS,
        scenes,
        [s.start for s in plan],
        p.crossfade,
        duration,
        ass,
        fonts_dir,
        mark,
        voice_path,
        delay,
        music,
        p.music_volume,
    )
    inputs, graph = filter_graph(spec, widths)
    out = ctx.work_dir / "video.mp4"
    encode = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "21", "-r", str(FPS), "-pix_fmt", "yuv420p"]
    t_prep = time.perf_counter()
    run_ffmpeg(
        [*inputs, "-filter_complex", graph, "-map", "[vout]", "-map", "[aout]", *encode]
        + ["-c:a", "aac", "-b:a", "160k", "-t", f"{duration:.3f}", *MARKED_ARGS, out],
        total_s=duration,
        progress=lambda s: ctx.progress(n * 10 + min(99, int(100 * s / max(duration, 1e-3))), steps),
        cancel=lambda: ctx.stopping,
    )
    t_render = time.perf_counter()
    params = p.model_dump(mode="json")
    name = texts[0][:16].strip() or "video"
    result.asset_id = ctx.save_media(out, mime="video/mp4", params=params, model=result.model, name=name)
    result.extra_asset_ids = [
        ctx.save_media(srt, mime="application/x-subrip", params=params, model=result.model, parent_id=result.asset_id)
    ]
    result.duration_s = round(duration, 3)
    result.data = {
        "width": frame[0],
        "height": frame[1],
        "fps": FPS,
        "voice": "recording" if p.recording else p.voice,
        "resumed": resumed,
        "scenes": [
            {
                "text": t,
                "image": p.images[i % len(p.images)],
                "start": round(s.start, 3),
                "duration": round(s.duration, 3),
                "voice_start": round(s.voice_start, 3),
                "voice_s": round(s.voice_len, 3),
                "subject": list(subjects[i % len(p.images)]),
            }
            for i, (t, s) in enumerate(zip(texts, plan, strict=True))
        ],
        "cues": len(cues),
    }
    result.timings = {
        "voice": round(t_voice - t0, 3),
        "prepare": round(t_prep - t_voice, 3),
        "render": round(t_render - t_prep, 3),
        "total": round(time.perf_counter() - t0, 3),
    }
    return result


def _font() -> tuple[str, Path | None]:
    """The subtitles' font family and the folder libass finds it in: the bundled Source Han Sans SC first."""
    from zhike.fonts import BUNDLED_FAMILY, chain

    faces = chain(BUNDLED_FAMILY)
    return (faces[0].family, Path(faces[0].path).parent) if faces else (BUNDLED_FAMILY, None)
