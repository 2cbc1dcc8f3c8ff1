"""Logical axis names -> mesh axes, so data / FSDP / tensor parallelism is configuration, not a rewrite.

Every parameter is created with `nn.with_logical_partitioning`; these rules map its logical names onto a
('data', 'model') mesh: the batch is split over 'data'; weights are split over 'model' along heads/mlp/vocab
(tensor parallel) and over 'data' along 'embed' (FSDP: parameters and optimizer state are sharded, gathered
per layer). On a mesh with a 'model' axis of size 1 this is plain data parallelism + FSDP.
"""

from __future__ import annotations

from typing import Any

from flax import linen as nn

LOGICAL_AXIS_NAMES = ("embed", "mlp", "heads", "kv", "joined_kv", "vocab", "relpos_buckets", "layers")

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


def param_shardings(params_with_boxes: Any, mesh, rules=DEFAULT_LOGICAL_RULES) -> Any:
    """NamedShardings for every parameter on `mesh` under `rules` (pass to jit's out_shardings for init)."""
    return nn.logical_to_mesh_sharding(param_logical_axes(params_with_boxes), mesh, rules)
