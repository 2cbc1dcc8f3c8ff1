"""What a downstream task is: text examples in T5's text-to-text form plus the benchmark's own scoring.

A task does not tokenise or truncate: the fine-tuning loop owns the vocabulary and the length budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from t5explore.errors import InputError

SPLITS = ("train", "validation")


class TaskDataError(InputError):
    """A data file (or TFDS record) is malformed; the message names the file and line (or record)."""


@dataclasses.dataclass(frozen=True)
class TextExample:
    """One example: `inputs` and `targets` as T5 writes them; `meta` holds what scoring needs (id, gold)."""

    inputs: str
    targets: str
    meta: Mapping[str, Any]


Texts = Sequence[str]  # targets or predictions, one per example
Metas = Sequence[Mapping[str, Any]]  # the examples' `meta`
Loader = Callable[[str, "str | None"], list[TextExample]]  # (split, data_dir) -> examples
Scorer = Callable[[Texts, Texts, Metas], dict[str, float]]  # (targets, predictions, metas) -> metric -> score


@dataclasses.dataclass(frozen=True)
class TaskData:
    """What a task's source module provides: its examples in text-to-text form and how to score them."""

    loader: Loader
    scorer: Scorer
    label_words: tuple[str, ...] | None = None  # None for open-ended targets (SQuAD, STS-B scores)


# A source turns the metric names its registry entry declares into TaskData. It may be slow (the built-in
# task reads the corpus and gin bindings), which is why the registry calls it only when a task is used.
Source = Callable[[tuple[str, ...]], TaskData]


@dataclasses.dataclass(frozen=True)
class DownstreamTask:
    """A task ready to use: its registry entry's facts (data/tasks/registry.py) and its built source."""

    name: str
    label: str  # display label in tables, e.g. 'CoLA'
    primary_metric: str  # the score that picks the best checkpoint
    metric_names: tuple[str, ...]  # what `score` returns besides `invalid_predictions`
    label_words: tuple[str, ...] | None  # None for open-ended targets (SQuAD, STS-B scores)
    loader: Loader = dataclasses.field(repr=False)
    scorer: Scorer = dataclasses.field(repr=False)
    benchmarks: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # score -> metrics

    def examples(self, split: str, data_dir: str | None = None) -> list[TextExample]:
        """Examples of `split` ('train' | 'validation') from `data_dir` (original file formats) or TFDS."""
        if split not in SPLITS:
            raise ValueError(f"task {self.name}: unknown split {split!r}; expected one of {SPLITS}")
        return self.loader(split, None if data_dir is None else str(data_dir))

    def score(
        self, targets: Sequence[str], predictions: Sequence[str], metas: Sequence[Mapping[str, Any]]
    ) -> dict[str, float]:
        """Benchmark metrics of decoded `predictions` against the examples' `targets` and `metas`."""
        if not (len(targets) == len(predictions) == len(metas)):
            raise ValueError(
                f"task {self.name}: {len(targets)} targets, {len(predictions)} predictions, {len(metas)} metas"
            )
        scores = self.scorer(list(targets), list(predictions), list(metas))
        missing = [m for m in self.metric_names if m not in scores]
        if missing:  # a registry entry that declares metrics its scorer does not return
            raise ValueError(f"task {self.name}: its scorer returned {sorted(scores)}, not the declared {missing}")
        return scores
