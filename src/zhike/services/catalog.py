"""The model catalogue: rows of the models table (register, list, remove) beside the embedded models on disk.

Inspects files (backends.checkpoint_inspect reads headers only); never loads weights.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from zhike.core.errors import Conflict, InvalidInput, ModelError, NotFound
from zhike.core.specs import ModelSpec
from zhike.services.db import models, utcnow

REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
NAME_RE = re.compile(r"^[\w.\-\u4e00-\u9fff]{1,100}$")
# What image generation uses when no model is named (backends.diffusion registers these loaders); other
# families are registered and refused clearly by the loader registry when a job names them.
LOADABLE = {("checkpoint", "sd15"), ("checkpoint", "sdxl")}


def file_sha256(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    return h.hexdigest()


def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class ModelCatalog:
    def __init__(
        self, engine: Engine, models_dir: Path, *, allow_downloads: bool = True, embedded_dir: Path | None = None
    ) -> None:
        self.engine = engine
        self.models_dir = models_dir
        self.allow_downloads = allow_downloads
        self.embedded_dir = embedded_dir

    def embedded(self) -> list[ModelSpec]:
        """Embedded models present on disk (fetched from the registries); listed beside registered ones."""
        from zhike.models.embedded import embedded_specs

        return embedded_specs(self.embedded_dir) if self.embedded_dir else []

    def list(self) -> list[ModelSpec]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(models).order_by(models.c.name)).mappings()
            registered = [ModelSpec.from_row(dict(r)) for r in rows]
        names = {s.name for s in registered}
        return registered + [s for s in self.embedded() if s.name not in names]

    def get(self, name: str, *, field: str = "model") -> ModelSpec:
        with self.engine.connect() as conn:
            row = conn.execute(select(models).where(models.c.name == name)).mappings().first()
        if row is None:
            for spec in self.embedded():
                if spec.name == name:
                    return spec
            known = ", ".join(m.name for m in self.list()) or "none registered; add one with `zhike models add PATH`"
            raise InvalidInput(
                f"unknown model {name!r}; available: {known}",
                code="model_not_installed",
                field=field,
                ctx={"name": name},
            )
        return ModelSpec.from_row(dict(row))

    def default_checkpoint(self, *, field: str = "model", inpainting: bool = False) -> ModelSpec:
        """The model used when a request names none: the first loadable checkpoint that can do the job.

        Inpainting checkpoints (9-channel UNet) only inpaint; for edits they are preferred over base models.
        """
        loadable = [s for s in self.list() if (s.kind, s.family) in LOADABLE]
        if inpainting:
            loadable.sort(key=lambda s: s.variant != "inpaint")
        else:
            loadable = [s for s in loadable if s.variant != "inpaint"]
        if loadable:
            return loadable[0]
        raise InvalidInput(
            "no image model is installed; add one with `zhike models add PATH` "
            "(a diffusers folder or a .safetensors checkpoint of SD 1.5 or SDXL)",
            code="no_image_model",
            field=field,
        )

    def remove(self, name: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(delete(models).where(models.c.name == name)).rowcount == 0:
                if any(s.name == name for s in self.embedded()):
                    raise InvalidInput(
                        f"{name!r} is embedded (shipped with Zhike) and cannot be removed",
                        code="model_embedded",
                        field="name",
                        ctx={"name": name},
                    )
                raise NotFound(f"unknown model {name!r}", code="model_not_installed", field="name", ctx={"name": name})

    def add(
        self,
        source: str,
        *,
        name: str | None = None,
        config_dir: str | None = None,
        embedded: bool = False,
        family: str | None = None,
        on_hash_bytes: Callable[[int], None] | None = None,
    ) -> ModelSpec:
        """Register a model from a local path or a hub repo id (downloaded when the machine can)."""
        from zhike.backends.checkpoint_inspect import CheckpointError, inspect_checkpoint

        path = Path(source).expanduser()
        if not path.exists() and REPO_ID_RE.match(source):
            path = self._download(source, name)
        if not path.exists():
            raise ModelError(
                f"no file or folder at {source!r}", code="model_path_missing", field="path", ctx={"path": source}
            )
        path = path.resolve()
        try:
            info = inspect_checkpoint(path)
        except CheckpointError as e:
            raise ModelError(str(e), field="path") from e
        name = name or (path.stem if path.is_file() else path.name)
        if not NAME_RE.match(name):
            raise InvalidInput(
                "model names use letters, digits, Chinese, '.', '_' or '-' (1-100 chars)",
                code="model_name_invalid",
                field="name",
            )
        cfg = None
        if config_dir:
            cfg = Path(config_dir).expanduser().resolve()
            if not (cfg / "model_index.json").is_file():
                raise ModelError(f"config folder {config_dir!r} has no model_index.json", field="config")
        sha = file_sha256(path, on_hash_bytes) if path.is_file() else None
        row: dict[str, Any] = {
            "name": name,
            "path": str(path),
            "source": source,
            "format": info.format,
            "kind": info.kind,
            "family": family or info.family,  # the user's word wins where headers cannot tell
            "variant": info.variant,
            "config_dir": str(cfg) if cfg else None,
            "size_bytes": _dir_size(path),
            "sha256": sha,
            "embedded": embedded,
            "added_at": utcnow(),
        }
        with self.engine.begin() as conn:
            if conn.execute(select(models.c.name).where(models.c.name == name)).first():
                raise Conflict(
                    f"a model named {name!r} exists; pick another --name or remove it first",
                    code="model_name_taken",
                    field="name",
                    ctx={"name": name},
                )
            conn.execute(insert(models).values(**row))
        return ModelSpec.from_row(row)

    def _download(self, repo_id: str, name: str | None) -> Path:
        fix = (
            f"On a machine with internet run `huggingface-cli download {repo_id} --local-dir DIR`, copy DIR here "
            "and run `zhike models add DIR`."
        )
        if not self.allow_downloads:
            raise ModelError(
                f"downloads are switched off (ZHIKE_ALLOW_DOWNLOADS=0). {fix}", code="downloads_disabled", field="path"
            )
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
            raise ModelError(
                f"cannot download {repo_id!r}: this machine is offline for the Hugging Face hub (HF_HUB_OFFLINE=1). "
                + fix,
                code="download_offline",
                field="path",
                ctx={"name": repo_id},
            )
        from huggingface_hub import snapshot_download

        dest = self.models_dir / (name or repo_id.replace("/", "--"))
        try:
            snapshot_download(
                repo_id,
                local_dir=dest,
                allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model", "tokenizer*/*"],
                ignore_patterns=["*.fp16.safetensors", "*ema*", "*.ckpt", "*.bin"],
            )
        except Exception as e:  # noqa: BLE001 - every hub failure means the same thing to the user
            raise ModelError(f"cannot download {repo_id!r}: {type(e).__name__}: {e}. {fix}", field="path") from e
        return dest
