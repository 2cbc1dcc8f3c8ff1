"""`Trainer`: one model + one optimiser on one mesh, with its jit-compiled train and eval steps.

Shared by pre-training and fine-tuning so that both run the exact same sharded step; the first call of
each step is compiled ahead of time and timed separately (`compile_s`), so throughput excludes it.
`reset()` starts again from the initial params with the compiled steps kept: per-task fine-tuning trains every
task from the pretrained params through one compiled step (train/finetune.py).
Batches are numpy on the host; `Partitioner.shard_batch` turns them into global arrays on the mesh (with
several processes, each transfers only its own rows: t5explore/distributed.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from t5explore.distributed import ProcessLocalBatch
from t5explore.model.interface import Model
from t5explore.run_config import Optimizer
from t5explore.seeds import STREAM_DROPOUT, STREAM_PARAMS, jax_key
from t5explore.train.optimizers import make_optimizer
from t5explore.train.partitioning import Partitioner
from t5explore.train.state import TrainState
from t5explore.train.steps import cross_entropy_impl, make_eval_step, make_train_step, model_apply_fn


def to_features(batch: dict[str, np.ndarray], model: Model) -> dict[str, np.ndarray]:
    """An objective's or task's {'inputs', 'targets'}, or a packed batch (data/packing.py), -> the model's
    features; the model's own features (the pretraining stream's) pass through."""
    if "inputs" in batch:
        features = model.features(batch["inputs"], batch["targets"])
    elif "encoder_segment_ids" in batch:
        features = model.packed_features(batch)
    else:
        return batch
    return ProcessLocalBatch(features) if isinstance(batch, ProcessLocalBatch) else features


def init_params(model: Model, partitioner: Partitioner, seed: int) -> tuple[Any, Any]:
    """Initialise the model's params, sharded by their logical axes; a pure function of the run seed (a
    scanned model starts from the unscanned one's numbers: Model.init_values)."""
    batch_size = partitioner.data_size
    return partitioner.init_params(
        lambda key: model.init(key, batch_size),
        jax_key(seed, STREAM_PARAMS),
        lambda key: model.init_values(key, batch_size),
    )


class Trainer:
    def __init__(
        self,
        model: Model,
        partitioner: Partitioner,
        params: Any,
        param_shardings: Any,
        optimizer: Optimizer,
        total_steps: int,
        seed: int,
        z_loss: float = 0.0,
        label_smoothing: float = 0.0,
        cross_entropy: str | None = None,
    ):
        """cross_entropy: how the loss is computed (steps.CROSS_ENTROPY_IMPLS); None = gin's Loss.cross_entropy."""
        self.model, self.partitioner, self.param_shardings = model, partitioner, param_shardings
        self.tx, self.schedule = make_optimizer(optimizer, total_steps)
        self.state, self.state_shardings = partitioner.create_state(params, self.tx, TrainState.create)
        self._initial_params = params  # what reset() starts from (the caller holds these params anyway)
        apply_fn = model_apply_fn(model)
        ce = cross_entropy if cross_entropy is not None else cross_entropy_impl()
        self._train = partitioner.jit_train_step(
            make_train_step(apply_fn, self.tx, jax_key(seed, STREAM_DROPOUT), z_loss, label_smoothing, ce),
            self.state_shardings,
        )
        self._eval = partitioner.jit_eval_step(make_eval_step(apply_fn, z_loss, ce), param_shardings)
        self._train_compiled: jax.stages.Compiled | None = None  # compiled on first use
        self._eval_compiled: jax.stages.Compiled | None = None
        self.train_compile_s = 0.0
        self.eval_compile_s = 0.0

    def reset(self) -> None:
        """A fresh state (step 0, new optimiser state) from the params this Trainer was made with, as a new
        Trainer would have; the compiled steps are kept, so nothing is compiled again (for batches of the
        shapes compiled before)."""
        self.state, _ = self.partitioner.create_state(self._initial_params, self.tx, TrainState.create)

    @property
    def compile_s(self) -> float:
        return self.train_compile_s + self.eval_compile_s

    @property
    def step(self) -> int:
        return int(jax.device_get(self.state.step))

    @property
    def params(self) -> Any:
        return self.state.params

    def learning_rate(self, step: int) -> float:
        return float(self.schedule(step))

    def train_step(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """One update; returns the step's metrics as (unfetched) device arrays."""
        sharded = self.partitioner.shard_batch(to_features(batch, self.model))
        self.state, metrics = self.compiled_train_step(sharded)(self.state, sharded)
        return metrics

    def compiled_train_step(self, sharded: dict[str, jax.Array]) -> jax.stages.Compiled:
        """The compiled train step (compiled on first use, timed into train_compile_s); its `.as_text()` is
        the optimised HLO that runs (benchmarks/fsdp_hlo.py reads its collectives)."""
        if self._train_compiled is None:
            t0 = time.perf_counter()
            self._train_compiled = self._train.lower(self.state, sharded).compile()
            self.train_compile_s += time.perf_counter() - t0
        return self._train_compiled

    def evaluate(self, batches: Sequence[dict[str, np.ndarray]]) -> dict[str, float] | None:
        """Token-weighted mean loss/accuracy over fixed held-out batches (None if there are none)."""
        totals: dict[str, float] = {}
        tokens = 0.0
        for batch in batches:
            sharded = self.partitioner.shard_batch(to_features(batch, self.model))
            m = jax.device_get(self._compiled_eval_step(sharded)(self.state.params, sharded))
            n = float(m["num_tokens"])
            tokens += n
            for key in ("loss", "cross_entropy", "accuracy"):
                totals[key] = totals.get(key, 0.0) + float(m[key]) * n
        if not batches or tokens == 0:
            return None
        return {**{k: v / tokens for k, v in totals.items()}, "num_tokens": tokens}

    def _compiled_eval_step(self, sharded: dict[str, jax.Array]) -> jax.stages.Compiled:
        """The compiled eval step (compiled on first use, timed into eval_compile_s)."""
        if self._eval_compiled is None:
            t0 = time.perf_counter()
            self._eval_compiled = self._eval.lower(self.state.params, sharded).compile()
            self.eval_compile_s += time.perf_counter() - t0
        return self._eval_compiled
