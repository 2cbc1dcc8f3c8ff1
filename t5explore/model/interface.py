"""`Model`: an architecture as everything outside model/ sees it.

The trainer, the pre-training and fine-tuning loops, FLOPs accounting, decoding and the partitioner only call
these methods, so a new architecture (a row of T5's Table 2) is one new module in model/ with a `Model`
subclass, its line in model/registry.py, and a gin file that picks it (`Model.name = '...'`).

The contract:
- `features(inputs, targets)` turns an objective's or a task's padded {inputs, targets} (T5's text-to-text
  form, each row ending in EOS) into the model's batch (numpy, fixed shapes); `feature_keys` names its keys.
  `packed_features` does the same for fine-tuning's packed rows (data/packing.py builds them for the
  encoder-decoder, with segment ids and positions).
  Every model's batch holds `TARGET_TOKENS` and `LOSS_WEIGHTS`: the loss (train/steps.py) is the weighted
  cross entropy of `apply`'s logits against them, so "which tokens are scored" is the model's decision.
- `apply(params, batch, dropout_rng)` -> float32 logits [B, T, vocab] aligned with batch[TARGET_TOKENS]; it
  takes the whole batch, so optional features (packing's `*_segment_ids` / `*_positions`) reach the module.
- `init(key, batch_size)` -> the variables with boxed (logically partitioned) params: the partitioner reads
  the logical axes from its `jax.eval_shape`; `init_values` -> the unboxed params that start training (a
  scanned model starts from the unscanned model's very numbers, its layers stacked).
- `greedy_decode(params, inputs, max_length)` -> int32 [B, max_length] target ids (fine-tuning evaluation).
- `flops_per_token(inputs_length, targets_length)`, `num_params()`: from the config alone.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from t5explore.model import flops
from t5explore.model.config import T5Config
from t5explore.model.partitioning import param_logical_axes
from t5explore.model.scan import stack_layers

TARGET_TOKENS = "decoder_target_tokens"  # int32 [B, T]: the tokens the logits predict
LOSS_WEIGHTS = "decoder_loss_weights"  # float32 [B, T]: > 0 where a token counts in the loss


class Model(abc.ABC):
    """One architecture: a flax module (`module`) built from a T5Config (`cfg`), and what the trainer needs."""

    name: ClassVar[str]  # its key in model/registry.py (gin: Model.name)
    feature_keys: ClassVar[tuple[str, ...]]  # the batch keys `features` produces and `apply` reads
    # (parameter subtree, T5Config field with its layer count) of each layer stack (for scan_layers)
    layer_stacks: ClassVar[tuple[tuple[str, str], ...]]

    cfg: T5Config
    module: nn.Module

    @abc.abstractmethod
    def features(self, inputs: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
        """Padded int32 inputs [B, I] and targets [B, T] (0 = padding) -> the model's batch."""

    def packed_features(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A packed encoder-decoder batch (data/packing.py: several examples per row, with `*_segment_ids` and
        `*_positions`) -> the model's packed batch. The encoder-decoder takes it as it is."""
        return batch

    @abc.abstractmethod
    def init(self, key: jax.Array, batch_size: int) -> Any:
        """The module's variables (params boxed with logical axis names) for a batch of `batch_size` rows."""

    @abc.abstractmethod
    def apply(self, params: Any, batch: dict, dropout_rng: jax.Array | None = None) -> jax.Array:
        """Teacher-forced logits float32 [B, T, vocab] for batch[TARGET_TOKENS]; dropout iff dropout_rng."""

    @abc.abstractmethod
    def greedy_decode(self, params: Any, inputs: Any, max_length: int) -> jax.Array:
        """Greedy targets for padded inputs int32 [B, I] -> int32 [B, max_length], 0 after each row's EOS."""

    @abc.abstractmethod
    def num_params(self) -> int:
        """The exact number of parameters `init` creates."""

    @property
    def architecture(self) -> str:
        """The architecture as result.json and the tables name it (T5 Table 2's rows): the registry name,
        refined where one class serves two rows (the decoder-only LM and prefix LM)."""
        return self.name

    def embedding_params(self) -> int:
        """The parameters of the token embedding and output head (the paper's P and 2P count layer stacks)."""
        return flops.embedding_params(self.cfg)

    def train_flops_per_example(self, inputs_length: int, targets_length: int) -> float:
        """Training FLOPs of one example (the paper's M): flops_per_token counts per input token."""
        return self.flops_per_token(inputs_length, targets_length) * inputs_length

    @abc.abstractmethod
    def flops_per_token(self, inputs_length: int, targets_length: int) -> float:
        """Training FLOPs per *input* token (T5 counts tokens as batch x inputs_length) of one example with
        inputs_length / targets_length tokens, so MFU = flops_per_token x tokens/s / peak."""

    @abc.abstractmethod
    def unscanned(self) -> Model:
        """The same model with T5Config.scan_layers off (its parameters start a scanned model)."""

    def init_values(self, key: jax.Array, batch_size: int) -> Any:
        """The unboxed params training starts from: a pure function of `key`, the same numbers whether the
        layers are scanned or not (scanning changes how a step runs, not the experiment)."""
        if self.cfg.scan_layers:
            unscanned = nn.meta.unbox(self.unscanned().init(key, batch_size)["params"])
            return stack_layers(unscanned, self.cfg, self.layer_stacks)
        return nn.meta.unbox(self.init(key, batch_size)["params"])

    def logical_axes(self, batch_size: int = 1) -> Any:
        """A tree like the params whose leaves are PartitionSpecs of logical axis names (nothing allocated)."""
        return param_logical_axes(jax.eval_shape(lambda: self.init(jax.random.PRNGKey(0), batch_size))["params"])


def dropout_rngs(dropout_rng: jax.Array | None) -> dict | None:
    """flax's `rngs` argument for a step with (dropout_rng given) or without dropout."""
    return {"dropout": dropout_rng} if dropout_rng is not None else None


def init_tokens(batch_size: int, length: int = 4) -> jax.Array:
    """Placeholder token ids that `init` traces the module with (the shapes do not change the params)."""
    return jnp.ones((batch_size, length), jnp.int32)
