"""Mesh, logical-axis rules and jit with shardings: the one code path for 1 CPU and for a GPU pod.

Parameters carry logical axis names (`embed`, `mlp`, `heads`, ...); `Partitioner.axis_rules` maps them
to the mesh axes ('data', 'model'). The default is `t5explore.model.partitioning.DEFAULT_LOGICAL_RULES`:
`batch` and `embed` over 'data' (data parallelism + FSDP: parameters and optimizer state are sharded over
the data axis too), `mlp`/`heads`/`joined_kv`/`vocab` over 'model' (tensor parallelism, a no-op with the
default mesh_shape (-1, 1)). Pure data parallelism is `Partitioner.axis_rules = [('batch', 'data')]`
(a logical name without a rule is replicated). Other layouts are a different rule list, not different code:
gin/mesh/{data_parallel,fsdp,tensor_parallel}.gin. The mesh spans every process's devices (jax.devices()),
process by process, so the 'data' axis is split across hosts first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from t5explore.config import ConfigError
from t5explore.distributed import ProcessLocalBatch, process_rows
from t5explore.model.partitioning import DEFAULT_LOGICAL_RULES, activation_sharding


def make_mesh(mesh_shape: Sequence[int], devices: Sequence[Any] | None = None) -> Mesh:
    """A ('data', 'model') mesh; one -1 entry takes the remaining devices."""
    devices = list(devices if devices is not None else jax.devices())
    shape = list(mesh_shape)
    if len(shape) == 1:
        shape = [*shape, 1]
    if len(shape) != 2 or shape.count(-1) > 1:
        raise ConfigError(
            f"gin binding Partitioner.mesh_shape must be (data, model) with at most one -1, got {mesh_shape}"
        )
    known = int(np.prod([s for s in shape if s != -1]))
    if -1 in shape:
        if len(devices) % known:
            raise ConfigError(
                f"gin binding Partitioner.mesh_shape={tuple(mesh_shape)} does not divide {len(devices)} devices"
            )
        shape[shape.index(-1)] = len(devices) // known
    if int(np.prod(shape)) != len(devices):
        raise ConfigError(
            f"gin binding Partitioner.mesh_shape={tuple(mesh_shape)} needs {int(np.prod(shape))} "
            f"devices, have {len(devices)}"
        )
    return Mesh(np.asarray(devices, dtype=object).reshape(shape), ("data", "model"))


@gin.configurable("Partitioner")
class Partitioner:
    """Owns the mesh and the rules; turns logical specs into shardings and jits steps with them."""

    def __init__(
        self,
        mesh_shape: Sequence[int] = (-1, 1),
        axis_rules: Sequence | None = None,
        devices: Sequence[Any] | None = None,
        constrain_activations: bool = False,
    ):
        """constrain_activations: trace the steps with the model's activation sharding constraints
        (t5explore.model.partitioning.constrain), so the batch stays split; off, XLA infers them alone."""
        self.mesh = make_mesh(mesh_shape, devices)
        self.axis_rules = tuple(tuple(r) for r in (axis_rules if axis_rules is not None else DEFAULT_LOGICAL_RULES))
        self.constrain_activations = bool(constrain_activations)

    @property
    def data_size(self) -> int:
        return self.mesh.shape["data"]

    def check_batch_size(self, batch_size: int, binding: str) -> None:
        if batch_size % self.data_size:
            raise ConfigError(
                f"gin binding {binding}={batch_size} must be a multiple of the mesh's data axis "
                f"({self.data_size} devices)"
            )

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    @property
    def batch_sharding(self) -> NamedSharding:
        """Every batch array is [B, ...] with B split over 'data'."""
        return NamedSharding(self.mesh, P("data"))

    def logical_to_sharding(self, logical_specs: Any) -> Any:
        return nn.logical_to_mesh_sharding(logical_specs, self.mesh, self.axis_rules)

    def init_params(
        self, init_fn: Callable[[jax.Array], Any], key: jax.Array, values_fn: Callable[[jax.Array], Any] | None = None
    ) -> tuple[Any, Any]:
        """Run `init_fn(key) -> variables` sharded; returns (unboxed params, their shardings). `values_fn(key)
        -> unboxed params`, if given, computes the values instead (init_fn still gives the logical axes)."""
        abstract = jax.eval_shape(init_fn, key)
        specs = nn.get_partition_spec(abstract)["params"]
        shardings = self.logical_to_sharding(specs)
        shardings = jax.tree.map(
            lambda s: self.replicated if s is None else s,
            shardings,
            is_leaf=lambda x: x is None or isinstance(x, NamedSharding),
        )
        values_fn = values_fn or (lambda k: nn.meta.unbox(init_fn(k)["params"]))
        params = jax.jit(values_fn, out_shardings=shardings)(key)
        return params, shardings

    def shard_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """Global [B, ...] arrays split over 'data'. With several processes, each passes the same global batch
        and transfers only the rows its own devices hold; a ProcessLocalBatch holds just those rows."""
        if isinstance(batch, ProcessLocalBatch):
            return {
                k: jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(v)) for k, v in batch.items()
            }
        if jax.process_count() == 1:
            return {k: jax.device_put(np.asarray(v), self.batch_sharding) for k, v in batch.items()}
        return {k: self._from_global(np.asarray(v)) for k, v in batch.items()}

    def _from_global(self, value: np.ndarray) -> jax.Array:
        return jax.make_array_from_callback(value.shape, self.batch_sharding, lambda index: value[index])

    def process_rows(self, global_batch_size: int) -> tuple[int, int]:
        """(first, stop): the rows of every global batch that this process's devices hold."""
        return process_rows(self.batch_sharding, global_batch_size)

    def jit_train_step(self, step_fn: Callable, state_shardings: Any) -> jax.stages.Wrapped:
        """(state, batch) -> (state, metrics); the old state's buffers are donated."""
        return jax.jit(
            self._traced(step_fn),
            in_shardings=(state_shardings, self.batch_sharding),
            out_shardings=(state_shardings, self.replicated),
            donate_argnums=(0,),
        )

    def jit_eval_step(self, step_fn: Callable, param_shardings: Any) -> jax.stages.Wrapped:
        return jax.jit(
            self._traced(step_fn), in_shardings=(param_shardings, self.batch_sharding), out_shardings=self.replicated
        )

    def _traced(self, step_fn: Callable) -> Callable:
        """step_fn, traced inside the activation-sharding context when constrain_activations is on."""
        if not self.constrain_activations:
            return step_fn

        @functools.wraps(step_fn)
        def constrained(*args):
            with activation_sharding(self.mesh, self.axis_rules):
                return step_fn(*args)

        return constrained

    def create_state(self, params: Any, tx, create_fn: Callable) -> tuple[Any, Any]:
        """Build a TrainState with `create_fn(params, tx)` under jit, so the optimiser state is laid out by
        the compiler next to its params; returns (state, its shardings)."""

        # The copy keeps jit from forwarding the caller's param buffers into a state whose buffers the train
        # step donates (per-task fine-tuning restarts every task from the same pretrained params).
        def create(p):
            return create_fn(jax.tree.map(jnp.copy, p), tx)

        if self.mesh.size == 1:
            state = jax.jit(create)(params)
            return state, jax.tree.map(lambda x: x.sharding, state)
        # On a mesh the compiler would replicate state it cannot trace back to the params (zero-initialised
        # moments): every device would hold the whole optimiser state, gathered after every update. Each
        # state leaf shaped like a param (or like one with an axis reduced away: factored moments) is
        # sharded like that param instead.
        shardings = state_shardings_like_params(jax.eval_shape(create, params), params, self.replicated)
        return jax.jit(create, out_shardings=shardings)(params), shardings


def state_shardings_like_params(abstract_state: Any, params: Any, default: NamedSharding) -> Any:
    """Shardings for a state tree: a leaf whose path ends with a param's path gets that param's sharding if
    it has the param's shape, or that sharding less one axis if its shape is the param's less that axis;
    every other leaf gets `default`."""
    by_path = {tuple(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}

    def pick(path, leaf):
        path = tuple(path)
        for start in range(len(path)):
            param = by_path.get(path[start:])
            if param is not None:
                return _sharding_for_shape(param, leaf.shape) or default
        return default

    return jax.tree_util.tree_map_with_path(pick, abstract_state)


def _sharding_for_shape(param: jax.Array, shape: tuple[int, ...]) -> NamedSharding | None:
    sharding = param.sharding
    if not isinstance(sharding, NamedSharding):
        return None
    spec = tuple(sharding.spec) + (None,) * (param.ndim - len(sharding.spec))
    if tuple(shape) == tuple(param.shape):
        return sharding
    for axis in range(param.ndim):
        if len(shape) == param.ndim - 1 and tuple(shape) == param.shape[:axis] + param.shape[axis + 1 :]:
            return NamedSharding(sharding.mesh, P(*(spec[:axis] + spec[axis + 1 :])))
    return None
