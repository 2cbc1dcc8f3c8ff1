"""The train state: the smallest pytree that resumes a run exactly (step, params, optimiser state).

The optax transformation itself is not stored: it is rebuilt from the gin config, and the jit-compiled
step closes over it. The dropout key is not stored either: it is `fold_in(jax_key(seed, STREAM_DROPOUT), step)`.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: number of updates applied so far
    params: Any
    opt_state: Any

    @classmethod
    def create(cls, params: Any, tx: optax.GradientTransformation) -> TrainState:
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))


def count_params(params: Any) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))
