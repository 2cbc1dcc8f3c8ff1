"""Run any objective as a seqio preprocessor, so a seqio Task over any corpus source can feed pretraining.

The preprocessor concatenates the token ids of the incoming examples, splits them into raw chunks of the
objective's planned length (T5's reduce_concat_tokens + split_tokens, without the random chunk
selection), batches `batch_size` chunks and applies the objective through `tf.numpy_function` with the
Generator `numpy_rng(seed, STREAM_OBJECTIVE, batch_index, host)` -- the same one the numpy stream uses,
so a Task and a direct call give identical examples.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from t5explore.objectives.base import TokenSpace
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng


def objective_preprocessor(dataset, sequence_length: Mapping[str, int] | None = None, *, objective,
                           tokens: TokenSpace, seed: int, batch_size: int, inputs_length: int | None = None,
                           host: int = 0, feature_key: str = "targets"):
    """tf.data.Dataset of {feature_key: int ids [n]} -> Dataset of {'inputs', 'targets'} (one example each).

    `inputs_length` defaults to seqio's `sequence_length['inputs']`. A trailing partial chunk or batch
    is dropped (every example must be a full, planned one)."""
    import tensorflow as tf

    if inputs_length is None:
        if not sequence_length or "inputs" not in sequence_length:
            raise ValueError("objective_preprocessor needs inputs_length or sequence_length['inputs']")
        inputs_length = sequence_length["inputs"]
    plan = objective.plan(int(inputs_length))

    def apply(index, chunks):
        out = objective(chunks.astype(np.int32), numpy_rng(seed, STREAM_OBJECTIVE, int(index), host), tokens,
                        plan=plan)
        return out["inputs"], out["targets"]

    def corrupt(index, chunks):
        inputs, targets = tf.numpy_function(apply, [index, chunks], [tf.int32, tf.int32], stateful=False)
        inputs.set_shape([batch_size, plan.inputs_length])
        targets.set_shape([batch_size, plan.targets_length])
        return {"inputs": inputs, "targets": targets}

    ds = dataset.map(lambda ex: tf.cast(ex[feature_key], tf.int32))
    ds = ds.unbatch().batch(plan.raw_length, drop_remainder=True).batch(batch_size, drop_remainder=True)
    return ds.enumerate().map(corrupt).unbatch()
