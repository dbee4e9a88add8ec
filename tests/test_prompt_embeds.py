"""Prompt embeddings: plain prompts match diffusers exactly; weights, BREAK and long prompts behave as A1111's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

from zhike.backends.prompt_embeds import CHUNK, build_chunks, encode_prompts


@pytest.fixture(scope="module")
def sd15(tiny_sd15: Path) -> StableDiffusionPipeline:
    return StableDiffusionPipeline.from_pretrained(tiny_sd15, safety_checker=None, requires_safety_checker=False)


@pytest.fixture(scope="module")
def sdxl(tiny_sdxl: Path) -> StableDiffusionXLPipeline:
    return StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)


def test_plain_prompt_equals_diffusers_sd15(sd15: StableDiffusionPipeline) -> None:
    ours = encode_prompts(sd15, "sd15", "a red apple, studio light", "blurry")
    p, n = sd15.encode_prompt("a red apple, studio light", "cpu", 1, True, "blurry")
    assert torch.equal(ours.prompt_embeds, p) and torch.equal(ours.negative_prompt_embeds, n)
    skip2 = encode_prompts(sd15, "sd15", "a red apple", "", clip_skip=2)
    ids = sd15.tokenizer("a red apple", padding="max_length", max_length=77, return_tensors="pt").input_ids
    hidden = sd15.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
    assert torch.equal(skip2.prompt_embeds, sd15.text_encoder.final_layer_norm(hidden))
    assert not torch.equal(skip2.prompt_embeds, ours.prompt_embeds)


def test_plain_prompt_equals_diffusers_sdxl(sdxl: StableDiffusionXLPipeline) -> None:
    ours = encode_prompts(sdxl, "sdxl", "a red apple", "")
    p, n, pooled, npooled = sdxl.encode_prompt("a red apple", device="cpu", do_classifier_free_guidance=True)
    assert torch.equal(ours.prompt_embeds, p) and torch.equal(ours.pooled, pooled)
    assert torch.equal(ours.negative_prompt_embeds, n) and torch.equal(ours.negative_pooled, npooled)
    with_neg = encode_prompts(sdxl, "sdxl", "a red apple", "blurry")
    _, n2, _, np2 = sdxl.encode_prompt("a red apple", device="cpu", negative_prompt="blurry")
    assert torch.equal(with_neg.negative_prompt_embeds, n2) and torch.equal(with_neg.negative_pooled, np2)


def test_weights_change_only_the_weighted_tokens_direction(sd15: StableDiffusionPipeline) -> None:
    plain = encode_prompts(sd15, "sd15", "a red apple", "").prompt_embeds
    up = encode_prompts(sd15, "sd15", "a (red:1.5) apple", "").prompt_embeds
    assert plain.shape == up.shape == (1, 77, plain.shape[-1])
    assert not torch.equal(plain, up)
    assert torch.allclose(plain.mean(), up.mean(), rtol=1e-4, atol=1e-5)  # A1111 restores the mean (float32 sums)
    # "red" is token 2 (after BOS, "a"): the weighted token moves most.
    moved = (up - plain).abs().sum(-1)[0]
    assert moved[2] > moved[1] and moved[2] > moved[3]


def test_long_prompts_and_break_make_chunks(sd15: StableDiffusionPipeline) -> None:
    long = " ".join(f"word{i}" for i in range(60))  # each "wordN" is several tokens
    enc = encode_prompts(sd15, "sd15", long, "short negative")
    assert enc.chunks >= 2 and enc.prompt_tokens > CHUNK
    assert enc.prompt_embeds.shape[1] == 77 * enc.chunks == enc.negative_prompt_embeds.shape[1]
    chunks, _ = build_chunks(sd15.tokenizer, "a cat BREAK a dog")
    assert len(chunks) == 2 and all(len(c.ids) == 77 for c in chunks)
    cat = sd15.tokenizer("a dog", add_special_tokens=False).input_ids
    assert chunks[1].ids[1 : 1 + len(cat)] == cat


def test_chunks_break_after_a_recent_comma(sd15: StableDiffusionPipeline) -> None:
    words = ["tree"] * 70 + [","] + ["house"] * 10
    chunks, total = build_chunks(sd15.tokenizer, " ".join(words))
    assert total == 81 and len(chunks) == 2
    comma = sd15.tokenizer.convert_tokens_to_ids(",</w>")
    first = chunks[0].ids[1:-1]
    assert comma in first and first[first.index(comma) + 1 :] == [sd15.tokenizer.eos_token_id] * (CHUNK - 71) + []
