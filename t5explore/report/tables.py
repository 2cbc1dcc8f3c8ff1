"""Paper-style tables as text: what a table says, before any format renders it.

Every table is first built as a `TextTable` (header, cell texts, bold flags, notes) and then rendered as
Markdown, LaTeX or HTML (table_render.py), so the formats cannot disagree; sweep_tables.py builds, prints
and writes every sweep's tables (its CSV carries the raw numbers instead).

A cell reads `mean ± h` (h = half-width of the 95% Student-t interval over seeds) or, for one seed,
`mean [lo, hi]` (the 95% bootstrap interval over evaluation examples, which is not symmetric). Each headline
score column is followed by `Δ <column>`: variant − ★ paired by seed, with its unadjusted interval and the
▲ / ▼ / ≈ of the Holm-adjusted test, then `p <column> (raw / Holm)`. The notes under a table say which
intervals, which test family and which bold rule it uses, how many seeds each row needs for 80% power at
the stated Δ, which tasks a benchmark average covers when it covers fewer than the paper's, and that
tiny-scale numbers are a smoke test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from t5explore.report.aggregate import Cell, Column, Summary, shows_delta
from t5explore.report.columns import ARCHITECTURE_COLUMNS
from t5explore.report.formats import MISSING, format_interval
from t5explore.report.paper import TAU_REPLICATES, PaperComparison, budget_labels
from t5explore.report.stats import ALPHA, EXACT_UP_TO, POWER, Interval, RankTest

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
    each headline score followed by its Δ vs. ★ and that Δ's raw and Holm-adjusted p."""
    header, rows, bold = ["Variant", "n"], [], []
    deltas = summary.baseline in summary.variants  # no ★, no Δ columns
    budgets = budget_labels(summary)
    slots: list[Column | None] = list(summary.columns)  # None: the paper's budget (Table 2's P / M) for the row
    if budgets:
        slots.insert(_budget_position(summary), None)
    for c in slots:
        if c is None:
            header.append(BUDGET_HEADER)
        else:
            header += [c.label, f"Δ {c.label}", f"p {c.label} (raw / Holm)"] if deltas and shows_delta(c) else [c.label]
    for v in summary.variants:
        row = [f"{STAR} {v}" if v == summary.baseline else v, str(summary.n_runs[v])]
        flags = [False, False]
        for c in slots:
            if c is None:
                row.append(budgets.get(v, MISSING))
                flags.append(False)
                continue
            cell = summary.cell(v, c.key)
            row.append(format_cell(cell, c))
            flags.append(cell.bold)
            if deltas and shows_delta(c):
                star = v == summary.baseline and cell.n
                row += [STAR if star else format_delta(cell, c), "" if star else format_p_pair(cell)]
                flags += [False, False]
        rows.append(row)
        bold.append(flags)
    notes = summary_notes(summary)
    if budgets:
        notes.insert(1, BUDGET_NOTE)
    return TextTable(title or summary.sweep, header, rows, bold, notes)


BUDGET_HEADER = "Paper P / M"
BUDGET_NOTE = (
    f"{BUDGET_HEADER} = the paper's budget for the row (T5 Table 2: P = the parameters of one L-layer stack, M = "
    "the FLOPs of an L + L-layer encoder-decoder on an example); Params and FLOPs/example = this row's own model "
    "as result.json records it: all its parameters (embeddings included) and the training FLOPs of one "
    "pre-training example (model/flops.py)."
)


def _budget_position(summary: Summary) -> int:
    """Where the paper's budget column goes: just before the architecture columns (Params, FLOPs/example), so
    the paper's notation and our numbers sit side by side; at the end without them."""
    cols = summary.columns
    return next((i for i, c in enumerate(cols) if c.label in ARCHITECTURE_COLUMNS), len(cols))


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
        notes.append(delta_note(summary))
    notes.append(_bold_note(summary))
    notes += _power_notes(summary)
    if summary.tiny:
        notes.append("Tiny test scale: these numbers are a smoke test, not a result.")
    return notes + summary.hygiene + _status_notes(summary)


def delta_note(summary: Summary) -> str:
    """What Δ, p and the marks mean, and which family the Holm adjustment covers in each column."""
    family = ", ".join(f"{c.label}: {summary.family.get(c.key, 0)}" for c in summary.columns if shows_delta(c))
    return (
        f"Δ = variant − {STAR} paired by seed (the seeds both have), ± unadjusted 95% CI (paired Student t; one "
        "shared seed: [lo, hi] = paired bootstrap over evaluation examples, else n/a). p = two-sided paired "
        "t-test on the per-seed differences (one shared seed: paired bootstrap p); Holm = the p adjusted by "
        f"Holm–Bonferroni over the column's family, every row's Δ vs. {STAR} that has a test (comparisons: "
        f"{family}). ▲ better / ▼ worse than {STAR}: Holm p < {ALPHA:.2f}; ≈ tie: Holm p ≥ {ALPHA:.2f}, even "
        "where the unadjusted CI excludes 0. A row with no shared seed, or one shared seed without stored "
        "bootstrap replicates, has no test, no mark and is not in the family."
    )


def _bold_note(summary: Summary) -> str:
    paired = {k: r for k, r in summary.bold_rules.items() if k not in summary.sigma and r}
    clauses = []
    if paired:
        clauses.append(
            "Bold = the rows not resolved below the column's best row: each row against the best, paired by "
            "seed (t-test; one shared seed: paired bootstrap; no test: unresolved), resolved when its Holm p < "
            f"{ALPHA:.2f} over every distinct comparison of the column (each row vs. the best and each row vs. "
            f"{STAR}, so bold never contradicts a mark). Only when some row is resolved below the best is "
            "anything bold."
        )
        ties = [c.label for c in summary.columns if "none resolved" in paired.get(c.key, set())]
        if ties:
            clauses.append(f"Nothing is bold in {', '.join(ties)}: no row is resolved below the best.")
    if summary.sigma:
        sigmas = ", ".join(f"{c.label} {summary.sigma[c.key]:.3g}" for c in summary.columns if c.key in summary.sigma)
        clauses.append(f"Bold (the paper's rule, for the σ given) = within 2σ of the best (σ: {sigmas}).")
    return " ".join(clauses) or "Bold = best in its column."


def _power_notes(summary: Summary) -> list[str]:
    cols = [c for c in summary.columns if c.key in summary.power]
    if not cols:
        return []
    if not any(summary.power[c.key] for c in cols):
        return [f"Power: n/a (no variant shares ≥ 2 seeds with {STAR})."]
    rows = "; ".join(f"{c.label}: {power_list(summary, c.key)}" for c in cols if summary.power[c.key])
    return [
        f"Power: seeds for {POWER:.0%} power to detect a true Δ of {points(summary.power_delta)} (two-sided "
        f"paired t-test, α = {ALPHA:.2f} before any Holm adjustment; noncentral t), from each row's own σ of "
        f"its per-seed differences from {STAR} (a rough σ with few seeds): {rows}."
    ]


def points(delta: float) -> str:
    return f"{delta:g} point" + ("" if delta == 1 else "s")


def power_list(summary: Summary, key: str) -> str:
    """`Prefix LM: 13 (σ 1.16), Deshuffling: > 100000 (σ 600.00)` for one column, in row order."""
    out = []
    for v, p in summary.power[key].items():
        seeds = str(p.seeds) if p.seeds is not None else "> 100000"
        out.append(f"{v}: {seeds} (σ {p.sigma:.2f})")
    return ", ".join(out)


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
    rows += tau_rows(cmp)
    notes = [f"Paper: {cmp.source}", tau_note(cmp)]
    different = cmp.different_tasks_line()
    if different:
        notes.insert(0, different)
    if cmp.unmatched:
        notes.append(f"No paper row for: {', '.join(cmp.unmatched)} (map them with sweep.json `paper_rows`).")
    return TextTable(
        f"{cmp.sweep} vs. T5 paper {cmp.table.title}", header, rows, [[False] * len(header) for _ in rows], notes
    )


def tau_rows(cmp: PaperComparison) -> list[list[str]]:
    """τ [seed-bootstrap spread], its permutation p, and τ without the no-pre-training row."""
    tau_row, p_row, without_row = ["Kendall τ", ""], ["permutation p (two-sided)", ""], []
    for c in cmp.columns:
        test = cmp.rank_test[c.label]
        lo, hi = cmp.kendall_ci.get(c.label, (math.nan, math.nan))
        spread = "" if math.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]"
        tau_row += [_fmt(test.tau, 2) + spread, f"n = {test.n}"]
        p_row += [format_p(test.p), _orders(test)]
    if cmp.rank_test_without_npt:
        without_row = [f"τ without {cmp.no_pretraining_row}", ""]
        for c in cmp.columns:
            test = cmp.rank_test_without_npt.get(c.label, RankTest(math.nan, 0))
            without_row += [f"{_fmt(test.tau, 2)} (p {format_p(test.p)})", f"n = {test.n}"]
    return [tau_row, p_row] + ([without_row] if without_row else [])


def _orders(test: RankTest) -> str:
    if not test.orders:
        return ""
    return f"all {test.orders} orders" if test.exact else f"{test.orders} random orders"


def tau_note(cmp: PaperComparison) -> str:
    """How τ is tested and what its bracket is (a spread, not a test)."""
    text = (
        "Kendall τ-b between our ordering of the variants and the paper's. permutation p = the share of all "
        f"orders of our rows (exact up to {EXACT_UP_TO} rows, else a fixed Monte-Carlo sample) whose |τ| is at "
        f"least ours; τ is beyond chance only when p < {ALPHA:.2f}."
    )
    if cmp.kendall_resamples:
        distinct = "/".join(map(str, sorted(set(cmp.kendall_resamples.values()))))
        text += (
            f" [lo, hi] = spread of τ over {TAU_REPLICATES} bootstrap resamples of the seeds (2.5–97.5th "
            f"percentile; {distinct} distinct draws), not a test."
        )
    if cmp.rank_test_without_npt:
        text += (
            " τ is also given without the no-pre-training row: the paper puts it far behind every objective, so "
            "agreeing on it says nothing about the objectives (our order may or may not put it last)."
        )
    return text


def format_cell(cell: Cell, col: Column) -> str:
    """The cell in its column's own format (`Column.fmt`)."""
    if cell.n == 0 or math.isnan(cell.mean):
        return MISSING
    return col.text(cell.ci)


def format_delta(cell: Cell, col: Column) -> str:
    """`+4.00 ± 1.20 ▲`, `-0.50 [-1.10, +0.20] ≈`, `+1.00 (n/a, 1 seed)`, or n/a without a shared seed."""
    if cell.n == 0:
        return MISSING
    if cell.delta is None:
        return "n/a (no shared seed)"
    if not cell.delta.known:
        return f"{col.text(cell.delta, signed=True)} (n/a, {cell.delta.n} seed)"
    return f"{col.text(cell.delta, signed=True)} {cell.mark}".rstrip()


def format_p(p: float) -> str:
    """A p-value: 3 decimals, `<0.001` below that, `n/a` without a test."""
    if p is None or math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_p_pair(cell: Cell) -> str:
    """`0.006 / 0.019`: the Δ's raw p and its Holm-adjusted p."""
    if cell.n == 0:
        return MISSING
    if cell.delta is None or math.isnan(cell.delta.p):
        return "n/a"
    return f"{format_p(cell.delta.p)} / {format_p(cell.p_holm)}"


def _fmt(x: float | None, digits: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    return f"{float(x):.{digits}f}"
