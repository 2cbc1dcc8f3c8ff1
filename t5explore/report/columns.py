"""The report's columns: which result.json numbers a table shows, under which label, ranked which way.

Labels, ranking direction and benchmark membership come from the runs' `registry` records (labels.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from t5explore.report.labels import Labels
from t5explore.report.results import ReportError

TOL = 1e-9


@dataclass(frozen=True)
class Column:
    """One table column: where its numbers live in `Results.runs` and how to rank them."""

    key: str  # column of Results.runs
    label: str  # table header
    better: str | None  # "higher", "lower", or None (cost columns are not ranked)
    kind: str = "score"  # "score" | "loss" | "cost"
    paper: str | None = None  # the T5 paper's column this corresponds to, if any
    axis: str | None = None  # what a plot's axis calls it
    note: str | None = None  # said under the table (e.g. which tasks a benchmark average covers)


def default_columns(runs: pd.DataFrame, which: str = "best") -> list[Column]:
    """The main table: headline benchmark scores present (the paper's order), tasks none of them covers,
    final loss, cost. Labels come from the runs' `registry` records (labels.py)."""
    _check_which(which)
    labels = Labels.from_runs(runs)
    tasks = _tasks(runs)
    present = _benchmarks_present(runs, which, labels)
    shown = [name for name in present if labels.benchmark(name).headline]
    cols = [_benchmark_column(name, which, labels, tasks) for name in shown]
    for task in tasks:
        info = labels.tasks.get(task)
        if info is not None and any(b in shown for b in info.benchmarks):
            continue
        metric = _primary_metric(runs, task, which)
        if metric:
            cols.append(_task_column(task, metric, which, labels))
    cols += _loss_and_cost_columns(runs)
    return cols


def per_task_columns(runs: pd.DataFrame, which: str = "best") -> list[Column]:
    """The breakdown table: every metric of every downstream task, then the benchmark averages."""
    _check_which(which)
    labels = Labels.from_runs(runs)
    tasks = _tasks(runs)
    cols = []
    for task in tasks:
        prefix = f"downstream.{task}.{which}."
        for key in runs.columns:
            if key.startswith(prefix) and runs[key].notna().any():
                cols.append(_task_column(task, key[len(prefix) :], which, labels))
    for name in _benchmarks_present(runs, which, labels):  # squad_em/f1 repeat a task's metric; averages don't
        known = name in labels.benchmarks
        if (known and labels.benchmark(name).paper_tasks) or (not known and name.endswith("_average")):
            cols.append(_benchmark_column(name, which, labels, tasks))
    return cols


def _benchmarks_present(runs: pd.DataFrame, which: str, labels: Labels) -> list[str]:
    """Benchmark scores with a value in some run: registered ones in the registry's order, then others."""
    prefix = f"benchmarks.{which}."
    present = [c[len(prefix) :] for c in runs.columns if c.startswith(prefix) and runs[c].notna().any()]
    return [b for b in labels.benchmarks if b in present] + [b for b in present if b not in labels.benchmarks]


def _benchmark_column(name: str, which: str, labels: Labels, tasks: list[str]) -> Column:
    info = labels.benchmark(name)
    label, note = labels.benchmark_label(name, tasks)
    return Column(f"benchmarks.{which}.{name}", label, "higher", "score", info.paper_column, info.axis, note)


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


def _task_column(task: str, metric: str, which: str, labels: Labels) -> Column:
    info = labels.metric(metric)
    label = labels.task_label(task)
    return Column(
        f"downstream.{task}.{which}.{metric}",
        f"{label} {info.label}",
        info.better,
        "score",
        axis=f"{label} {info.axis or info.label}",
    )


LOSSES_NOT_RANKED = (
    "Losses are not ranked (no bold): the rows pre-train on different objectives, and each loss is per target "
    "token of its own row's targets."
)


def _loss_and_cost_columns(runs: pd.DataFrame) -> list[Column]:
    ranked = losses_comparable(runs)
    better, note = ("lower", None) if ranked else (None, LOSSES_NOT_RANKED)
    candidates = [
        Column("pretrain.final_loss", "Pre-train loss", better, "loss", note=note),
        Column("pretrain.eval_loss", "Held-out loss", better, "loss", note=note),
        Column("pretrain.tokens_seen", "Tokens", None, "cost"),
        Column("timing.total_s", "Wall time", None, "cost"),
    ]
    return [c for c in candidates if c.key in runs.columns and runs[c.key].notna().any()]


def losses_comparable(runs: pd.DataFrame) -> bool:
    """Whether the pre-training losses of different rows measure the same thing: every pre-trained run names
    one objective and no row's own bindings configure it (`<objective>.x = ...`, as Table 6's noise rates
    do). Rows that differ in model, data or steps compare; rows with different targets do not."""
    if "objective" not in runs.columns:
        return True
    trained = runs[runs["pretrain.final_loss"].notna()] if "pretrain.final_loss" in runs.columns else runs
    names = {str(n) for n in trained["objective"].dropna()}
    if len(names) > 1:
        return False
    if not names or "variant_bindings" not in trained.columns:
        return True
    prefix = f"{next(iter(names))}."
    return not any(any(k.startswith(prefix) for k in _binding_keys(b)) for b in trained["variant_bindings"])


def _binding_keys(bindings) -> list[str]:
    """The keys of a run's variant bindings (a dict, or the JSON text the results frame keeps)."""
    if isinstance(bindings, str):
        try:
            bindings = json.loads(bindings)
        except ValueError:
            return []
    return [str(k) for k in bindings] if isinstance(bindings, dict) else []


def _check_which(which: str) -> None:
    if which not in ("best", "last"):
        raise ReportError(f"which must be 'best' or 'last', got {which!r}")
