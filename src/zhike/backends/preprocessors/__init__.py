"""ControlNet preprocessors: an input image -> a control map (edges, lines, pose) the ControlNet models expect.

Model-backed ones (HED, MediaPipe Pose) are loaded through the ModelManager, so they are cached and evicted like
checkpoints. Heavy imports happen on first use, never when this package is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

if TYPE_CHECKING:
    from zhike.models.manager import ModelManager

MODES = ("canny", "softedge", "scribble", "lineart", "pose")


@dataclass
class PreprocessResult:
    image: Image.Image  # RGB, the input's size
    info: dict[str, Any] = field(default_factory=dict)  # e.g. pose keypoints, detected polarity


def _use_hed(models: ModelManager) -> Any:
    from zhike.backends.preprocessors.hed import HED

    return models.use(HED)


def run_preprocessor(models: ModelManager, mode: str, image: Image.Image, options: dict[str, Any]) -> PreprocessResult:
    """Compute the control map for `mode` at the image's size. `options` (all optional): low_threshold,
    high_threshold (canny); safe, detect_resolution (softedge, scribble from a photo); thickness (scribble,
    lineart); from_photo (scribble); min_visibility (pose)."""
    image = image.convert("RGB")
    if mode == "canny":
        from zhike.backends.preprocessors.canny import canny_edges

        low, high = options.get("low_threshold", 100), options.get("high_threshold", 200)
        return PreprocessResult(canny_edges(image, low=low, high=high), {"low_threshold": low, "high_threshold": high})
    if mode == "softedge" or (mode == "scribble" and options.get("from_photo")):
        from zhike.backends.preprocessors.hed import hed_edges

        safe = mode == "softedge" and bool(options.get("safe"))  # scribble thins the raw map itself
        with _use_hed(models) as aux:
            soft = hed_edges(aux.model, image, safe=safe, max_side=options.get("detect_resolution") or 1024)
        if mode == "softedge":
            return PreprocessResult(soft, {"safe": safe})
        import numpy as np

        from zhike.backends.preprocessors.lineart import scribble_from_edges

        return PreprocessResult(scribble_from_edges(np.asarray(soft.convert("L"))), {"from_photo": True})
    if mode in ("scribble", "lineart"):
        from zhike.backends.preprocessors.lineart import lineart_map, scribble_map

        if mode == "lineart":
            out, info = lineart_map(image, thickness=options.get("thickness") or 0)
        else:
            out, info = scribble_map(image, thickness=options.get("thickness"))
        return PreprocessResult(out, info)
    if mode == "pose":
        from zhike.backends.preprocessors.pose import POSE, pose_map

        with models.use(POSE) as loaded:
            out, keypoints = pose_map(loaded, image, min_visibility=options.get("min_visibility", 0.3))
        return PreprocessResult(out, {"format": "openpose-coco18", "keypoints": keypoints})
    raise ValueError(f"unknown preprocessor mode {mode!r}; known: {', '.join(MODES)}")
