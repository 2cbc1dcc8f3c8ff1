"""T5 building blocks: RMSNorm, relative position bias, multi-head attention (with a decode cache), MLPs.

Conventions (as in t5x): parameters are float32 and carry logical axis names; matmuls run in the config's
dtype; norms and softmax run in float32. Attention logits are not divided by sqrt(head_dim) — T5 folds
that factor into the query initialisation instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax.typing import DTypeLike

from t5explore.model.config import T5Config
from t5explore.model.partitioning import BATCH_LENGTH_EMBED, BATCH_LENGTH_HEADS, BATCH_LENGTH_MLP, constrain

NEG_INF = -1e10  # finite, so a row with every key masked gives a uniform softmax instead of NaN
Array = jax.Array
FusedImplementation = Literal["xla", "cudnn"]  # jax.nn.dot_product_attention's `implementation` values


def activation_dtype(cfg: T5Config) -> DTypeLike:
    """The dtype of activations and matmuls (cfg.dtype); parameters stay float32."""
    return jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32


def param_with_axes(module: nn.Module, name: str, init: Callable, shape: Sequence[int], axes: tuple[str, ...]) -> Array:
    """Create a float32 parameter whose box carries logical axis names (so a mesh + rules can shard it)."""
    # Module.param unboxes (unbox=True): it returns the array, though flax types it as the init's return type,
    # the LogicallyPartitioned box.
    return cast(Array, module.param(name, nn.with_logical_partitioning(init, axes), tuple(shape), jnp.float32))


def kernel_init(
    in_axis: int | Sequence[int], out_axis: int | Sequence[int], scale: float = 1.0
) -> nn.initializers.Initializer:
    """T5's fan-in scaled normal init, told which axes are fan-in for multi-dimensional kernels."""
    return nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal", in_axis=in_axis, out_axis=out_axis)


class RMSNorm(nn.Module):
    """T5 layer norm: scale only, no mean subtraction and no bias; statistics in float32."""

    dtype: DTypeLike = jnp.float32
    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x: Array) -> Array:
        scale = param_with_axes(self, "scale", nn.initializers.ones, (x.shape[-1],), ("embed",))
        x32 = x.astype(jnp.float32)
        x32 = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.epsilon)
        return (x32 * scale).astype(self.dtype)


_Positions = TypeVar("_Positions", np.ndarray, Array)  # numpy in, numpy out; jax in, jax out


def relative_position_bucket(
    relative_position: _Positions, *, bidirectional: bool, num_buckets: int = 32, max_distance: int = 128
) -> _Positions:
    """Map (key_pos - query_pos) to a bucket, exactly as Mesh TF / t5x T5 do.

    Half the buckets are exact small distances, the rest log-spaced up to max_distance (beyond: last bucket).
    Bidirectional (encoder) spends half the buckets on keys after the query; causal (decoder) folds all
    future positions into bucket 0 (they are masked anyway). Works on numpy and jax arrays.
    """
    xp = jnp if isinstance(relative_position, jax.Array) else np
    n = -relative_position
    bucket: _Positions | int = 0  # the offset of keys after the query (bidirectional only)
    if bidirectional:
        num_buckets //= 2
        bucket = (n < 0).astype(np.int32) * num_buckets
        n = xp.abs(n)
    else:
        n = xp.maximum(n, 0)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    log_ratio = xp.log(n.astype(np.float32) / max_exact + np.finfo(np.float32).eps) / np.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (num_buckets - max_exact)).astype(np.int32)
    large = xp.minimum(large, num_buckets - 1)
    return bucket + xp.where(is_small, n, large)


class RelativePositionBias(nn.Module):
    """One learned scalar per (head, bucket); computed once per stack and shared by all its layers."""

    cfg: T5Config
    bidirectional: bool

    @nn.compact
    def __call__(self, query_positions: Array, key_positions: Array) -> Array:
        """positions: int [B or 1, Q] and [B or 1, K] -> float32 bias [B or 1, H, Q, K]."""
        cfg = self.cfg
        table = param_with_axes(
            self,
            "rel_embedding",
            nn.initializers.variance_scaling(1.0, "fan_avg", "uniform"),
            (cfg.num_heads, cfg.relative_attention_num_buckets),
            ("heads", "relpos_buckets"),
        )
        relative = key_positions[:, None, :] - query_positions[:, :, None]  # [B, Q, K]
        buckets = relative_position_bucket(
            relative,
            bidirectional=self.bidirectional,
            num_buckets=cfg.relative_attention_num_buckets,
            max_distance=cfg.relative_attention_max_distance,
        )
        bias = jnp.take(table, buckets, axis=1)  # [H, B, Q, K]
        return jnp.transpose(bias, (1, 0, 2, 3))


class MultiHeadAttention(nn.Module):
    """Multi-head dot-product attention. `decode=True` keeps a key/value cache (flax's cache pattern):
    the first call (full length) only allocates it; calls with `decode_index` write one step and attend
    over the cache."""

    cfg: T5Config

    @nn.compact
    def __call__(
        self,
        inputs_q: Array,
        inputs_kv: Array,
        mask: Array | bool,
        bias: Array | None = None,
        *,
        deterministic: bool = True,
        decode: bool = False,
        decode_index: Array | None = None,
    ) -> Array:
        """inputs [B, Q, E] / [B, K, E]; mask bool broadcastable to [B, H, Q, K] (True: a cache-allocating
        pass that attends nowhere that matters); bias float32 likewise."""
        cfg = self.cfg
        dtype = activation_dtype(cfg)
        qkv_shape = (cfg.d_model, cfg.num_heads, cfg.head_dim)
        qkv_axes = ("embed", "heads", "kv")
        w_q = param_with_axes(self, "query", kernel_init(0, (1, 2), scale=1.0 / cfg.head_dim), qkv_shape, qkv_axes)
        w_k = param_with_axes(self, "key", kernel_init(0, (1, 2)), qkv_shape, qkv_axes)
        w_v = param_with_axes(self, "value", kernel_init(0, (1, 2)), qkv_shape, qkv_axes)
        w_o = param_with_axes(
            self, "out", kernel_init((0, 1), 2), (cfg.num_heads, cfg.head_dim, cfg.d_model), ("heads", "kv", "embed")
        )

        q = constrain(jnp.einsum("bqe,ehd->bqhd", inputs_q.astype(dtype), w_q.astype(dtype)), BATCH_LENGTH_HEADS)
        k = constrain(jnp.einsum("bke,ehd->bkhd", inputs_kv.astype(dtype), w_k.astype(dtype)), BATCH_LENGTH_HEADS)
        v = constrain(jnp.einsum("bke,ehd->bkhd", inputs_kv.astype(dtype), w_v.astype(dtype)), BATCH_LENGTH_HEADS)

        if decode:
            initialised = self.has_variable("cache", "cached_key")
            cached_key = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
            cached_value = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
            if initialised and decode_index is not None:
                start = (0, decode_index, 0, 0)
                cached_key.value = jax.lax.dynamic_update_slice(cached_key.value, k, start)
                cached_value.value = jax.lax.dynamic_update_slice(cached_value.value, v, start)
                k, v = cached_key.value, cached_value.value

        implementation = fused_attention_implementation(cfg, q.dtype, deterministic, decode)
        if implementation is not None:
            out = fused_attention(q, k, v, mask, bias, implementation)
        else:
            logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
            if bias is not None:
                logits = logits + bias
            logits = jnp.where(mask, logits, NEG_INF)
            weights = jax.nn.softmax(logits, axis=-1).astype(dtype)
            weights = nn.Dropout(cfg.dropout_rate)(weights, deterministic=deterministic)
            out = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
        out = constrain(out, BATCH_LENGTH_HEADS)
        return constrain(jnp.einsum("bqhd,hde->bqe", out, w_o.astype(dtype)), BATCH_LENGTH_EMBED)


def fused_attention_implementation(
    cfg: T5Config, dtype: DTypeLike, deterministic: bool, decode: bool
) -> FusedImplementation | None:
    """The `implementation` for jax.nn.dot_product_attention, or None for the einsum path.

    The einsum path stays where the fused call cannot do the same thing: attention dropout while training
    (jax.nn.dot_product_attention has none) and the single-query steps of cached decoding.
    'dot_product' picks cuDNN's fused kernel on a GPU for bf16/fp16 with head_dim a multiple of 8, else
    XLA's own implementation (jax's `implementation=None` means XLA); 'cudnn' insists on the kernel.
    """
    if cfg.attention_impl == "xla" or decode or (cfg.dropout_rate > 0 and not deterministic):
        return None
    if cfg.attention_impl == "cudnn":
        return "cudnn"
    on_gpu = jax.default_backend() == "gpu"
    half = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
    return "cudnn" if on_gpu and half and cfg.head_dim % 8 == 0 else "xla"


def fused_attention(
    q: Array, k: Array, v: Array, mask: Array | bool, bias: Array | None, implementation: FusedImplementation
) -> Array:
    """jax.nn.dot_product_attention with T5's conventions: no 1/sqrt(head_dim) scaling (scale=1.0; T5 folds
    it into the query initialisation), the relative position bias as `bias`, the padding/causal/segment mask
    as `mask`. q [B, Q, H, D], k/v [B, K, H, D] -> [B, Q, H, D]."""
    if bias is not None and implementation == "cudnn":
        bias = bias.astype(q.dtype)  # cuDNN wants one dtype for q, k, v and bias
    full_mask = jnp.broadcast_to(mask, (q.shape[0], 1, q.shape[1], k.shape[1])) if jnp.ndim(mask) else None
    return jax.nn.dot_product_attention(q, k, v, bias=bias, mask=full_mask, scale=1.0, implementation=implementation)


class MLP(nn.Module):
    """T5 1.0 `relu` (wi -> relu -> wo) or T5 1.1 `gated-gelu` (gelu(wi_0 x) * wi_1 x -> wo)."""

    cfg: T5Config

    @nn.compact
    def __call__(self, x: Array, *, deterministic: bool = True) -> Array:
        cfg = self.cfg
        dtype = activation_dtype(cfg)
        x = x.astype(dtype)
        shape_in, axes_in = (cfg.d_model, cfg.d_ff), ("embed", "mlp")
        if cfg.mlp == "relu":
            w_i = param_with_axes(self, "wi", kernel_init(0, 1), shape_in, axes_in)
            h = nn.relu(x @ w_i.astype(dtype))
        else:
            w_i0 = param_with_axes(self, "wi_0", kernel_init(0, 1), shape_in, axes_in)
            w_i1 = param_with_axes(self, "wi_1", kernel_init(0, 1), shape_in, axes_in)
            h = nn.gelu(x @ w_i0.astype(dtype), approximate=True) * (x @ w_i1.astype(dtype))
        h = constrain(nn.Dropout(cfg.dropout_rate)(h, deterministic=deterministic), BATCH_LENGTH_MLP)
        w_o = param_with_axes(self, "wo", kernel_init(0, 1), (cfg.d_ff, cfg.d_model), ("mlp", "embed"))
        return constrain(h @ w_o.astype(dtype), BATCH_LENGTH_EMBED)
