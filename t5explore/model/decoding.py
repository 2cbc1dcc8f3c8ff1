"""Batched greedy decoding with a key/value cache, compiled once per (config, max_length).

Each row stops at its first EOS; everything after it is padding (0). The loop (`greedy_loop`) is a
`lax.while_loop` that also ends early once every row is done; it is shared by every architecture, which only
says how one step turns the last token into the next token's logits (the encoder-decoder's is below; the
decoder-only LM's is in decoder_only.py). A row whose input is all padding (a fill row of a last, partial
batch) is done from the start and decodes to zeros, so it never keeps the loop running; real inputs always
hold at least their EOS.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from t5explore.model.config import T5Config
from t5explore.model.t5 import T5
from t5explore.special_ids import EOS_ID, PAD_ID

Cache = Any  # a flax 'cache' collection: a pytree of arrays (its structure is the module's)
# step(i, cache, last_token [B]) -> (logits [B, vocab] of output i, updated cache)
DecodeStep = Callable[[jax.Array, Cache, jax.Array], tuple[jax.Array, Cache]]
# (output index i, cache, last token [B], outputs [B, max_length], done [B]): the while loop's carry
LoopState = tuple[jax.Array, Cache, jax.Array, jax.Array, jax.Array]
# (params, encoder or prompt tokens int32 [B, I]) -> int32 [B, max_length]: a jitted greedy decoder
CompiledDecode = Callable[[Any, jax.Array], jax.Array]


def check_max_length(max_length: int) -> int:
    if max_length <= 0:
        raise ValueError(f"greedy_decode: max_length must be positive, got {max_length}")
    return int(max_length)


def greedy_loop(
    step: DecodeStep,
    cache: Cache,
    batch: int,
    max_length: int,
    eos_id: int,
    finished: jax.Array,
    first_logits: jax.Array | None = None,
) -> jax.Array:
    """int32 [batch, max_length]: output i is the argmax of `step(i, cache, output i-1)`, 0 after a row's EOS
    and in rows `finished` [B] from the start (fill rows).

    The first step is fed the start token (PAD_ID), unless `first_logits` [B, vocab] (a prompt's last
    position, already computed) gives output 0; the loop then starts at output 1."""
    outputs = jnp.zeros((batch, max_length), jnp.int32)
    done = finished
    last_token = jnp.full((batch,), PAD_ID, jnp.int32)
    i = jnp.zeros((), jnp.int32)
    if first_logits is not None:
        last_token = jnp.where(done, PAD_ID, jnp.argmax(first_logits, axis=-1).astype(jnp.int32))
        outputs, done, i = outputs.at[:, 0].set(last_token), done | (last_token == eos_id), i + 1

    def body(state: LoopState) -> LoopState:
        i, cache, last_token, outputs, done = state
        logits, cache = step(i, cache, last_token)
        token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        token = jnp.where(done, 0, token)
        outputs = outputs.at[:, i].set(token)
        return i + 1, cache, token, outputs, done | (token == eos_id)

    def keep_going(state: LoopState) -> jax.Array:
        i, _, _, _, done = state
        return (i < max_length) & ~jnp.all(done)

    return jax.lax.while_loop(keep_going, body, (i, cache, last_token, outputs, done))[3]


def greedy_decode(
    model: T5, params: Any, encoder_input_tokens: ArrayLike, max_length: int, *, eos_id: int = EOS_ID
) -> jax.Array:
    """The encoder-decoder's greedy decoding. params: the model's 'params' collection (boxed or not);
    encoder_input_tokens int32 [B, I].

    Returns int32 [B, max_length]: greedy continuations, EOS included, 0 after it.
    """
    max_length = check_max_length(max_length)
    return _compiled(model.cfg, max_length, int(eos_id))(params, jnp.asarray(encoder_input_tokens, jnp.int32))


@functools.lru_cache(maxsize=16)
def _compiled(cfg: T5Config, max_length: int, eos_id: int) -> CompiledDecode:
    return jax.jit(functools.partial(_greedy_decode, T5(cfg), max_length=max_length, eos_id=eos_id))


def _greedy_decode(model: T5, params: Any, encoder_tokens: jax.Array, *, max_length: int, eos_id: int) -> jax.Array:
    batch = encoder_tokens.shape[0]
    encoded = model.apply({"params": params}, encoder_tokens, method=T5.encode)
    # A full-length pass with decode=True only allocates the cache (zeros, step counter at 0).
    _, variables = model.apply(
        {"params": params},
        encoded,
        encoder_tokens,
        jnp.zeros((batch, max_length), jnp.int32),
        decode=True,
        method=T5.decode,
        mutable=["cache"],
    )

    def step(i: jax.Array, cache: Cache, last_token: jax.Array) -> tuple[jax.Array, Cache]:
        logits, updated = model.apply(
            {"params": params, "cache": cache},
            encoded,
            encoder_tokens,
            last_token[:, None],
            decode=True,
            method=T5.decode,
            mutable=["cache"],
        )
        return logits[:, 0, :], updated["cache"]

    fill_rows = jnp.all(encoder_tokens == PAD_ID, axis=1)
    return greedy_loop(step, variables["cache"], batch, max_length, eos_id, fill_rows)
