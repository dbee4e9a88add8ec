"""The services one Zhike process uses, built from Settings. Cheap to build: nothing is loaded here."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine

from zhike.core.context import PrepareEnv
from zhike.core.errors import InvalidInput, validation_message
from zhike.core.registry import get_op
from zhike.core.rows import JobRow
from zhike.media.limits import MediaLimits
from zhike.models.manager import ModelManager
from zhike.provenance.service import LabelService
from zhike.services.assets.blobs import BlobStore
from zhike.services.assets.service import AssetService, image_refs
from zhike.services.brand import BrandStore
from zhike.services.catalog import ModelCatalog
from zhike.services.engine import get_engine
from zhike.services.exports import ExportService
from zhike.services.images import DECODING
from zhike.services.jobs.queue import JobQueue
from zhike.services.keys import KeyService
from zhike.services.presets import PresetStore
from zhike.services.safety import PromptSafety
from zhike.services.stock import StockLibrary
from zhike.services.templates import TemplateStore
from zhike.services.users import LoginThrottle, UserService
from zhike.settings import Settings

if TYPE_CHECKING:
    from zhike.services.kb import KnowledgeBases
    from zhike.services.kb_ask import KbAnswers


@dataclass
class Zhike:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        self.settings.ensure_dirs()
        return get_engine(self.settings.db_url)

    @cached_property
    def assets(self) -> AssetService:
        s = self.settings  # the decode budget is process-wide: one Zhike per process sets it
        DECODING.configure(s.decode_pixels_in_flight, s.decode_pixels_per_user, s.decode_wait_seconds)
        return AssetService(
            self.engine,
            BlobStore(self.settings.assets_dir),
            max_upload_bytes=int(self.settings.max_upload_mb * 1e6),
            media_limits=MediaLimits.from_settings(self.settings),
            max_pixels=self.settings.max_image_pixels,
        )

    @cached_property
    def catalog(self) -> ModelCatalog:
        return ModelCatalog(
            self.engine,
            self.settings.models_dir,
            allow_downloads=self.settings.allow_downloads,
            embedded_dir=self.settings.embedded_path,
        )

    @cached_property
    def jobs(self) -> JobQueue:
        return JobQueue(self.engine, max_active_per_owner=self.settings.max_queued_per_owner)

    @cached_property
    def models(self) -> ModelManager:
        # The loader registry is cheap to import (its backends are imported at the first load, in the worker).
        from zhike.backends.loaders import ModelLoaders
        from zhike.backends.speed import SpeedSettings

        s = self.settings
        loaders = ModelLoaders(
            device_setting=s.device,
            cpu_offload=s.cpu_offload,
            configs_root=s.models_dir / "_configs",
            converted_root=s.models_dir / "_converted",
            llm_quantize=s.llm_cpu_quantize,
            speed=SpeedSettings(
                compile=s.compile,
                compile_mode=s.compile_mode,
                compile_backend=s.compile_backend,
                cache_dir=s.torch_cache_dir,
            ),
        )
        return ModelManager(self.catalog, loaders, cache_bytes=int(self.settings.model_cache_gb * 1e9))

    @cached_property
    def presets(self) -> PresetStore:
        return PresetStore(self.settings.home / "presets")

    @cached_property
    def templates(self) -> TemplateStore:
        return TemplateStore(self.engine)

    @cached_property
    def brand(self) -> BrandStore:
        return BrandStore(self.engine, self.assets)

    @cached_property
    def stock(self) -> StockLibrary:
        return StockLibrary(self.engine)

    @cached_property
    def kb(self) -> KnowledgeBases:
        # Imported here: the knowledge base brings numpy, jieba and the embedder, which most commands never need.
        from zhike.backends.embeddings import open_embedder
        from zhike.services.kb import KnowledgeBases

        return KnowledgeBases(self.engine, self.settings, lambda: open_embedder(self.models))

    @cached_property
    def kb_answers(self) -> KbAnswers:
        from zhike.services.kb_ask import KbAnswers

        return KbAnswers(self.kb, self.models, self.safety)

    @cached_property
    def keys(self) -> KeyService:
        return KeyService(self.engine)

    @cached_property
    def users(self) -> UserService:
        return UserService(self.engine)

    @cached_property
    def login_throttle(self) -> LoginThrottle:
        return LoginThrottle(self.settings.login_max_failures, self.settings.login_window_seconds)

    @cached_property
    def secret(self) -> bytes:
        """Per-deployment secret for signed URLs, created on first use."""
        path = self.settings.secret_path
        self.settings.ensure_dirs()
        if not path.exists():
            path.write_bytes(secrets.token_bytes(32))
            path.chmod(0o600)
        return path.read_bytes()

    def validate(self, op_name: str, raw_params: Any) -> tuple[Any, BaseModel]:
        """The operation and its validated params (defaults filled, nothing resolved yet)."""
        op = get_op(op_name)
        if not isinstance(raw_params, dict):
            raise InvalidInput(
                "params must be a JSON object", code="validation_failed", field="params", kind="dict_type"
            )
        try:
            return op, op.params_model.model_validate(raw_params)
        except ValidationError as e:
            raise validation_message(e, "params") from e

    @cached_property
    def labels(self) -> LabelService:
        return LabelService.from_settings(self.settings, secret=self.secret, read_bytes=self.assets.read_bytes)

    @cached_property
    def exports(self) -> ExportService:
        return ExportService(self.assets, self.labels, self.settings.home / "exports")

    @cached_property
    def safety(self) -> PromptSafety:
        return PromptSafety(
            self.engine, enabled=self.settings.prompt_safety, image_checker=self.settings.image_safety_checker
        )

    def submit(
        self,
        op_name: str,
        raw_params: Any,
        owner_id: str,
        idempotency_key: str | None = None,
        *,
        safety_override: bool = False,
    ) -> tuple[JobRow, bool]:
        """Validate, resolve and queue. Returns (job row, created); a repeated Idempotency-Key returns the first.

        The idempotency hash covers the validated request before resolution, so a retry that leaves the seed
        random (empty or -1) matches the first job instead of drawing a new seed.
        """
        if idempotency_key is not None and not (0 < len(idempotency_key) <= 200):
            raise InvalidInput(
                "Idempotency-Key must be 1-200 characters",
                code="validation_failed",
                field="Idempotency-Key",
                limit=200,
                kind="string_too_long",
                ctx={"max_length": 200},
            )
        op, params = self.validate(op_name, raw_params)
        request_hash = hashlib.sha256(
            json.dumps({"op": op.name, "params": params.model_dump(mode="json")}, sort_keys=True).encode()
        ).hexdigest()
        if idempotency_key is not None:
            existing = self.jobs.by_idempotency(owner_id, idempotency_key)
            if existing is not None:
                return self.jobs.same_request(existing, request_hash), False
        # A text asset where an image is needed: 422 asset_not_image before any op reads its (absent) size.
        self.assets.require_images(image_refs(params), owner_id=owner_id)
        if op.prepare is not None:
            # Resolve what must be fixed for reproducibility (random seed, default model) and check references.
            env = PrepareEnv(
                self.settings, owner_id, self.catalog, self.assets, self.presets, self.templates, self.brand
            )
            params = op.prepare(env, params)
        # Screened once resolved (a preset's words, a batch template's prompts filled from its rows) and before
        # anything is stored; `safety_override` is only passed for admins.
        self.safety.screen(op.name, params, owner_id, override=safety_override)
        return self.jobs.submit(
            op=op.name,
            op_version=op.version,
            params=params.model_dump(mode="json"),
            owner_id=owner_id,
            request_hash=request_hash,
            idempotency_key=idempotency_key,
            lane=op.job_lane(params),
        )
