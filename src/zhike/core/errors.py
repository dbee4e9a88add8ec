"""User-facing errors. Each carries the field it is about so the API and CLI can name it, and a stable machine
`code` (one of `ErrorCode`) that says what went wrong, so clients can say it in the user's language."""

from __future__ import annotations

import errno
import re
import sqlite3
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

_ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+([\w.@+-]+)")


class ErrorCode(StrEnum):
    """Every `code` (and `type`) an error body can carry. The web studio has a zh/en sentence for each
    (src/zhike/web/errors.js; tests/test_api_contract.py checks both lists agree).

    The first group are the error classes' own codes: the API sends the class's code as `type` (stable per
    class), and as `code` where the raise site names nothing more specific."""

    # -- classes (also `type`) -------------------------------------------------------------------------------
    BAD_REQUEST = "bad_request"
    INVALID_INPUT = "invalid_input"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    MODEL_ERROR = "model_error"
    CONFLICT = "conflict"
    CONTENT_POLICY = "content_policy"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    TOO_MANY_REQUESTS = "too_many_requests"
    GENERATION_FAILED = "generation_failed"
    INVALID_TEMPLATE = "invalid_template"
    RENDER_ERROR = "render_error"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    HTTP_ERROR = "http_error"
    INTERNAL_ERROR = "internal_error"
    WORKER_LOST = "worker_lost"
    DATABASE_SCHEMA = "database_schema"
    SERVER_BUSY = "server_busy"  # too many large images being decoded at once (Retry-After)
    STORAGE_FULL = "storage_full"
    # -- requests ---------------------------------------------------------------------------------------------
    VALIDATION_FAILED = "validation_failed"  # with pydantic's `kind` and `ctx` (e.g. less_than_equal, {"le": 150})
    INVALID_JSON = "invalid_json"
    REQUEST_TOO_LARGE = "request_too_large"
    UNKNOWN_OPERATION = "unknown_operation"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    # -- sign-in and permissions ------------------------------------------------------------------------------
    NOT_AUTHENTICATED = "not_authenticated"
    API_KEY_INVALID = "api_key_invalid"
    SESSION_EXPIRED = "session_expired"
    USER_REQUIRED = "user_required"
    CSRF_MISSING = "csrf_missing"
    ADMIN_ONLY = "admin_only"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    # -- uploads and images -----------------------------------------------------------------------------------
    FILE_MISSING = "file_missing"
    FILE_EMPTY = "file_empty"
    FILE_TOO_LARGE = "file_too_large"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_DAMAGED = "image_damaged"
    IMAGE_NOT_RASTER = "image_not_raster"  # SVG, PDF, EPS: export as PNG or JPEG
    UPLOADS_BUSY = "uploads_busy"  # the user's own large images being decoded are at their share
    # -- jobs and assets --------------------------------------------------------------------------------------
    JOB_NOT_FOUND = "job_not_found"
    JOB_NOT_RETRYABLE = "job_not_retryable"
    JOB_NO_PREVIEW = "job_no_preview"
    JOB_NO_ARCHIVE = "job_no_archive"
    JOB_NOT_FINISHED = "job_not_finished"
    TOO_MANY_JOBS = "too_many_jobs"  # the owner's queued + running jobs are at `max_queued_per_owner`
    TOO_MANY_FOLLOWERS = "too_many_followers"  # the owner's open event streams + long polls are at the limit
    GENERATION_TIMEOUT = "generation_timeout"
    ASSET_NOT_FOUND = "asset_not_found"
    LINK_INVALID = "link_invalid"
    INVALID_DATE = "invalid_date"
    MASK_EMPTY = "mask_empty"
    # -- models -----------------------------------------------------------------------------------------------
    MODEL_NOT_INSTALLED = "model_not_installed"
    NO_IMAGE_MODEL = "no_image_model"
    MODEL_WRONG_KIND = "model_wrong_kind"
    MODEL_WRONG_FAMILY = "model_wrong_family"
    MODEL_EMBEDDED = "model_embedded"
    MODEL_NAME_INVALID = "model_name_invalid"
    MODEL_NAME_TAKEN = "model_name_taken"
    MODEL_PATH_MISSING = "model_path_missing"
    DOWNLOADS_DISABLED = "downloads_disabled"
    DOWNLOAD_OFFLINE = "download_offline"
    PRESET_UNKNOWN = "preset_unknown"
    # -- accounts ---------------------------------------------------------------------------------------------
    USERNAME_INVALID = "username_invalid"
    PASSWORD_LENGTH = "password_length"
    USERNAME_TAKEN = "username_taken"
    USER_NOT_FOUND = "user_not_found"
    LAST_ADMIN = "last_admin"
    KEY_NOT_FOUND = "key_not_found"
    # -- safety -----------------------------------------------------------------------------------------------
    IMAGE_WITHHELD = "image_withheld"
    TERM_EXISTS = "term_exists"
    TERM_NOT_FOUND = "term_not_found"
    # -- brand kit and stock library ----------------------------------------------------------------------------
    COLOUR_INVALID = "colour_invalid"  # a brand colour that is not #rrggbb (field: colors.primary, ...)
    FONT_UNKNOWN = "font_unknown"  # a brand font that is not installed (field: fonts.heading, ...)
    FOLDER_NOT_FOUND = "folder_not_found"
    FOLDER_NAME_TAKEN = "folder_name_taken"
    TOO_MANY_FOLDERS = "too_many_folders"
    STOCK_NOT_FOUND = "stock_not_found"  # no bundled stock item with that id
    # -- templates --------------------------------------------------------------------------------------------
    TEMPLATE_NOT_FOUND = "template_not_found"
    TEMPLATE_READ_ONLY = "template_read_only"
    TOO_MANY_TEMPLATES = "too_many_templates"
    DATA_TOO_LARGE = "data_too_large"  # a data file past a limit: ctx {"what": rows|columns|cells|..., "limit"}
    UNSAFE_XML = "unsafe_xml"  # a DTD or entity declaration in a workbook part (XML bombs)
    METADATA_TOO_LARGE = "metadata_too_large"  # a file's XMP or chunk structure past what a label check reads
    TEMPLATE_JSON_INVALID = "template_json_invalid"
    TEMPLATE_MISSING = "template_missing"  # neither a template id nor template JSON
    TEMPLATE_NEEDS_MODEL = "template_needs_model"  # a generated layer and no image model
    # -- data files (batch design): ctx names the row / column / line where one is known --------------------------
    DATA_EMPTY = "data_empty"
    DATA_FILE_MISSING = "data_file_missing"
    DATA_ENCODING = "data_encoding"  # neither UTF-8 nor GBK
    DATA_CSV_INVALID = "data_csv_invalid"
    DATA_JSON_INVALID = "data_json_invalid"
    DATA_JSON_SHAPE = "data_json_shape"
    DATA_CELL_TYPE = "data_cell_type"
    DATA_NO_HEADER = "data_no_header"
    DATA_ROW_TOO_LONG = "data_row_too_long"
    DATA_HEADER_UNNAMED = "data_header_unnamed"
    DATA_HEADER_TWICE = "data_header_twice"
    DATA_HEADER_LONG = "data_header_long"
    XLSX_INVALID = "xlsx_invalid"
    XLSX_NO_SHEET = "xlsx_no_sheet"
    ARCHIVE_INVALID = "archive_invalid"  # a photo ZIP that is not a readable ZIP
    ARCHIVE_UNSAFE = "archive_unsafe"  # ctx what: path (climbs out of the archive) | nested (an archive inside)
    # -- knowledge-base documents (zhike/kb/parse.py; field "file", ctx name = the file's name) -------------------
    DOCUMENT_EMPTY = "document_empty"  # no text in it (a scanned PDF holds only pictures)
    DOCUMENT_TOO_LARGE = "document_too_large"  # ctx what: bytes | pages | chars, limit
    DOCUMENT_ENCRYPTED = "document_encrypted"  # a password-protected PDF or Office file
    DOCUMENT_NOT_TEXT = "document_not_text"  # binary data under a text name (.txt/.md/.csv)
    DOCUMENT_UNSUPPORTED = "document_unsupported"  # ctx suffix
    DOCUMENT_BOMB = "document_bomb"  # ctx what: inflated_bytes | zip_ratio | zip_members | xml_entities | seconds
    DOCUMENT_DAMAGED = "document_damaged"  # a PDF/DOCX that does not read as one
    # -- knowledge bases (services/kb.py, api/routes/kb.py) ------------------------------------------------------
    KB_NOT_FOUND = "kb_not_found"  # also another owner's: 404, never 403
    KB_NAME_TAKEN = "kb_name_taken"  # ctx name
    TOO_MANY_KBS = "too_many_kbs"  # limit
    KB_DOCUMENT_NOT_FOUND = "kb_document_not_found"
    TOO_MANY_KB_DOCUMENTS = "too_many_kb_documents"  # limit
    KB_CONVERSATION_NOT_FOUND = "kb_conversation_not_found"
    KB_EMPTY = "kb_empty"  # asking a knowledge base that has no documents yet
    KB_NOT_READY = "kb_not_ready"  # it has documents, but none indexed yet (still indexing, or failed): 409
    KB_BUSY = "kb_busy"  # the owner's questions or uploads in progress at their limit (429, Retry-After); ctx what
    DOCUMENT_TIMEOUT = "document_timeout"  # reading and indexing took longer than kb_ingest_seconds; ctx seconds
    KB_INDEX_INTERRUPTED = "kb_index_interrupted"  # a document's background indexing died `limit` times
    # -- language models (backends/llm) and the chat API (/v1/chat/completions); field "llm" or the request's --------
    MODEL_NOT_FOUND = "model_not_found"  # no LLM of that name (ctx name)
    LLM_REMOTE_NOT_CONFIGURED = "llm_remote_not_configured"  # "remote" asked for, llm_remote_url unset
    LLM_UNREACHABLE = "llm_unreachable"  # the remote server is down, refused or its name does not resolve (ctx url)
    LLM_TIMEOUT = "llm_timeout"  # it accepted the request but sent nothing within llm_timeout_seconds (ctx url)
    LLM_AUTH_FAILED = "llm_auth_failed"  # it refused llm_remote_key (401/403; ctx status)
    LLM_REMOTE_ERROR = "llm_remote_error"  # it answered with an error (ctx status) or broke off the answer
    LLM_PROMPT_TOO_LONG = "llm_prompt_too_long"  # prompt + max_tokens > a local model's context (ctx tokens, limit)
    CHAT_N_UNSUPPORTED = "chat_n_unsupported"  # n > 1
    CHAT_TOO_MANY_MESSAGES = "chat_too_many_messages"  # limit
    CHAT_MESSAGE_TOO_LARGE = "chat_message_too_large"  # field messages.N.content, limit (characters)
    CHAT_BUSY = "chat_busy"  # the owner's generations running at once are at chat_per_user (limit)
    # -- copy (ops/product_copy.py, ops/marketing_copy.py; styles in zhike/words/data) ------------------------------
    STYLE_UNKNOWN = "style_unknown"  # no platform style, tone or length of that id (ctx name, known)
    COPY_BRIEF_MISSING = "copy_brief_missing"  # marketing copy with neither a product name nor a brief
    # -- images and tools ---------------------------------------------------------------------------------------
    NOT_AN_IMAGE = "not_an_image"
    ASSET_NOT_IMAGE = "asset_not_image"  # a text asset where an image is needed (field names which)
    IMAGE_FORMAT_UNSUPPORTED = "image_format_unsupported"
    IMAGE_FLOAT_UNSUPPORTED = "image_float_unsupported"
    NO_FACE_FOUND = "no_face_found"
    MANY_FACES = "many_faces"
    NO_PERSON_FOUND = "no_person_found"
    LOGO_NEEDS_PLAIN_BACKGROUND = "logo_needs_plain_background"
    NO_MATTING_MODEL = "no_matting_model"
    MODEL_FILE_INVALID = "model_file_invalid"  # a user's model file that is not what its kind needs
    BACKGROUND_CONFLICT = "background_conflict"
    NOTHING_TO_EXTEND = "nothing_to_extend"
    OUTPUT_TOO_LARGE = "output_too_large"  # ctx width, height, max (px per side)
    OUTPUT_TOO_MANY_PIXELS = "output_too_many_pixels"  # ctx width, height, mp
    MASK_NEEDS_IMAGE = "mask_needs_image"
    VERIFY_FORMAT_UNSUPPORTED = "verify_format_unsupported"
    VERIFY_FILE_DAMAGED = "verify_file_damaged"  # a text export to verify (DOCX, PDF) that cannot be read
    HEAVY_BUSY = "heavy_busy"  # the owner's previews / label checks / data files at their share
    MODEL_LOAD_FAILED = "model_load_failed"  # a registered model's files would not load (moved, damaged)
    # -- audio and video (zhike/media; field names the input; ctx name = the file or asset) ----------------------
    MEDIA_FAILED = "media_failed"  # ffmpeg failed on our own work (ctx detail: its last stderr lines)
    MEDIA_TOOLS_MISSING = "media_tools_missing"  # ffmpeg/ffprobe not installed on the server
    MEDIA_DAMAGED = "media_damaged"  # not a readable audio/video/subtitle file (corrupt, truncated, wrong type)
    MEDIA_TOO_LONG = "media_too_long"  # ctx seconds, limit (seconds)
    MEDIA_SILENT = "media_silent"  # audio whose loudest moment is below the silence threshold (ctx db)
    MEDIA_NO_STREAM = "media_no_stream"  # ctx what: audio | video (e.g. a video without sound where a voice is needed)
    MEDIA_FORMAT_UNSUPPORTED = "media_format_unsupported"  # a video format uploads do not take (ctx format)
    ASSET_WRONG_KIND = "asset_wrong_kind"  # ctx id, kind (what it is), expected (what the field takes)
    VIDEO_SIZE_UNSUPPORTED = "video_size_unsupported"  # per-frame video ops: over 1080p or tiny (ctx width, height)
    CHROMA_KEY_UNCLEAR = "chroma_key_unclear"  # video_cutout: the screen colour is too grey to key (ctx colour)
    # -- voice (ops/tts.py, backends/tts; field "voice" unless said) ---------------------------------------------
    VOICE_UNKNOWN = "voice_unknown"  # ctx name
    VOICE_LANGUAGE = "voice_language"  # the voice speaks another language than the text (ctx name, language)
    VOICE_ENGINE_MISSING = "voice_engine_missing"  # optional engine (Piper) absent (ctx name, engine, install)
    TEXT_EMPTY = "text_empty"  # nothing speakable in the text (field text or text_asset)
    TTS_REMOTE_NOT_CONFIGURED = "tts_remote_not_configured"  # voice "remote" and no tts_remote_url
    TTS_UNREACHABLE = "tts_unreachable"  # the voice server is down or refused (ctx url)
    TTS_TIMEOUT = "tts_timeout"  # it took longer than tts_timeout_seconds (ctx url)
    TTS_REMOTE_ERROR = "tts_remote_error"  # it answered an error or no usable audio (ctx url)
    # -- subtitles (ops/subtitles.py; field params.audio / params.script_asset) ------------------------------------
    NO_SPEECH = "no_speech"  # the recogniser heard no word in the audio (music only, noise)
    SCRIPT_TOO_LONG = "script_too_long"  # a script text asset over the limit (ctx chars, limit)
    TOO_MANY_SCENES = "too_many_scenes"  # script_video: more scenes than allowed (ctx scenes, limit)
    # -- music (ops/music.py, zhike/music) --------------------------------------------------------------------------
    MUSIC_TOO_LONG = "music_too_long"  # longer than the MusicGen model makes at once (field params.duration; ctx limit)
    MUSIC_TOOLS_MISSING = "music_tools_missing"  # fluidsynth or the GM soundfont not installed (ctx name)
    # -- downloads (GET /api/v1/assets/{id}/file) ---------------------------------------------------------------
    FORMAT_INVALID = "format_invalid"
    SIZE_INVALID = "size_invalid"
    FIT_INVALID = "fit_invalid"
    # -- admin and settings -------------------------------------------------------------------------------------
    CHOICE_INVALID = "choice_invalid"  # ctx choices
    NAME_LENGTH = "name_length"  # limit
    TERM_INVALID = "term_invalid"
    POLICY_NAME_INVALID = "policy_name_invalid"
    CONTENT_REFUSED = "content_refused"  # ctx policy_zh, policy_en
    PRESET_READ_ONLY = "preset_read_only"
    FONT_NOT_FOUND = "font_not_found"


class ZhikeError(Exception):
    """An error whose message is meant for the user. `status` is the HTTP status the API answers with.

    `code` on the class is the class's code (sent as `type`); a raise site passes `code=` for a specific one
    (sent as `code`). `fields` names several fields where one value cannot be blamed alone."""

    status: int = 400
    code: str = ErrorCode.BAD_REQUEST

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        fields: list[str] | None = None,
        limit: Any = None,
        kind: str | None = None,
        ctx: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = str(type(self).code)
        self.code = str(code or self.type)
        self.field = field
        self.fields = fields
        self.limit = limit
        # For validation errors: pydantic's error type and its context (e.g. "less_than_equal", {"le": 2048});
        # for other codes, the values their sentence names ({"name": ...}).
        self.kind = kind
        self.ctx = ctx

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "type": self.type, "message": self.message}
        for name in ("field", "fields", "limit", "kind", "ctx"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


def plain_ctx(ctx: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON-safe part of a pydantic error context (limits, expected values; not exception objects)."""
    if not ctx:
        return None
    out = {k: v for k, v in ctx.items() if isinstance(v, str | int | float | bool)}
    return out or None


class InvalidInput(ZhikeError):
    status = 422
    code = "invalid_input"


class NotFound(ZhikeError):
    status = 404
    code = "not_found"


class TooLarge(ZhikeError):
    status = 413
    code = "too_large"


class UnsupportedMedia(ZhikeError):
    status = 415
    code = "unsupported_media_type"


class ModelError(ZhikeError):
    """A model cannot be registered or loaded (bad file, unsupported family, offline download)."""

    status = 422
    code = "model_error"


class MediaFailed(ZhikeError):
    """ffmpeg failed on a file Zhike made or had already checked (a bug or a resource problem, not the user's
    input): 500 with ffmpeg's last lines in ctx detail."""

    status = 500
    code = "media_failed"


class Conflict(ZhikeError):
    status = 409
    code = "conflict"


class ContentRefused(ZhikeError):
    """A request or its result falls under a content policy; `limit` names the policy, never the matched term."""

    status = 422
    code = "content_policy"


class StorageFull(ZhikeError):
    """The server ran out of space (disk full, quota, file size limit): nothing was stored, and it works again
    once space is freed. 507 Insufficient Storage."""

    status = 507
    code = "storage_full"


STORAGE_FULL_MESSAGE = (
    "the server's storage is full: nothing was saved; try again once the administrator has freed disk space / "
    "服务器存储空间已满，未保存任何内容，请管理员清理磁盘后再试"
)
# What a write says when there is no room: disk full, quota exceeded, file size limit (RLIMIT_FSIZE).
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def storage_full(e: BaseException) -> StorageFull | None:
    """The user error for a write that failed for want of space, else None. Looks through the exceptions `e` was
    raised from (SQLAlchemy wraps SQLite's own "database or disk is full" as `.orig`)."""
    seen: BaseException | None = e
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in NO_SPACE_ERRNOS:
            return StorageFull(STORAGE_FULL_MESSAGE)
        if isinstance(seen, sqlite3.Error) and getattr(seen, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return StorageFull(STORAGE_FULL_MESSAGE)
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return None


class TooManyRequests(ZhikeError):
    """The caller holds too much of a shared resource at once (queued jobs, open waits); 429."""

    status = 429
    code = "too_many_requests"


class JobCancelled(Exception):
    """Raised inside an operation when its job was cancelled; not an error for the user."""


def asset_wrong_kind(asset_id: str, field: str, kind: str, expected: str) -> InvalidInput:
    """422 asset_wrong_kind: an asset of another kind (image, text, audio, video, subtitles) than `field` takes
    (`expected`, e.g. "audio or video")."""
    return InvalidInput(
        f"{field}: asset {asset_id!r} is {kind}; {expected} is needed here",
        code="asset_wrong_kind",
        field=field,
        ctx={"id": asset_id, "kind": kind, "expected": expected},
    )


def hide_paths(message: str) -> str:
    """A message for users without the server's directory layout: absolute paths become their last part."""
    return _ABS_PATH.sub(lambda m: m.group(1), message)


def validation_message(e: ValidationError, prefix: str) -> InvalidInput:
    """The first pydantic error as a user error naming its field, e.g. `params.width`."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    msg = err["msg"].removeprefix("Value error, ")
    if err.get("type") == "missing":
        msg = "this field is required"
    limit = (err.get("ctx") or {}).get("le") or (err.get("ctx") or {}).get("max_length")
    return InvalidInput(
        f"{loc}: {msg}",
        code="validation_failed",
        field=loc,
        limit=limit,
        kind=err.get("type"),
        ctx=plain_ctx(err.get("ctx")),
    )
