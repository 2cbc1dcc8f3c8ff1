"""Every sweep's paper-style tables: printed at the end of a sweep, or written in Markdown, CSV, LaTeX, HTML.

The Markdown, LaTeX and HTML files render one `TextTable` (tables.py) each, so they cannot disagree. CSV
carries the raw numbers instead (per column: mean, std, ci_lo, ci_hi, ci, n, delta, delta_lo, delta_hi,
p, delta_n, p_holm, tie, paired_sigma, seeds_for_power, bold; see Summary.to_frame).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from t5explore.io_utils import atomic_write_text
from t5explore.report import consistency
from t5explore.report.aggregate import (
    POWER_DELTA,
    Summary,
    default_columns,
    per_task_columns,
    resolve_baseline_std,
    summarize,
)
from t5explore.report.bart_compare import bart_comparison_table, bart_frame, compare_with_bart
from t5explore.report.columns import opt_in_columns
from t5explore.report.paper import (
    PaperComparison,
    budget_labels,
    check_paper_column,
    compare_with_paper,
    paper_baseline_std,
)
from t5explore.report.results import ReportError, Results, load_results
from t5explore.report.table_render import RENDERERS, to_markdown
from t5explore.report.tables import BUDGET_HEADER, TextTable, comparison_table, summary_table

FORMATS = {"md": ".md", "csv": ".csv", "latex": ".tex", "html": ".html"}


def markdown_table(
    sweep_dir: str | os.PathLike,
    which: str = "best",
    baseline_std: Mapping[str, float] | str | None = None,
    paper_table: str | None = None,
    results: Results | None = None,
    paper_column: str | None = None,
    power_delta: float = POWER_DELTA,
    extra_columns: Sequence[str] = (),
) -> str:
    """The table(s) printed at the end of a sweep: main table, then the paper comparison if it applies.
    Pass `results` when they are already loaded (e.g. by write_tables) to read the files only once;
    `paper_column` as in `compare_with_paper` (our scores ranked against that paper column when none is shared);
    `extra_columns` names opt-in columns (columns.OPT_IN_COLUMNS, e.g. "Params") to show after the default ones."""
    check_paper_column(paper_column)
    results = results if results is not None else load_results(sweep_dir)
    std = _std_for(baseline_std, results, which)
    out = []
    for name in results.sweep_names():
        summary, table = _summary_table(results, name, which, std, power_delta, extra_columns)
        out.append(to_markdown(table))
        cmp = compare_with_paper(summary, results.sweeps[name], table_id=paper_table, paper_column=paper_column)
        no_shared = cmp.no_shared_columns_line() if cmp is not None else None
        if no_shared:
            out.append(no_shared + "\n")
        elif cmp is not None and len(cmp.frame):
            out.append(to_markdown(comparison_table(cmp)))
        bart = compare_with_bart(summary, results.sweeps[name])
        if bart is not None and bart.columns and len(bart.frame):
            out.append(to_markdown(bart_comparison_table(bart)))
    return "\n".join(out)


def _summary_table(
    results: Results,
    name: str,
    which: str,
    std: Any,
    power_delta: float,
    extra_columns: Sequence[str],
) -> tuple[Any, Any]:
    """(the sweep's Summary, its TextTable with the consistency notes: a numerics mix, rows made under other
    configs), as both the printed and the written tables show it."""
    summary = summarize(
        results,
        name,
        which=which,
        baseline_std=std,
        strict_std=False,
        power_delta=power_delta,
        extra_columns=extra_columns,
    )
    table = summary_table(summary)
    table.notes += consistency.notes(results, name)
    return summary, table


def write_tables(
    results_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    formats: Iterable[str] = ("md", "csv", "latex", "html"),
    per_task: bool = False,
    which: str = "best",
    baseline_std: Mapping[str, float] | str | None = None,
    paper_table: str | None = None,
    results: Results | None = None,
    paper_column: str | None = None,
    power_delta: float = POWER_DELTA,
    extra_columns: Sequence[str] = (),
) -> list[Path]:
    """Write `<sweep>.<ext>` (+ `_vs_paper`, `_per_task`) for every sweep under results_dir; returns paths.
    `extra_columns` as in `markdown_table`."""
    formats = list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ReportError(f"unknown table format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    check_paper_column(paper_column)  # before any file is written
    opt_in_columns(extra_columns)
    results = results if results is not None else load_results(results_dir)
    out = Path(out_dir) if out_dir is not None else Path(results_dir)
    std = _std_for(baseline_std, results, which)
    written: list[Path] = []
    for name in results.sweep_names():
        stem = safe_name(name)
        summary, table = _summary_table(results, name, which, std, power_delta, extra_columns)
        written += _write(out / stem, table, _main_frame(summary), formats)
        if len(summary.failed) or len(summary.incomplete):
            parts = [
                df.assign(status=label)
                for label, df in (("failed", summary.failed), ("incomplete", summary.incomplete))
                if len(df)
            ]
            status = pd.concat(parts, ignore_index=True)
            if "csv" in formats:
                written += _write(out / f"{stem}_not_complete", None, status, ["csv"])
        cmp = compare_with_paper(summary, results.sweeps[name], table_id=paper_table, paper_column=paper_column)
        if cmp is not None and cmp.columns and len(cmp.frame):
            written += _write(out / f"{stem}_vs_paper", comparison_table(cmp), _kendall_frame(cmp), formats)
        bart = compare_with_bart(summary, results.sweeps[name])
        if bart is not None and bart.columns and len(bart.frame):
            written += _write(out / f"{stem}_vs_bart", bart_comparison_table(bart), bart_frame(bart), formats)
        if per_task:
            res = results.for_sweep(name)
            detail = summarize(
                results,
                name,
                columns=per_task_columns(res.runs, which),
                which=which,
                baseline_std=std,
                strict_std=False,
                power_delta=power_delta,
            )
            written += _write(
                out / f"{stem}_per_task", summary_table(detail, f"{name}: per task"), detail.to_frame(), formats
            )
    return written


def _main_frame(summary: Summary) -> pd.DataFrame:
    """The main table's numbers (Summary.to_frame), with the paper's P / M label of each row where the table
    shows one (Table 2), so the CSV says what the Markdown says."""
    frame = summary.to_frame()
    budgets = budget_labels(summary)
    if budgets:
        frame.insert(1, BUDGET_HEADER, [budgets.get(v, "") for v in frame["variant"]])
    return frame


def safe_name(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", name).strip("._") or "sweep"


def _write(stem: Path, table: TextTable | None, frame: pd.DataFrame, formats: list[str]) -> list[Path]:
    paths = []
    for fmt in formats:
        path = stem.with_name(stem.name + FORMATS[fmt])
        if fmt == "csv":
            text = frame.to_csv(index=False)
        elif table is None:
            raise ValueError(f"{path}: no table to render as {fmt!r} (only csv can come from the frame alone)")
        else:
            text = RENDERERS[fmt](table)
        atomic_write_text(path, text)
        paths.append(path)
    return paths


def _kendall_frame(cmp: PaperComparison) -> pd.DataFrame:
    """The comparison frame plus a Kendall τ row: τ in `(ours)`, its seed-bootstrap spread in `(ours ci_lo/hi)`,
    n in `(paper)`, and per column its permutation p, the spread's distinct resamples, and τ and p without
    the no-pre-training row."""
    tau: dict[str, object] = {"variant": "Kendall tau", "paper_row": ""}
    for c in cmp.columns:
        lo, hi = cmp.kendall_ci.get(c.label, (math.nan, math.nan))
        test = cmp.rank_test[c.label]
        without = cmp.rank_test_without_npt.get(c.label)
        tau.update(
            {
                f"{c.label} (ours)": test.tau,
                f"{c.label} (ours ci_lo)": lo,
                f"{c.label} (ours ci_hi)": hi,
                f"{c.label} (ours ci)": "bootstrap over seeds",
                cmp.paper_key(c): test.n,
                f"{c.label} (tau permutation p)": test.p,
                f"{c.label} (tau p exact)": test.exact,
                f"{c.label} (tau distinct resamples)": cmp.kendall_resamples.get(c.label, 0),
                f"{c.label} (tau without no pre-training)": without.tau if without else math.nan,
                f"{c.label} (tau p without no pre-training)": without.p if without else math.nan,
            }
        )
    return pd.concat([cmp.frame, pd.DataFrame([tau])], ignore_index=True)


def _std_for(baseline_std: Mapping[str, float] | str | None, results: Results, which: str) -> Mapping[str, float]:
    """'paper' = the T5 paper's baseline std; otherwise every name must match a column of some sweep."""
    if baseline_std is None:
        return {}
    if baseline_std == "paper":
        return paper_baseline_std()
    if isinstance(baseline_std, str):
        raise ReportError(f"baseline std must be 'paper' or a mapping of column to σ, got {baseline_std!r}")
    columns = default_columns(results.runs, which) + per_task_columns(results.runs, which)
    resolve_baseline_std(baseline_std, columns, strict=True)
    return baseline_std
