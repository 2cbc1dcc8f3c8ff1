"""Mesh, logical-axis rules and jit with shardings: the one code path for 1 CPU and for a GPU pod.

Parameters carry logical axis names (`embed`, `mlp`, `heads`, ...); `Partitioner.axis_rules` maps them
to the mesh axes ('data', 'model'). The default is `t5explore.model.partitioning.DEFAULT_LOGICAL_RULES`:
`batch` and `embed` over 'data' (data parallelism + FSDP: parameters and optimizer state are sharded over
the data axis too), `mlp`/`heads`/`joined_kv`/`vocab` over 'model' (tensor parallelism, a no-op with the
default mesh_shape (-1, 1)). Pure data parallelism is `Partitioner.axis_rules = [('batch', 'data')]`
(a logical name without a rule is replicated). Other layouts are a different rule list, not different code.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from t5explore.config import ConfigError
from t5explore.model.partitioning import DEFAULT_LOGICAL_RULES


def make_mesh(mesh_shape: Sequence[int], devices: Optional[Sequence[Any]] = None) -> Mesh:
    """A ('data', 'model') mesh; one -1 entry takes the remaining devices."""
    devices = list(devices if devices is not None else jax.devices())
    shape = list(mesh_shape)
    if len(shape) == 1:
        shape = shape + [1]
    if len(shape) != 2 or shape.count(-1) > 1:
        raise ConfigError(f"gin binding Partitioner.mesh_shape must be (data, model) with at most one -1, got {mesh_shape}")
    known = int(np.prod([s for s in shape if s != -1]))
    if -1 in shape:
        if len(devices) % known:
            raise ConfigError(f"gin binding Partitioner.mesh_shape={tuple(mesh_shape)} does not divide {len(devices)} devices")
        shape[shape.index(-1)] = len(devices) // known
    if int(np.prod(shape)) != len(devices):
        raise ConfigError(f"gin binding Partitioner.mesh_shape={tuple(mesh_shape)} needs {int(np.prod(shape))} "
                          f"devices, have {len(devices)}")
    return Mesh(np.asarray(devices, dtype=object).reshape(shape), ("data", "model"))


@gin.configurable("Partitioner")
class Partitioner:
    """Owns the mesh and the rules; turns logical specs into shardings and jits steps with them."""

    def __init__(self, mesh_shape: Sequence[int] = (-1, 1), axis_rules: Optional[Sequence] = None,
                 devices: Optional[Sequence[Any]] = None):
        self.mesh = make_mesh(mesh_shape, devices)
        self.axis_rules = tuple(tuple(r) for r in (axis_rules if axis_rules is not None else DEFAULT_LOGICAL_RULES))

    @property
    def data_size(self) -> int:
        return self.mesh.shape["data"]

    def check_batch_size(self, batch_size: int, binding: str) -> None:
        if batch_size % self.data_size:
            raise ConfigError(f"gin binding {binding}={batch_size} must be a multiple of the mesh's data axis "
                              f"({self.data_size} devices)")

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    @property
    def batch_sharding(self) -> NamedSharding:
        """Every batch array is [B, ...] with B split over 'data'."""
        return NamedSharding(self.mesh, P("data"))

    def logical_to_sharding(self, logical_specs: Any) -> Any:
        return nn.logical_to_mesh_sharding(logical_specs, self.mesh, self.axis_rules)

    def init_params(self, init_fn: Callable[[jax.Array], Any], key: jax.Array) -> tuple[Any, Any]:
        """Run `init_fn(key) -> variables` sharded; returns (unboxed params, their shardings)."""
        abstract = jax.eval_shape(init_fn, key)
        specs = nn.get_partition_spec(abstract)["params"]
        shardings = self.logical_to_sharding(specs)
        shardings = jax.tree.map(lambda s: self.replicated if s is None else s, shardings,
                                 is_leaf=lambda x: x is None or isinstance(x, NamedSharding))
        params = jax.jit(lambda k: nn.meta.unbox(init_fn(k)["params"]), out_shardings=shardings)(key)
        return params, shardings

    def shard_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return {k: jax.device_put(np.asarray(v), self.batch_sharding) for k, v in batch.items()}

    def jit_train_step(self, step_fn: Callable, state_shardings: Any) -> Callable:
        """(state, batch) -> (state, metrics); the old state's buffers are donated."""
        return jax.jit(step_fn, in_shardings=(state_shardings, self.batch_sharding),
                       out_shardings=(state_shardings, self.replicated), donate_argnums=(0,))

    def jit_eval_step(self, step_fn: Callable, param_shardings: Any) -> Callable:
        return jax.jit(step_fn, in_shardings=(param_shardings, self.batch_sharding), out_shardings=self.replicated)

    def create_state(self, params: Any, tx, create_fn: Callable) -> tuple[Any, Any]:
        """Build a TrainState with `create_fn(params, tx)` under jit, so the optimiser state is laid out by
        the compiler next to its params; returns (state, its shardings)."""
        # The copy keeps jit from forwarding the caller's param buffers into a state whose buffers the train
        # step donates (per-task fine-tuning restarts every task from the same pretrained params).
        state = jax.jit(lambda p: create_fn(jax.tree.map(jnp.copy, p), tx))(params)
        return state, jax.tree.map(lambda x: x.sharding, state)
