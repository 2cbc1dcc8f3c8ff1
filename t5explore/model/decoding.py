"""Batched greedy decoding with a decoder key/value cache, compiled once per (config, max_length).

Each row stops at its first EOS; everything after it is padding (0). The loop is a `lax.while_loop`
that also ends early once every row is done. A row whose encoder input is all padding (a fill row of a last,
partial batch) is done from the start and decodes to zeros, so it never keeps the loop running; real inputs
always hold at least their EOS.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from t5explore.model.config import T5Config
from t5explore.model.t5 import T5

EOS_ID = 1
PAD_ID = 0


def greedy_decode(model: T5, params, encoder_input_tokens, max_length: int, *, eos_id: int = EOS_ID):
    """params: the model's 'params' collection (boxed or not); encoder_input_tokens int32 [B, I].

    Returns int32 [B, max_length]: greedy continuations, EOS included, 0 after it.
    """
    if max_length <= 0:
        raise ValueError(f"greedy_decode: max_length must be positive, got {max_length}")
    return _compiled(model.cfg, int(max_length), int(eos_id))(params, jnp.asarray(encoder_input_tokens, jnp.int32))


@functools.lru_cache(maxsize=16)
def _compiled(cfg: T5Config, max_length: int, eos_id: int):
    return jax.jit(functools.partial(_greedy_decode, T5(cfg), max_length=max_length, eos_id=eos_id))


def _greedy_decode(model: T5, params, encoder_tokens, *, max_length: int, eos_id: int):
    batch = encoder_tokens.shape[0]
    encoded = model.apply({"params": params}, encoder_tokens, method=T5.encode)
    # A full-length pass with decode=True only allocates the cache (zeros, step counter at 0).
    _, variables = model.apply({"params": params}, encoded, encoder_tokens,
                               jnp.zeros((batch, max_length), jnp.int32), decode=True, method=T5.decode,
                               mutable=["cache"])

    def step(state):
        i, cache, last_token, outputs, done = state
        logits, updated = model.apply({"params": params, "cache": cache}, encoded, encoder_tokens,
                                      last_token[:, None], decode=True, method=T5.decode, mutable=["cache"])
        token = jnp.argmax(logits[:, 0, :], axis=-1).astype(jnp.int32)
        token = jnp.where(done, 0, token)
        outputs = outputs.at[:, i].set(token)
        return i + 1, updated["cache"], token, outputs, done | (token == eos_id)

    def keep_going(state):
        i, _, _, _, done = state
        return (i < max_length) & ~jnp.all(done)

    start = (jnp.zeros((), jnp.int32), variables["cache"], jnp.zeros((batch,), jnp.int32),
             jnp.zeros((batch, max_length), jnp.int32), jnp.all(encoder_tokens == PAD_ID, axis=1))
    return jax.lax.while_loop(keep_going, step, start)[3]
