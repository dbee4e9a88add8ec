"""Prompt embeddings the way A1111 builds them: weighted fragments, 75-token chunks, BREAK, clip skip.

Long prompts are split into chunks of 75 tokens, each encoded on its own and concatenated, so nothing is cut.
A plain prompt that fits one chunk gives exactly diffusers' own embeddings (same ids, same layer, no weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zhike.core.prompt_syntax import parse_prompt_attention

CHUNK = 75  # tokens per chunk between the start and end tokens
COMMA_BACKTRACK = 20  # A1111: a chunk that fills up moves the words after a recent comma to the next chunk


@dataclass
class Chunk:
    ids: list[int]
    weights: list[float]


@dataclass
class Encoded:
    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor | None  # None: not needed (no guidance)
    pooled: torch.Tensor | None
    negative_pooled: torch.Tensor | None
    prompt_tokens: int
    chunks: int


def build_chunks(tokenizer, text: str) -> tuple[list[Chunk], int]:  # type: ignore[no-untyped-def]
    """Tokenise weighted fragments into chunks of BOS + 75 ids + EOS + padding. Returns (chunks, token count)."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    comma = tokenizer.convert_tokens_to_ids(",</w>")
    chunks: list[Chunk] = []
    ids: list[int] = []
    weights: list[float] = []
    last_comma = -1
    total = 0

    def close() -> None:
        nonlocal ids, weights, last_comma
        fill = CHUNK - len(ids)
        chunks.append(Chunk([bos, *ids, eos] + [pad] * fill, [1.0, *weights] + [1.0] * (fill + 1)))
        ids, weights, last_comma = [], [], -1

    for fragment, weight in parse_prompt_attention(text):
        if weight == -1.0:  # BREAK
            close()
            continue
        for token in tokenizer(fragment, add_special_tokens=False, truncation=False).input_ids:
            total += 1
            if len(ids) == CHUNK:
                if last_comma != -1 and len(ids) - last_comma <= COMMA_BACKTRACK:
                    keep = last_comma + 1
                    moved_ids, moved_w = ids[keep:], weights[keep:]
                    ids, weights = ids[:keep], weights[:keep]
                    close()
                    ids, weights = moved_ids, moved_w
                else:
                    close()
            if token == comma:
                last_comma = len(ids)
            ids.append(token)
            weights.append(weight)
    if ids or not chunks:
        close()
    return chunks, total


def _encode_chunk(
    text_encoder, chunk: Chunk, *, layer: int | None, norm: bool, device
) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    """(hidden states (1, 77, dim), pooled output). layer None: the last layer (with its final norm)."""
    ids = torch.tensor([chunk.ids], device=device)
    out = text_encoder(ids, output_hidden_states=layer is not None)
    hidden = out[0] if layer is None else out.hidden_states[layer]
    if norm:  # an earlier layer, normed like the last one (A1111 clip skip), before the weights
        # transformers 5 flattened CLIPTextModel (no .text_model); 4.x nests it.
        hidden = getattr(text_encoder, "text_model", text_encoder).final_layer_norm(hidden)
    pooled = out[0] if hasattr(out, "text_embeds") else out[1]
    if any(w != 1.0 for w in chunk.weights):
        # A1111: scale each token's vector by its weight, then restore the chunk's mean.
        mult = torch.tensor(chunk.weights, device=hidden.device, dtype=hidden.dtype).reshape(1, -1, 1)
        before = hidden.mean()
        hidden = hidden * mult
        hidden = hidden * (before / hidden.mean())
    return hidden, pooled


def _encode(
    text_encoder, chunks: list[Chunk], *, layer: int | None, device, norm: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    parts = [_encode_chunk(text_encoder, c, layer=layer, norm=norm, device=device) for c in chunks]
    return torch.cat([h for h, _ in parts], dim=1), parts[0][1]  # pooled: first chunk, as A1111


def _pad_chunks(a: list[Chunk], b: list[Chunk], empty: Chunk) -> None:
    """Prompt and negative must have the same number of chunks: pad the shorter with empty chunks."""
    while len(a) < len(b):
        a.append(empty)
    while len(b) < len(a):
        b.append(empty)


@torch.no_grad()
def encode_prompts(  # type: ignore[no-untyped-def]
    pipe, family: str, prompt: str, negative: str, *, clip_skip: int = 1, guided: bool = True
) -> Encoded:
    """Embeddings for a pipeline's prompt_embeds/negative_prompt_embeds (+ pooled for SDXL).

    No text-encoder pass is wasted: without guidance (CFG <= 1) the pipeline never reads the negative, so it is not
    encoded (None); SDXL's empty negative is zeros (diffusers' force_zeros_for_empty_prompt), not an encoding of "".
    """
    device = pipe._execution_device
    if family == "sdxl":
        return _encode_sdxl(pipe, prompt, negative, clip_skip=clip_skip, device=device, guided=guided)
    pos, n_tokens = build_chunks(pipe.tokenizer, prompt)
    neg, _ = build_chunks(pipe.tokenizer, negative)
    _pad_chunks(pos, neg, build_chunks(pipe.tokenizer, "")[0][0])
    # clip_skip 1 = the last layer as it comes out (final norm applied); 2 = the one before, normed as A1111 does.
    layer = None if clip_skip <= 1 else -clip_skip
    p, _ = _encode(pipe.text_encoder, pos, layer=layer, norm=layer is not None, device=device)
    n = _encode(pipe.text_encoder, neg, layer=layer, norm=layer is not None, device=device)[0] if guided else None
    return Encoded(p, n, None, None, n_tokens, len(pos))


def _encode_sdxl(pipe, prompt: str, negative: str, *, clip_skip: int, device, guided: bool) -> Encoded:  # type: ignore[no-untyped-def]
    layer = -(1 + clip_skip)  # SDXL reads the penultimate layer of both encoders (diffusers and A1111 alike)
    zeros = not negative and getattr(pipe.config, "force_zeros_for_empty_prompt", False)
    encode_negative = guided and not zeros
    embeds: list[torch.Tensor] = []
    neg_embeds: list[torch.Tensor] = []
    pooled = neg_pooled = None
    n_tokens = n_chunks = 0
    for tokenizer, encoder in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)):
        if tokenizer is None or encoder is None:
            continue
        pos, n_tokens = build_chunks(tokenizer, prompt)
        neg, _ = build_chunks(tokenizer, negative)
        _pad_chunks(pos, neg, build_chunks(tokenizer, "")[0][0])
        h, pooled = _encode(encoder, pos, layer=layer, device=device)
        embeds.append(h)
        if encode_negative:
            nh, neg_pooled = _encode(encoder, neg, layer=layer, device=device)
            neg_embeds.append(nh)
        n_chunks = len(pos)
    p = torch.cat(embeds, dim=-1)
    n = torch.cat(neg_embeds, dim=-1) if encode_negative else None
    if guided and zeros:
        # diffusers' SDXL default: an empty negative prompt is zeros, not the encoding of "".
        n, neg_pooled = torch.zeros_like(p), torch.zeros_like(pooled)
    return Encoded(p, n, pooled, neg_pooled, n_tokens, n_chunks)
