"""The optax optimiser and learning-rate schedule a run's `Optimizer` config (t5explore/run_config.py) describes.

Apart from the config because the config is read where JAX is not wanted (the leaves, the sweep's fingerprint);
building the optimiser is the trainer's business. Optimisers and schedules come from optax; only the paper's
inverse-square-root schedule, which optax does not ship, is written here.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from t5explore.run_config import Optimizer


def make_schedule(opt: Optimizer, total_steps: int) -> optax.Schedule:
    """`opt.schedule` at peak `opt.learning_rate`; cosine decays to 0 at `opt.decay_steps` (None: `total_steps`)."""
    opt.validate()
    if opt.schedule == "constant":
        return optax.constant_schedule(opt.learning_rate)
    if opt.schedule == "cosine":
        decay = max(int(opt.decay_steps or total_steps), opt.warmup_steps + 1)
        return optax.warmup_cosine_decay_schedule(0.0, opt.learning_rate, opt.warmup_steps, decay)
    return rsqrt_schedule(opt.learning_rate, opt.warmup_steps)


def make_optimizer(opt: Optimizer, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The optax transformation and its schedule (the schedule is logged as `learning_rate`)."""
    schedule = make_schedule(opt, total_steps)
    if opt.name == "adafactor":  # T5's settings are optax's defaults: factored, decay 0.8, clip 1.0
        tx = optax.adafactor(learning_rate=schedule, weight_decay_rate=opt.weight_decay or None)
    else:
        tx = optax.adamw(learning_rate=schedule, weight_decay=opt.weight_decay)
    if opt.grad_clip_norm:
        tx = optax.chain(optax.clip_by_global_norm(opt.grad_clip_norm), tx)
    return tx, schedule


def rsqrt_schedule(peak: float, warmup_steps: int) -> optax.Schedule:
    """Constant `peak` for `warmup_steps` steps, then decaying as 1/sqrt(step) (Raffel et al. §3.1.2)."""
    warm = float(max(warmup_steps, 1))

    def schedule(step):
        return peak * jnp.sqrt(warm / jnp.maximum(jnp.asarray(step, jnp.float32), warm))

    return schedule
