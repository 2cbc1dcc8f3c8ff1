"""Sources of the T5 paper's generation tasks (registered in catalog.py): CNN/Daily Mail summarisation
(ROUGE) and WMT translation (BLEU).

Text formats follow `t5.data.preprocessors.summarize` / `translate`: `summarize: <article>` -> highlights and
`translate English to German: <en>` -> `<de>`. TFDS sources are the ones T5's task registry used for the
paper's columns (t5/data/mixtures.py `_supervised_tasks`): `cnn_dailymail`, `wmt_t2t_translate/de-en`
(EnDe: the Vaswani et al. 2017 data, newstest2013 for validation), `wmt15_translate/fr-en`, `wmt16_translate/ro-en`.

Local copies (no internet), one JSON object per line, `train.jsonl` and `validation.jsonl`:

    <data_dir>/cnn_dailymail/{train,validation}.jsonl   {"article": str, "highlights": str, ...}
    <data_dir>/wmt/<pair>/{train,validation}.jsonl      {"en": str, "de": str}   (pair: en-de, en-fr, en-ro)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from t5explore.data import metrics
from t5explore.data.tasks import local_files
from t5explore.data.tasks.base import Metas, TaskData, TextExample, Texts
from t5explore.data.tasks.tfds_source import tfds_records

CNNDM_TFDS_NAME = "cnn_dailymail"
CNNDM_FOLDER = "cnn_dailymail"
WMT_FOLDER = "wmt"
LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "ro": "Romanian"}


@dataclasses.dataclass(frozen=True)
class WmtSource:
    """One translation direction, English -> `target`, and where its sentence pairs live; called with the
    entry's metric names it gives the task's TaskData (registry.py's `Source`): corpus BLEU."""

    target: str  # language code of the target side
    tfds_name: str

    @property
    def pair(self) -> str:
        """Folder name under data_dir/wmt/, e.g. 'en-de'."""
        return f"en-{self.target}"

    def __call__(self, metric_names: tuple[str, ...]) -> TaskData:
        def load(split: str, data_dir: str | None) -> list[TextExample]:
            return [
                TextExample(translate_inputs(r["en"], "en", self.target), r[self.target], {"idx": i})
                for i, r in enumerate(wmt_records(self, split, data_dir))
            ]

        def score(targets: Texts, predictions: Texts, metas: Metas) -> dict[str, float]:
            return {"bleu": metrics.bleu(targets, predictions)}

        return TaskData(load, score)


# ------------------------------------------------------------------------------------------ formats


def summarize_inputs(article: str) -> str:
    """`summarize: <article>` (t5 preprocessors.summarize joins with one space, text untouched)."""
    return f"summarize: {article}"


def translate_inputs(text: str, source: str, target: str) -> str:
    """`translate English to German: <text>` (t5 preprocessors.translate)."""
    return f"translate {LANGUAGE_NAMES[source]} to {LANGUAGE_NAMES[target]}: {text}"


# ------------------------------------------------------------------------------------------ sources


def cnndm_records(split: str, data_dir: str | None) -> list[dict[str, Any]]:
    """{'article', 'highlights', 'id'} per story, from TFDS or the local JSONL (id = line number)."""
    if data_dir is None:
        return [
            {"article": r["article"], "highlights": r["highlights"], "id": r.get("id", str(i))}
            for i, r in enumerate(tfds_records(CNNDM_TFDS_NAME, split))
        ]
    path = local_files.split_file(data_dir, CNNDM_FOLDER, "generation_jsonl", split)
    rows = local_files.read_jsonl(path, {"article": str, "highlights": str})
    return [
        {"article": o["article"], "highlights": o["highlights"], "id": str(o.get("id", line_no))} for line_no, o in rows
    ]


def wmt_records(spec: WmtSource, split: str, data_dir: str | None) -> list[dict[str, str]]:
    """{'en', <target>} sentence pairs, from TFDS (whose records are exactly that) or the local JSONL."""
    fields = ("en", spec.target)
    if data_dir is None:
        return [{f: r[f] for f in fields} for r in tfds_records(spec.tfds_name, split)]
    path = local_files.split_file(data_dir, f"{WMT_FOLDER}/{spec.pair}", "generation_jsonl", split)
    return [{f: o[f] for f in fields} for _, o in local_files.read_jsonl(path, {f: str for f in fields})]


# ------------------------------------------------------------------------------------------ tasks


def cnndm_source(metric_names: tuple[str, ...]) -> TaskData:
    """CNN/DM: ROUGE-1/2/Lsum F x100 (the paper's CNNDM column is ROUGE-2-F: the entry makes it primary)."""

    def load(split: str, data_dir: str | None) -> list[TextExample]:
        return [
            TextExample(summarize_inputs(r["article"]), r["highlights"], {"id": r["id"]})
            for r in cnndm_records(split, data_dir)
        ]

    def score(targets: Texts, predictions: Texts, metas: Metas) -> dict[str, float]:
        return metrics.rouge_scores(targets, predictions)

    return TaskData(load, score)
