"""The T5 encoder-decoder, top to bottom: layers -> stacks -> `T5`.

Token id 0 is padding (and the decoder's start token). Encoder padding is masked out of encoder
self-attention and of decoder cross-attention; decoder self-attention is causal only (padded target
positions carry zero loss weight, and leaving them unmasked keeps training and step-wise decoding identical).
Optional `*_segment_ids` / `*_positions` make the signature ready for packed examples.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from t5explore.model.config import T5Config
from t5explore.model.layers import (
    MLP,
    MultiHeadAttention,
    RelativePositionBias,
    RMSNorm,
    activation_dtype,
    param_with_axes,
)
from t5explore.model.partitioning import BATCH_LENGTH_EMBED, BATCH_LENGTH_VOCAB, constrain
from t5explore.model.scan import LAYERS, StackLayer, layer_class, scanned
from t5explore.special_ids import PAD_ID

Array = jax.Array


def default_positions(tokens: Array, positions: Array | None) -> Array:
    return jnp.arange(tokens.shape[1])[None, :] if positions is None else positions


def _pair_mask(q_valid: Array, k_valid: Array) -> Array:
    """[B, Q] and [B, K] booleans -> attention mask [B, 1, Q, K]."""
    return (q_valid[:, :, None] & k_valid[:, None, :])[:, None]


def segment_mask(q_segments: Array | None, k_segments: Array | None) -> Array | bool:
    if q_segments is None or k_segments is None:
        return True
    return (q_segments[:, :, None] == k_segments[:, None, :])[:, None]


class EncoderLayer(StackLayer):
    STATIC_ARGNUMS: ClassVar[tuple[int, ...]] = (4,)  # `deterministic`, counting self (for nn.remat)
    cfg: T5Config
    scanned: bool = False  # inside nn.scan: return (carry, None)

    @nn.compact
    def __call__(self, x: Array, mask: Array, bias: Array, deterministic: bool) -> Array | tuple[Array, None]:
        dtype, drop = activation_dtype(self.cfg), nn.Dropout(self.cfg.dropout_rate)
        h = RMSNorm(dtype, name="pre_attention_norm")(x)
        h = MultiHeadAttention(self.cfg, name="attention")(h, h, mask, bias, deterministic=deterministic)
        x = x + drop(h, deterministic=deterministic)
        h = RMSNorm(dtype, name="pre_mlp_norm")(x)
        h = MLP(self.cfg, name="mlp")(h, deterministic=deterministic)
        x = x + drop(h, deterministic=deterministic)
        return (x, None) if self.scanned else x


class DecoderLayer(StackLayer):
    STATIC_ARGNUMS: ClassVar[tuple[int, ...]] = (6, 7)  # `deterministic`, `decode`, counting self (for nn.remat)
    cfg: T5Config
    scanned: bool = False  # inside nn.scan: return (carry, None)

    @nn.compact
    def __call__(
        self,
        y: Array,
        encoded: Array,
        self_mask: Array,
        self_bias: Array,
        cross_mask: Array,
        deterministic: bool,
        decode: bool,
        decode_index: Array | None = None,
    ) -> Array | tuple[Array, None]:
        dtype, drop = activation_dtype(self.cfg), nn.Dropout(self.cfg.dropout_rate)
        h = RMSNorm(dtype, name="pre_self_attention_norm")(y)
        h = MultiHeadAttention(self.cfg, name="self_attention")(
            h, h, self_mask, self_bias, deterministic=deterministic, decode=decode, decode_index=decode_index
        )
        y = y + drop(h, deterministic=deterministic)
        h = RMSNorm(dtype, name="pre_cross_attention_norm")(y)
        h = MultiHeadAttention(self.cfg, name="encoder_decoder_attention")(
            h, encoded, cross_mask, None, deterministic=deterministic
        )
        y = y + drop(h, deterministic=deterministic)
        h = RMSNorm(dtype, name="pre_mlp_norm")(y)
        h = MLP(self.cfg, name="mlp")(h, deterministic=deterministic)
        y = y + drop(h, deterministic=deterministic)
        return (y, None) if self.scanned else y


def run_stack(cfg: T5Config, layer: type[StackLayer], num_layers: int, x: Array, *args: Array | bool | None) -> Array:
    """Apply num_layers layers to x: a loop of `layer_{i}` modules, or (cfg.scan_layers) one scan named
    'layers'; each layer rematerialised per cfg.remat_policy. args: the layer's other positional arguments
    (masks, biases, the Python flags, a decode index or None)."""
    cls = layer_class(cfg, layer, layer.STATIC_ARGNUMS)
    if cfg.scan_layers:
        x, _ = scanned(cls, num_layers, 1 + len(args))(cfg, scanned=True, name=LAYERS)(x, *args)
        return x
    for i in range(num_layers):
        x = cls(cfg, name=f"layer_{i}")(x, *args)
    return x


class Encoder(nn.Module):
    cfg: T5Config
    embedder: nn.Module

    @nn.compact
    def __call__(
        self,
        tokens: Array,
        *,
        segment_ids: Array | None = None,
        positions: Array | None = None,
        deterministic: bool = True,
    ) -> Array:
        cfg = self.cfg
        drop = nn.Dropout(cfg.dropout_rate)
        valid = tokens != PAD_ID
        mask = _pair_mask(valid, valid) & segment_mask(segment_ids, segment_ids)
        pos = default_positions(tokens, positions)
        bias = RelativePositionBias(cfg, bidirectional=True, name="relpos_bias")(pos, pos)
        x = constrain(drop(self.embedder(tokens), deterministic=deterministic), BATCH_LENGTH_EMBED)
        x = run_stack(cfg, EncoderLayer, cfg.num_encoder_layers, x, mask, bias, deterministic)
        x = RMSNorm(activation_dtype(cfg), name="final_norm")(x)
        return drop(x, deterministic=deterministic)


class Decoder(nn.Module):
    """Decoder stack. With `decode=True`, a first full-length call allocates the caches; each later call
    takes one token per row and advances the shared step counter (`cache/index`)."""

    cfg: T5Config
    embedder: nn.Module

    @nn.compact
    def __call__(
        self,
        encoded: Array,
        encoder_tokens: Array,
        tokens: Array,
        *,
        encoder_segment_ids: Array | None = None,
        segment_ids: Array | None = None,
        positions: Array | None = None,
        deterministic: bool = True,
        decode: bool = False,
    ) -> Array:
        cfg = self.cfg
        drop = nn.Dropout(cfg.dropout_rate)
        relpos_bias = RelativePositionBias(cfg, bidirectional=False, name="relpos_bias")
        decode_index = None
        if decode:
            stepping = self.has_variable("cache", "index")
            length = tokens.shape[1]
            index = self.variable("cache", "index", lambda: jnp.zeros((), jnp.int32))
            key_positions = self.variable("cache", "key_positions", lambda: jnp.arange(length, dtype=jnp.int32))
            if stepping:
                if tokens.shape[1] != 1:
                    raise ValueError(f"a decode step takes one token per row, got decoder tokens {tokens.shape}")
                decode_index = index.value
                index.value = decode_index + 1
        if decode_index is not None:
            k_pos = key_positions.value[None, :]
            self_mask = (k_pos <= decode_index)[:, None, None, :]  # [1, 1, 1, L]: keys written so far
            self_bias = relpos_bias(decode_index[None, None], k_pos)
        else:
            pos = default_positions(tokens, positions)
            causal = pos[:, :, None] >= pos[:, None, :]
            self_mask = causal[:, None] & segment_mask(segment_ids, segment_ids)
            self_bias = relpos_bias(pos, pos)
        q_valid = jnp.ones(tokens.shape, bool)
        cross_mask = _pair_mask(q_valid, encoder_tokens != PAD_ID) & segment_mask(segment_ids, encoder_segment_ids)

        y = constrain(drop(self.embedder(tokens), deterministic=deterministic), BATCH_LENGTH_EMBED)
        y = run_stack(
            cfg,
            DecoderLayer,
            cfg.num_decoder_layers,
            y,
            encoded,
            self_mask,
            self_bias,
            cross_mask,
            deterministic,
            decode,
            decode_index,
        )
        y = RMSNorm(activation_dtype(cfg), name="final_norm")(y)
        return output_logits(self, cfg, self.embedder, drop(y, deterministic=deterministic))


def output_logits(module: nn.Module, cfg: T5Config, embedder: nn.Module, y: Array) -> Array:
    """The output layer on final hidden states y [B, T, d_model] -> float32 logits [B, T, vocab]; an untied
    head is created as `module`'s parameter `logits_dense`. Shared by every architecture that predicts tokens."""
    if cfg.tie_embeddings:  # T5 1.0: reuse the input embedding, scaled by 1/sqrt(d_model)
        if cfg.float32_logits:
            logits = y.astype(jnp.float32) @ embedder.embedding.T / jnp.sqrt(jnp.float32(cfg.d_model))
        else:
            logits = embedder.attend(y) / jnp.sqrt(jnp.asarray(cfg.d_model, y.dtype))
    else:  # T5 1.1: separate output head
        init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
        head = param_with_axes(module, "logits_dense", init, (cfg.d_model, cfg.vocab_size), ("embed", "vocab"))
        if cfg.float32_logits:
            y = y.astype(jnp.float32)
        logits = y @ head.astype(y.dtype)
    return constrain(logits.astype(jnp.float32), BATCH_LENGTH_VOCAB)


def make_token_embedder(cfg: T5Config) -> nn.Embed:
    """The shared input embedding (and tied output layer), named by the module that assigns it in setup."""
    init = nn.initializers.normal(stddev=1.0)
    return nn.Embed(
        cfg.vocab_size,
        cfg.d_model,
        dtype=activation_dtype(cfg),
        param_dtype=jnp.float32,
        embedding_init=nn.with_logical_partitioning(init, ("vocab", "embed")),
    )


class T5(nn.Module):
    """T5 encoder-decoder. `__call__` is teacher-forced training/eval; `encode`/`decode` serve decoding."""

    cfg: T5Config

    def setup(self) -> None:
        self.cfg.check_ready()
        self.token_embedder = make_token_embedder(self.cfg)
        self.encoder = Encoder(self.cfg, self.token_embedder)
        self.decoder = Decoder(self.cfg, self.token_embedder)

    def encode(
        self,
        encoder_input_tokens: Array,
        *,
        encoder_segment_ids: Array | None = None,
        encoder_positions: Array | None = None,
        enable_dropout: bool = False,
    ) -> Array:
        """int32 [B, I] -> encoded [B, I, d_model] (activation dtype)."""
        return self.encoder(
            encoder_input_tokens,
            segment_ids=encoder_segment_ids,
            positions=encoder_positions,
            deterministic=not enable_dropout,
        )

    def decode(
        self,
        encoded: Array,
        encoder_input_tokens: Array,
        decoder_input_tokens: Array,
        *,
        encoder_segment_ids: Array | None = None,
        decoder_segment_ids: Array | None = None,
        decoder_positions: Array | None = None,
        enable_dropout: bool = False,
        decode: bool = False,
    ) -> Array:
        """-> logits float32 [B, T, vocab]. `decode=True` uses/updates the 'cache' collection (see Decoder)."""
        return self.decoder(
            encoded,
            encoder_input_tokens,
            decoder_input_tokens,
            encoder_segment_ids=encoder_segment_ids,
            segment_ids=decoder_segment_ids,
            positions=decoder_positions,
            deterministic=not enable_dropout,
            decode=decode,
        )

    def __call__(
        self,
        encoder_input_tokens: Array,
        decoder_input_tokens: Array,
        *,
        encoder_segment_ids: Array | None = None,
        decoder_segment_ids: Array | None = None,
        encoder_positions: Array | None = None,
        decoder_positions: Array | None = None,
        enable_dropout: bool = False,
    ) -> Array:
        """Teacher-forced forward pass: int32 [B, I], [B, T] -> logits float32 [B, T, vocab]."""
        encoded = self.encode(
            encoder_input_tokens,
            encoder_segment_ids=encoder_segment_ids,
            encoder_positions=encoder_positions,
            enable_dropout=enable_dropout,
        )
        return self.decode(
            encoded,
            encoder_input_tokens,
            decoder_input_tokens,
            encoder_segment_ids=encoder_segment_ids,
            decoder_segment_ids=decoder_segment_ids,
            decoder_positions=decoder_positions,
            enable_dropout=enable_dropout,
        )
