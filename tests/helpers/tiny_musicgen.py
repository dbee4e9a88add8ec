"""A tiny random MusicGen in transformers' real format (MusicgenForConditionalGeneration.save_pretrained: one
config.json holding the T5 text encoder, the EnCodec audio codec and the codebook decoder; model.safetensors; a
tokenizer), so tests register and load it the way a user's download of facebook/musicgen-small is.

Shapes are shrunk, not the layout: 16 kHz EnCodec with a hop of 640 samples (25 frames a second, half MusicGen's 50),
1 kbps of 5-bit codebooks (8 quantizers; the decoder predicts 2, as musicgen-small predicts 4 of 32 kHz EnCodec's),
one layer everywhere, 256 decoder positions (~10 s). The tokenizer is a word-level one with T5's special tokens (the
real T5 SentencePiece model is 800 kB of download); AutoTokenizer loads either. Random weights: the audio is noise
of the right rate and length, which is what a test can assert.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_RATE = 16_000
FRAME_RATE = 25


def make_tiny_musicgen(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        PreTrainedTokenizerFast,
        T5Config,
    )

    torch.manual_seed(0)
    text = T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2)
    audio = EncodecConfig(
        sampling_rate=SAMPLE_RATE,
        hidden_size=16,
        num_filters=4,
        num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 4],
        codebook_size=32,
        num_lstm_layers=1,
        target_bandwidths=[1.0],
    )
    # pad/start token = vocab_size, as in the real configs (2048 of 2048 codes); transformers warns about it there too
    decoder = MusicgenDecoderConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        num_codebooks=2,
        max_position_embeddings=256,
        pad_token_id=32,
        bos_token_id=32,
    )
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(), decoder=decoder.to_dict())
    MusicgenForConditionalGeneration(config).save_pretrained(folder)
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(["happy", "calm", "piano", "music"])}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(folder)
    return folder
