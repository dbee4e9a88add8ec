"""Tiny random image-to-video models in their real diffusers formats, for the animate op's tests.

- Stable Video Diffusion: a StableVideoDiffusionPipeline folder (UNetSpatioTemporalConditionModel,
  AutoencoderKLTemporalDecoder, CLIPVisionModelWithProjection + CLIPImageProcessor, EulerDiscreteScheduler with
  SVD's settings), sized like diffusers' own pipeline tests.
- AnimateDiff: a MotionAdapter folder (config.json + safetensors, as guoyww publishes them) whose block widths and
  layers match tests/helpers/tiny_sd.py's SD 1.5 UNet, which it animates.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLTemporalDecoder,
    EulerDiscreteScheduler,
    MotionAdapter,
    StableVideoDiffusionPipeline,
    UNetSpatioTemporalConditionModel,
)
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

# stabilityai/stable-video-diffusion-img2vid's scheduler_config.json
_SVD_SCHEDULER = dict(
    beta_end=0.012,
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    interpolation_type="linear",
    num_train_timesteps=1000,
    prediction_type="v_prediction",
    sigma_max=700.0,
    sigma_min=0.002,
    steps_offset=1,
    timestep_spacing="leading",
    timestep_type="continuous",
    use_karras_sigmas=True,
)


def build_tiny_svd(dest: Path, *, num_frames: int = 6) -> Path:
    """A deterministic tiny SVD pipeline saved to `dest`; `num_frames` is its native clip length."""
    torch.manual_seed(0)
    time_dim = 8
    unet = UNetSpatioTemporalConditionModel(
        sample_size=16,
        in_channels=8,  # the noisy latents + the conditioning image's latents
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64),  # the blocks' GroupNorms have 32 groups, fixed
        layers_per_block=1,
        cross_attention_dim=16,  # the image encoder's projection
        num_attention_heads=(2, 4),
        addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=3 * time_dim,  # fps, motion bucket, noise augmentation
        num_frames=num_frames,
    )
    vae = AutoencoderKLTemporalDecoder(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
    )
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=16,
            projection_dim=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=224,  # the pipeline resizes the condition image to 224 itself; 7x7 patches keep it cheap
            intermediate_size=37,
            patch_size=32,
        )
    )
    pipe = StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=encoder,
        unet=unet,
        scheduler=EulerDiscreteScheduler(**_SVD_SCHEDULER),
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
    )
    pipe.save_pretrained(dest, safe_serialization=True)
    return Path(dest)


def build_tiny_motion_adapter(dest: Path) -> Path:
    """A deterministic tiny AnimateDiff MotionAdapter for tiny_sd.build_tiny_sd15's UNet, saved to `dest`."""
    torch.manual_seed(0)
    adapter = MotionAdapter(
        block_out_channels=(32, 32, 64, 64),
        motion_layers_per_block=2,
        motion_mid_block_layers_per_block=1,
        motion_num_attention_heads=4,
        motion_norm_num_groups=8,
        motion_max_seq_length=32,
        use_motion_mid_block=True,
    )
    adapter.save_pretrained(dest, safe_serialization=True)
    return Path(dest)
