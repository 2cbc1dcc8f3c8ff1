"""Paper-style tables in Markdown, CSV, LaTeX (booktabs) and HTML.

Every table is first built as a `TextTable` (header, cell texts, bold flags, notes) and then rendered, so
the formats cannot disagree. CSV carries the raw numbers instead (per column: mean, std, ci_lo, ci_hi, ci,
n, delta, delta_lo, delta_hi, delta_n, tie, bold).

A cell reads `mean ± h` (h = half-width of the 95% Student-t interval over seeds) or, for one seed,
`mean [lo, hi]` (the 95% bootstrap interval over evaluation examples, which is not symmetric). Each headline
score column is followed by `Δ <column>`: variant − ★ paired by seed, with its interval and ▲ / ▼ / ≈.
The notes under a table say which intervals and which bold rule it uses, how many seeds would resolve a
1-point Δ, which tasks a benchmark average covers when it covers fewer than the paper's, and that
tiny-scale numbers are a smoke test.
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from t5explore.io_utils import atomic_write_text
from t5explore.report.aggregate import (
    Cell,
    Column,
    Summary,
    default_columns,
    per_task_columns,
    resolve_baseline_std,
    shows_delta,
    summarize,
)
from t5explore.report.paper import PaperComparison, check_paper_column, compare_with_paper, paper_baseline_std
from t5explore.report.results import ReportError, Results, load_results
from t5explore.report.stats import Interval

FORMATS = {"md": ".md", "csv": ".csv", "latex": ".tex", "html": ".html"}
MISSING = "–"
STAR = "★"


@dataclass
class TextTable:
    title: str
    header: list[str]
    rows: list[list[str]]
    bold: list[list[bool]]
    notes: list[str] = field(default_factory=list)


def summary_table(summary: Summary, title: str | None = None) -> TextTable:
    """Rows = variants (★ on the baseline); columns = n, then every Column (mean and 95% interval),
    each headline score followed by its Δ vs. ★."""
    header, rows, bold = ["Variant", "n"], [], []
    deltas = summary.baseline in summary.variants  # no ★, no Δ columns
    for c in summary.columns:
        header += [c.label, f"Δ {c.label}"] if deltas and shows_delta(c) else [c.label]
    for v in summary.variants:
        row = [f"{STAR} {v}" if v == summary.baseline else v, str(summary.n_runs[v])]
        flags = [False, False]
        for c in summary.columns:
            cell = summary.cell(v, c.key)
            row.append(format_cell(cell, c))
            flags.append(cell.bold)
            if deltas and shows_delta(c):
                row.append(STAR if v == summary.baseline and cell.n else format_delta(cell, c))
                flags.append(False)
        rows.append(row)
        bold.append(flags)
    return TextTable(title or summary.sweep, header, rows, bold, summary_notes(summary))


def summary_notes(summary: Summary) -> list[str]:
    """What the table shows: intervals, Δ, the bold rule, power, scale, and the runs that are missing."""
    ranked = [c for c in summary.columns if c.better is not None]
    kinds = {summary.cell(v, c.key).ci.kind for v in summary.variants for c in ranked}
    parts = [f"{STAR} = baseline; n = seeds; {summary.which} checkpoint; {MISSING} = no result."]
    if "t" in kinds:
        parts.append("± = 95% CI of the mean over seeds (Student t).")
    if "bootstrap" in kinds:
        parts.append("[lo, hi] = 95% bootstrap CI over evaluation examples (1 seed; percentile).")
    if any(
        summary.cell(v, c.key).n == 1 and summary.cell(v, c.key).ci.kind is None
        for v in summary.variants
        for c in ranked
    ):
        parts.append("One seed without a stored bootstrap (losses, the last checkpoint, older runs) has no interval.")
    notes = [" ".join(parts)]
    notes += list(dict.fromkeys(c.note for c in summary.columns if c.note))  # e.g. a benchmark's subset of tasks
    if any(shows_delta(c) for c in summary.columns) and summary.baseline in summary.variants:
        notes.append(
            f"Δ = variant − {STAR} paired by seed (the seeds both have), ± 95% CI (paired Student t; "
            "one shared seed: [lo, hi] = paired bootstrap over evaluation examples, else n/a). "
            "▲ better / ▼ worse than ★ (the CI excludes 0); ≈ tie (the CI contains 0)."
        )
    notes.append(_bold_note(summary))
    notes += _power_notes(summary)
    if summary.tiny:
        notes.append("Tiny test scale: these numbers are a smoke test, not a result.")
    return notes + _status_notes(summary)


def _bold_note(summary: Summary) -> str:
    paired = set().union(*(r for k, r in summary.bold_rules.items() if k not in summary.sigma))
    clauses = []
    if paired:
        text = (
            "Bold = best in its column or not significantly worse than it: two-sided paired t-test at 95% "
            "against the best variant over their shared seeds"
        )
        extra = [
            ("paired bootstrap", "with one shared seed, a paired bootstrap over evaluation examples"),
            ("overlap", "where no paired comparison exists, 95% CIs that overlap the best's"),
            ("best only", "without any interval, only the best and exact ties"),
        ]
        text += "".join(f"; {words}" for rule, words in extra if rule in paired)
        clauses.append(text + ".")
    if summary.sigma:
        sigmas = ", ".join(f"{c.label} {summary.sigma[c.key]:.3g}" for c in summary.columns if c.key in summary.sigma)
        clauses.append(f"Bold (the paper's rule, for the σ given) = within 2σ of the best (σ: {sigmas}).")
    return " ".join(clauses) or "Bold = best in its column."


def _power_notes(summary: Summary) -> list[str]:
    cols = [c for c in summary.columns if c.key in summary.power]
    if not cols:
        return []
    known = [(c, summary.power[c.key]) for c in cols if summary.power[c.key].dof]
    if not known:
        return [f"Power: n/a (no variant shares ≥ 2 seeds with {STAR})."]
    sigmas = ", ".join(f"{c.label} {p.sigma:.2f} ({p.dof} dof)" for c, p in known)
    seeds = ", ".join(f"{c.label} {p.seeds if p.seeds is not None else '> 100000'}" for c, p in known)
    return [
        f"Power: σ of the paired differences vs. {STAR} (pooled over variants): {sigmas}. Seeds to resolve "
        f"a Δ of 1 point (fewest n with t(0.975, n−1)·σ/√n < 1, Student t): {seeds}."
    ]


def comparison_table(cmp: PaperComparison) -> TextTable:
    """Ours (mean and 95% interval) beside the paper's numbers, with a Kendall τ row [95% CI over seeds].
    Compared across tasks (`--paper_column`), the headers name both columns and a note says τ is order only."""
    header = ["Variant", "Paper row"] + [h for c in cmp.columns for h in (f"{c.label} (ours)", cmp.paper_header(c))]
    rows = []
    for _, r in cmp.frame.iterrows():
        row = [r["variant"], r["paper_row"]]
        for c in cmp.columns:
            ours = Interval(
                r[f"{c.label} (ours)"],
                r[f"{c.label} (ours ci_lo)"],
                r[f"{c.label} (ours ci_hi)"],
                0,
                r[f"{c.label} (ours ci)"] or None,
            )
            row += [format_interval(ours, 2), _fmt(r[cmp.paper_key(c)], 2)]
        rows.append(row)
    tau_row = ["Kendall τ", ""]
    for c in cmp.columns:
        tau, _, n = cmp.kendall[c.label]
        lo, hi = cmp.kendall_ci.get(c.label, (math.nan, math.nan))
        ci = "" if math.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]"
        tau_row += [_fmt(tau, 2) + ci, f"n = {n}"]
    rows.append(tau_row)
    notes = [
        f"Paper: {cmp.source}",
        "Kendall τ-b between our ordering of the variants and the paper's; [lo, hi] = 95% bootstrap CI "
        "over seeds (the same resampled seeds for every variant), shown when some variant has ≥ 2 seeds.",
    ]
    different = cmp.different_tasks_line()
    if different:
        notes.insert(0, different)
    if cmp.unmatched:
        notes.append(f"No paper row for: {', '.join(cmp.unmatched)} (map them with sweep.json `paper_rows`).")
    return TextTable(
        f"{cmp.sweep} vs. T5 paper {cmp.table.title}", header, rows, [[False] * len(header) for _ in rows], notes
    )


def format_cell(cell: Cell, col: Column) -> str:
    if cell.n == 0 or math.isnan(cell.mean):
        return MISSING
    if col.kind == "cost":
        return format_tokens(cell.mean) if "tokens" in col.key else format_seconds(cell.mean)
    return format_interval(cell.ci, 3 if col.kind == "loss" else 2)


def format_interval(iv: Interval, digits: int, signed: bool = False) -> str:
    """`m ± h` for a t interval, `m [lo, hi]` for a bootstrap one, `m` without one."""
    sign = "+" if signed else ""
    if iv.mean is None or math.isnan(iv.mean):
        return MISSING
    text = f"{iv.mean:{sign}.{digits}f}"
    if iv.kind == "t" and iv.known:
        return f"{text} ± {iv.half:.{digits}f}"
    if iv.kind == "bootstrap" and iv.known:
        return f"{text} [{iv.lo:{sign}.{digits}f}, {iv.hi:{sign}.{digits}f}]"
    return text


def format_delta(cell: Cell, col: Column) -> str:
    """`+4.00 ± 1.20 ▲`, `-0.50 [-1.10, +0.20] ≈`, `+1.00 (n/a, 1 seed)`, or n/a without a shared seed."""
    if cell.n == 0:
        return MISSING
    if cell.delta is None:
        return "n/a (no shared seed)"
    digits = 3 if col.kind == "loss" else 2
    if not cell.delta.known:
        return f"{cell.delta.mean:+.{digits}f} (n/a, {cell.delta.n} seed)"
    return f"{format_interval(cell.delta, digits, signed=True)} {cell.mark}".rstrip()


def _fmt(x, digits: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    return f"{float(x):.{digits}f}"


def format_tokens(n: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def format_seconds(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.0f} s"


# ---------------------------------------------------------------- renderers


def to_markdown(t: TextTable) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    def cell(s: str, b: bool) -> str:
        return f"**{esc(s)}**" if b and s != MISSING else esc(s)

    lines = [
        f"### {t.title}",
        "",
        "| " + " | ".join(map(esc, t.header)) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(t.header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(cell(s, b) for s, b in zip(row, bold)) + " |" for row, bold in zip(t.rows, t.bold)]
    return "\n".join([*lines, "", *t.notes]) + "\n"


def to_latex(t: TextTable) -> str:
    spec = "l" + "r" * (len(t.header) - 1)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(t.title)}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in t.header) + r" \\",
        r"\midrule",
    ]
    for row, bold in zip(t.rows, t.bold):
        cells = [rf"\textbf{{{latex_escape(s)}}}" if b and s != MISSING else latex_escape(s) for s, b in zip(row, bold)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\smallskip{{\footnotesize {latex_escape(n)}}}" for n in t.notes]
    return "\n".join([*lines, r"\end{table}"]) + "\n"


def to_html(t: TextTable, full_document: bool = True) -> str:
    e = html.escape
    parts = [
        f"<table>\n<caption>{e(t.title)}</caption>",
        "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead>",
        "<tbody>",
    ]
    for row, bold in zip(t.rows, t.bold):
        cells = "".join(
            f"<td><b>{e(s)}</b></td>" if b and s != MISSING else f"<td>{e(s)}</td>" for s, b in zip(row, bold)
        )
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody>\n</table>")
    parts += [f"<p>{e(n)}</p>" for n in t.notes]
    body = "\n".join(parts)
    if not full_document:
        return body + "\n"
    return (
        f'<!DOCTYPE html>\n<html>\n<head><meta charset="utf-8"><title>{e(t.title)}</title></head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def latex_escape(s: str) -> str:
    s = re.sub(r"([&%$#_{}])", r"\\\1", s.replace("\\", "\0"))
    s = s.replace("\0", r"\textbackslash{}").replace("~", r"\textasciitilde{}").replace("^", r"\textasciicircum{}")
    for u, tex in (
        ("★", r"$\star$"),
        ("±", r"$\pm$"),
        ("μ", r"$\mu$"),
        ("σ", r"$\sigma$"),
        ("τ", r"$\tau$"),
        ("≥", r"$\geq$"),
        ("≤", r"$\leq$"),
        ("–", "--"),
        ("−", "-"),
        ("Δ", r"$\Delta$"),
        ("≈", r"$\approx$"),
        ("▲", r"$\uparrow$"),
        ("▼", r"$\downarrow$"),
        ("√", r"$\surd$"),
        ("·", r"$\cdot$"),
        ("×", r"$\times$"),
    ):
        s = s.replace(u, tex)
    return s


RENDERERS = {"md": to_markdown, "latex": to_latex, "html": to_html}


# ---------------------------------------------------------------- entry points


def markdown_table(
    sweep_dir: str | os.PathLike,
    which: str = "best",
    baseline_std: Mapping[str, float] | str | None = None,
    paper_table: str | None = None,
    results: Results | None = None,
    paper_column: str | None = None,
) -> str:
    """The table(s) printed at the end of a sweep: main table, then the paper comparison if it applies.
    Pass `results` when they are already loaded (e.g. by write_tables) to read the files only once;
    `paper_column` as in `compare_with_paper` (our scores ranked against that paper column when none is shared)."""
    check_paper_column(paper_column)
    results = results if results is not None else load_results(sweep_dir)
    std = _std_for(baseline_std, results, which)
    out = []
    for name in results.sweep_names():
        summary = summarize(results, name, which=which, baseline_std=std, strict_std=False)
        out.append(to_markdown(summary_table(summary)))
        cmp = compare_with_paper(summary, results.sweeps[name], table_id=paper_table, paper_column=paper_column)
        no_shared = cmp.no_shared_columns_line() if cmp is not None else None
        if no_shared:
            out.append(no_shared + "\n")
        elif cmp is not None and len(cmp.frame):
            out.append(to_markdown(comparison_table(cmp)))
    return "\n".join(out)


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
) -> list[Path]:
    """Write `<sweep>.<ext>` (+ `_vs_paper`, `_per_task`) for every sweep under results_dir; returns paths."""
    formats = list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ReportError(f"unknown table format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    check_paper_column(paper_column)  # before any file is written
    results = results if results is not None else load_results(results_dir)
    out = Path(out_dir) if out_dir is not None else Path(results_dir)
    std = _std_for(baseline_std, results, which)
    written: list[Path] = []
    for name in results.sweep_names():
        stem = safe_name(name)
        summary = summarize(results, name, which=which, baseline_std=std, strict_std=False)
        written += _write(out / stem, summary_table(summary), summary.to_frame(), formats)
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
        if per_task:
            res = results.for_sweep(name)
            detail = summarize(
                results,
                name,
                columns=per_task_columns(res.runs, which),
                which=which,
                baseline_std=std,
                strict_std=False,
            )
            written += _write(
                out / f"{stem}_per_task", summary_table(detail, f"{name}: per task"), detail.to_frame(), formats
            )
    return written


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
    """The comparison frame plus a Kendall τ row: τ in `(ours)`, its CI in `(ours ci_lo/hi)`, n in `(paper)`."""
    tau: dict[str, object] = {"variant": "Kendall tau", "paper_row": ""}
    for c in cmp.columns:
        lo, hi = cmp.kendall_ci.get(c.label, (math.nan, math.nan))
        tau.update(
            {
                f"{c.label} (ours)": cmp.kendall[c.label][0],
                f"{c.label} (ours ci_lo)": lo,
                f"{c.label} (ours ci_hi)": hi,
                f"{c.label} (ours ci)": "bootstrap over seeds",
                cmp.paper_key(c): cmp.kendall[c.label][2],
            }
        )
    return pd.concat([cmp.frame, pd.DataFrame([tau])], ignore_index=True)


def _status_notes(summary: Summary) -> list[str]:
    notes = []
    for label, df in (("Failed", summary.failed), ("Incomplete", summary.incomplete)):
        for _, r in df.iterrows():
            variant = r["variant"] if isinstance(r["variant"], str) else "?"
            notes.append(f"- {label}: {r['run']} ({variant}): {r['reason']}")
    return notes


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
