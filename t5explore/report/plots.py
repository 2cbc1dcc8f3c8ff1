"""PNG plots of a results directory: loss curves, score bars, ours vs. the paper.

They show the tables' intervals: score bars carry the cells' 95% CIs (Student t over seeds; for one seed the
bootstrap over evaluation examples), the loss band is the 95% t interval of the mean curve over seeds, and the
scatter against the paper has our CIs as horizontal bars and τ's bootstrap CI in each title.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so nothing global changes in the
caller's process (notebooks keep their own backend) and files are written atomically.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from t5explore.io_utils import atomic_write_bytes
from t5explore.report.aggregate import BETTER, TIE, WORSE, Summary, summarize
from t5explore.report.columns import Column, losses_comparable
from t5explore.report.paper import PaperComparison, compare_with_paper
from t5explore.report.results import Results, load_metrics, load_results
from t5explore.report.stats import t_quantile
from t5explore.report.sweep_tables import safe_name

DPI = 110
MAX_WIDTH_IN = 10.0  # a title longer than this is wrapped instead of widening the figure further


LOSS_UNIT = "nats per target token"  # train/steps.py: mean cross entropy (natural log) over loss-bearing targets
TOKENS_UNIT = "input tokens seen"  # metrics.jsonl's tokens_seen: batch x inputs_length per step


def loss_curves_figure(results: Results, sweep: str, summary: Summary, phase: str = "pretrain") -> Figure | None:
    """Pretraining loss vs. tokens seen: the seeds' mean per variant, with its 95% t interval as a band. Rows whose
    losses measure different targets (columns.losses_comparable: other objectives or objective bindings) get one
    panel each, so no axis invites comparing them; comparable rows share one panel."""
    runs = results.runs[results.runs["sweep"] == sweep] if len(results.runs) else results.runs
    curves = {v: _variant_curves(runs, v, phase) for v in summary.variants}
    curves = {v: c for v, c in curves.items() if c}
    if not curves:
        return None
    shared = losses_comparable(runs)
    panels = [list(curves)] if shared else [[v] for v in curves]
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig = _figure(7 if shared else 3.6 * cols, 4.2 if shared else 3.0 * rows + 0.8)
    colour = {v: f"C{i % 10}" for i, v in enumerate(summary.variants)}
    for k, variants in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        for variant in variants:
            _draw_mean_curve(
                ax, curves[variant], f"★ {variant}" if variant == summary.baseline else variant, colour[variant]
            )
        ax.set_xlabel(TOKENS_UNIT, fontsize=8 if not shared else None)
        ax.set_ylabel(f"{phase} loss ({LOSS_UNIT})", fontsize=8 if not shared else None)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7 if not shared else 8)
    why = "" if shared else "\none panel per row: their objectives differ, so their losses measure different targets"
    fit_suptitle(fig, f"{sweep}: {phase} loss\n(line: mean over seeds; band: 95% CI of the mean, Student t){why}")
    fig.tight_layout()
    return fig


def _variant_curves(runs: pd.DataFrame, variant: str, phase: str) -> list[tuple[np.ndarray, np.ndarray]]:
    curves = []
    for run_dir in runs.loc[runs["variant"] == variant, "run_dir"]:
        m = load_metrics(run_dir)
        if len(m) and {"tokens_seen", "loss"} <= set(m.columns):
            m = m[m["phase"] == phase].dropna(subset=["tokens_seen", "loss"]).sort_values("tokens_seen")
            if len(m):
                curves.append((m["tokens_seen"].to_numpy(float), m["loss"].to_numpy(float)))
    return curves


def _draw_mean_curve(ax: Axes, curves: list[tuple[np.ndarray, np.ndarray]], label: str, color: str) -> None:
    x, mean, std = mean_curve(curves)
    (line,) = ax.plot(x, mean, label=f"{label} (n={len(curves)})", color=color)
    if len(curves) > 1:
        half = t_quantile(len(curves)) * std / np.sqrt(len(curves))
        ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2, linewidth=0)


def mean_curve(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and sample std of several (x, y) curves, interpolated onto the union of their x values
    up to where the shortest curve ends."""
    x_end = min(x[-1] for x, _ in curves)
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    grid = grid[grid <= x_end]
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    std = ys.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros_like(grid)
    return grid, ys.mean(axis=0), std


def score_bars_figure(summary: Summary) -> Figure | None:
    """One panel per score column: a bar per variant with its value, error bars = the table's 95% CI,
    ★ baseline hatched, the metric on the y axis."""
    cols = [c for c in summary.columns if c.kind == "score"]
    if not cols:
        return None
    fig = _figure(max(4.0, 3.2 * len(cols)), 4.0)
    axes = fig.subplots(1, len(cols), squeeze=False)[0]
    for ax, col in zip(axes, cols):
        cells = [summary.cell(v, col.key) for v in summary.variants]
        means = np.array([c.mean if c.n else 0.0 for c in cells])
        bars = ax.bar(range(len(cells)), means, color=[f"C{i % 10}" for i in range(len(cells))])
        with_ci = [i for i, c in enumerate(cells) if c.ci.known]  # no interval: no error bar (not a 0-length one)
        if with_ci:
            err = [[means[i] - cells[i].lo for i in with_ci], [cells[i].hi - means[i] for i in with_ci]]
            ax.errorbar(with_ci, means[with_ci], yerr=np.clip(err, 0.0, None), fmt="none", ecolor="black", capsize=3)
        ax.bar_label(bars, labels=[f"{c.mean:.1f}" if c.n else "–" for c in cells], fontsize=7, label_type="center")
        for bar, v in zip(bars, summary.variants):
            if v == summary.baseline:
                bar.set_hatch("//")
        ax.set_xticks(range(len(cells)))
        ax.set_xticklabels(
            [f"★ {v}" if v == summary.baseline else v for v in summary.variants], rotation=35, ha="right", fontsize=8
        )
        ax.set_title(col.label)
        ax.set_ylabel(axis_label(col))
        ax.grid(axis="y", alpha=0.3)
    all_kinds = (summary.cell(v, c.key).ci.kind for v in summary.variants for c in cols)
    kinds = {kind for kind in all_kinds if kind is not None}
    bars_are = {
        frozenset({"t"}): "95% CI over seeds (Student t)",
        frozenset({"bootstrap"}): "95% bootstrap CI over eval examples (1 seed)",
    }.get(frozenset(kinds), "95% CI (t over seeds; bootstrap over eval examples for 1 seed)")
    missing = any(c.n and not c.ci.known for v in summary.variants for c in [summary.cell(v, k.key) for k in cols])
    fit_suptitle(
        fig,
        f"{summary.sweep}: downstream scores ({summary.which} checkpoint; "
        f"bar = mean over seeds, error bars = {bars_are if kinds else 'none'}"
        + ("; none for one seed without a bootstrap)" if missing else ")"),
    )
    fig.tight_layout()
    return fig


MARK_STYLE = {BETTER: ("C2", "^", "▲ better than ★"), WORSE: ("C3", "v", "▼ worse than ★"), TIE: ("0.45", "o", "≈ tie")}


def delta_forest_figure(summary: Summary) -> Figure | None:
    """Δ vs. ★ per ranked score column: each row's paired difference with its 95% CI as a horizontal bar, marked
    as the table marks it (▲ / ▼ resolved at the Holm-adjusted p, ≈ tie; hollow = no test)."""
    columns = [c for c in summary.columns if c.kind == "score" and c.better is not None]
    rows = [v for v in summary.variants if v != summary.baseline]
    if summary.baseline not in summary.variants or not columns or not rows:
        return None
    fig = _figure(4.2 * len(columns), 0.45 * len(rows) + 1.6)
    for k, col in enumerate(columns):
        ax = fig.add_subplot(1, len(columns), k + 1)
        for y, variant in enumerate(reversed(rows)):
            cell = summary.cell(variant, col.key)
            d = cell.delta
            if d is None or math.isnan(d.mean):
                continue
            color, marker, _ = MARK_STYLE.get(cell.mark, ("0.45", "o", ""))
            if d.known:
                ax.plot([d.lo, d.hi], [y, y], color=color, linewidth=2)
            face = color if cell.mark else "white"
            ax.plot([d.mean], [y], marker=marker, color=color, markerfacecolor=face, markersize=8, linestyle="")
        ax.axvline(0.0, color="0.2", linewidth=1, linestyle="--")
        ax.set_yticks(range(len(rows)), list(reversed(rows)) if k == 0 else [""] * len(rows))
        ax.set_xlabel(f"Δ {axis_label(col)} vs. ★ {summary.baseline}", fontsize=8)
        ax.grid(alpha=0.3, axis="x")
    handles = [Line2D([], [], color=c, marker=m, linestyle="-", label=label) for c, m, label in MARK_STYLE.values()]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fit_suptitle(fig, f"{summary.sweep}: Δ vs. ★ (paired by seed; bar = 95% CI; mark at the Holm-adjusted p)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def axis_label(col: Column) -> str:
    """The metric a score column holds, for a y axis: 'GLUE average score', 'stdlib accuracy (%)', ...
    (the column's `axis`, from the runs' registry records; else its label)."""
    return col.axis or col.label


def paper_scatter_figure(cmp: PaperComparison) -> Figure | None:
    """Per shared column: ours (x) vs. the paper (y), each variant labelled, Kendall τ in the title."""
    cols = [c for c in cmp.columns if cmp.frame[f"{c.label} (ours)"].notna().any()]
    if not cols or not len(cmp.frame):
        return None
    fig = _figure(max(4.0, 3.8 * len(cols)), 3.8)
    axes = fig.subplots(1, len(cols), squeeze=False)[0]
    for ax, col in zip(axes, cols):
        ours, paper = cmp.frame[f"{col.label} (ours)"], cmp.frame[cmp.paper_key(col)]
        lo, hi = cmp.frame[f"{col.label} (ours ci_lo)"], cmp.frame[f"{col.label} (ours ci_hi)"]
        xerr = np.clip(np.nan_to_num(np.array([ours - lo, hi - ours], np.float64)), 0.0, None)
        ax.errorbar(ours, paper, xerr=xerr, fmt="o", capsize=3)
        for x, y, name in zip(ours, paper, cmp.frame["variant"]):
            if not (math.isnan(x) or math.isnan(y)):
                ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        tau, _, n = cmp.kendall[col.label]
        t_lo, t_hi = cmp.kendall_ci.get(col.label, (math.nan, math.nan))
        ci = "" if math.isnan(t_lo) else f" [{t_lo:.2f}, {t_hi:.2f}]"
        ax.set_title(f"{col.label}: Kendall τ = {tau:.2f}{ci} (n={n})", fontsize=9)
        ax.set_xlabel("ours (bars: 95% CI)")
        ax.set_ylabel(f"T5 paper ({cmp.other_task})" if cmp.other_task else "T5 paper")
        ax.grid(alpha=0.3)
    fit_suptitle(fig, f"{cmp.sweep} vs. T5 paper {cmp.table.id}")
    fig.tight_layout()
    return fig


def paper_rank_figure(cmp: PaperComparison) -> Figure | None:
    """Per compared column: each variant's rank among ours (left) joined to its rank in the paper (right), with
    Kendall τ and its spread over seeds. Ranks, not scores: where our task differs from the paper's
    (`--paper_column`), only the order can agree."""
    cols = [c for c in cmp.columns if cmp.frame[f"{c.label} (ours)"].notna().any()]
    if not cols or not len(cmp.frame):
        return None
    fig = _figure(max(4.0, 3.8 * len(cols)), 0.35 * len(cmp.frame) + 2.4)
    axes = fig.subplots(1, len(cols), squeeze=False)[0]
    for ax, col in zip(axes, cols):
        frame = cmp.frame.dropna(subset=[f"{col.label} (ours)", cmp.paper_key(col)])
        ours = frame[f"{col.label} (ours)"].rank(ascending=False, method="average").to_numpy()
        paper = frame[cmp.paper_key(col)].rank(ascending=False, method="average").to_numpy()
        for i, (a, b, name) in enumerate(zip(ours, paper, frame["variant"])):
            color = f"C{i % 10}"
            ax.plot([0, 1], [a, b], marker="o", color=color)
            ax.annotate(name, (0, a), xytext=(-4, 0), textcoords="offset points", ha="right", va="center", fontsize=7)
            ax.annotate(name, (1, b), xytext=(4, 0), textcoords="offset points", ha="left", va="center", fontsize=7)
        ax.set_xlim(-0.9, 1.9)
        ax.set_ylim(len(frame) + 0.5, 0.5)  # rank 1 (the best) on top
        ax.set_yticks(range(1, len(frame) + 1))
        paper_name = f"T5 paper ({cmp.other_task})" if cmp.other_task else "T5 paper"
        ax.set_xticks([0, 1], [f"ours ({col.label})", paper_name], fontsize=8)
        ax.set_ylabel("rank (1 = best)")
        tau, _, n = cmp.kendall[col.label]
        t_lo, t_hi = cmp.kendall_ci.get(col.label, (math.nan, math.nan))
        ci = "" if math.isnan(t_lo) else f" [{t_lo:.2f}, {t_hi:.2f}]"
        ax.set_title(f"Kendall τ = {tau:.2f}{ci} (n={n})", fontsize=9)
    fit_suptitle(fig, f"{cmp.sweep} vs. T5 paper {cmp.table.id}: ranks (τ's interval: spread over seeds)")
    fig.tight_layout()
    return fig


def write_plots(
    results_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    which: str = "best",
    paper_column: str | None = None,
) -> list[Path]:
    """`<sweep>_loss.png`, `<sweep>_scores.png`, `<sweep>_delta.png` (a ★ and ranked scores) and, for sweeps that
    reproduce a T5 table, `<sweep>_vs_paper.png` and `<sweep>_vs_paper_ranks.png`; `paper_column` ranks our scores
    against that paper column when the sweep shares none with the paper (report/paper.py)."""
    results = load_results(results_dir)
    out = Path(out_dir) if out_dir is not None else Path(results_dir)
    written = []
    for name in results.sweep_names():
        summary = summarize(results, name, which=which)
        stem = safe_name(name)
        cmp = compare_with_paper(summary, results.sweeps[name], paper_column=paper_column)
        figures = {
            "loss": loss_curves_figure(results, name, summary),
            "scores": score_bars_figure(summary),
            "delta": delta_forest_figure(summary),
            "vs_paper": paper_scatter_figure(cmp) if cmp is not None else None,
            "vs_paper_ranks": paper_rank_figure(cmp) if cmp is not None else None,
        }
        for kind, fig in figures.items():
            if fig is not None:
                path = out / f"{stem}_{kind}.png"
                save_png(fig, path)
                written.append(path)
    return written


def save_png(fig: Figure, path: str | os.PathLike) -> None:
    """Render to memory, then write atomically (a reader never sees half a PNG)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    atomic_write_bytes(path, buf.getvalue())


def fit_suptitle(fig: Figure, text: str, margin_in: float = 0.2) -> Text:
    """Set a suptitle that fits inside the figure: widen the figure up to MAX_WIDTH_IN, then wrap.

    Why: a one-panel figure is 4 in wide, and a sweep name plus caption is wider, so a centred title was
    clipped on both sides."""
    title = fig.suptitle(text)
    text_in = title.get_window_extent(_text_renderer(fig)).width / fig.dpi
    if text_in + 2 * margin_in > fig.get_figwidth():
        fig.set_figwidth(min(text_in + 2 * margin_in, MAX_WIDTH_IN))
    room_in = fig.get_figwidth() - 2 * margin_in
    chars = len(text)
    while text_in > room_in and chars > 10:  # wrap narrower until the widest line fits
        chars = max(10, min(chars - 1, int(chars * room_in / text_in)))
        title.set_text("\n".join(textwrap.wrap(text, chars)))
        text_in = title.get_window_extent(_text_renderer(fig)).width / fig.dpi
    return title


def _text_renderer(fig: Figure) -> RendererAgg:
    """The renderer that measures text; our figures sit on an Agg canvas (see _figure), the only kind with one."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        raise TypeError(f"expected a figure on an Agg canvas (as _figure makes), got {type(fig.canvas).__name__}")
    return fig.canvas.get_renderer()


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig
