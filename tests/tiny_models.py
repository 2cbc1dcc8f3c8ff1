"""The tiny encoder-decoders the fine-tuning tests train: one builder instead of a T5Config block per test file."""

from __future__ import annotations

from typing import Any


def tiny_encoder_decoder(vocab_size: int, d_model: int = 32, layers: int = 2) -> Any:
    """An EncoderDecoder with `layers` + `layers` layers, head_dim 16, d_ff = 2 * d_model (named 'tiny')."""
    from t5explore.model.config import T5Config, padded_vocab_size
    from t5explore.model.encoder_decoder import EncoderDecoder

    config = T5Config(
        vocab_size=padded_vocab_size(vocab_size),
        d_model=d_model,
        num_heads=d_model // 16,
        head_dim=16,
        d_ff=2 * d_model,
        num_encoder_layers=layers,
        num_decoder_layers=layers,
        name="tiny",
    )
    return EncoderDecoder(config)


def tiny_model_and_params(vocab_size: int, d_model: int = 32, layers: int = 2) -> tuple:
    """(model, partitioner, params, shardings) of `tiny_encoder_decoder`, initialised with seed 0."""
    from t5explore.train.partitioning import Partitioner
    from t5explore.train.trainer import init_params

    model = tiny_encoder_decoder(vocab_size, d_model, layers)
    partitioner = Partitioner()
    params, shardings = init_params(model, partitioner, seed=0)
    return model, partitioner, params, shardings
