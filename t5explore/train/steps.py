"""Pure train/eval steps: cross-entropy on non-padding target tokens, optional z-loss and label smoothing.

The steps are plain functions of (state, batch); `partitioning.Partitioner` jit-compiles them with the
mesh shardings. Loss is the mean over the batch's target tokens (`TARGET_TOKENS`) with loss weights
(`LOSS_WEIGHTS`) > 0, so padding never contributes (model/interface.py: each model's features decide which
tokens count); in a packed batch (data/packing.py) it is the same per-token mean over every segment's target
tokens of the batch (a segment's loss is the sum of its tokens' losses, and no token sees another segment);
z-loss (PaLM / t5x) adds `z_loss * logsumexp(logits)^2` per token to keep logits bounded.
`Loss.cross_entropy` (gin) picks how the cross entropy is computed; the default is the one-hot sum.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gin
import jax
import jax.numpy as jnp
import optax

from t5explore.config import ConfigError
from t5explore.model.interface import LOSS_WEIGHTS, TARGET_TOKENS, Model
from t5explore.train.state import TrainState

Batch = dict[str, jax.Array]


CROSS_ENTROPY_IMPLS = ("one_hot", "integer_labels")


@gin.configurable("Loss")
def cross_entropy_impl(cross_entropy: str = "one_hot") -> str:
    """How token_losses computes cross entropy (gin: `Loss.cross_entropy`). 'one_hot' (the default) sums
    one-hot (or smoothed) targets times log-probabilities over the vocabulary; 'integer_labels' is
    optax.softmax_cross_entropy_with_integer_labels (gathers the target's logit, no [B, T, V] targets),
    with label smoothing added in closed form. The same loss up to float rounding (see benchmarks/losses.py)."""
    if cross_entropy not in CROSS_ENTROPY_IMPLS:
        raise ConfigError(f"gin binding Loss.cross_entropy must be one of {CROSS_ENTROPY_IMPLS}, got {cross_entropy!r}")
    return cross_entropy


def token_losses(
    logits: jax.Array,
    targets: jax.Array,
    z_loss: float = 0.0,
    label_smoothing: float = 0.0,
    cross_entropy: str = "one_hot",
):
    """Per-token (cross entropy, z-loss term) for float32 logits [B, T, V] and int targets [B, T].

    Label smoothing is t5x's: the target gets 1 - label_smoothing, every other id label_smoothing / (V - 1),
    and the soft targets' entropy is subtracted so that a perfect model scores 0. (optax.smooth_labels
    spreads label_smoothing over all V ids, the target included: not the same loss.)
    """
    logits = logits.astype(jnp.float32)
    vocab = logits.shape[-1]
    log_z = jax.nn.logsumexp(logits, axis=-1)
    on = 1.0 - label_smoothing
    off = label_smoothing / (vocab - 1) if vocab > 1 else 0.0
    if cross_entropy == "integer_labels":
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
        if label_smoothing > 0:  # -sum_j soft_j log p_j = (on - off) ce + off sum_j (log_z - logit_j)
            ce = (on - off) * ce + off * (vocab * log_z - jnp.sum(logits, axis=-1))
    else:
        log_probs = logits - log_z[..., None]
        soft = jax.nn.one_hot(targets, vocab, dtype=jnp.float32) * (on - off) + off
        ce = -jnp.sum(soft * log_probs, axis=-1)
    if label_smoothing > 0:  # subtract the entropy of the soft targets so that a perfect model scores 0
        ce = ce + on * jnp.log(on) + (vocab - 1) * off * jnp.log(jnp.maximum(off, 1e-20))
    return ce, z_loss * jnp.square(log_z)


def loss_and_metrics(
    logits, batch: Batch, z_loss: float = 0.0, label_smoothing: float = 0.0, cross_entropy: str = "one_hot"
):
    """Scalar training loss and the metrics dict (means over weighted target tokens)."""
    targets, weights = batch[TARGET_TOKENS], batch[LOSS_WEIGHTS].astype(jnp.float32)
    ce, zl = token_losses(logits, targets, z_loss, label_smoothing, cross_entropy)
    num_tokens = jnp.sum(weights)
    denom = jnp.maximum(num_tokens, 1.0)
    ce_mean = jnp.sum(ce * weights) / denom
    z_mean = jnp.sum(zl * weights) / denom
    correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
    loss = ce_mean + z_mean
    metrics = {
        "loss": loss,
        "cross_entropy": ce_mean,
        "z_loss": z_mean,
        "accuracy": jnp.sum(correct * weights) / denom,
        "num_tokens": num_tokens,
    }
    return loss, metrics


def make_train_step(
    apply_fn: Callable,
    tx: optax.GradientTransformation,
    dropout_key: jax.Array,
    z_loss: float = 0.0,
    label_smoothing: float = 0.0,
    cross_entropy: str = "one_hot",
) -> Callable:
    """Returns train_step(state, batch) -> (state, metrics). `apply_fn(params, batch, dropout_rng)` -> logits.

    The dropout rng of step s is fold_in(dropout_key, s): a resumed run draws the same masks.
    """

    def train_step(state: TrainState, batch: Batch):
        rng = jax.random.fold_in(dropout_key, state.step)

        def loss_fn(params):
            logits = apply_fn(params, batch, rng)
            return loss_and_metrics(logits, batch, z_loss, label_smoothing, cross_entropy)

        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return train_step


def make_eval_step(apply_fn: Callable, z_loss: float = 0.0, cross_entropy: str = "one_hot") -> Callable:
    """Returns eval_step(params, batch) -> metrics, without dropout."""

    def eval_step(params: Any, batch: Batch):
        logits = apply_fn(params, batch, None)
        return loss_and_metrics(logits, batch, z_loss, 0.0, cross_entropy)[1]

    return eval_step


def model_apply_fn(model: Model) -> Callable:
    """apply_fn(params, batch, dropout_rng) -> logits: the model's own `apply` (model/interface.py), which takes
    the whole batch, so optional features (packing's segment ids and positions) reach the module."""
    return model.apply
