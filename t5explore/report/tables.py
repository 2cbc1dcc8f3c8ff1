"""Paper-style tables as text: what a table says, before any format renders it.

Every table is first built as a `TextTable` (header, cell texts, bold flags, notes) and then rendered as
Markdown, LaTeX or HTML (table_render.py), so the formats cannot disagree; sweep_tables.py builds, prints
and writes every sweep's tables (its CSV carries the raw numbers instead).

A cell reads `mean ± h` (h = half-width of the 95% Student-t interval over seeds) or, for one seed,
`mean [lo, hi]` (the 95% bootstrap interval over evaluation examples, which is not symmetric). Each headline
score column is followed by `Δ <column>`: variant − ★ paired by seed, with its interval and ▲ / ▼ / ≈.
The notes under a table say which intervals and which bold rule it uses, how many seeds would resolve a
1-point Δ, which tasks a benchmark average covers when it covers fewer than the paper's, and that
tiny-scale numbers are a smoke test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from t5explore.report.aggregate import Cell, Column, Summary, shows_delta
from t5explore.report.paper import PaperComparison
from t5explore.report.stats import Interval

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


def _status_notes(summary: Summary) -> list[str]:
    notes = []
    for label, df in (("Failed", summary.failed), ("Incomplete", summary.incomplete)):
        for _, r in df.iterrows():
            variant = r["variant"] if isinstance(r["variant"], str) else "?"
            notes.append(f"- {label}: {r['run']} ({variant}): {r['reason']}")
    return notes


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
