"""Layer stacks as a loop of named layers (the default) or one `nn.scan` over stacked parameters, each layer
optionally rematerialised in the backward pass. Both are the same function of the same numbers.

Scanned, a stack's parameters are one tree under `layers` whose leaves carry a leading axis of length
num_layers (logical name 'layers', replicated by the default rules): XLA compiles one layer instead of L,
and `remat_policy` trades recomputation for activation memory. `stack_layers` / `unstack_layers` convert
parameters between the two layouts (e.g. to load an unscanned checkpoint into a scanned model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from t5explore.model.config import T5Config

LAYERS = "layers"  # the scanned stack's name and its parameters' leading logical axis

# jax.checkpoint policies by name; 'full' saves nothing (recompute the whole layer), 'dots' saves every matmul
# output, 'dots_no_batch' those without batch dimensions (projections, not attention scores).
REMAT_POLICIES: dict[str, Callable | None] = {
    "full": None,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}


class StackLayer(nn.Module):
    """A layer that `run_stack` (model/t5.py) loops or scans: its `__call__` takes the hidden states first, and
    STATIC_ARGNUMS names its Python-flag arguments (counting `self` as 0) for nn.remat."""

    STATIC_ARGNUMS: ClassVar[tuple[int, ...]] = ()


def layer_class(cfg: T5Config, layer: type[nn.Module], static_argnums: tuple[int, ...]) -> type[nn.Module]:
    """`layer`, wrapped in nn.remat when cfg.remat_policy says so. static_argnums index the layer's
    `__call__` arguments counting `self` as 0 (the Python flags: deterministic, decode)."""
    if cfg.remat_policy == "none":
        return layer
    return nn.remat(
        layer, policy=REMAT_POLICIES[cfg.remat_policy], prevent_cse=not cfg.scan_layers, static_argnums=static_argnums
    )


def scanned(layer: type[nn.Module], num_layers: int, num_args: int) -> type[nn.Module]:
    """nn.scan of `layer` over num_layers copies: the first argument is the carry (the hidden states), the
    other num_args - 1 are the same for every layer; params (and a decode cache) gain a leading axis."""
    return nn.scan(
        layer,
        variable_axes={"params": 0, "cache": 0},
        split_rngs={"params": True, "dropout": True},
        in_axes=(nn.broadcast,) * (num_args - 1),
        length=num_layers,
        metadata_params={nn.PARTITION_NAME: LAYERS},
    )


# (parameter subtree, T5Config field with its number of layers) of each stack of the encoder-decoder.
ENCODER_DECODER_STACKS = (("encoder", "num_encoder_layers"), ("decoder", "num_decoder_layers"))


def _layer_names(stack: dict, num_layers: int) -> list[str]:
    names = [f"layer_{i}" for i in range(num_layers)]
    missing = [n for n in names if n not in stack]
    if missing:
        raise ValueError(f"unscanned stack has no {missing[0]} (has {sorted(stack)})")
    return names


def stack_layers(params: Any, cfg: T5Config, stacks: Sequence[tuple[str, str]] = ENCODER_DECODER_STACKS) -> Any:
    """Unscanned params (each stack's `layer_{i}`) -> the scanned layout (`layers`, leading layer axis).
    stacks: (subtree, T5Config field holding its layer count) of each stack (a model's `layer_stacks`)."""
    out = dict(params)
    for part, field in stacks:
        stack = dict(params[part])
        names = _layer_names(stack, getattr(cfg, field))
        layers = [stack.pop(name) for name in names]
        stack[LAYERS] = jax.tree.map(lambda *xs: jnp.stack(xs), *layers)
        out[part] = stack
    return out


def unstack_layers(params: Any, cfg: T5Config, stacks: Sequence[tuple[str, str]] = ENCODER_DECODER_STACKS) -> Any:
    """The inverse of stack_layers."""
    out = dict(params)
    for part, field in stacks:
        stack = dict(params[part])
        layers = stack.pop(LAYERS)
        for i in range(getattr(cfg, field)):
            stack[f"layer_{i}"] = jax.tree.map(lambda x, i=i: x[i], layers)
        out[part] = stack
    return out
