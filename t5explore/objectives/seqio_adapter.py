"""Run any objective as a seqio preprocessor, so a seqio Task over any corpus source can feed pretraining.

What it is for: reusing a seqio Task (a TFDS or any seqio source, its tokenizer and splits) as the corpus of
a t5explore objective, and checking that a Task and a direct call agree. The training path itself does not
go through tf.data: `PretrainStream` (data/pretrain_stream.py) reads the token store directly.

The preprocessor concatenates the token ids of the incoming examples and splits them into raw chunks of the
objective's planned length (T5's reduce_concat_tokens + split_tokens, without the random chunk selection),
batches `batch_size` chunks and applies the objective through `tf.numpy_function` with the Generator
`numpy_rng(seed, STREAM_OBJECTIVE, batch_index, host)` -- the same one the numpy stream uses, so a Task and
a direct call give identical examples. It is batch-native: documents are cut into chunks by a `scan` that
carries the leftover tokens (one tf.data element per document, never one per token), chunks are re-batched
as arrays, and the objective runs once per batch. seqio Tasks want one example per element, so the batches
are unbatched at the end unless `unbatch=False`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from t5explore.objectives.base import TokenSpace
from t5explore.objectives.denoise import PlannedObjective
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng

if TYPE_CHECKING:  # tensorflow is imported where it is used (it is slow to import); untyped, so Any to mypy
    import tensorflow as tf


def objective_preprocessor(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None = None,
    *,
    objective: PlannedObjective,
    tokens: TokenSpace,
    seed: int,
    batch_size: int,
    inputs_length: int | None = None,
    host: int = 0,
    feature_key: str = "targets",
    unbatch: bool = True,
) -> tf.data.Dataset:
    """tf.data.Dataset of {feature_key: int ids [n]} -> Dataset of {'inputs', 'targets'}: one example per
    element, or with `unbatch=False` one batch ([batch_size, length]) per element.

    `inputs_length` defaults to seqio's `sequence_length['inputs']`. A trailing partial chunk or batch
    is dropped (every example must be a full, planned one)."""
    import tensorflow as tf

    if inputs_length is None:
        if not sequence_length or "inputs" not in sequence_length:
            raise ValueError("objective_preprocessor needs inputs_length or sequence_length['inputs']")
        inputs_length = sequence_length["inputs"]
    plan = objective.plan(int(inputs_length))
    raw = plan.raw_length

    def apply(index: np.ndarray, chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = objective(chunks.astype(np.int32), numpy_rng(seed, STREAM_OBJECTIVE, int(index), host), tokens, plan=plan)
        return out["inputs"], out["targets"]

    def corrupt(index: tf.Tensor, chunks: tf.Tensor) -> dict[str, tf.Tensor]:
        inputs, targets = tf.numpy_function(apply, [index, chunks], [tf.int32, tf.int32], stateful=False)
        inputs.set_shape([batch_size, plan.inputs_length])
        targets.set_shape([batch_size, plan.targets_length])
        return {"inputs": inputs, "targets": targets}

    def split(carry: tf.Tensor, ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Append one document to the carried tokens; emit every whole chunk, carry the rest."""
        joined = tf.concat([carry, ids], axis=0)
        whole = tf.shape(joined)[0] // raw * raw
        return joined[whole:], tf.reshape(joined[:whole], [-1, raw])

    ds = dataset.map(lambda ex: tf.cast(tf.reshape(ex[feature_key], [-1]), tf.int32))
    ds = ds.scan(tf.zeros([0], tf.int32), split)  # [n_doc, raw] chunks per document (n_doc may be 0)
    ds = ds.rebatch(batch_size, drop_remainder=True).enumerate().map(corrupt)
    return ds.unbatch() if unbatch else ds
