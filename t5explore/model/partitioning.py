"""Logical axis names -> mesh axes, so data / FSDP / tensor parallelism is configuration, not a rewrite.

Every parameter is created with `nn.with_logical_partitioning`; these rules map its logical names onto a
('data', 'model') mesh: the batch is split over 'data'; weights are split over 'model' along heads/mlp/vocab
(tensor parallel) and over 'data' along 'embed' (FSDP: parameters and optimizer state are sharded, gathered
per layer). On a mesh with a 'model' axis of size 1 this is plain data parallelism + FSDP.

Activations carry no shardings unless a step is traced inside `activation_sharding(mesh, rules)`
(`Partitioner.constrain_activations`): then `constrain` pins the hidden states to ('batch', 'length', None),
attention heads and MLP/vocab features to their rule's axis, so XLA's propagation keeps the batch split and
gathers weights rather than activations. Outside that context `constrain` returns its argument untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import jax
from flax import linen as nn
from jax.sharding import Mesh, NamedSharding

LOGICAL_AXIS_NAMES = ("embed", "mlp", "heads", "kv", "joined_kv", "vocab", "relpos_buckets", "layers")

LogicalRules = Sequence[tuple[str, str | None]]  # (logical axis name, mesh axis or None: replicated)
DEFAULT_LOGICAL_RULES: tuple[tuple[str, str | None], ...] = (
    ("batch", "data"),
    ("length", None),
    ("embed", "data"),
    ("mlp", "model"),
    ("heads", "model"),
    ("kv", None),
    ("joined_kv", "model"),
    ("vocab", "model"),
    ("relpos_buckets", None),
    ("layers", None),
)


def param_logical_axes(params_with_boxes: Any) -> Any:
    """A tree like the params whose leaves are PartitionSpecs of logical names (None for unboxed leaves).

    Accepts real boxed params or the jax.eval_shape of `model.init` (no memory needed).
    """
    return nn.get_partition_spec(params_with_boxes)


def param_shardings(params_with_boxes: Any, mesh: Mesh, rules: LogicalRules = DEFAULT_LOGICAL_RULES) -> Any:
    """NamedShardings for every parameter on `mesh` under `rules` (pass to jit's out_shardings for init)."""
    return nn.logical_to_mesh_sharding(param_logical_axes(params_with_boxes), mesh, rules)


# (mesh, rules) while a step is traced with activation constraints; None (the default) = constrain is a no-op.
_ACTIVATION_SHARDING: contextvars.ContextVar[tuple[Any, tuple] | None] = contextvars.ContextVar(
    "t5explore_activation_sharding", default=None
)
BATCH_LENGTH_EMBED = ("batch", "length", None)  # hidden states [B, L, d_model]: embed is replicated
BATCH_LENGTH_HEADS = ("batch", "length", "heads", None)  # q/k/v and attention outputs [B, L, H, D]
BATCH_LENGTH_MLP = ("batch", "length", "mlp")
BATCH_LENGTH_VOCAB = ("batch", "length", "vocab")


@contextlib.contextmanager
def activation_sharding(mesh: Mesh, rules: LogicalRules) -> Iterator[None]:
    """Within: `constrain` applies with_sharding_constraint under (mesh, rules)."""
    token = _ACTIVATION_SHARDING.set((mesh, tuple(tuple(r) for r in rules)))
    try:
        yield
    finally:
        _ACTIVATION_SHARDING.reset(token)


def constrain(x: jax.Array, logical_axes: tuple[str | None, ...]) -> jax.Array:
    """Pin an activation's sharding by logical axis names (a name without a rule is replicated); x itself
    when no activation_sharding context is active."""
    context = _ACTIVATION_SHARDING.get()
    if context is None:
        return x
    mesh, rules = context
    spec = nn.logical_to_mesh_axes(logical_axes, rules)
    assert spec is not None  # None only for array_dim_names=None; a tuple of names always maps to a spec
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))
