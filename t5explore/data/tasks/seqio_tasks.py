"""The same tasks as seqio Tasks, for users of the seqio/t5x ecosystem (thin: our loaders and metrics).

The examples' `meta` travels as a JSON string feature; the targets' postprocessor hands it to the metric
function, so seqio scores exactly as `DownstreamTask.score` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import seqio
import tensorflow as tf

from t5explore.data.tasks import get_task

SEQIO_PREFIX = "t5explore_"


def seqio_task_name(task_name: str) -> str:
    return SEQIO_PREFIX + task_name


def register_seqio_task(task_name: str, vocabulary: seqio.Vocabulary, data_dir: str | None = None) -> seqio.Task:
    """Register (or replace) `t5explore_<task_name>` in seqio.TaskRegistry and return it."""
    task = get_task(task_name)

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        examples = task.examples(split, data_dir)  # in file order; seqio shuffles downstream if asked
        return tf.data.Dataset.from_tensor_slices(
            {
                "inputs": [e.inputs for e in examples],
                "targets": [e.targets for e in examples],
                "meta_json": [json.dumps(dict(e.meta)) for e in examples],
            }
        )

    def postprocess(output: str, example: dict[str, Any] | None = None, is_target: bool = False) -> Any:
        if is_target:
            if example is None:
                raise ValueError(f"{seqio_task_name(task_name)}: target postprocessing needs the example's meta_json")
            meta = example["meta_json"]
            return {"target": output, "meta": json.loads(meta.decode() if isinstance(meta, bytes) else meta)}
        return output

    def metric_fn(targets: Sequence[Mapping[str, Any]], predictions: Sequence[str]) -> dict[str, float]:
        return task.score([t["target"] for t in targets], predictions, [t["meta"] for t in targets])

    features = {k: seqio.Feature(vocabulary=vocabulary, add_eos=True) for k in ("inputs", "targets")}
    name = seqio_task_name(task_name)
    seqio.TaskRegistry.remove(name)
    return seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(dataset_fn, splits=("train", "validation")),
        preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
        output_features=features,
        postprocess_fn=postprocess,
        metric_fns=[metric_fn],
    )
