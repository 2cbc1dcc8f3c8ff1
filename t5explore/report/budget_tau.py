"""Kendall τ against the paper along the pre-training budget: at each budget, and its trend.

At each budget of budget_grid the rows' headline means are ranked against the paper's rows (paper_rows) with
the report's τ-b, its two-sided permutation p and its seed-bootstrap spread (paper.py), as the _vs_paper
tables do. The trend (tau_trend) asks whether τ rises with budget: the least-squares slope of τ against
log2(budget), with the spread of that slope over the same seed resamples at every budget (one resample draws
the same seeds at every budget, so the slopes keep the seeds' pairing). With 3 seeds there are only 10
distinct resamples: the spread is a rough guide, not a test, and a trend is called only when it excludes 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from t5explore.report.aggregate import Column, Summary
from t5explore.report.budget import (
    MEASURES,
    PAPER_COLUMN,
    Along,
    format_budget,
    headline,
    read_along,
)
from t5explore.report.paper import (
    PaperRow,
    PaperTable,
    check_paper_column,
    detect_paper_table,
    kendall_tau,
    kendall_tau_ci,
    match_rows,
    paper_columns,
    paper_data,
    paper_table,
    seed_draws,
)
from t5explore.report.results import Results, SweepInfo
from t5explore.report.stats import SeedValues, distinct_resamples, kendall_tau_b, percentile_interval
from t5explore.report.tables import MISSING, TextTable

PAPER_STEPS = (2**18, 2**19)  # issue 20 names 2^18; the paper pre-trains 2^19 steps (gin/runs/paper_scale.gin)


@dataclass(frozen=True)
class Tau:
    """Kendall τ-b of our row means against the paper's at one budget, with its 95% bootstrap CI over seeds."""

    tau: float
    p: float
    n: int
    lo: float
    hi: float
    paper_column: str
    column: Column


def paper_rows(summary: Summary, info: SweepInfo) -> dict[str, PaperRow]:
    """variant -> the paper's row. A sweep that reproduces one T5 table is matched against it (names, aliases,
    ★). Any other sweep (rows drawn from several of §3.3's tables, as budget_objectives.gin's are) is matched
    against all of Tables 4-7, which share the paper's baseline setting, by the paper's row names only: an
    alias can mean different rows in different tables ('span corruption' is Table 5's replace-spans row, not
    Table 7's μ = 3), and ★ need not be any of them."""
    table_id = detect_paper_table(info)
    table = paper_table(table_id) if table_id else _all_tables()
    return match_rows(summary.variants, table, info.paper_rows, summary.baseline)


def _all_tables() -> PaperTable:
    rows: dict[str, PaperRow] = {}
    for key in paper_data()["tables"]:
        for r in paper_table(key).rows:
            rows.setdefault(r.name, PaperRow(r.name, r.scores))  # no aliases, not ★
    return PaperTable("tables4-7", "Tables 4-7", tuple(rows.values()))


def tau_at(
    summary: Summary, info: SweepInfo, paper_column: str | None = None, pretrained_only: bool = False
) -> Tau | None:
    """τ of the headline column against the paper (paper.py's kendall_tau and its CI); None with < 2 rows.
    pretrained_only leaves out the no-pre-training row: the paper puts it far behind every objective, so
    agreeing on it says nothing about the objectives."""
    col = headline(summary)
    pc = col.paper if col.paper in paper_columns() else (check_paper_column(paper_column) or PAPER_COLUMN)
    matched = paper_rows(summary, info)
    if pretrained_only:
        npt = paper_data()["no_pretraining"]["name"]
        matched = {v: r for v, r in matched.items() if r.name != npt}
    order = [v for v in summary.variants if v in matched and summary.cell(v, col.key).n]
    if len(order) < 2:
        return None
    paper = [matched[v].scores[pc] for v in order]
    tau, p, n = kendall_tau([summary.cell(v, col.key).mean for v in order], paper)
    lo, hi = kendall_tau_ci([summary.seed_values.get((v, col.key), SeedValues()) for v in order], paper)
    return Tau(tau, p, n, lo, hi, pc, col)


def tau_line(tau: Tau) -> str:
    ci = "" if math.isnan(tau.lo) else f" [{tau.lo:.2f}, {tau.hi:.2f}]"
    value = "n/a (no order: one side is all ties)" if math.isnan(tau.tau) else f"{tau.tau:.2f}"
    same = tau.column.paper == tau.paper_column
    what = "" if same else f" (rank agreement only: our {tau.column.label} is not the paper's {tau.paper_column})"
    return (
        f"Kendall τ-b of the rows' {tau.column.label} against the paper's {tau.paper_column}: {value}{ci} "
        f"(n = {tau.n} rows; 95% bootstrap CI over seeds){what}."
    )


def tau_by_budget(
    results: Results,
    sweep: str,
    measure: str,
    which: str = "best",
    paper_column: str | None = None,
    pretrained_only: bool = False,
    read: Along | None = None,
) -> list[tuple[float, Tau | None]]:
    """Kendall τ against the paper at each budget of budget_grid (None where < 2 rows match the paper);
    pretrained_only: without the no-pre-training row (tau_at); `read`: read_along() already computed."""
    read = read if read is not None else read_along(results, sweep, measure, which)
    info = results.sweeps[sweep]
    return [(x, tau_at(summary, info, paper_column, pretrained_only)) for x, _, summary in read.points]


def tau_table(
    points: list[tuple[float, Tau | None]],
    sweep: str,
    measure: str,
    pretrained: list[tuple[float, Tau | None]] | None = None,
) -> TextTable | None:
    """τ by budget; with `pretrained` (the same budgets without no pre-training) a second set of columns."""
    known = [(x, t) for x, t in points if t is not None]
    if not known:
        return None
    name = MEASURES[measure][0]
    header = [name, "Kendall τ", "95% CI", "n rows", "p"]
    rows = [[format_budget(measure, x), *_tau_cells(t)] for x, t in known]
    if pretrained is not None:
        header += ["τ, pre-trained rows only", "its 95% CI", "its n rows", "its p"]
        by_x = dict(pretrained)
        for row, (x, _) in zip(rows, known):
            t = by_x.get(x)
            row += [MISSING] * 4 if t is None else _tau_cells(t)
    t0 = known[0][1]
    notes = [
        tau_line(t0).split(":")[0] + f", at each {name} value of the crossover tables (a seed not evaluated there "
        "interpolated)."
    ]
    if t0.column.paper != t0.paper_column:
        notes.append(f"Rank agreement only: our {t0.column.label} is not the paper's {t0.paper_column}.")
    notes.append(
        "CI: 95% bootstrap over seeds; p: the two-sided p of τ (paper.kendall_tau, as in the _vs_paper tables). "
        "Without no pre-training: the paper puts that row far behind every objective, so agreeing on it says "
        "nothing about the objectives (our order may or may not put it last)."
    )
    title = f"{sweep}: Kendall τ against the paper along {name}"
    return TextTable(title, header, rows, [[False] * len(header) for _ in rows], notes)


def _tau_cells(t: Tau) -> list[str]:
    ci = MISSING if math.isnan(t.lo) else f"[{t.lo:.2f}, {t.hi:.2f}]"
    tau = MISSING if math.isnan(t.tau) else f"{t.tau:.2f}"
    return [tau, ci, str(t.n), MISSING if math.isnan(t.p) else f"{t.p:.2f}"]


def tau_frame(
    every: list[tuple[float, Tau | None]], pretrained: list[tuple[float, Tau | None]], measure: str
) -> pd.DataFrame:
    """τ by budget, all rows and pre-trained rows only: tau, ci_lo, ci_hi, n, p each."""
    records = []
    for (x, t), (_, tp) in zip(every, pretrained):
        rec: dict[str, object] = {measure: x}
        for prefix, tau in (("", t), ("pretrained ", tp)):
            for name in ("tau", "lo", "hi", "n", "p"):
                rec[prefix + {"lo": "ci_lo", "hi": "ci_hi"}.get(name, name)] = getattr(tau, name) if tau else math.nan
        records.append(rec)
    return pd.DataFrame(records)


@dataclass(frozen=True)
class TauTrend:
    """τ's least-squares slope per doubling of the budget, its seed-bootstrap spread, and (only where that
    spread excludes 0) τ extrapolated to the paper's step counts, each with its spread."""

    slope: float
    lo: float
    hi: float
    budgets: int
    resamples: int
    rows: int
    predicted: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # steps -> τ, lo, hi

    @property
    def resolved(self) -> bool:
        return not math.isnan(self.lo) and (self.lo > 0 or self.hi < 0)


def tau_trend(
    read: Along, info: SweepInfo, paper_column: str | None = None, targets: tuple[int, ...] = PAPER_STEPS
) -> TauTrend | None:
    """The trend of τ (pre-trained rows only) against log2(budget); None with fewer than 2 budgets that have τ.
    Extrapolation (`targets`, in the measure's units: steps) only along steps and only for a resolved trend."""
    per_budget = []
    for x, _, summary in read.points:
        col = headline(summary)
        matched = _pretrained(paper_rows(summary, info))
        pc = col.paper if col.paper in paper_columns() else (check_paper_column(paper_column) or PAPER_COLUMN)
        order = [v for v in summary.variants if v in matched and summary.cell(v, col.key).n]
        if len(order) >= 2:
            values = [summary.seed_values.get((v, col.key), SeedValues()) for v in order]
            per_budget.append((math.log2(x), values, [matched[v].scores[pc] for v in order]))
    seeds = sorted({k for _, values, _ in per_budget for sv in values for k in sv.values}, key=str)
    draws = seed_draws(seeds)
    observed, replicated = [], []
    for _, values, paper in per_budget:
        table = np.array([[sv.values.get(k, math.nan) for k in seeds] for sv in values], np.float64)
        observed.append(kendall_tau_b(np.nanmean(table, axis=1), paper))
        replicated.append([kendall_tau_b(m, paper) for m in _draw_means(table, draws).T])
    xs = np.array([lx for lx, _, _ in per_budget])
    fit = line_fit(xs, np.array(observed))
    if fit is None:
        return None
    lines = [line_fit(xs, np.array(col)) for col in zip(*replicated)] if replicated else []
    kept = [f for f in lines if f is not None]
    lo, hi = percentile_interval([f[0] for f in kept]) if len(seeds) >= 2 else (math.nan, math.nan)
    out = TauTrend(fit[0], lo, hi, int(np.isfinite(observed).sum()), distinct_resamples(draws), len(per_budget[0][1]))
    if out.resolved and read.measure == "steps":
        for t in targets:
            at = [float(np.clip(b + a * math.log2(t), -1.0, 1.0)) for a, b in kept]
            out.predicted[t] = (float(np.clip(fit[1] + fit[0] * math.log2(t), -1.0, 1.0)), *percentile_interval(at))
    return out


def _pretrained(matched: dict[str, PaperRow]) -> dict[str, PaperRow]:
    npt = paper_data()["no_pretraining"]["name"]
    return {v: r for v, r in matched.items() if r.name != npt}


def _draw_means(table: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Each row's mean over each resample of the seeds (variant × replicate); a row none of whose drawn seeds
    it has keeps its full mean (as paper.kendall_tau_ci does)."""
    full = np.array([np.nanmean(r) if np.isfinite(r).any() else math.nan for r in table])
    picked = table[:, draws]  # variant × replicate × seed
    has = np.isfinite(picked)
    counts = has.sum(axis=2)
    sums = np.where(has, picked, 0.0).sum(axis=2)
    return np.where(counts > 0, sums / np.maximum(counts, 1), full[:, None])


def line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """(slope, intercept) of the least-squares line through the finite points; None with fewer than 2."""
    keep = np.isfinite(y)
    if keep.sum() < 2 or np.ptp(x[keep]) == 0:
        return None
    slope, intercept = np.polyfit(x[keep], y[keep], 1)
    return float(slope), float(intercept)
