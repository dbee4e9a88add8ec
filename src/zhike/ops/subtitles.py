"""subtitles (字幕): speech in an audio or video asset to SRT / WebVTT / ASS subtitle assets.

Whisper (embedded: whisper-base) hears the words and their times. When the script is known (typed, or a text asset
from marketing_copy / live_script), the subtitles carry the script's exact characters aligned onto those times
(zhike/subtitles/align.py), so a misheard word never reaches the screen; otherwise they carry what was heard, in
Simplified Chinese. Lines are broken for the frame shape by Chinese punctuation rules, at most two per cue.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput, asset_wrong_kind
from zhike.core.registry import operation
from zhike.core.specs import ModelSpec
from zhike.core.types import MediaAssetId, MediaResult, TextAssetId, note
from zhike.core.ui import Studio, ui

DEFAULT_MODEL = "whisper-base"
MAX_SCRIPT_CHARS = 20_000  # ~1 hour of Chinese speech; a script longer than the audio limit cannot be aligned
Format = Literal["srt", "vtt", "ass"]


class SubtitlesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audio: MediaAssetId = Field(
        ...,
        description="Audio or video asset whose speech is subtitled",
        json_schema_extra=ui("音频或视频", "Audio or video", cli_argument=True),
    )
    script: str | None = Field(
        None,
        max_length=MAX_SCRIPT_CHARS,
        description="The words spoken, if known: the subtitles then carry exactly these characters, timed by ASR",
        json_schema_extra=ui(
            "文案（可选）",
            "Script (optional)",
            help_zh="填写配音所念的文案，字幕逐字使用文案，不会出现识别错字",
            widget="textarea",
        ),
    )
    script_asset: TextAssetId | None = Field(
        None,
        description="A text asset holding the script (used when `script` is empty)",
        json_schema_extra=ui("文案素材", "Script asset", group="more"),
    )
    language: Literal["zh", "en", "auto"] = Field(
        "zh",
        description="Language spoken; auto: detected",
        json_schema_extra=ui(
            "语言",
            "Language",
            choices={"zh": ("中文", "Chinese"), "en": ("英文", "English"), "auto": ("自动识别", "Detect")},
        ),
    )
    aspect: Literal["9:16", "16:9", "1:1"] = Field(
        "9:16",
        description="Frame shape the lines are broken for (9:16: ~14 Chinese characters a line, 16:9: ~22)",
        json_schema_extra=ui("画面比例", "Aspect ratio"),
    )
    formats: list[Format] = Field(
        default_factory=lambda: ["srt", "ass"],
        min_length=1,
        max_length=3,
        description="Files to make: srt, vtt, ass",
        json_schema_extra=ui("字幕格式", "Formats"),
    )
    style: Literal["douyin", "xiaohongshu"] = Field(
        "douyin",
        description="ASS look: douyin = bold yellow with a black stroke; xiaohongshu = clean white",
        json_schema_extra=ui(
            "字幕样式",
            "Style",
            choices={
                "douyin": ("抖音（黄字黑边）", "Douyin (yellow, stroke)"),
                "xiaohongshu": ("小红书（简洁白字）", "Xiaohongshu (clean white)"),
            },
        ),
    )
    vad: bool = Field(
        True,
        description="Skip silence and music before recognising (fewer invented words)",
        json_schema_extra=ui("跳过静音", "Skip silence", group="more"),
    )
    model: str | None = Field(
        None,
        description=f"Speech model; empty: {DEFAULT_MODEL}",
        json_schema_extra=ui("识别模型", "Speech model", widget="model", model_kind="asr", group="more"),
    )


class SubtitlesResult(MediaResult):
    """`asset_id` is the first format's file; `extra_asset_ids` the others, in the order of `formats`."""


def resolve_asr(catalog: Any, name: str) -> ModelSpec:
    """The speech model's spec, or a field-named error (unknown, not fetched, not a speech model)."""
    from zhike.models.embedded import BY_NAME

    try:
        spec: ModelSpec = catalog.get(name, field="params.model")
    except InvalidInput as e:
        if name in BY_NAME:
            raise InvalidInput(
                f"speech model {name!r} is not installed; run `zhike models fetch-embedded`",
                field="params.model",
                code="model_not_installed",
                ctx={"name": name},
            ) from e
        raise
    if spec.kind != "asr":
        raise InvalidInput(
            f"model {name!r} is a {spec.kind}, not a speech model; use {DEFAULT_MODEL}",
            field="params.model",
            code="model_wrong_kind",
            ctx={"name": name, "kind": spec.kind, "expected": "asr"},
        )
    return spec


def prepare_subtitles(env: PrepareEnv, p: SubtitlesParams) -> SubtitlesParams:
    row = env.assets.get(p.audio, owner_id=env.owner_id, field="params.audio")
    if row.kind not in ("audio", "video"):
        raise asset_wrong_kind(p.audio, "params.audio", row.kind, "audio or video")
    if p.script_asset and not (p.script and p.script.strip()):
        text = env.assets.get(p.script_asset, owner_id=env.owner_id, field="params.script_asset")
        if text.kind != "text":
            raise asset_wrong_kind(p.script_asset, "params.script_asset", text.kind, "text")
    spec = resolve_asr(env.catalog, p.model or DEFAULT_MODEL)
    return p.model_copy(update={"model": spec.name, "formats": list(dict.fromkeys(p.formats))})


def _script(ctx: RunContext, p: SubtitlesParams) -> str | None:
    if p.script and p.script.strip():
        return p.script
    if not p.script_asset:
        return None
    row = ctx.assets.get(p.script_asset, owner_id=ctx.owner_id, field="params.script_asset")
    text = ctx.assets.read_bytes(row).decode("utf-8", "replace")
    if len(text) > MAX_SCRIPT_CHARS:
        raise InvalidInput(
            f"params.script_asset: the script has {len(text)} characters; the limit is {MAX_SCRIPT_CHARS}",
            code="script_too_long",
            field="params.script_asset",
            limit=MAX_SCRIPT_CHARS,
            ctx={"chars": len(text), "limit": MAX_SCRIPT_CHARS},
        )
    return text


@operation(
    "subtitles",
    lane="cpu",
    version=1,
    params=SubtitlesParams,
    result=SubtitlesResult,
    prepare=prepare_subtitles,
    title={"en": "Subtitles", "zh": "自动字幕"},
    tags=("audio", "video", "subtitles"),
    studio=Studio(
        tool=True,
        help=(
            "识别音频或视频里的语音，生成 SRT / VTT / ASS 字幕；提供文案时字幕逐字使用文案。",
            "Subtitles (SRT / VTT / ASS) from the speech in audio or video; with the script, word for word.",
        ),
    ),
)
def subtitles(ctx: RunContext, p: SubtitlesParams) -> SubtitlesResult:
    """Recognise the speech, align the script if there is one, break lines for the aspect, write the files."""
    from zhike.backends.asr import decode_audio
    from zhike.media import MediaLimits, check_input
    from zhike.subtitles import make_cues, write
    from zhike.subtitles.align import heard_share
    from zhike.subtitles.writers import FORMATS

    t0 = time.perf_counter()
    script = _script(ctx, p)
    row, path = ctx.media_file(p.audio, field="params.audio")  # the stored file, read in place
    name = row.name
    limits = MediaLimits.from_settings(ctx.settings)
    info = check_input(path, field="params.audio", want="audio", limits=limits, name=name)  # silent, no sound...
    audio = decode_audio(path)
    spec = resolve_asr(ctx.models.catalog, p.model or DEFAULT_MODEL)
    t_probe = time.perf_counter()

    def on_progress(heard: float, total: float) -> None:
        ctx.progress(int(heard * 10), max(int(total * 10), 1))  # raises JobCancelled between segments

    ctx.progress(0, 1)
    with ctx.models.use(spec) as asr:
        t_load = time.perf_counter()
        heard = asr.transcribe(
            audio, language=None if p.language == "auto" else p.language, vad=p.vad, on_progress=on_progress
        )
    t_asr = time.perf_counter()
    ctx.progress(int(heard.duration * 10), max(int(heard.duration * 10), 1))  # heard to the end (trailing silence)
    if not heard.words:
        raise InvalidInput(
            "params.audio: no speech was heard in it", code="no_speech", field="params.audio", ctx={"name": name}
        )
    cues = make_cues(heard.words, aspect=p.aspect, script=script)
    params = p.model_dump(mode="json")
    ids = []
    for fmt in p.formats:
        out = ctx.work_dir / f"subtitles.{fmt}"
        out.write_text(write(cues, fmt, aspect=p.aspect, style=p.style), encoding="utf-8")
        ids.append(ctx.save_media(out, mime=FORMATS[fmt], params=params, model=spec.name, parent_id=p.audio))
    result = SubtitlesResult(
        asset_id=ids[0],
        kind="subtitles",
        duration_s=info.duration_s,
        extra_asset_ids=ids[1:],
        model=spec.name,
        data={
            "formats": p.formats,
            "language": heard.language,
            "aligned": script is not None,
            "cues": [{"start": round(c.start, 3), "end": round(c.end, 3), "lines": list(c.lines)} for c in cues],
            "heard": heard.text,
            "rtf": round(heard.seconds / max(heard.duration, 1e-6), 3),
        },
        timings={
            "probe": t_probe - t0,
            "load": t_load - t_probe,
            "asr": t_asr - t_load,
            "write": time.perf_counter() - t_asr,
        },
    )
    if script is not None and heard_share(script, heard.words) < 0.5:
        result.warn(
            note(
                "script_mismatch",
                "less than half of the script was heard in the audio: check that it is the script that was read",
            )
        )
    return result
