"""The report's columns: which result.json numbers a table shows, under which label, ranked which way."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from t5explore.report.results import ReportError

# result.json benchmark name -> (table label, T5 paper column). Order = the paper's column order.
BENCHMARKS = {  # in the paper's column order: GLUE / CNNDM / SQuAD / SGLUE / EnDe / EnFr / EnRo
    "glue_average": ("GLUE", "GLUE"),
    "cnndm": ("CNNDM", "CNNDM"),
    "squad_em": ("SQuAD EM", "SQuAD"),
    "superglue_average": ("SGLUE", "SGLUE"),
    "en_de": ("EnDe", "EnDe"),
    "en_fr": ("EnFr", "EnFr"),
    "en_ro": ("EnRo", "EnRo"),
}
# Benchmarks shown only in per-task tables (the paper's main tables report SQuAD EM only).
SECONDARY_BENCHMARKS = {"squad_f1"}
# Task name prefix -> the benchmark average that already covers the task in the main table.
TASK_BENCHMARK = {"glue_": "glue_average", "superglue_": "superglue_average", "squad_": "squad_em",
                  "cnn_dailymail": "cnndm", "wmt_en_de": "en_de", "wmt_en_fr": "en_fr", "wmt_en_ro": "en_ro"}
TASK_LABELS = {
    "glue_cola": "CoLA", "glue_sst2": "SST-2", "glue_rte": "RTE", "glue_mrpc": "MRPC", "glue_qnli": "QNLI",
    "glue_stsb": "STS-B", "superglue_boolq": "BoolQ", "squad_v1": "SQuAD", "stdlib_module": "stdlib",
    "cnn_dailymail": "CNNDM", "wmt_en_de": "EnDe", "wmt_en_fr": "EnFr", "wmt_en_ro": "EnRo",
}
METRIC_LABELS = {
    "accuracy": "acc", "matthews_corr": "MCC", "f1": "F1", "pearson": "Pearson", "spearman": "Spearman",
    "exact_match": "EM", "invalid_predictions": "invalid",
    "rouge1": "R-1", "rouge2": "R-2", "rougeLsum": "R-Lsum", "bleu": "BLEU",
}
LOWER_IS_BETTER_METRICS = {"invalid_predictions"}
TOL = 1e-9


@dataclass(frozen=True)
class Column:
    """One table column: where its numbers live in `Results.runs` and how to rank them."""

    key: str  # column of Results.runs
    label: str  # table header
    better: str | None  # "higher", "lower", or None (cost columns are not ranked)
    kind: str = "score"  # "score" | "loss" | "cost"
    paper: str | None = None  # the T5 paper's column this corresponds to, if any


def default_columns(runs: pd.DataFrame, which: str = "best") -> list[Column]:
    """The main table: benchmark averages present, tasks no average covers, final loss, cost."""
    _check_which(which)
    cols: list[Column] = []
    prefix = f"benchmarks.{which}."
    present = [c[len(prefix):] for c in runs.columns if c.startswith(prefix) and runs[c].notna().any()]
    tasks = _tasks(runs)
    for name, (label, paper) in BENCHMARKS.items():
        if name in present:
            if name == "superglue_average" and [t for t in tasks if t.startswith("superglue_")] == ["superglue_boolq"]:
                label = "SGLUE (BoolQ)"
            cols.append(Column(prefix + name, label, "higher", "score", paper))
    for name in present:
        if name not in BENCHMARKS and name not in SECONDARY_BENCHMARKS:
            cols.append(Column(prefix + name, name, "higher", "score"))
    for task in tasks:
        covered = next((b for p, b in TASK_BENCHMARK.items() if task.startswith(p)), None)
        if covered in present:
            continue
        metric = _primary_metric(runs, task, which)
        if metric:
            cols.append(_task_column(task, metric, which))
    cols += _loss_and_cost_columns(runs)
    return cols


def per_task_columns(runs: pd.DataFrame, which: str = "best") -> list[Column]:
    """The breakdown table: every metric of every downstream task, then the benchmark averages."""
    _check_which(which)
    cols = []
    for task in _tasks(runs):
        prefix = f"downstream.{task}.{which}."
        for key in runs.columns:
            if key.startswith(prefix) and runs[key].notna().any():
                cols.append(_task_column(task, key[len(prefix):], which))
    prefix = f"benchmarks.{which}."
    for key in runs.columns:  # squad_em/f1 repeat a task's metric; averages over tasks don't
        if key.startswith(prefix) and key.endswith("_average") and runs[key].notna().any():
            name = key[len(prefix):]
            label, paper = BENCHMARKS.get(name, (name, None))
            cols.append(Column(key, label, "higher", "score", paper))
    return cols


def _tasks(runs: pd.DataFrame) -> list[str]:
    tasks = []
    for key in runs.columns:
        if key.startswith("downstream."):
            task = key.split(".")[1]
            if task not in tasks:
                tasks.append(task)
    return tasks


def _primary_metric(runs: pd.DataFrame, task: str, which: str) -> str | None:
    key = f"downstream.{task}.primary_metric"
    if key in runs.columns and runs[key].notna().any():
        return str(runs[key].dropna().iloc[0])
    metrics = [k.rsplit(".", 1)[1] for k in runs.columns if k.startswith(f"downstream.{task}.{which}.")]
    return metrics[0] if metrics else None


def _task_column(task: str, metric: str, which: str) -> Column:
    label = f"{TASK_LABELS.get(task, task)} {METRIC_LABELS.get(metric, metric)}"
    better = "lower" if metric in LOWER_IS_BETTER_METRICS else "higher"
    return Column(f"downstream.{task}.{which}.{metric}", label, better, "score")


def _loss_and_cost_columns(runs: pd.DataFrame) -> list[Column]:
    candidates = [
        Column("pretrain.final_loss", "Pre-train loss", "lower", "loss"),
        Column("pretrain.eval_loss", "Held-out loss", "lower", "loss"),
        Column("pretrain.tokens_seen", "Tokens", None, "cost"),
        Column("timing.total_s", "Wall time", None, "cost"),
    ]
    return [c for c in candidates if c.key in runs.columns and runs[c.key].notna().any()]


def _check_which(which: str) -> None:
    if which not in ("best", "last"):
        raise ReportError(f"which must be 'best' or 'last', got {which!r}")
