"""The image safety checker diffusers ships (`StableDiffusionSafetyChecker`: CLIP image embeddings compared with
17 concept embeddings and thresholds), loaded from a folder and run on finished images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zhike.backends.loaders import LoadEnv, loader
from zhike.core.errors import ModelError
from zhike.core.specs import ModelSpec


class ImageSafetyChecker:
    def __init__(self, path: Path, device: str = "cpu") -> None:
        from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
        from transformers import CLIPImageProcessor

        if not (path / "config.json").is_file() or not (path / "preprocessor_config.json").is_file():
            raise ModelError(
                f"image_safety_checker {path.name}: expected a folder with config.json, the weights and "
                "preprocessor_config.json (a diffusers safety_checker folder)",
                field="image_safety_checker",
            )
        try:
            self.model = StableDiffusionSafetyChecker.from_pretrained(path).to(device).eval()
            self.processor = CLIPImageProcessor.from_pretrained(path)
        except Exception as e:  # unreadable weights or config: say which setting is wrong
            raise ModelError(
                f"image_safety_checker {path.name}: {type(e).__name__}: {e}", field="image_safety_checker"
            ) from e
        self.device = device
        self.nbytes = sum(p.numel() * p.element_size() for p in self.model.parameters())

    @torch.no_grad()
    def flag(self, images: list[Image.Image]) -> list[bool]:
        """True for each image the checker flags."""
        rgb = [im.convert("RGB") for im in images]
        clip_input = self.processor(images=rgb, return_tensors="pt").pixel_values.to(self.device)
        arrays = [np.asarray(im, dtype=np.float32) / 255.0 for im in rgb]
        _, flagged = self.model(clip_input=clip_input, images=arrays)
        return [bool(f) for f in flagged]


@loader(kind="safety_checker", format="diffusers")
def _load_registered(spec: ModelSpec, env: LoadEnv) -> ImageSafetyChecker:
    return ImageSafetyChecker(spec.path, device=env.device)
