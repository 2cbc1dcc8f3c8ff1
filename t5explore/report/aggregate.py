"""Seeds -> mean ± std per variant, with the T5 paper's table conventions.

The paper (Raffel et al. 2020, §3.1.4) marks the baseline with ★ and sets in **bold** every score within two
standard deviations of the best in its column, the standard deviation being the baseline's over 10 runs.
Here the σ for a column is, in order: one the user gives (e.g. the paper's), the baseline variant's sample std
over its seeds, the pooled sample std over every variant with ≥ 2 seeds; with none of these only the best
value (and exact ties) are bold. Scores: higher is better; losses: lower is better; costs are not ranked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from t5explore.report.results import ReportError, Results

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


@dataclass
class Cell:
    mean: float = math.nan
    std: float = math.nan  # sample std (ddof=1); nan with fewer than 2 values
    n: int = 0
    bold: bool = False


@dataclass
class Summary:
    """One sweep aggregated over seeds: rows = variants in sweep order, one Cell per (variant, column)."""

    sweep: str
    variants: list[str]
    columns: list[Column]
    cells: dict[tuple[str, str], Cell]
    n_runs: dict[str, int]
    baseline: str | None
    failed: pd.DataFrame
    incomplete: pd.DataFrame
    sigma: dict[str, float] = field(default_factory=dict)  # the σ used for bold, per column key
    which: str = "best"

    def cell(self, variant: str, key: str) -> Cell:
        return self.cells[(variant, key)]

    def to_frame(self) -> pd.DataFrame:
        """Flat numbers for CSV / notebooks: mean, std, n and bold per column."""
        records = []
        for v in self.variants:
            rec: dict[str, object] = {"variant": v, "baseline": v == self.baseline, "n": self.n_runs[v]}
            for c in self.columns:
                cell = self.cell(v, c.key)
                rec[c.label] = cell.mean
                rec[f"{c.label} std"] = cell.std
                rec[f"{c.label} n"] = cell.n
                rec[f"{c.label} bold"] = cell.bold
            records.append(rec)
        return pd.DataFrame(records)


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


def summarize(results: Results, sweep: str | None = None, columns: list[Column] | None = None,
              which: str = "best", baseline_std: Mapping[str, float] | None = None,
              strict_std: bool = True) -> Summary:
    """Aggregate one sweep's runs by variant. `baseline_std` maps a column key/label/paper name to σ;
    with strict_std a name that matches no column is an error, else it is ignored."""
    if sweep is None:
        if len(results.sweeps) != 1:
            raise ReportError(f"several sweeps loaded ({', '.join(results.sweeps)}); name one")
        sweep = next(iter(results.sweeps))
    if sweep not in results.sweeps:
        raise ReportError(f"sweep {sweep!r} not found; loaded: {', '.join(results.sweeps) or 'none'}")
    res = results.for_sweep(sweep)
    info = res.sweeps[sweep]
    runs = res.runs
    columns = default_columns(runs, which) if columns is None else columns
    user_sigma = resolve_baseline_std(baseline_std or {}, columns, strict_std)

    variants = list(info.variants)
    for v in [*res.failed["variant"], *res.incomplete["variant"]]:
        if isinstance(v, str) and v not in variants:
            variants.append(v)
    cells: dict[tuple[str, str], Cell] = {}
    n_runs = {v: int((runs["variant"] == v).sum()) if len(runs) else 0 for v in variants}
    for v in variants:
        group = runs[runs["variant"] == v] if len(runs) else runs
        for c in columns:
            values = pd.to_numeric(group[c.key], errors="coerce").dropna().to_numpy(float) \
                if c.key in group.columns else np.array([])
            cells[(v, c.key)] = _cell(values)

    sigma = {}
    for c in columns:
        if c.better is None:
            continue
        s = user_sigma.get(c.key, _seed_sigma([cells[(v, c.key)] for v in variants], cells.get((info.baseline, c.key))))
        sigma[c.key] = s
        _mark_bold([cells[(v, c.key)] for v in variants], c.better, s)
    return Summary(sweep, variants, columns, cells, n_runs, info.baseline, res.failed, res.incomplete, sigma, which)


def resolve_baseline_std(spec: Mapping[str, float], columns: list[Column], strict: bool = True) -> dict[str, float]:
    """Map user names (column key, label, benchmark name or paper column; any case) to column keys."""
    out = {}
    for name, value in spec.items():
        hits = [c for c in columns if name.lower() in _names(c)]
        if not hits and not strict:
            continue
        if not hits:
            labels = ", ".join(c.label for c in columns if c.better)
            raise ReportError(f"baseline std given for {name!r}, which names no column (columns: {labels})")
        if not (isinstance(value, (int, float)) and value >= 0):
            raise ReportError(f"baseline std for {name!r} must be a number ≥ 0, got {value!r}")
        for c in hits:
            out[c.key] = float(value)
    return out


def _names(c: Column) -> set[str]:
    names = {c.key, c.label, c.paper or ""}
    if c.key.startswith("benchmarks."):
        names.add(c.key.rsplit(".", 1)[1])
    return {n.lower() for n in names if n}


def _cell(values: np.ndarray) -> Cell:
    n = len(values)
    if n == 0:
        return Cell()
    return Cell(float(values.mean()), float(values.std(ddof=1)) if n > 1 else math.nan, n)


def _seed_sigma(cells: list[Cell], baseline: Cell | None) -> float:
    """Baseline's seed std if it has ≥ 2 seeds, else the pooled std of all variants with ≥ 2 seeds."""
    if baseline is not None and baseline.n > 1:
        return baseline.std
    multi = [c for c in cells if c.n > 1]
    if not multi:
        return math.nan
    dof = sum(c.n - 1 for c in multi)
    return math.sqrt(sum((c.n - 1) * c.std**2 for c in multi) / dof)


def _mark_bold(cells: list[Cell], better: str, sigma: float) -> None:
    means = [c.mean for c in cells if c.n]
    if not means:
        return
    width = 0.0 if math.isnan(sigma) else 2.0 * sigma
    best = max(means) if better == "higher" else min(means)
    tol = TOL * max(1.0, abs(best))
    for c in cells:
        if c.n:
            gap = best - c.mean if better == "higher" else c.mean - best
            c.bold = gap <= width + tol


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
