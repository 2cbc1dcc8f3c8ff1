"""The tiny models of the tests: one builder instead of a T5Config block per test file (the fine-tuning tests'
encoder-decoders, and the model tests' config)."""

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


def tiny_t5_config(name: str, **overrides) -> Any:
    """The model tests' T5Config (test_model.py, test_decoder_only.py): vocab 96, d_model 32, 4 heads of 8, d_ff 64,
    2 + 2 layers, named `name`; `overrides` replace any field."""
    from t5explore.model.config import T5Config

    fields = dict(
        vocab_size=96, d_model=32, num_heads=4, head_dim=8, d_ff=64, num_encoder_layers=2, num_decoder_layers=2
    )
    return T5Config(**{**fields, "name": name, **overrides})
