"""The report's columns: which result.json numbers a table shows, under which label, ranked which way.

Labels, ranking direction and benchmark membership come from the runs' `registry` records (labels.py).
Each column carries its formatter (formats.py): a run-level number is one line in `RUN_COLUMNS` (shown in
every main table where runs have it) or `OPT_IN_COLUMNS` (shown when a table asks for it by label or key,
e.g. `t5explore table --columns=Params`), and prints in its own units without the table knowing its key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from t5explore.report.formats import COUNT, LOSS, SCORE, SECONDS, Formatter
from t5explore.report.labels import Labels
from t5explore.report.results import ReportError
from t5explore.report.stats import Interval

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
    fmt: Formatter | None = None  # how a cell prints; None: the kind's (scores 2 decimals, losses 3)

    def __post_init__(self) -> None:
        if self.kind not in ("score", "loss", "cost"):
            raise ValueError(f"column {self.key!r}: kind must be score, loss or cost, got {self.kind!r}")
        if self.fmt is None and self.kind == "cost":  # a cost's units are not guessable from its key
            raise ValueError(f"cost column {self.key!r} must name its formatter (fmt=...)")

    def text(self, iv: Interval, signed: bool = False) -> str:
        """The cell's (or, `signed`, a Δ's) text in this column's format."""
        fmt = self.fmt if self.fmt is not None else (LOSS if self.kind == "loss" else SCORE)
        return fmt(iv, signed)


# Run-level numbers after the scores, in this order; the losses' ranking is decided per table
# (`losses_comparable`). One line here adds a column to every main table whose runs have the number.
RUN_COLUMNS: tuple[Column, ...] = (
    Column("pretrain.final_loss", "Pre-train loss", "lower", "loss"),
    Column("pretrain.eval_loss", "Held-out loss", "lower", "loss"),
    Column("pretrain.tokens_seen", "Tokens", None, "cost", fmt=COUNT),
    Column("timing.total_s", "Wall time", None, "cost", fmt=SECONDS),
)

# Shown only when asked for by label or key (`default_columns(..., extra=["Params"])`, `table --columns`):
# the committed tables stay as they are.
OPT_IN_COLUMNS: tuple[Column, ...] = (
    Column("model.num_params", "Params", None, "cost", fmt=COUNT),
    Column("model.train_flops_per_example", "FLOPs/example", None, "cost", fmt=COUNT),
)

# A sweep whose rows differ in architecture (result.json `model.architecture`, as T5's Table 2 does) compares
# models of different sizes and costs, so its main table shows these opt-in columns without being asked: the
# runs' own records decide, not a flag someone must remember.
ARCHITECTURE_KEY = "model.architecture"
ARCHITECTURE_COLUMNS = ("Params", "FLOPs/example")


def default_columns(runs: pd.DataFrame, which: str = "best", extra: Sequence[str] = ()) -> list[Column]:
    """The main table: headline benchmark scores present (the paper's order), tasks none of them covers,
    final loss, cost, then the `extra` opt-in columns asked for (by label or key), and the architecture
    columns (ARCHITECTURE_COLUMNS) when the rows differ in architecture. Labels come from the runs'
    `registry` records (labels.py)."""
    _check_which(which)
    wanted = opt_in_columns([*extra, *(ARCHITECTURE_COLUMNS if architectures_differ(runs) else ())])
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
    return cols + [c for c in wanted if c.key in runs.columns and runs[c.key].notna().any()]


def architectures_differ(runs: pd.DataFrame) -> bool:
    """Whether the runs record more than one `model.architecture` (older result.json files record none)."""
    if ARCHITECTURE_KEY not in runs.columns:
        return False
    return runs[ARCHITECTURE_KEY].dropna().astype(str).nunique() > 1


def opt_in_columns(names: Sequence[str]) -> list[Column]:
    """The OPT_IN_COLUMNS named (label or key, case-insensitive); an unknown name lists the choices."""
    known = {n.lower(): c for c in OPT_IN_COLUMNS for n in (c.label, c.key)}
    unknown = [n for n in names if n.strip().lower() not in known]
    if unknown:
        choices = ", ".join(c.label for c in OPT_IN_COLUMNS)
        raise ReportError(f"unknown column(s) {', '.join(map(repr, unknown))}; choose from {choices}")
    return list(dict.fromkeys(known[n.strip().lower()] for n in names))


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
    """RUN_COLUMNS the runs have; losses unranked (with a note) when rows pre-train on different targets."""
    ranked = losses_comparable(runs)
    candidates = [
        c if c.kind != "loss" or ranked else replace(c, better=None, note=LOSSES_NOT_RANKED) for c in RUN_COLUMNS
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


def _binding_keys(bindings: Any) -> list[str]:
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
