"""Fine-tuning's validation predictions: batched greedy decoding, and the predictions file.

Evaluation decodes examples sorted by input length, each batch cut to the width its longest input needs
(`predict`), with the empty fill rows of a last batch done from the start (model/decoding.py). The best
evaluation's predictions of a task go to `predictions/<task>.jsonl` (`save_predictions`), one line per validation
example with its inputs, target and meta, so any score can be recomputed from it; a resumed run reads them back
for the bootstrap (finetune_resume.read_predictions).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from t5explore.data.packing import example_lengths
from t5explore.io_utils import atomic_write_text
from t5explore.run_layout import PREDICTIONS_DIR
from t5explore.train.attempts import CLOCK

MIN_EVAL_WIDTH = 16  # the narrowest encoder width `predict` cuts a batch to


def eval_width(longest: int, full: int) -> int:
    """The encoder width of a decoding batch whose longest input has `longest` tokens: the next power of two
    (at least MIN_EVAL_WIDTH, at most the full width), so a few compilations serve every batch."""
    width = MIN_EVAL_WIDTH
    while width < longest:
        width *= 2
    return min(width, full)


def predict(decode_fn: Callable, params: Any, inputs: np.ndarray, batch_size: int, bucket: bool = True) -> np.ndarray:
    """Greedy-decode `inputs` [N, I] in batches of `batch_size` rows, returned in the order given.

    bucket: decode the examples sorted by input length (a stable sort), each batch cut to `eval_width` of its
    longest input, so short inputs are not decoded at the full width; the predictions are the same, since
    padding is masked out of every attention (tests/test_packing.py checks it). The last batch is filled with
    empty rows, which decoding treats as done from the start (model/decoding.py). Its wall time is the run's
    `eval_decode` phase (attempts.CLOCK), its compilations apart."""
    with CLOCK.timed("eval_decode"):
        return _predict(decode_fn, params, inputs, batch_size, bucket)


def _predict(decode_fn: Callable, params: Any, inputs: np.ndarray, batch_size: int, bucket: bool) -> np.ndarray:
    lengths = example_lengths(inputs)
    order = np.argsort(lengths, kind="stable") if bucket else np.arange(len(inputs))
    outs = np.zeros((len(inputs), 0), np.int32)
    for start in range(0, len(inputs), batch_size):
        rows = order[start : start + batch_size]
        width = eval_width(int(lengths[rows].max()), inputs.shape[1]) if bucket else inputs.shape[1]
        padded = np.zeros((batch_size, width), np.int32)
        padded[: len(rows)] = inputs[rows, :width]
        decoded = np.asarray(jax.device_get(decode_fn(params, padded)))[: len(rows)]
        if outs.shape[1] == 0:
            outs = np.zeros((len(inputs), decoded.shape[1]), np.int32)
        outs[rows] = decoded
    return outs


def predictions_path(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / PREDICTIONS_DIR / f"{task}.jsonl"


def save_predictions(path: Path, examples: Sequence[Any], predictions: Sequence[str]) -> None:
    lines = [
        json.dumps(
            {"inputs": e.inputs, "target": e.targets, "prediction": p, "meta": dict(e.meta)},
            default=str,
            ensure_ascii=False,
        )
        for e, p in zip(examples, predictions)
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")
