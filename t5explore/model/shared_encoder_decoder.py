"""T5 Table 2's "Encoder-decoder, shared": one layer stack used as both the encoder and the decoder (gin:
`Model.name = 'encoder_decoder_shared'`, gin/models/encoder_decoder_shared.gin).

Raffel et al. (2020) §3.2.2 counts an L + L-layer encoder-decoder as 2P parameters and M FLOPs; sharing the
parameters "between the encoder and decoder" gives P parameters at the same cost M. Here decoder layer i runs
encoder layer i's own parameters for everything the two stacks have in common, and the stack's final norm:

    decoder/layer_i/self_attention           = encoder/layer_i/attention
    decoder/layer_i/pre_self_attention_norm  = encoder/layer_i/pre_attention_norm
    decoder/layer_i/mlp, pre_mlp_norm        = encoder/layer_i/mlp, pre_mlp_norm
    decoder/final_norm                       = encoder/final_norm

(the same names under `layers` when the stacks are scanned). What only a decoder has stays its own: each
layer's encoder-decoder attention and its norm (the paper's P ignores them: "we ignore the encoder-decoder
attention"), the output head, and the causal relative position bias (the encoder's bias buckets positions
in both directions, the decoder's only backwards: one table cannot mean both).

The sharing is in the parameter tree, not in a new flax module: the stored params are T5's without the
decoder's shared subtrees, and `full_params` copies the encoder's in before T5 (model/t5.py) runs, so the
gradient of each shared weight is the sum of its encoder and decoder uses, and decoding, scanning and
partitioning are the encoder-decoder's own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax

from t5explore.config import ConfigError
from t5explore.model import flops
from t5explore.model.config import T5Config
from t5explore.model.decoding import greedy_decode
from t5explore.model.encoder_decoder import EncoderDecoder
from t5explore.model.scan import LAYERS
from t5explore.model.t5 import T5

# decoder layer subtree -> the encoder layer subtree it runs
SHARED_IN_LAYER = {
    "self_attention": "attention",
    "pre_self_attention_norm": "pre_attention_norm",
    "mlp": "mlp",
    "pre_mlp_norm": "pre_mlp_norm",
}
SHARED_IN_STACK = ("final_norm",)


def _is_layer(key: str) -> bool:
    return key == LAYERS or key.startswith("layer_")


def drop_shared(params: Mapping) -> dict:
    """T5 params -> the shared model's: the decoder without the subtrees it takes from the encoder."""
    decoder = {
        key: ({k: v for k, v in value.items() if k not in SHARED_IN_LAYER} if _is_layer(key) else value)
        for key, value in params["decoder"].items()
        if key not in SHARED_IN_STACK
    }
    return {**params, "decoder": decoder}


def full_params(params: Mapping) -> dict:
    """The shared model's params -> T5's, the encoder's layers copied into the decoder (the inverse of drop_shared)."""
    encoder = params["encoder"]
    decoder = dict(params["decoder"])
    for key, value in list(decoder.items()):
        if _is_layer(key):
            decoder[key] = {**value, **{dk: encoder[key][ek] for dk, ek in SHARED_IN_LAYER.items()}}
    decoder.update({key: encoder[key] for key in SHARED_IN_STACK})
    return {**params, "decoder": decoder}


class SharedEncoderDecoder(EncoderDecoder):
    name = "encoder_decoder_shared"

    def __init__(self, cfg: T5Config):
        if cfg.num_encoder_layers != cfg.num_decoder_layers:
            raise ConfigError(
                f"Model.name = '{self.name}' runs one stack as encoder and decoder, so T5Config.num_encoder_layers "
                f"({cfg.num_encoder_layers}) must equal T5Config.num_decoder_layers ({cfg.num_decoder_layers})"
            )
        super().__init__(cfg)

    def init(self, key: jax.Array, batch_size: int) -> Any:
        variables = super().init(key, batch_size)
        return {**variables, "params": drop_shared(variables["params"])}

    def apply(self, params: Any, batch: dict, dropout_rng: jax.Array | None = None) -> jax.Array:
        return super().apply(full_params(params), batch, dropout_rng)

    def greedy_decode(self, params: Any, inputs: Any, max_length: int) -> jax.Array:
        return greedy_decode(T5(self.cfg), full_params(params), inputs, max_length)

    def num_params(self) -> int:
        """The encoder-decoder's, less the decoder's copy of what it shares (L layers' self-attention, MLP
        and their two norms, and the final norm)."""
        cfg = self.cfg
        layer = flops.attention_params(cfg) + flops.mlp_params(cfg) + 2 * cfg.d_model
        return flops.num_params(cfg) - cfg.num_decoder_layers * layer - cfg.d_model

    def unscanned(self) -> SharedEncoderDecoder:
        return SharedEncoderDecoder(dataclasses.replace(self.cfg, scan_layers=False))
