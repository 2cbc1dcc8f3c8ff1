"""Scores at a matched pre-training budget: every row of a sweep at one value of steps, FLOPs or tokens.

A run that was evaluated at several pre-training budgets (result.json `budgets`, one entry per
`Pretrain.eval_at_steps` step) has a score curve along each budget measure. To rank rows at one matched
budget, each run (so each seed) is read at that budget on its own, before any pairing with ★:

- at a budget the run was evaluated at, its own point (scores, losses and bootstrap of that checkpoint);
- between two evaluated budgets, linear interpolation in log(budget) between the two nearest, per score:
  budgets are spaced geometrically (200, 400, 800, ...) and scores grow roughly linearly in log(budget);
  an interpolated value has no bootstrap over evaluation examples (no checkpoint was evaluated there);
- outside the run's evaluated range: refused (ReportError naming the row), never extrapolated.
A run without `budgets` that was not pre-trained (the no-pre-training row) is budget 0 and is kept as it
is at every budget. A pre-trained run from before `budgets` existed has one point: its final step
(steps and input tokens only; its FLOPs and target tokens were not recorded).

The matched runs are ordinary `Results` rows (the same columns a normal result.json gives), so aggregation,
Δ vs. ★, CIs, ties, bold and Kendall τ are the report's usual code (aggregate.py, paper.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from t5explore.report.aggregate import Column, Summary, default_columns, shows_delta, summarize
from t5explore.report.results import ReportError, Results
from t5explore.run_layout import RESULT_FILE

# measure -> (how tables name it, how a plot axis names it, with its unit)
MEASURES = {
    "steps": ("steps", "pre-training steps (optimizer updates)"),
    "flops": ("FLOPs", "pre-training compute (FLOPs)"),
    "input_tokens": ("input tokens", "input tokens seen (tokens)"),
    "target_tokens": ("target tokens", "loss-bearing target tokens seen (tokens)"),
}
BUDGETS = "budgets"  # the Results.runs column holding result.json `budgets` (a list of dicts, or None)
INTERPOLATED = "†"
REL_TOL = 1e-9  # a budget this close (relative) to an evaluated one is that point
# Results.runs columns a budget entry replaces (the rest of a run's row stays as it is).
REPLACED = ("downstream.", "benchmarks.", "pretrain.", "timing.", "throughput.")
PAPER_COLUMN = "GLUE"  # the paper column our scores are ranked against when they share none with the paper


@dataclass(frozen=True)
class Point:
    """One evaluated budget of one run: its value in the measure and its scores as Results.runs columns."""

    x: float
    record: dict[str, Any]
    bootstrap: Any = None
    step: float | None = None  # the pre-training step it was evaluated at (groups seeds' points in grids)


@dataclass
class Matched:
    """One sweep's runs read at one budget (see the module doc)."""

    results: Results
    measure: str
    at: float
    interpolated: dict[str, set] = field(default_factory=dict)  # variant -> seeds read between two points
    unbudgeted: set[str] = field(default_factory=set)  # variants with no budget axis (no pre-training)
    skipped: dict[str, str] = field(default_factory=dict)  # variant -> why it is absent (only with refuse=False)


def check_measure(measure: str) -> str:
    if measure not in MEASURES:
        raise ReportError(f"--budget must be one of {', '.join(MEASURES)}, got {measure!r}")
    return measure


def has_budgets(runs: pd.DataFrame) -> bool:
    """Whether any run recorded scores at several budgets (result.json `budgets`)."""
    return BUDGETS in runs.columns and any(isinstance(b, list) and b for b in runs[BUDGETS])


def total_dependent_rows(results: Results, sweep: str) -> list[str]:
    """The rows some of whose budgets were evaluated on a schedule that depends on the total step count
    (result.json `budgets[i].schedule_depends_on_total`, set only under Pretrain.allow_total_dependent_budgets):
    their step-k checkpoint is not what a k-step run ends with, and every budget table and plot says so."""
    runs = results.for_sweep(sweep).runs
    if BUDGETS not in runs.columns:
        return []
    flagged = [
        v
        for v, budgets in zip(runs["variant"], runs[BUDGETS])
        if isinstance(budgets, list)
        and any(isinstance(b, dict) and b.get("schedule_depends_on_total") for b in budgets)
    ]
    return list(dict.fromkeys(flagged))


def total_dependent_note(rows: list[str]) -> str | None:
    if not rows:
        return None
    return (
        f"Schedule depends on the total: {', '.join(rows)} evaluated budgets on a learning-rate schedule that "
        "decays to the run's last step (Pretrain.allow_total_dependent_budgets), so a checkpoint at step k is not "
        "what a k-step run ends with: their scores at earlier budgets are not those of a shorter run."
    )


def run_points(row: Mapping[str, Any], measure: str) -> list[Point] | None:
    """A run's evaluated budgets, ascending in `measure`; None for a run with no budget axis (not pre-trained).
    A malformed entry is an error naming the file and the field."""
    where = f"{row.get('run_dir', row.get('run'))}/{RESULT_FILE}"
    budgets = row.get(BUDGETS)
    if not isinstance(budgets, list) or not budgets:
        steps = row.get("pretrain.steps")
        if steps is None or (isinstance(steps, float) and math.isnan(steps)) or not steps:
            return None
        top = {"steps": steps, "input_tokens": row.get("pretrain.tokens_seen")}
        if top.get(measure) is None:
            raise ReportError(f"{where}: no `budgets` (written before they were recorded), so no {measure}")
        return [Point(float(top[measure]), {}, row.get("bootstrap"), float(steps))]  # empty record: its own scores
    points = []
    for i, entry in enumerate(budgets):
        x = entry.get(measure) if isinstance(entry, dict) else None
        if not isinstance(x, (int, float)) or isinstance(x, bool) or not x > 0:
            raise ReportError(f"{where}: budgets[{i}].{measure} must be a number > 0, got {x!r}")
        points.append(Point(float(x), _flat(entry), entry.get("bootstrap"), _step(entry.get("steps"))))
    points.sort(key=lambda p: p.x)
    for a, b in itertools.pairwise(points):
        if _same(a.x, b.x):
            raise ReportError(f"{where}: two budgets have the same {measure} ({a.x:g})")
    return points


def _flat(entry: dict) -> dict[str, Any]:
    """A budget entry as the Results.runs columns flatten_result gives a whole run."""
    rec: dict[str, Any] = {}
    for task, r in (entry.get("downstream") or {}).items():
        for which in ("best", "last"):
            for metric, v in (r.get(which) or {}).items():
                rec[f"downstream.{task}.{which}.{metric}"] = v
        rec[f"downstream.{task}.best_step"] = r.get("best_step")
        rec[f"downstream.{task}.primary_metric"] = r.get("primary_metric")
    for which in ("best", "last"):
        for name, v in ((entry.get("benchmarks") or {}).get(which) or {}).items():
            rec[f"benchmarks.{which}.{name}"] = v
    pre = entry.get("pretrain") or {}
    rec["pretrain.final_loss"] = pre.get("loss")
    rec["pretrain.eval_loss"] = pre.get("held_out_loss")
    rec["pretrain.tokens_seen"] = entry.get("input_tokens")
    rec["pretrain.steps"] = entry.get("steps")
    return rec


def read_at(points: list[Point], at: float, what: str, measure: str) -> tuple[dict[str, Any], Any, bool]:
    """(record, bootstrap, interpolated) at budget `at`: the evaluated point, or the log-linear interpolation
    between the two nearest (see the module doc). `what` names the row in the refusal."""
    for p in points:
        if _same(p.x, at):
            return p.record, p.bootstrap, False
    lo, hi = points[0].x, points[-1].x
    if not lo < at < hi:
        fmt = format_budget
        span = fmt(measure, lo) if len(points) == 1 else f"{fmt(measure, lo)} to {fmt(measure, hi)}"
        raise ReportError(
            f"{what} was evaluated at {MEASURES[measure][0]} {span} only; {fmt(measure, at)} is outside that range "
            "and extrapolation is refused"
        )
    i = next(i for i, p in enumerate(points) if p.x > at)
    a, b = points[i - 1], points[i]
    w = (math.log(at) - math.log(a.x)) / (math.log(b.x) - math.log(a.x))
    rec: dict[str, Any] = {}
    for key in {**a.record, **b.record}:
        va, vb = a.record.get(key), b.record.get(key)
        if _number(va) and _number(vb):
            rec[key] = (1.0 - w) * float(va) + w * float(vb)  # type: ignore[arg-type]
        else:  # text (a primary metric) or a score only one of the two points has
            rec[key] = va if key.endswith("primary_metric") else None
    return rec, None, True


def matched_results(
    results: Results, sweep: str, measure: str, at: float, refuse: bool = True, variants: list[str] | None = None
) -> Matched:
    """One sweep's runs read at budget `at` of `measure`, as a Results the table code aggregates.

    refuse=False leaves out a row that would need extrapolation (named in `skipped`) instead of failing;
    `variants` limits the rows read (the others are left out)."""
    check_measure(measure)
    if not (isinstance(at, (int, float)) and math.isfinite(at) and at > 0):
        raise ReportError(f"--at must be a budget > 0, got {at!r} (the no-pre-training row is budget 0)")
    res = results.for_sweep(sweep)
    out = Matched(res, measure, float(at))
    rows = []
    for _, run in res.runs.iterrows():
        v = run["variant"]
        if (variants is not None and v not in variants) or v in out.skipped:
            continue
        points = run_points(run, measure)
        row = run.to_dict()
        if points is None:
            out.unbudgeted.add(v)
            rows.append(row)
            continue
        try:
            rec, boot, between = read_at(points, float(at), f"row {v!r} (run {run['run']})", measure)
        except ReportError as e:
            if refuse:
                raise
            out.skipped[v] = str(e)
            continue
        if rec:  # a run with budgets: its scores at this budget replace the final ones
            kept = {k: x for k, x in row.items() if not k.startswith(REPLACED) or k.endswith("primary_metric")}
            row = {**kept, **rec, "bootstrap": boot}
        if between:
            out.interpolated.setdefault(v, set()).add(run["seed"])
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys(k for r in rows for k in r)) or list(res.runs.columns))
    frame = frame[~frame["variant"].isin(out.skipped)] if len(frame) else frame
    out.results = Results(frame.reset_index(drop=True), res.failed, res.incomplete, res.sweeps)
    return out


def matched_summary(matched: Matched, which: str = "best") -> Summary:
    """The usual aggregation of the matched runs, with the ordinary columns less wall time (a budget records
    only its pre-training seconds, so a run's total would mislead)."""
    sweep = next(iter(matched.results.sweeps))
    return summarize(matched.results, sweep, columns=_columns(matched.results.runs, which), which=which)


def _columns(runs: pd.DataFrame, which: str) -> list[Column]:
    return [c for c in default_columns(runs, which) if c.kind != "cost" or c.key == "pretrain.tokens_seen"]


def headline(summary: Summary) -> Column:
    """The column crossovers and τ are computed on: the first headline score (the table's first Δ column)."""
    for c in summary.columns:
        if shows_delta(c):
            return c
    raise ReportError(f"sweep {summary.sweep!r}: no score column to compare along the budget")


@dataclass(frozen=True)
class Along:
    """A sweep read at each budget of budget_grid: (budget, the runs matched there, their summary)."""

    measure: str
    points: list[tuple[float, Matched, Summary]]


def read_along(results: Results, sweep: str, measure: str, which: str = "best") -> Along:
    """The sweep at every budget of budget_grid, rows that cannot be read at a budget left out there (named in
    its Matched.skipped): what crossovers, τ by budget and the trends all read, computed once."""
    check_measure(measure)
    points = []
    for x in budget_grid(results, sweep, measure):
        matched = matched_results(results, sweep, measure, x, refuse=False)
        points.append((x, matched, matched_summary(matched, which)))
    return Along(measure, points)


def budget_grid(results: Results, sweep: str, measure: str) -> list[float]:
    """The budgets a sweep's rows are compared at: those ★ was evaluated at (row_grid). When ★ has no budget
    axis (no pre-training is budget 0, the same at every budget) or no finished run yet, the budgets every
    pre-trained row was evaluated at, joined; a sweep with no pre-trained run is an error."""
    info = results.sweeps[sweep]
    runs = results.for_sweep(sweep).runs
    star = row_grid(runs, info.baseline, measure) if info.baseline is not None else None
    if star:
        return star
    grids = [row_grid(runs, v, measure) for v in dict.fromkeys(runs["variant"]) if v != info.baseline]
    joined: list[float] = []
    for x in sorted(x for g in grids if g for x in g):
        if not (joined and _same(joined[-1], x)):
            joined.append(x)
    if not joined:
        raise ReportError(f"sweep {sweep!r}: no finished run was evaluated at pre-training budgets in {measure}")
    return joined


def row_grid(runs: pd.DataFrame, variant: str, measure: str) -> list[float] | None:
    """One row's evaluated budgets: per evaluated step, the mean over its seeds of that step's value in
    `measure` (seeds differ slightly in target tokens), kept inside the range every seed covers so that no
    seed is extrapolated. None for a row with no budget axis (no pre-training) or no finished run."""
    picked = runs[runs["variant"] == variant] if len(runs) else runs
    per_run = [p for p in (run_points(r, measure) for _, r in picked.iterrows()) if p]
    if not per_run:
        return None
    lo, hi = max(p[0].x for p in per_run), min(p[-1].x for p in per_run)
    groups: dict[float, list[float]] = {}
    for pt in (pt for p in per_run for pt in p):
        groups.setdefault(pt.x if pt.step is None else pt.step, []).append(pt.x)
    grid: list[float] = []
    for xs in sorted(groups.values(), key=lambda xs: sum(xs) / len(xs)):
        x = min(max(sum(xs) / len(xs), lo), hi)
        if lo * (1 - REL_TOL) <= max(xs) and min(xs) <= hi * (1 + REL_TOL) and not (grid and _same(grid[-1], x)):
            grid.append(x)
    return grid


def unbudgeted(results: Results, sweep: str) -> list[str]:
    """The rows with no budget axis (not pre-trained: budget 0, the same score at every budget)."""
    runs = results.for_sweep(sweep).runs
    rows: dict[str, bool] = {}
    for _, r in runs.iterrows():
        rows[r["variant"]] = rows.get(r["variant"], True) and run_points(r, "steps") is None
    return [v for v, none in rows.items() if none]


def format_budget(measure: str, x: float) -> str:
    """Steps as '1,600' (a crossover between budgets rounded to a step), FLOPs as '3.2e+12', tokens as '1.64M'."""
    if measure == "steps":
        return f"{x:,.0f}"
    if measure == "flops":
        return f"{x:.3g}"
    return _fmt(x)


def _fmt(x: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.4g}{unit}"
    return f"{x:.4g}"


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b), 1.0)


def _step(x: Any) -> float | None:
    return float(x) if _number(x) else None


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
