"""Sources of GLUE, SuperGLUE BoolQ and SQuAD v1.1 as T5 casts them into text-to-text form (registered
in catalog.py).

Label words and their order are TFDS's (`label` index i -> `label_words[i]`); inputs are the benchmark name
then each text feature as `name: text`, features sorted by name (so BoolQ is `boolq passage: ... question:
...` and QNLI `qnli question: ... sentence: ...`), exactly as `t5.data.preprocessors.glue` writes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from t5explore.data import metrics
from t5explore.data.tasks import local_files
from t5explore.data.tasks.base import Metas, TaskData, TaskDataError, TextExample, Texts
from t5explore.data.tasks.formats import glue_inputs, pad_punctuation, squad_inputs, stsb_target
from t5explore.data.tasks.tfds_source import tfds_records


@dataclasses.dataclass(frozen=True)
class GlueSource:
    """Where one GLUE-style classification (or STS-B regression) task's records live and how T5 writes
    them; called with the entry's metric names it gives the task's TaskData (registry.py's `Source`)."""

    prefix: str  # T5's benchmark name written first in the inputs, e.g. 'cola'
    tfds_name: str | None  # None: local files only (a data_dir is then required)
    folder: str  # under data_dir
    features: tuple[str, ...]  # text features, TFDS names
    label_words: tuple[str, ...] | None  # None: STS-B's float score
    columns: Mapping[str, str | int] = dataclasses.field(default_factory=dict)  # TSV: feature -> header/index
    label_kind: str = "index"  # how the TSV label cell reads: 'index' | 'name' | 'float'
    tsv_header: bool = True
    tsv_width: int | None = None  # column count of a headerless TSV
    file_format: str = "tsv"  # local copies: 'tsv' (GLUE) | 'jsonl' (SuperGLUE)

    def __call__(self, metric_names: tuple[str, ...]) -> TaskData:
        def load(split: str, data_dir: str | None) -> list[TextExample]:
            return [glue_example(self, r) for r in glue_records(self, split, data_dir)]

        label_words = self.label_words
        if label_words is None:

            def score(targets: Texts, predictions: Texts, metas: Metas) -> dict[str, float]:
                return metrics.regression_scores([m["label"] for m in metas], predictions)
        else:

            def score(targets: Texts, predictions: Texts, metas: Metas) -> dict[str, float]:
                return metrics.classification_scores(targets, predictions, label_words, metric_names)

        return TaskData(load, score, self.label_words)


SQUAD_TFDS_NAME = "squad/v1.1"
SQUAD_FOLDER = "squad/v1.1"


# ------------------------------------------------------------------------------------------ GLUE-style


def glue_records(spec: GlueSource, split: str, data_dir: str | None) -> list[dict[str, Any]]:
    """{features..., 'label', 'idx'} records of a GLUE/SuperGLUE task from local files or TFDS."""
    if data_dir is None:
        if spec.tfds_name is None:
            raise TaskDataError(
                f"task {spec.prefix!r} reads local files only (its source has no TFDS name): bind "
                "Finetune.data_dir, or give its registry entry a data_dir"
            )
        return tfds_records(spec.tfds_name, split)
    if spec.file_format == "jsonl":
        path = local_files.split_file(data_dir, spec.folder, "jsonl", split)
        fields = {f: str for f in spec.features} | {"label": bool, "idx": int}
        return [
            {**{f: o[f] for f in spec.features}, "label": int(o["label"]), "idx": o["idx"]}
            for _, o in local_files.read_jsonl(path, fields)
        ]
    path = local_files.split_file(data_dir, spec.folder, "tsv", split)
    rows = local_files.read_glue_tsv(path, spec.columns, header=spec.tsv_header, num_columns=spec.tsv_width)
    records = []
    for idx, (line_no, cells) in enumerate(rows):
        label = local_files.parse_label(path, line_no, cells["label"], spec.label_kind, spec.label_words)
        records.append({**{f: cells[f] for f in spec.features}, "label": label, "idx": idx})
    return records


def glue_example(spec: GlueSource, record: Mapping[str, Any]) -> TextExample:
    """A record in T5's form: `<prefix> f1: ... f2: ...` -> label word (or the STS-B score to 0.2)."""
    inputs = glue_inputs(spec.prefix, {f: record[f] for f in spec.features})
    label = record["label"]
    if spec.label_words is None:
        return TextExample(inputs, stsb_target(label), {"idx": record["idx"], "label": float(label)})
    if not 0 <= label < len(spec.label_words):  # TFDS writes -1 for unlabeled (test) examples
        where = spec.tfds_name or f"{spec.folder} ({spec.prefix})"
        raise TaskDataError(f"{where} record idx={record['idx']}: label {label} has no label word")
    return TextExample(inputs, spec.label_words[label], {"idx": record["idx"], "label": int(label)})


# ------------------------------------------------------------------------------------------ SQuAD


def squad_records(split: str, data_dir: str | None) -> list[dict[str, Any]]:
    """{'id', 'question', 'context', 'answers': [text, ...]} per question, local JSON or TFDS."""
    if data_dir is None:
        return [
            {"id": r["id"], "question": r["question"], "context": r["context"], "answers": r["answers"]["text"]}
            for r in tfds_records(SQUAD_TFDS_NAME, split)
        ]
    return local_files.read_squad_json(local_files.split_file(data_dir, SQUAD_FOLDER, "json", split))


def squad_examples(records: list[dict[str, Any]]) -> list[TextExample]:
    """`question: ... context: ...` -> the first answer, punctuation padded as T5 does; all answers in meta."""
    examples = []
    for r in records:
        answers = [pad_punctuation(a) for a in r["answers"]]
        if not answers:
            raise TaskDataError(f"SQuAD question id={r['id']!r} has no gold answers")
        examples.append(
            TextExample(squad_inputs(r["question"], r["context"]), answers[0], {"id": r["id"], "answers": answers})
        )
    return examples


def squad_source(metric_names: tuple[str, ...]) -> TaskData:
    """SQuAD v1.1: exact match and token F1 (both always; the registry entry says which is primary)."""

    def load(split: str, data_dir: str | None) -> list[TextExample]:
        return squad_examples(squad_records(split, data_dir))

    def score(targets: Texts, predictions: Texts, metas: Metas) -> dict[str, float]:
        return metrics.squad_scores([m["answers"] for m in metas], predictions)

    return TaskData(load, score)
