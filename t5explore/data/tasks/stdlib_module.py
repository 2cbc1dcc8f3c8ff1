"""`stdlib_module`: a real labelled task from the built-in corpus, for the offline quickstart.

Given the first words of a standard-library docstring, name the top-level package it comes from
(`stdlib_module docstring: Return the email address ...` -> `email`). The labels are facts about where the
text lives, not annotations, so the task is real; it needs no download. The K most frequent public
packages with enough docstrings are kept (pydoc topics are not module docs and are left out), each capped
at `max_per_label` examples so no class dominates. Which docstrings are kept and which go to validation
are decided per label by a hash of the input text salted with seeds.STREAM_SPLIT: the split is
deterministic, stratified, and independent of corpus order; identical inputs are merged first, so the two
splits never share an input.
"""

from __future__ import annotations

import collections
import hashlib
import math
from collections.abc import Sequence
from typing import Any

import gin

from t5explore import seeds
from t5explore.data import metrics
from t5explore.data.tasks.base import DownstreamTask, Metas, TaskData, TextExample, Texts
from t5explore.data.tasks.registry import task_spec

TASK_NAME = "stdlib_module"
PREFIX = "stdlib_module docstring:"


def package_of(module: str) -> str | None:
    """Label of a BuiltinDocument's `module`: its top-level public package, or None if it has none."""
    if ":" in module:  # pydoc_data.topics:<topic>: language reference text, not a module's docstring
        return None
    top = module.split(".")[0]
    if not top.isidentifier() or top.startswith("_") or top == "pydoc_data":
        return None
    return top


def input_text(docstring: str, max_words: int) -> str:
    return f"{PREFIX} {' '.join(docstring.split()[:max_words])}"


def _hash_key(text: str) -> str:
    return hashlib.sha256(f"{seeds.STREAM_SPLIT}:{text}".encode()).hexdigest()


def build_splits(
    documents: Sequence[Any],
    *,
    num_labels: int,
    min_examples: int,
    max_per_label: int,
    max_words: int,
    validation_fraction: float,
) -> tuple[tuple[str, ...], dict[str, list[TextExample]]]:
    """(label words, {'train': [...], 'validation': [...]}) from documents with `.text` and `.module`."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"stdlib_module_task.validation_fraction must be in (0, 1), got {validation_fraction}")
    # Merge identical inputs; an input seen under two packages has no single answer and is dropped.
    by_input: dict[str, set[str]] = collections.defaultdict(set)
    module_of: dict[str, str] = {}
    for doc in documents:
        label = package_of(doc.module)
        if label is not None:
            text = input_text(doc.text, max_words)
            by_input[text].add(label)
            module_of.setdefault(text, doc.module)
    per_label: dict[str, list[str]] = collections.defaultdict(list)
    for text, labels in by_input.items():
        if len(labels) == 1:
            per_label[next(iter(labels))].append(text)
    eligible = [lab for lab, texts in per_label.items() if len(texts) >= min_examples]
    # Most frequent first; ties broken by name so the choice never depends on corpus order.
    chosen = sorted(sorted(eligible), key=lambda lab: -len(per_label[lab]))[:num_labels]
    if len(chosen) < 2:
        raise ValueError(
            f"stdlib_module: only {len(chosen)} package(s) have >= {min_examples} docstrings "
            f"(stdlib_module_task.min_examples); need at least 2 labels"
        )
    label_words = tuple(sorted(chosen))
    splits: dict[str, list[TextExample]] = {"train": [], "validation": []}
    for label_id, label in enumerate(label_words):
        texts = sorted(per_label[label], key=_hash_key)[:max_per_label]
        n_val = max(1, math.ceil(len(texts) * validation_fraction))
        for i, text in enumerate(texts):
            meta = {"id": _hash_key(text)[:16], "module": module_of[text], "label": label_id}
            splits["validation" if i < n_val else "train"].append(TextExample(text, label, meta))
    for name in splits:  # interleave labels deterministically instead of grouping them
        splits[name].sort(key=lambda ex: ex.meta["id"])
    return label_words, splits


@gin.configurable("stdlib_module_task", denylist=["metric_names", "documents"])
def stdlib_module_source(
    metric_names: tuple[str, ...] = ("accuracy",),
    documents: Sequence[Any] | None = None,
    num_labels: int = 10,
    min_examples: int = 40,
    max_per_label: int = 150,
    max_words: int = 48,
    validation_fraction: float = 0.2,
) -> TaskData:
    """The task's data over `documents` (default: the built-in corpus of this Python, read lazily); the
    registry entry (catalog.py) calls it with its metric names, gin supplies the rest."""
    if documents is None:
        from t5explore.data.builtin_corpus import builtin_documents

        documents = builtin_documents()
    label_words, splits = build_splits(
        documents,
        num_labels=num_labels,
        min_examples=min_examples,
        max_per_label=max_per_label,
        max_words=max_words,
        validation_fraction=validation_fraction,
    )

    def load(split: str, data_dir: str | None) -> list[TextExample]:
        return list(splits[split])  # data_dir is ignored: this data ships with Python

    def score(targets: Texts, predictions: Texts, metas: Metas) -> dict[str, float]:
        return metrics.classification_scores(targets, predictions, label_words, metric_names)

    return TaskData(load, score, label_words)


def stdlib_module_task(documents: Sequence[Any] | None = None, **settings: Any) -> DownstreamTask:
    """The registered `stdlib_module` task over `documents` (tests pass their own), `settings` overriding gin."""
    spec = task_spec(TASK_NAME)
    return spec.build(stdlib_module_source(spec.metrics, documents=documents, **settings))
