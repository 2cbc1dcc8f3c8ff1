"""A decoder-only language model (T5 paper §3.2.1 and Table 2's "Language model" / "Prefix LM"), behind the
`Model` interface: gin `Model.name = 'decoder_only'`, mask `DecoderOnly.attention = 'causal' | 'prefix'`.

Text-to-text as T5 does it: one sequence z = inputs + targets (each row's inputs without their padding, then
its targets), trained to predict z from z shifted right (start token 0), with the loss on the target tokens
only. `DecoderOnly.attention` picks the mask:
- 'causal' (the default; Table 2's "Language model"): every position sees itself and the positions before it.
- 'prefix' (Table 2's "Prefix LM"): the start token and the inputs see each other fully (fully-visible
  prefix), the targets causally. The relative position bias is then bidirectional (the encoder's: keys after
  the query have their own buckets), since prefix positions attend both ways; 'causal' uses the decoder's.
The layers are T5's (model/layers.py: RMSNorm, attention, MLP; model/t5.py: stacks, embedding, output head),
as many as `T5Config.num_decoder_layers` (num_encoder_layers is unused). Packed fine-tuning rows (built for
the encoder-decoder by data/packing.py) become each example's inputs + targets in turn, kept apart by segment
ids and positions (`packed_features`). Greedy decoding places each row's
prompt right-aligned in the cache (relative positions make the shift invisible), fills it in one pass, then
generates the targets step by step (model/decoding.py's loop).
"""

from __future__ import annotations

import dataclasses
import functools
from types import ModuleType
from typing import Any, ClassVar, TypeVar, cast

import gin
import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from t5explore.config import ConfigError
from t5explore.data.features import shift_right
from t5explore.model import flops
from t5explore.model.config import T5Config
from t5explore.model.decoding import Cache, CompiledDecode, check_max_length, greedy_loop
from t5explore.model.interface import LOSS_WEIGHTS, TARGET_TOKENS, Model, dropout_rngs, init_tokens
from t5explore.model.layers import MLP, MultiHeadAttention, RelativePositionBias, RMSNorm, activation_dtype
from t5explore.model.partitioning import BATCH_LENGTH_EMBED, constrain
from t5explore.model.scan import StackLayer
from t5explore.model.t5 import default_positions, make_token_embedder, output_logits, run_stack, segment_mask
from t5explore.special_ids import EOS_ID, PAD_ID

ATTENTION_MASKS = ("causal", "prefix")
Array = jax.Array
PREFIX_FEATURE = "decoder_causal_attention"  # t5x's name: 1 on the fully visible prefix (start token + inputs)


@gin.configurable("DecoderOnly")
def decoder_only_attention(attention: str = "causal") -> str:
    """The decoder-only model's attention mask (gin: `DecoderOnly.attention`), one of ATTENTION_MASKS."""
    if attention not in ATTENTION_MASKS:
        raise ConfigError(f"gin binding DecoderOnly.attention must be one of {ATTENTION_MASKS}, got {attention!r}")
    return attention


_Tokens = TypeVar("_Tokens", np.ndarray, jax.Array)


def sequence_lengths(tokens: _Tokens, xp: ModuleType = np) -> _Tokens:
    """Per row, the length before the right padding (last non-pad position + 1): [B, L] -> [B]; `xp` is numpy
    for numpy tokens, jax.numpy for jax arrays (inside a jitted decoder)."""
    index = xp.arange(1, tokens.shape[1] + 1)[None, :]
    return xp.max(xp.where(tokens != PAD_ID, index, 0), axis=1)


def decoder_only_features(
    inputs: np.ndarray,
    targets: np.ndarray,
    inputs_segment_ids: np.ndarray | None = None,
    targets_segment_ids: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Padded inputs [B, I] and targets [B, T] -> one sequence per row of I + T tokens: the inputs, the targets
    right after them, then padding. Loss weights are 1 on the target tokens only; `decoder_causal_attention`
    is 1 on the start token and the inputs (the prefix a prefix LM sees fully).

    With segment ids (a packed encoder-decoder row, data/packing.py: several examples per row), each example
    becomes its inputs followed by its targets, the examples one after another, with `decoder_segment_ids`
    and `decoder_positions` (restarting at each example, whose first decoder input is the start token)."""
    inputs, targets = np.asarray(inputs, np.int32), np.asarray(targets, np.int32)
    if inputs.ndim != 2 or targets.ndim != 2 or inputs.shape[0] != targets.shape[0]:
        raise ValueError(f"expected inputs [B, I] and targets [B, T], got {inputs.shape} and {targets.shape}")
    packed = inputs_segment_ids is not None
    if not packed:  # one example per row, its padding excluded
        inputs_segment_ids = np.arange(inputs.shape[1])[None, :] < sequence_lengths(inputs)[:, None]
        targets_segment_ids = np.arange(targets.shape[1])[None, :] < sequence_lengths(targets)[:, None]
    tokens = np.concatenate([inputs, targets], axis=1)
    segments = np.concatenate([inputs_segment_ids, targets_segment_ids], axis=1).astype(np.int64)
    is_target = np.concatenate([np.zeros_like(inputs, bool), np.ones_like(targets, bool)], axis=1)
    # Order: by example, its inputs before its targets, each in their order (a stable sort); padding last.
    key = np.where(segments > 0, 2 * segments + is_target, np.iinfo(np.int64).max)
    order = np.argsort(key, axis=1, kind="stable")
    sequence = np.take_along_axis(tokens, order, axis=1)
    segments = np.take_along_axis(segments, order, axis=1)
    is_target = np.take_along_axis(is_target, order, axis=1) & (segments > 0)
    columns = np.arange(tokens.shape[1])[None, :]
    changes = segments != np.pad(segments, ((0, 0), (1, 0)))[:, :-1]
    positions = columns - np.maximum.accumulate(np.where(changes, columns, 0), axis=1)
    starts = changes & (segments > 0)  # the first position of each example
    decoder_inputs = np.where(starts, PAD_ID, shift_right(sequence))  # each example starts from the start token
    from_inputs = shift_right(((segments > 0) & ~is_target).astype(np.int32)).astype(bool)
    out = {
        "decoder_input_tokens": decoder_inputs.astype(np.int32),
        PREFIX_FEATURE: (starts | from_inputs).astype(np.int32),
        TARGET_TOKENS: sequence.astype(np.int32),
        LOSS_WEIGHTS: is_target.astype(np.float32),
    }
    if packed:
        out.update(decoder_segment_ids=segments.astype(np.int32), decoder_positions=positions.astype(np.int32))
    return out


class DecoderOnlyLayer(StackLayer):
    """T5's decoder layer without cross-attention: self-attention (with a decode cache) and MLP, pre-norm."""

    STATIC_ARGNUMS: ClassVar[tuple[int, ...]] = (4, 5)  # `deterministic`, `decode`, counting self (for nn.remat)
    cfg: T5Config
    scanned: bool = False  # inside nn.scan: return (carry, None)

    @nn.compact
    def __call__(
        self,
        x: Array,
        mask: Array | bool,
        bias: Array,
        deterministic: bool,
        decode: bool,
        decode_index: Array | None = None,
    ) -> Array | tuple[Array, None]:
        dtype, drop = activation_dtype(self.cfg), nn.Dropout(self.cfg.dropout_rate)
        h = RMSNorm(dtype, name="pre_self_attention_norm")(x)
        h = MultiHeadAttention(self.cfg, name="self_attention")(
            h, h, mask, bias, deterministic=deterministic, decode=decode, decode_index=decode_index
        )
        x = x + drop(h, deterministic=deterministic)
        h = RMSNorm(dtype, name="pre_mlp_norm")(x)
        h = MLP(self.cfg, name="mlp")(h, deterministic=deterministic)
        x = x + drop(h, deterministic=deterministic)
        return (x, None) if self.scanned else x


class DecoderOnlyStack(nn.Module):
    """Embedding -> layers -> final norm -> logits, for any mask and positions (training or cached decoding)."""

    cfg: T5Config
    embedder: nn.Module
    bidirectional_bias: bool

    @nn.compact
    def __call__(
        self,
        tokens: Array,
        mask: Array | bool,
        query_positions: Array,
        key_positions: Array,
        *,
        deterministic: bool,
        decode: bool = False,
        decode_index: Array | None = None,
    ) -> Array:
        cfg = self.cfg
        drop = nn.Dropout(cfg.dropout_rate)
        bias = RelativePositionBias(cfg, bidirectional=self.bidirectional_bias, name="relpos_bias")(
            query_positions, key_positions
        )
        y = constrain(drop(self.embedder(tokens), deterministic=deterministic), BATCH_LENGTH_EMBED)
        y = run_stack(cfg, DecoderOnlyLayer, cfg.num_decoder_layers, y, mask, bias, deterministic, decode, decode_index)
        y = RMSNorm(activation_dtype(cfg), name="final_norm")(y)
        return output_logits(self, cfg, self.embedder, drop(y, deterministic=deterministic))


class DecoderOnlyLM(nn.Module):
    """`__call__` is teacher-forced training/eval; `step` serves cached decoding with explicit masks."""

    cfg: T5Config
    prefix_lm: bool

    def setup(self) -> None:
        self.cfg.check_ready()
        self.token_embedder = make_token_embedder(self.cfg)
        self.decoder = DecoderOnlyStack(self.cfg, self.token_embedder, bidirectional_bias=self.prefix_lm)

    def __call__(
        self,
        decoder_input_tokens: Array,
        decoder_causal_attention: Array | None = None,
        *,
        decoder_segment_ids: Array | None = None,
        decoder_positions: Array | None = None,
        enable_dropout: bool = False,
    ) -> Array:
        """int32 [B, L] (+ the prefix flags [B, L] for a prefix LM) -> logits float32 [B, L, vocab]."""
        pos = default_positions(decoder_input_tokens, decoder_positions)
        visible = pos[:, :, None] >= pos[:, None, :]
        if self.prefix_lm:
            if decoder_causal_attention is None:
                raise ValueError(f"a prefix LM needs the batch feature {PREFIX_FEATURE!r}")
            prefix = decoder_causal_attention.astype(bool)
            visible = visible | (prefix[:, :, None] & prefix[:, None, :])
        mask = visible[:, None] & segment_mask(decoder_segment_ids, decoder_segment_ids)
        return self.decoder(decoder_input_tokens, mask, pos, pos, deterministic=not enable_dropout)

    def step(
        self,
        tokens: Array,
        mask: Array | bool,
        query_positions: Array,
        key_positions: Array,
        decode_index: Array | None = None,
    ) -> Array:
        """Cached decoding: tokens [B, Q] written at cache slots decode_index.. (None: only allocate a cache
        as long as `tokens`, where mask may be True); mask [B, 1, Q, cache length]."""
        return self.decoder(
            tokens, mask, query_positions, key_positions, deterministic=True, decode=True, decode_index=decode_index
        )


def _greedy_decode(lm: DecoderOnlyLM, params: Any, inputs: Array, *, max_length: int, eos_id: int) -> Array:
    """Cache slots [0, P) hold each row's prompt (start token + inputs, P = I + 1) right-aligned, after unused
    slots that no query sees; the targets follow from slot P on. A slot's position is its distance from
    the row's start token, so the model sees what it saw in training."""
    batch, width = inputs.shape
    prompt_slots, total = width + 1, width + 1 + max_length
    slots = jnp.arange(total)[None, :]
    positions = slots - (prompt_slots - 1 - sequence_lengths(inputs, jnp)[:, None])  # [B, total]
    prompt_pos = positions[:, :prompt_slots]
    prompt = jnp.where(prompt_pos >= 1, jnp.take_along_axis(inputs, jnp.clip(prompt_pos - 1, 0, width - 1), 1), 0)

    def mask(query_slots: Array) -> Array:
        """[Q] -> [B, 1, Q, total]: the used slots up to each query's (a prefix LM's prompt: the whole prompt)."""
        seen = slots <= query_slots[:, None]
        if lm.prefix_lm:
            seen = seen | ((query_slots[:, None] < prompt_slots) & (slots < prompt_slots))
        return ((positions >= 0)[:, None, :] & seen[None])[:, None]

    variables = {"params": params}
    _, cache = lm.apply(
        variables,
        jnp.zeros((batch, total), jnp.int32),
        True,
        positions,
        positions,
        method=DecoderOnlyLM.step,
        mutable=["cache"],
    )
    logits, cache = lm.apply(
        {**variables, **cache},
        prompt,
        mask(jnp.arange(prompt_slots)),
        prompt_pos,
        positions,
        jnp.zeros((), jnp.int32),
        method=DecoderOnlyLM.step,
        mutable=["cache"],
    )

    def step(i: Array, cache: Cache, last_token: Array) -> tuple[Array, Cache]:
        """Output i is predicted at slot P + i - 1 from output i - 1."""
        slot = prompt_slots + i - 1
        query_pos = jax.lax.dynamic_slice_in_dim(positions, slot, 1, axis=1)
        out, updated = lm.apply(
            {**variables, "cache": cache},
            last_token[:, None],
            mask(slot[None]),
            query_pos,
            positions,
            slot,
            method=DecoderOnlyLM.step,
            mutable=["cache"],
        )
        return out[:, 0, :], updated["cache"]

    fill_rows = jnp.all(inputs == PAD_ID, axis=1)
    return greedy_loop(step, cache["cache"], batch, max_length, eos_id, fill_rows, first_logits=logits[:, -1, :])


@functools.lru_cache(maxsize=16)
def _compiled(cfg: T5Config, prefix_lm: bool, max_length: int, eos_id: int) -> CompiledDecode:
    return jax.jit(
        functools.partial(_greedy_decode, DecoderOnlyLM(cfg, prefix_lm), max_length=max_length, eos_id=eos_id)
    )


class DecoderOnly(Model):
    name = "decoder_only"
    feature_keys = ("decoder_input_tokens", PREFIX_FEATURE, TARGET_TOKENS, LOSS_WEIGHTS)
    layer_stacks = (("decoder", "num_decoder_layers"),)

    def __init__(self, cfg: T5Config, attention: str | None = None):
        """attention: 'causal' or 'prefix'; None = gin's DecoderOnly.attention."""
        self.cfg = cfg
        self.attention = decoder_only_attention() if attention is None else attention
        if self.attention not in ATTENTION_MASKS:
            raise ValueError(f"DecoderOnly attention must be one of {ATTENTION_MASKS}, got {self.attention!r}")
        self.prefix_lm = self.attention == "prefix"
        self.module: nn.Module = DecoderOnlyLM(cfg, prefix_lm=self.prefix_lm)

    @property
    def architecture(self) -> str:
        """Table 2's "Language model" (decoder_only_lm) or "Prefix LM" (decoder_only_prefix_lm), as the gin files."""
        return "decoder_only_prefix_lm" if self.prefix_lm else "decoder_only_lm"

    def features(self, inputs: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
        return decoder_only_features(inputs, targets)

    def packed_features(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return decoder_only_features(
            batch["encoder_input_tokens"],
            batch[TARGET_TOKENS],
            batch["encoder_segment_ids"],
            batch["decoder_segment_ids"],
        )

    def init(self, key: jax.Array, batch_size: int) -> Any:
        tokens = init_tokens(batch_size)
        return self.module.init({"params": key, "dropout": key}, tokens, tokens, enable_dropout=False)

    def apply(self, params: Any, batch: dict, dropout_rng: jax.Array | None = None) -> jax.Array:
        optional = {k: batch[k] for k in ("decoder_segment_ids", "decoder_positions") if k in batch}
        logits = self.module.apply(
            {"params": params},
            batch["decoder_input_tokens"],
            batch.get(PREFIX_FEATURE),
            **optional,
            enable_dropout=dropout_rng is not None,
            rngs=dropout_rngs(dropout_rng),
        )
        return cast(jax.Array, logits)  # not a (logits, state) tuple: nothing is mutable

    def greedy_decode(self, params: Any, inputs: Any, max_length: int) -> jax.Array:
        compiled = _compiled(self.cfg, self.prefix_lm, check_max_length(max_length), EOS_ID)
        return compiled(params, jnp.asarray(inputs, jnp.int32))

    def num_params(self) -> int:
        cfg = self.cfg
        cfg.check_ready()
        layer = flops.attention_params(cfg) + flops.mlp_params(cfg) + 2 * cfg.d_model
        relpos = cfg.num_heads * cfg.relative_attention_num_buckets
        return flops.embedding_params(cfg) + cfg.num_decoder_layers * layer + cfg.d_model + relpos

    def flops_per_token(self, inputs_length: int, targets_length: int) -> float:
        """One stack over inputs + targets (logits too: the loss skips the inputs, the compute does not)."""
        cfg = self.cfg
        cfg.check_ready()
        proj, mlp, scores = flops.layer_flop_terms(cfg)
        length = inputs_length + targets_length
        layers = cfg.num_decoder_layers * (length * (4 * proj + mlp) + scores * length * length)
        head = length * 2 * cfg.d_model * cfg.vocab_size
        return 3 * (layers + head) / inputs_length

    def unscanned(self) -> DecoderOnly:
        return DecoderOnly(dataclasses.replace(self.cfg, scan_layers=False), self.attention)
