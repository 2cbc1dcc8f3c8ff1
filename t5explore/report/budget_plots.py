"""PNG plots along the pre-training budget: score against budget, and Kendall τ against the paper by budget.

`<sweep>_budget.png`: one panel per budget measure (steps, FLOPs, target tokens), log x axis, one line per
row (the mean over seeds, each seed read at each of the row's evaluated budgets, interpolated in log(budget)
where a seed lacks one) with its 95% CI band over seeds (Student t); the no-pre-training row, which has no
budget axis, is a dashed horizontal line with its band. The paper's ordering of the rows is written beside.
`<sweep>_budget_tau.png`: τ of the rows against the paper at each budget ★ was evaluated at, with its 95%
bootstrap CI over seeds (the same τ as the tables: budget_tables.tau_by_budget).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from t5explore.report.aggregate import Summary, summarize
from t5explore.report.budget import (
    MEASURES,
    format_budget,
    has_budgets,
    headline,
    read_at,
    row_grid,
    run_points,
    total_dependent_rows,
)
from t5explore.report.budget_tau import paper_rows, tau_by_budget
from t5explore.report.paper import paper_columns
from t5explore.report.plots import _figure, axis_label, fit_suptitle, save_png
from t5explore.report.results import ReportError, Results, load_results
from t5explore.report.stats import t_interval
from t5explore.report.sweep_tables import safe_name

PLOTTED = ("steps", "flops", "target_tokens")  # one panel each (input tokens are steps × a constant)


@dataclass
class Curve:
    """One row along one measure: budgets x, the mean over seeds and its 95% t interval at each, seeds n.
    A row with no budget axis has x = None and one value."""

    x: np.ndarray | None
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: int


def row_curve(results: Results, sweep: str, variant: str, measure: str, key: str) -> Curve | None:
    """The row's seeds read at every budget any of them was evaluated at, within the range all of them cover."""
    runs = results.for_sweep(sweep).runs
    runs = runs[runs["variant"] == variant] if len(runs) else runs
    pts = [(r, run_points(r, measure)) for _, r in runs.iterrows()]
    if not pts:
        return None
    if all(p is None for _, p in pts):  # no budget axis: one value per seed
        iv = t_interval([float(r[key]) for r, _ in pts if _finite(r.get(key))])
        return Curve(None, np.array([iv.mean]), np.array([iv.lo]), np.array([iv.hi]), len(pts))
    if any(p is None for _, p in pts):
        raise ReportError(f"sweep {sweep!r}: row {variant!r} mixes runs with and without pre-training budgets")
    read = [(r, p) for r, p in pts if p is not None]
    grid = row_grid(runs, variant, measure) or []
    means, los, his = [], [], []
    for x in grid:  # inside every seed's range: nothing is extrapolated
        values = []
        for r, p in read:
            rec = read_at(p, x, f"row {variant!r} (run {r['run']})", measure)[0]
            v = rec.get(key) if rec else r.get(key)
            if _finite(v):
                values.append(float(v))
        iv = t_interval(values)
        means.append(iv.mean)
        los.append(iv.lo)
        his.append(iv.hi)
    return Curve(np.array(grid), np.array(means), np.array(los), np.array(his), len(pts))


def budget_figure(results: Results, sweep: str, summary: Summary, measures: tuple[str, ...] = PLOTTED) -> Figure | None:
    """Score against budget, one panel per measure the runs recorded (see the module doc)."""
    col = headline(summary)
    panels = {}
    for m in (m for m in measures if _available(results, sweep, m)):
        computed = ((v, row_curve(results, sweep, v, m, col.key)) for v in summary.variants)
        drawn = {v: c for v, c in computed if c is not None and np.isfinite(c.mean).any()}
        if any(c.x is not None for c in drawn.values()):  # a log axis needs some budget to place
            panels[m] = drawn
    if not panels:
        return None
    fig = _figure(4.2 * len(panels) + 2.6, 4.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (measure, curves) in zip(axes, panels.items()):
        for v, curve in curves.items():
            _draw_curve(ax, curve, f"★ {v}" if v == summary.baseline else v, f"C{summary.variants.index(v) % 10}")
        _log_x(ax, measure)
        ax.set_xlabel(MEASURES[measure][1] + ", log scale")
        ax.set_ylabel(axis_label(col))
        ax.set_title(f"{col.label} vs. {MEASURES[measure][0]}", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7, loc="best")
    order = _paper_order(results, sweep, summary)
    if order:
        fig.text(0.995, 0.5, order, fontsize=7, ha="right", va="center", family="monospace")
    fit_suptitle(
        fig,
        f"{sweep}: {col.label} ({summary.which} checkpoint) against pre-training budget; line = mean over seeds, "
        "band = 95% CI over seeds (Student t)" + _warning(results, sweep),
    )
    fig.tight_layout(rect=(0.0, 0.0, 1.0 - 2.4 / fig.get_figwidth() if order else 1.0, 0.93))
    return fig


def _draw_curve(ax: Axes, curve: Curve, label: str, color: str) -> None:
    """A row's mean line with its 95% band; a row without a budget axis as a dashed level with its band."""
    if curve.x is None:
        ax.axhline(curve.mean[0], color=color, linestyle="--", label=f"{label} (budget 0, constant; n={curve.n})")
        if math.isfinite(curve.lo[0]):
            ax.axhspan(curve.lo[0], curve.hi[0], color=color, alpha=0.12, linewidth=0)
        return
    ax.plot(curve.x, curve.mean, marker="o", markersize=3, color=color, label=f"{label} (n={curve.n})")
    band = np.isfinite(curve.lo)
    if band.any():
        ax.fill_between(curve.x[band], curve.lo[band], curve.hi[band], color=color, alpha=0.2, linewidth=0)


def _paper_order(results: Results, sweep: str, summary: Summary) -> str:
    """'Paper's GLUE order:' and the rows matched to the paper, best first, with the paper's scores."""
    rows = paper_rows(summary, results.sweeps[sweep])
    if len(rows) < 2:
        return ""
    col = headline(summary)
    pc = col.paper if col.paper in paper_columns() else "GLUE"
    ranked = sorted(rows.items(), key=lambda kv: -kv[1].scores[pc])
    lines = [f"Paper's {pc} order:"] + [f"{i}. {v[:26]} {r.scores[pc]:.2f}" for i, (v, r) in enumerate(ranked, 1)]
    return "\n".join(lines)


def tau_figure(results: Results, sweep: str, which: str = "best", measures: tuple[str, ...] = PLOTTED) -> Figure | None:
    """Kendall τ against the paper at each of ★'s evaluated budgets, CI as error bars, with and without the
    no-pre-training row; one panel per measure."""
    panels = {}
    for m in measures:
        if _available(results, sweep, m):
            series = {
                label: [
                    (x, t)
                    for x, t in tau_by_budget(results, sweep, m, which, pretrained_only=only)
                    if t is not None and math.isfinite(t.tau)  # τ is nan when one side is all ties
                ]
                for label, only in (("all rows", False), ("pre-trained rows only", True))
            }
            if series["all rows"]:
                panels[m] = series
    if not panels:
        return None
    fig = _figure(4.2 * len(panels), 3.8)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (measure, series) in zip(axes, panels.items()):
        for i, (label, pts) in enumerate(series.items()):
            if not pts:
                continue
            x = np.array([p[0] for p in pts]) * (1.0 + 0.03 * i)  # a nudge so the two sets of bars do not overlap
            tau, lo, hi = (np.array([getattr(p[1], a) for p in pts]) for a in ("tau", "lo", "hi"))
            err = np.clip(np.nan_to_num(np.array([tau - lo, hi - tau])), 0.0, None)
            n = pts[0][1].n
            ax.errorbar(x, tau, yerr=err, fmt="o-" if i == 0 else "s--", capsize=3, label=f"{label} (n = {n})")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        _log_x(ax, measure)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel(MEASURES[measure][1] + ", log scale")
        t0 = series["all rows"][0][1]
        ax.set_ylabel(f"Kendall τ-b vs. paper's {t0.paper_column}")
        ax.set_title(f"{t0.column.label}: τ vs. {MEASURES[measure][0]}", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
    fit_suptitle(
        fig,
        f"{sweep}: rank agreement with the paper by budget (bars: 95% bootstrap CI over seeds)"
        + _warning(results, sweep),
    )
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.92))
    return fig


def _warning(results: Results, sweep: str) -> str:
    """The label a plot carries when some row's budgets were evaluated on a total-dependent schedule."""
    rows = total_dependent_rows(results, sweep)
    return f". WARNING: schedule depends on the total steps for {', '.join(rows)}" if rows else ""


def _log_x(ax: Axes, measure: str) -> None:
    """A log x axis labelled at 1, 2 and 5 × each power of 10 in the tables' units (200, 1.6M, 2e+11):
    a sweep spans about one decade, where matplotlib's default labels only one tick."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: format_budget(measure, x)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _available(results: Results, sweep: str, measure: str) -> bool:
    """Every pre-trained run of the sweep has budgets with this measure."""
    runs = results.for_sweep(sweep).runs
    try:
        points = [run_points(r, measure) for _, r in runs.iterrows()]
    except ReportError:
        return False
    return any(p is not None and len(p) >= 2 for p in points)


def write_budget_plots(
    results_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    which: str = "best",
    results: Results | None = None,
    required: bool = False,
) -> list[Path]:
    """`<sweep>_budget.png` and `<sweep>_budget_tau.png` for every sweep whose runs have budgets. With
    `required`, a directory where no run has budgets is an error."""
    results = results if results is not None else load_results(results_dir)
    out = Path(out_dir) if out_dir is not None else Path(results_dir)
    written = []
    for name in results.sweep_names():
        if not has_budgets(results.for_sweep(name).runs):
            continue
        summary = summarize(results, name, which=which)
        for kind, fig in (
            ("budget", budget_figure(results, name, summary)),
            ("budget_tau", tau_figure(results, name, which)),
        ):
            if fig is not None:
                path = out / f"{safe_name(name)}_{kind}.png"
                save_png(fig, path)
                written.append(path)
    if required and not written:
        raise ReportError(f"--budget: no run under {results_dir} has scores at several budgets (result.json `budgets`)")
    return written


def _finite(v: object) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
