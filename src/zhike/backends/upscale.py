"""Super-resolution: Real-ESRGAN through ncnn (embedded weights) and user upscalers through spandrel, tiled.

Both loaders return an `Upscaler`: `model(x)` maps a (3, h, w) float32 array in 0..1 to (3, h*s, w*s).
`upscale_tiled` cuts the image into overlapping tiles (bounded memory, progress per tile), runs each under the
model's lock (one ncnn net or torch module is shared by all jobs) and blends the tiles over the middle of each
shared band, so every blended pixel had context on both sides and no seam line shows.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import os
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from zhike.backends.loaders import LoadEnv, loader
from zhike.core.specs import ModelSpec

# ncnn's Real-ESRGAN graphs: input blob `data` (RGB 0..1), output `output`.
NCNN_IN, NCNN_OUT = "data", "output"
SPANDREL_SUFFIXES = (".safetensors", ".sft", ".pth", ".pt", ".ckpt", ".bin")


class Upscaler(Protocol):
    scale: int  # the model's own factor
    nbytes: int  # for the ModelManager's cache budget
    tileable: bool  # False: the architecture tiles internally, run whole images
    lock: threading.Lock  # held per tile: one net/module is shared by concurrent jobs

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class UpscalerError(ValueError):
    """A file that is not a usable upscaler; the message is meant for the user."""


def cpu_threads() -> int:
    # the cores this process may use (containers and taskset limit them below os.cpu_count())
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class NcnnUpscaler:
    net: Any  # ncnn.Net
    scale: int
    nbytes: int
    name: str = ""
    tileable: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import ncnn

        x = np.ascontiguousarray(x, dtype=np.float32)  # ncnn.Mat wraps this memory: keep it alive until extract
        ex = self.net.create_extractor()
        ex.input(NCNN_IN, ncnn.Mat(x))
        ret, out = ex.extract(NCNN_OUT)
        if ret != 0:
            raise RuntimeError(f"ncnn inference failed (code {ret})")
        return np.array(out, dtype=np.float32, copy=True)


def load_ncnn_upscaler(spec: Any, *, threads: int | None = None) -> NcnnUpscaler:
    """A Real-ESRGAN ncnn model from a folder with `model.param` and `model.bin`; scale from `spec.variant`."""
    if "ncnn" not in sys.modules:
        # The ncnn wheel's own libgomp spins between layers; when other processes share the cores, the spinning
        # thread starves the working one (x4plus measured 4-6x slower). PASSIVE costs ~5% uncontended. libgomp
        # reads this once, when ncnn loads; a value the user set wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import ncnn

    folder = Path(spec.path)
    param, weights = folder / "model.param", folder / "model.bin"
    if not (param.is_file() and weights.is_file()):
        raise UpscalerError(f"{folder} needs model.param and model.bin (ncnn)")
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False  # CPU only: no GPU driver is assumed
    net.opt.num_threads = threads or cpu_threads()
    net.opt.openmp_blocktime = 0  # the same "don't spin" for ncnn builds on LLVM OpenMP
    if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
        raise UpscalerError(f"ncnn could not read {folder}")
    variant = str(getattr(spec, "variant", "") or "")
    if not (variant.startswith("x") and variant[1:].isdigit()):
        raise UpscalerError(f"{getattr(spec, 'name', folder)}: no scale in variant {variant!r} (expected x2, x4)")
    return NcnnUpscaler(net=net, scale=int(variant[1:]), nbytes=weights.stat().st_size, name=str(spec.name))


@loader(kind="upscaler", format="ncnn")
def _load_registered_ncnn(spec: ModelSpec, env: LoadEnv) -> NcnnUpscaler:
    return load_ncnn_upscaler(spec)


# -- spandrel ----------------------------------------------------------------------------------------------
_spandrel_lock = threading.Lock()


def _missing_torchvision(*_: Any, **__: Any) -> Any:
    raise RuntimeError("this model architecture needs torchvision, which is not installed")


def import_spandrel() -> types.ModuleType:
    """`import spandrel`, which works without torchvision.

    spandrel's registry imports every architecture, and two of them (LaMa inpainting, RestoreFormer faces; no
    upscalers) import torchvision names at module level. When torchvision is absent, stand-in modules are put
    in sys.modules only while spandrel is imported and taken out right after, so no other library sees a fake
    torchvision; the stand-in functions raise a clear error if one of those two architectures ever runs.
    """
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    with _spandrel_lock:
        if importlib.util.find_spec("torchvision") is not None:
            import spandrel

            return spandrel
        names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
        stubs = {n: types.ModuleType(n) for n in names}
        for n, m in stubs.items():
            m.__spec__ = importlib.machinery.ModuleSpec(n, None, is_package=n != names[-1])
            m.__path__ = []  # type: ignore[attr-defined]
        functional = stubs[names[-1]]
        functional.InterpolationMode = Enum("InterpolationMode", "NEAREST BILINEAR BICUBIC")  # type: ignore[attr-defined]
        functional.rotate = functional.normalize = _missing_torchvision  # type: ignore[attr-defined]
        stubs["torchvision"].transforms = stubs["torchvision.transforms"]  # type: ignore[attr-defined]
        stubs["torchvision.transforms"].functional = functional  # type: ignore[attr-defined]
        sys.modules.update(stubs)
        try:
            import spandrel
        finally:
            for n, m in stubs.items():
                if sys.modules.get(n) is m:
                    del sys.modules[n]
        return spandrel


@dataclass
class TorchUpscaler:
    model: Any  # spandrel.ImageModelDescriptor
    scale: int
    nbytes: int
    name: str = ""
    tileable: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        p = next(self.model.model.parameters())
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].to(p.device, p.dtype)
            y = self.model(t)  # spandrel pads to the architecture's size multiple and crops back
        return y[0].float().cpu().numpy()


def read_state_dict(path: Path) -> dict[str, Any]:
    """Tensors of a .safetensors file, or of a pickled state dict loaded with `weights_only` (no code runs)."""
    import torch

    suffix = path.suffix.lower()
    if suffix not in SPANDREL_SUFFIXES:
        raise UpscalerError(f"{path.name}: expected a .safetensors or .pth upscaler file")
    if suffix in (".safetensors", ".sft"):
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a plain state dict"
        raise UpscalerError(f"{path.name} is not a plain state dict (only tensors are loaded): {e}") from e
    if not isinstance(sd, dict):
        raise UpscalerError(f"{path.name} holds a {type(sd).__name__}, not a state dict")
    return sd


@dataclass(frozen=True)
class UpscalerInfo:
    architecture: str  # spandrel's id, e.g. "ESRGAN", "SPAN", "HAT"
    scale: int
    tags: tuple[str, ...] = ()


def state_dict_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an upscaler file without reading its weights: the safetensors header, or a pickle
    unpickled with `weights_only` onto the meta device (no code runs, no tensor data is read)."""
    import torch

    path = Path(path)
    if path.suffix.lower() in (".safetensors", ".sft"):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - not a dict
    try:
        try:
            sd = torch.load(str(path), map_location="meta", weights_only=True, mmap=True)
        except RuntimeError:  # a legacy (non-zip) pickle cannot be memory-mapped
            sd = torch.load(str(path), map_location="meta", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a plain state dict"
        raise UpscalerError(f"{path.name} is not a plain state dict (only tensors are loaded): {e}") from e
    sd = import_spandrel().canonicalize_state_dict(sd) if isinstance(sd, dict) else {}
    return {k: tuple(v.shape) for k, v in sd.items() if isinstance(v, torch.Tensor)}


def inspect_upscaler(shapes: dict[str, tuple[int, ...]]) -> UpscalerInfo | None:
    """The upscaler architecture and scale of a state-dict layout, or None (not an RGB super-resolution model).

    spandrel detects and builds the model on the meta device, so nothing is allocated or read: milliseconds.
    """
    import warnings

    import torch

    spandrel = import_spandrel()
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "copying from a meta parameter ... is a no-op"
            desc = spandrel.MAIN_REGISTRY.load(
                spandrel.canonicalize_state_dict({k: torch.empty(s) for k, s in shapes.items()})
            )
    except Exception:  # noqa: BLE001 - unknown layout, or one an architecture cannot build: not an upscaler
        return None
    if not isinstance(desc, spandrel.ImageModelDescriptor) or desc.purpose != "SR" or desc.scale < 2:
        return None
    if desc.input_channels != 3 or desc.output_channels != 3:
        return None
    return UpscalerInfo(architecture=str(desc.architecture.id), scale=int(desc.scale), tags=tuple(desc.tags))


def load_spandrel_upscaler(path: str | Path, *, device: str = "cpu") -> TorchUpscaler:
    """A user upscaler (ESRGAN, Real-ESRGAN, SwinIR, HAT, SPAN, ... as spandrel detects them) for inference."""
    import torch

    spandrel = import_spandrel()
    path = Path(path)
    sd = spandrel.canonicalize_state_dict(read_state_dict(path))
    try:
        desc = spandrel.ModelLoader(device="cpu").load_from_state_dict(sd)
    except spandrel.UnsupportedModelError as e:
        raise UpscalerError(f"{path.name}: not an architecture spandrel knows ({e})") from e
    if not isinstance(desc, spandrel.ImageModelDescriptor) or desc.purpose != "SR" or desc.scale < 2:
        raise UpscalerError(f"{path.name} is a {desc.architecture.name} {desc.purpose} model, not an upscaler")
    if desc.input_channels != 3 or desc.output_channels != 3:
        raise UpscalerError(f"{path.name}: only RGB models are supported ({desc.input_channels} input channels)")
    desc.to(torch.device(device)).eval()
    nbytes = sum(t.numel() * t.element_size() for t in desc.model.state_dict().values())
    tileable = desc.tiling != spandrel.ModelTiling.INTERNAL
    return TorchUpscaler(model=desc, scale=int(desc.scale), nbytes=nbytes, name=path.stem, tileable=tileable)


@loader(kind="upscaler", format="single_file")  # every architecture spandrel detects (the family is its id)
def _load_registered_spandrel(spec: ModelSpec, env: LoadEnv) -> TorchUpscaler:
    return load_spandrel_upscaler(spec.path, device=env.device)


# -- tiling ------------------------------------------------------------------------------------------------
def tile_spans(n: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Start/end of tiles of length `tile` covering 0..n, spread evenly so neighbours share >= `overlap`."""
    if n <= tile:
        return [(0, n)]
    count = math.ceil((n - overlap) / (tile - overlap))
    return [(s, s + tile) for s in (round(i * (n - tile) / (count - 1)) for i in range(count))]


def blend_weights(spans: list[tuple[int, int]], scale: int) -> list[np.ndarray]:
    """Per-tile 1-D weights (output pixels) that sum to 1 across tiles.

    Each band two neighbours share is split in four: the outer quarters belong to the tile with more context,
    the middle half ramps linearly from one to the other (pixel centres), so seams are neither hard nor made
    of the low-context pixels at tile edges.
    """
    total = np.zeros(spans[-1][1] * scale, np.float64)
    out = []
    for i, (a, b) in enumerate(spans):
        x = np.arange(a * scale, b * scale) + 0.5
        w = np.ones_like(x)
        if i > 0:  # rise over the middle of the band shared with the previous tile
            lo, hi = a * scale, spans[i - 1][1] * scale
            w = np.minimum(w, np.clip((x - (lo + (hi - lo) / 4)) / max((hi - lo) / 2, 1), 0, 1))
        if i < len(spans) - 1:
            lo, hi = spans[i + 1][0] * scale, b * scale
            w = np.minimum(w, np.clip(((hi - (hi - lo) / 4) - x) / max((hi - lo) / 2, 1), 0, 1))
        total[a * scale : b * scale] += w
        out.append(w)
    return [(w / total[a * scale : b * scale]).astype(np.float32) for w, (a, b) in zip(out, spans, strict=True)]


def _run_pass(
    model: Upscaler, rgb: np.ndarray, tile: int, overlap: int, tick: Callable[[], None]
) -> np.ndarray:  # (h, w, 3) uint8 -> (h*s, w*s, 3) uint8
    h, w = rgb.shape[:2]
    s = model.scale
    if not model.tileable:
        tile = max(h, w)
    xs, ys = tile_spans(w, tile, overlap), tile_spans(h, tile, overlap)
    wx, wy = blend_weights(xs, s), blend_weights(ys, s)
    out = np.empty((h * s, w * s, 3), np.uint8)
    # Float accumulator only for the rows still open (at most about two tile rows): memory stays bounded.
    acc, acc_y0 = np.zeros((0, w * s, 3), np.float32), 0
    for (y0, y1), wrow in zip(ys, wy, strict=True):
        strip = np.zeros(((y1 - y0) * s, w * s, 3), np.float32)
        for (x0, x1), wcol in zip(xs, wx, strict=True):
            x = rgb[y0:y1, x0:x1].transpose(2, 0, 1).astype(np.float32) / 255.0
            with model.lock:
                y = model(x)
            if y.shape != (3, (y1 - y0) * s, (x1 - x0) * s):
                raise RuntimeError(f"upscaler returned {y.shape} for a {x.shape} tile (scale {s})")
            strip[:, x0 * s : x1 * s] += y.transpose(1, 2, 0) * wcol[None, :, None]
            tick()
        strip *= wrow[:, None, None]
        done = y0 * s - acc_y0  # rows above this strip are final
        out[acc_y0 : acc_y0 + done] = _to_u8(acc[:done])
        strip[: len(acc) - done] += acc[done:]  # the open rows lie inside the new strip (spans only move down)
        acc, acc_y0 = strip, y0 * s
    out[acc_y0:] = _to_u8(acc)
    return out


def _to_u8(a: np.ndarray) -> np.ndarray:
    return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def output_size(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


def passes_for(native: int, scale: float) -> int:
    """Model passes needed to reach `scale` (an x2 model runs twice for x3/x4; the result is then resized)."""
    return max(1, math.ceil(math.log(scale) / math.log(native) - 1e-9)) if scale > 1 else 1


def clamp_overlap(tile: int, overlap: int) -> int:
    # at most a quarter tile, so a tile's two blend bands never meet and most of each tile is kept
    return max(0, min(overlap, tile // 4))


def count_tiles(model: Upscaler, size: tuple[int, int], scale: float, tile: int, overlap: int = 32) -> int:
    """How many model calls `upscale_tiled` makes for an image of `size` (for progress totals)."""
    overlap = clamp_overlap(tile, overlap)
    w, h = size
    n = 0
    for _ in range(passes_for(model.scale, scale)):
        t = tile if model.tileable else max(w, h)
        n += len(tile_spans(w, t, overlap)) * len(tile_spans(h, t, overlap))
        w, h = w * model.scale, h * model.scale
    return n


def upscale_tiled(
    model: Upscaler,
    image: Image.Image,
    *,
    scale: float | None = None,
    tile: int = 256,
    overlap: int = 32,
    on_tile: Callable[[int, int], None] | None = None,
) -> Image.Image:
    """Upscale `image` by `scale` (default: the model's) to exactly round(w*scale) x round(h*scale).

    `tile` is the largest side a tile has going into the model (memory), `overlap` the pixels neighbours
    share (clamped to tile/4). The model's own factor is applied (repeatedly if it is smaller than `scale`),
    then Lanczos resizes to the exact size. Alpha is resized with Lanczos (no model pass for it); `on_tile`
    gets (done, total) after every tile.
    """
    scale = float(scale or model.scale)
    if not 1.0 <= scale <= 16.0:
        raise ValueError(f"scale must be within 1..16, got {scale}")
    if tile < 16:
        raise ValueError(f"tile must be at least 16 pixels, got {tile}")
    overlap = clamp_overlap(tile, overlap)
    target = output_size(image.width, image.height, scale)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    gray = image.mode in ("L", "LA", "1", "I", "I;16", "F")
    src = image.convert("RGBA") if has_alpha else image.convert("RGB")
    total = count_tiles(model, src.size, scale, tile, overlap)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if on_tile is not None:
            on_tile(done, total)

    rgb = np.asarray(src.convert("RGB"))
    for _ in range(passes_for(model.scale, scale)):
        rgb = _run_pass(model, rgb, tile, overlap, tick)
    out = Image.fromarray(rgb, "RGB")
    if out.size != target:
        out = out.resize(target, Image.Resampling.LANCZOS)
    if gray:
        out = out.convert("L")
    if has_alpha:
        alpha = src.getchannel("A").resize(target, Image.Resampling.LANCZOS)
        out.putalpha(alpha)  # L + alpha becomes LA, RGB + alpha becomes RGBA
    return out
