"""A BART-noising sweep beside BART's Table 1 (Lewis et al. 2020): an order-only comparison.

BART's Table 1 scores base-size models on SQuAD 1.1 F1, MNLI accuracy and four generation perplexities
(ELI5, XSum, ConvAI2, CNN/DM; report/paper/bart_tables.json). Our rows are scored on other tasks (at the CPU
scale the built-in stdlib task), so nothing here can say whether scores match. What it can say is whether
the noising functions come out in BART's order: for each of our headline scores and each of BART's columns,
Kendall τ-b between our means and BART's scores over the rows both tables have, BART's perplexities negated
so that τ > 0 always means "better in BART, better here". Each τ gets the exact permutation p (the six
noising rows have 720 orders, stats.kendall_test) and a spread over seed-bootstrap resamples (as for the T5
comparison, paper.kendall_tau_ci). Every table, CSV and FINDINGS.md line says "order only: BART's tasks
differ". Our reference rows (T5 span corruption, no pre-training) have no BART row and are named as such.

A sweep is compared with BART's Table 1 when its sweep.json says `"paper_table": "bart_table1"` or its name
contains "bart" (experiments/bart_noising.gin); its rows are matched by name or alias (paper.match_rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from t5explore.report.aggregate import Column, Summary, shows_delta
from t5explore.report.formats import format_interval
from t5explore.report.paper import (
    BART_DATA_FILE,
    PaperTable,
    bart_data,
    bart_table,
    distinct_resamples,
    kendall_tau_ci,
    match_rows,
    seed_draws,
)
from t5explore.report.results import SweepInfo
from t5explore.report.stats import Interval, RankTest, SeedValues, kendall_test
from t5explore.report.tables import TextTable, format_p

BART_TABLE_ID = "bart_table1"
ORDER_ONLY = "order only: BART's tasks differ"


@dataclass
class BartComparison:
    """Our headline scores beside BART's Table 1, with τ per (our column, BART column)."""

    sweep: str
    table: PaperTable
    higher: dict[str, bool]  # BART column -> higher is better (its perplexities are not)
    columns: list[Column]  # our headline scores, each ranked against every BART column
    frame: pd.DataFrame  # variant, paper_row, "<ours> (ours)", "(ours ci_lo/ci_hi/ci)", "<BART column> (BART)"
    tests: dict[tuple[str, str], RankTest] = field(default_factory=dict)  # (our label, BART column) -> RankTest
    spread: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)  # seed-bootstrap spread
    resamples: dict[str, int] = field(default_factory=dict)  # our label -> distinct seed draws behind the spread
    unmatched: list[str] = field(default_factory=list)  # our rows with no BART row (the reference rows)

    @property
    def bart_columns(self) -> list[str]:
        return list(self.higher)

    def source(self) -> str:
        return str(bart_data()["source"])


def detect_bart_table(info: SweepInfo) -> bool:
    """Whether the sweep reproduces BART's Table 1: sweep.json's `paper_table`, else "bart" in its name."""
    if info.paper_table:
        return str(info.paper_table).lower() == BART_TABLE_ID
    return "bart" in info.name.lower()


def compare_with_bart(summary: Summary, info: SweepInfo | None = None) -> BartComparison | None:
    """The order-only comparison; None when the sweep does not reproduce BART's Table 1."""
    info = info or summary.info or SweepInfo(summary.sweep)
    if not detect_bart_table(info):
        return None
    table, higher = bart_table()
    matched = match_rows(summary.variants, table, info.paper_rows)
    ours = [c for c in summary.columns if shows_delta(c)]
    rows = [v for v in summary.variants if v in matched]
    records = []
    for v in rows:
        rec: dict[str, object] = {"variant": v, "paper_row": matched[v].name}
        for c in ours:
            cell = summary.cell(v, c.key)
            rec.update({f"{c.label} (ours)": cell.mean, f"{c.label} (ours ci_lo)": cell.lo})
            rec.update({f"{c.label} (ours ci_hi)": cell.hi, f"{c.label} (ours ci)": cell.ci.kind or ""})
        rec.update({f"{b} (BART)": matched[v].scores[b] for b in higher})
        records.append(rec)
    ours_names = [f"{c.label} ({s})" for c in ours for s in ("ours", "ours ci_lo", "ours ci_hi", "ours ci")]
    frame = pd.DataFrame(records, columns=["variant", "paper_row", *ours_names, *(f"{b} (BART)" for b in higher)])
    cmp = BartComparison(
        summary.sweep, table, higher, ours, frame, unmatched=[v for v in summary.variants if v not in matched]
    )
    for c in ours:
        seeds = [summary.seed_values.get((v, c.key), SeedValues()) for v in rows]
        for b, up in higher.items():
            bart = [s if up else -s for s in frame[f"{b} (BART)"]]  # τ > 0: better in BART, better here
            cmp.tests[(c.label, b)] = kendall_test(frame[f"{c.label} (ours)"], bart)
            cmp.spread[(c.label, b)] = kendall_tau_ci(seeds, bart)
        if any(len(sv.values) >= 2 for sv in seeds):  # as kendall_tau_ci: one seed has no spread
            cmp.resamples[c.label] = distinct_resamples(
                seed_draws(sorted({k for sv in seeds for k in sv.values}, key=str))
            )
    return cmp


def bart_comparison_table(cmp: BartComparison) -> TextTable:
    """Rows both tables have: our score(s) beside BART's six columns, then per our score a τ row (τ [spread]
    under each BART column) and a permutation-p row."""
    header = ["Variant", "BART row", *(f"{c.label} (ours)" for c in cmp.columns), *(f"{b} (BART)" for b in cmp.higher)]
    rows = []
    digits = {b: _decimals(cmp.frame[f"{b} (BART)"]) for b in cmp.higher}  # as BART prints them: 84.0, 6.10
    for _, r in cmp.frame.iterrows():
        row = [str(r["variant"]), str(r["paper_row"])]
        for c in cmp.columns:
            row.append(format_interval(_interval(r, c), 2))
        rows.append(row + [f"{float(r[f'{b} (BART)']):.{digits[b]}f}" for b in cmp.higher])
    blank = [""] * len(cmp.columns)
    for c in cmp.columns:
        taus, ps = [], []
        for b in cmp.higher:
            test = cmp.tests[(c.label, b)]
            lo, hi = cmp.spread[(c.label, b)]
            taus.append(
                ("–" if math.isnan(test.tau) else f"{test.tau:.2f}")
                + ("" if math.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]")
            )
            ps.append(format_p(test.p))
        rows.append([f"Kendall τ vs. {c.label} ({ORDER_ONLY})", "", *blank, *taus])
        rows.append(
            [f"permutation p (two-sided, exact over the {cmp.tests[(c.label, b)].n} rows' orders)", "", *blank, *ps]
        )
    title = f"{cmp.sweep} vs. BART Table 1 ({ORDER_ONLY})"
    return TextTable(title, header, rows, [[False] * len(header) for _ in rows], bart_notes(cmp))


def bart_notes(cmp: BartComparison) -> list[str]:
    ours = ", ".join(c.label for c in cmp.columns) or "none"
    notes = [
        f"Order only: BART's tasks differ. Our {ours} is not any of BART's columns "
        f"({', '.join(cmp.higher)}), so Kendall τ-b says only whether the noising rows come out in BART's "
        "order, never whether the scores match. BART's perplexities are ranked lower-is-better (negated), so "
        "τ > 0 means the same order from best to worst in both tables.",
        "permutation p = the share of all orders of the rows both tables have whose |τ| is at least ours "
        "(exact); τ is beyond chance only when p < 0.05. [lo, hi] = spread of τ over bootstrap resamples of "
        "the seeds (2.5–97.5th percentile), not a test.",
        f"BART: {cmp.source()} ({BART_DATA_FILE})",
    ]
    if cmp.unmatched:
        notes.append(f"No BART row for: {', '.join(cmp.unmatched)} (reference rows of ours; BART has none).")
    return notes


def bart_frame(cmp: BartComparison) -> pd.DataFrame:
    """The comparison's numbers for CSV: its rows, then per our score a τ row and a p row under BART's
    columns (`variant` says which)."""
    extra = []
    for c in cmp.columns:
        tau: dict[str, object] = {"variant": f"Kendall tau vs {c.label} ({ORDER_ONLY})", "paper_row": ""}
        p: dict[str, object] = {"variant": f"permutation p vs {c.label}", "paper_row": ""}
        for b in cmp.higher:
            tau[f"{b} (BART)"] = cmp.tests[(c.label, b)].tau
            p[f"{b} (BART)"] = cmp.tests[(c.label, b)].p
        extra += [tau, p]
    return pd.concat([cmp.frame, pd.DataFrame(extra)], ignore_index=True)


def _interval(r: pd.Series, c: Column) -> Interval:
    kind = r[f"{c.label} (ours ci)"] or None
    return Interval(r[f"{c.label} (ours)"], r[f"{c.label} (ours ci_lo)"], r[f"{c.label} (ours ci_hi)"], 0, kind)


def _decimals(values: pd.Series) -> int:
    """The most decimals any of a column's transcribed values has (BART prints a column at one precision)."""
    return max((len(repr(float(x)).split(".")[1].rstrip("0")) for x in values), default=0) or 1
