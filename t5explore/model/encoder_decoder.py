"""The T5 encoder-decoder (model/t5.py) behind the `Model` interface (gin: `Model.name = 'encoder_decoder'`,
the default).

Inputs go to the encoder, targets (shifted right) to the decoder: data/features.py's `encdec_features`, t5x's
EncDecFeatureConverter. Packed batches' optional `encoder_segment_ids` / `decoder_segment_ids` /
`encoder_positions` / `decoder_positions` are passed on to the module when the batch holds them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import jax
import numpy as np
from flax import linen as nn

from t5explore.config import ConfigError
from t5explore.data.features import encdec_features
from t5explore.model import flops
from t5explore.model.config import T5Config
from t5explore.model.decoding import greedy_decode
from t5explore.model.interface import LOSS_WEIGHTS, TARGET_TOKENS, Model, dropout_rngs, init_tokens
from t5explore.model.scan import ENCODER_DECODER_STACKS
from t5explore.model.t5 import T5

# Optional batch features (packed examples) that T5.__call__ accepts under the same names.
OPTIONAL_FEATURES = ("encoder_segment_ids", "decoder_segment_ids", "encoder_positions", "decoder_positions")


class EncoderDecoder(Model):
    name = "encoder_decoder"
    feature_keys = ("encoder_input_tokens", "decoder_input_tokens", TARGET_TOKENS, LOSS_WEIGHTS)
    layer_stacks = ENCODER_DECODER_STACKS

    def __init__(self, cfg: T5Config, module: nn.Module | None = None):
        """module: T5(cfg) unless given (a test's stand-in with T5's call signature)."""
        self.cfg = cfg
        self.module = module if module is not None else T5(cfg)

    def features(self, inputs: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
        return encdec_features(inputs, targets)

    def init(self, key: jax.Array, batch_size: int) -> Any:
        tokens = init_tokens(batch_size)
        return self.module.init({"params": key, "dropout": key}, tokens, tokens, enable_dropout=False)

    def apply(self, params: Any, batch: dict, dropout_rng: jax.Array | None = None) -> jax.Array:
        optional = {key: batch[key] for key in OPTIONAL_FEATURES if key in batch}
        logits = self.module.apply(
            {"params": params},
            batch["encoder_input_tokens"],
            batch["decoder_input_tokens"],
            **optional,
            enable_dropout=dropout_rng is not None,
            rngs=dropout_rngs(dropout_rng),
        )
        return cast(jax.Array, logits)  # not a (logits, state) tuple: nothing is mutable

    def greedy_decode(self, params: Any, inputs: Any, max_length: int) -> jax.Array:
        return greedy_decode(T5(self.cfg), params, inputs, max_length)

    def num_params(self) -> int:
        return flops.num_params(self.cfg)

    def flops_per_token(self, inputs_length: int, targets_length: int) -> float:
        return flops.flops_per_token(self.cfg, inputs_length, targets_length)

    def unscanned(self) -> EncoderDecoder:
        return EncoderDecoder(dataclasses.replace(self.cfg, scan_layers=False))


def halve_depth(cfg: T5Config, owner: str) -> T5Config:
    """cfg with half the encoder and half the decoder layers (T5 Table 2's "Enc-dec, 6 layers" of a 12 + 12
    baseline); an odd layer count is a config error naming the field."""
    for field in ("num_encoder_layers", "num_decoder_layers"):
        if getattr(cfg, field) % 2:
            raise ConfigError(
                f"Model.name = '{owner}' halves T5Config.{field}, which is {getattr(cfg, field)} (odd); "
                "bind an even number of layers"
            )
    return dataclasses.replace(
        cfg, num_encoder_layers=cfg.num_encoder_layers // 2, num_decoder_layers=cfg.num_decoder_layers // 2
    )


class HalfDepthEncoderDecoder(EncoderDecoder):
    """T5 Table 2's "Encoder-decoder, L/2 layers" (gin: `Model.name = 'encoder_decoder_half'`): the configured
    size with half the layers in each stack, so P parameters (one stack's worth, as the decoder-only LM) and
    M/2 FLOPs. `cfg` is the halved config (what is built and counted); `full_cfg` the configured one."""

    name = "encoder_decoder_half"

    def __init__(self, cfg: T5Config):
        self.full_cfg = cfg
        super().__init__(halve_depth(cfg, self.name))

    def unscanned(self) -> HalfDepthEncoderDecoder:
        return HalfDepthEncoderDecoder(dataclasses.replace(self.full_cfg, scan_layers=False))
