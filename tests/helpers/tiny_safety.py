"""A tiny random diffusers `StableDiffusionSafetyChecker` folder (config, weights, preprocessor config), the layout
of CompVis/stable-diffusion-safety-checker, with its concept thresholds set by the test."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor


def tiny_checker() -> tuple[StableDiffusionSafetyChecker, CLIPImageProcessor]:
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2},
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=8,
    )
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return StableDiffusionSafetyChecker(config).eval(), processor


def embed(model: StableDiffusionSafetyChecker, processor: CLIPImageProcessor, image: Image.Image) -> torch.Tensor:
    with torch.no_grad():
        pixels = processor(images=[image.convert("RGB")], return_tensors="pt").pixel_values
        return model.visual_projection(model.vision_model(pixels)[1])[0]


def save_checker(
    path: Path, *, threshold: float, concept: Image.Image | None = None
) -> tuple[StableDiffusionSafetyChecker, CLIPImageProcessor]:
    """Every concept = `concept`'s embedding (or random), every threshold = `threshold` (cosine must exceed it).
    threshold -1.5 flags everything, 1.5 nothing."""
    model, processor = tiny_checker()
    with torch.no_grad():
        if concept is not None:
            model.concept_embeds.copy_(embed(model, processor, concept).expand_as(model.concept_embeds))
        model.concept_embeds_weights.fill_(threshold)
        model.special_care_embeds_weights.fill_(1.5)  # special care only nudges thresholds; keep it out
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return model, processor
