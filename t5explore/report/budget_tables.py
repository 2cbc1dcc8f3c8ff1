"""Tables along the pre-training budget: every row at one matched budget, crossovers against ★, τ by budget.

The matched-budget table is the report's ordinary table (tables.py) of the runs read at that budget
(budget.py), with the cells that rest on interpolated seeds marked † and a note saying so. Crossovers and
τ are computed at each budget ★ was evaluated at (the other rows interpolated there), so they use the same
paired Δ, ties and Kendall τ as every other table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from t5explore.io_utils import atomic_write_text
from t5explore.report.aggregate import TIE, Summary
from t5explore.report.budget import (
    INTERPOLATED,
    MEASURES,
    Along,
    Matched,
    budget_grid,
    check_measure,
    format_budget,
    headline,
    matched_results,
    matched_summary,
    read_along,
    total_dependent_note,
    total_dependent_rows,
    unbudgeted,
)
from t5explore.report.budget_check import check_frame, check_table, interpolation_check
from t5explore.report.budget_tau import tau_at, tau_by_budget, tau_frame, tau_line, tau_table
from t5explore.report.results import ReportError, Results
from t5explore.report.stats import Interval
from t5explore.report.sweep_tables import FORMATS, safe_name
from t5explore.report.table_render import RENDERERS, to_markdown
from t5explore.report.tables import MISSING, STAR, TextTable, summary_table

NO_INTERVAL = "n/a"
CONSTANT = "budget 0, constant"


def budget_table(
    results: Results, sweep: str, measure: str, at: float, which: str = "best", paper_column: str | None = None
) -> tuple[TextTable, Matched, Summary]:
    """The sweep's table at one matched budget; extrapolation is refused (ReportError naming the row)."""
    matched = matched_results(results, sweep, measure, at)
    summary = matched_summary(matched, which)
    name = MEASURES[measure][0]
    table = summary_table(summary, f"{sweep} at {name} = {format_budget(measure, at)}")
    lead = [
        f"Matched budget: every row read at {name} = {format_budget(measure, at)}, each seed on its own (its own "
        f"evaluated point where it has one, else interpolated). " + _unbudgeted_line(sorted(matched.unbudgeted))
    ]
    table.notes[:0] = lead + _mark_interpolated(table, summary, matched)
    tau = tau_at(summary, results.sweeps[sweep], paper_column)
    if tau is not None:
        table.notes.append(tau_line(tau))
    return table, matched, summary


def _unbudgeted_line(variants: list[str]) -> str:
    if not variants:
        return ""
    return f"{', '.join(variants)}: budget 0 (not pre-trained, so no budget axis), the same at every budget."


def _mark_interpolated(table: TextTable, summary: Summary, matched: Matched) -> list[str]:
    """Append † to every cell that rests on an interpolated seed (a Δ or p cell also when ★'s seed is); the note."""
    if not matched.interpolated:
        return []
    variants, baseline, columns = summary.variants, summary.baseline, summary.columns
    star = baseline in matched.interpolated
    values = {c.label for c in columns}  # the other columns compare a row with ★ (Δ, p, ...)
    for v, row in zip(variants, table.rows):
        for j, head in enumerate(table.header[2:], start=2):
            own = v in matched.interpolated
            if (own or (star and head not in values)) and row[j].strip() not in ("", MISSING, STAR):
                row[j] = f"{row[j]} {INTERPOLATED}"
    counts = ", ".join(
        f"{v} {len(matched.interpolated[v])}/{int((matched.results.runs['variant'] == v).sum())}"
        for v in variants
        if v in matched.interpolated
    )
    name = MEASURES[matched.measure][0]
    return [
        f"{INTERPOLATED} = interpolated: a seed not evaluated at this budget is read linearly in log({name}) between "
        f"its two nearest evaluated budgets, before pairing with {STAR} (seeds interpolated: {counts}); a Δ is "
        f"marked (and its p) when either side is. Interpolated values have no bootstrap over evaluation examples."
    ]


@dataclass(frozen=True)
class Step:
    """One row against ★ at one budget."""

    x: float
    delta: Interval | None  # None: the row could not be read at x (outside its range) or shares no seed
    mark: str  # ▲ / ▼ / ≈, or "" without an interval


def crossovers(
    results: Results, sweep: str, measure: str, which: str = "best", read: Along | None = None
) -> dict[str, list[Step]]:
    """variant -> its paired Δ vs. ★ in the headline column at each budget of budget_grid (`read`: read_along())."""
    read = read if read is not None else read_along(results, sweep, measure, which)
    baseline = results.sweeps[sweep].baseline
    out: dict[str, list[Step]] = {}
    for x, _, summary in read.points:
        col = headline(summary)
        for v in summary.variants:
            if v != baseline:
                cell = summary.cell(v, col.key)
                out.setdefault(v, []).append(Step(x, cell.delta if cell.n else None, cell.mark))
    return out


def crossover_table(
    results: Results, sweep: str, measure: str, which: str = "best", steps: dict[str, list[Step]] | None = None
) -> TextTable:
    """Per row: the budget ranges where Δ vs. ★ is resolved ▲, resolved ▼ or tied, and where Δ crosses 0
    (`steps`: crossovers() already computed)."""
    steps = crossovers(results, sweep, measure, which) if steps is None else steps
    name = MEASURES[measure][0]
    header = ["Variant", f"▲ better than {STAR}", f"▼ worse than {STAR}", f"{TIE} tied", "Δ = 0 at", "Δ first → last"]
    rows, unresolved = [], []
    flat = unbudgeted(results, sweep)
    for v, seq in steps.items():
        known = [s for s in seq if s.delta is not None]
        ranges = {m: mark_ranges(measure, seq, m) for m in ("▲", "▼", TIE, "")}
        if ranges[""]:
            unresolved.append(f"{v} ({ranges['']})")
        zeros = ", ".join(f"≈ {format_budget(measure, x)}" for x in zero_crossings(known))
        ends = f"{known[0].delta.mean:+.2f} → {known[-1].delta.mean:+.2f}" if known else MISSING  # type: ignore[union-attr]
        label = f"{v} ({CONSTANT})" if v in flat else v
        rows.append(
            [label, ranges["▲"] or MISSING, ranges["▼"] or MISSING, ranges[TIE] or MISSING, zeros or MISSING, ends]
        )
    grid = ", ".join(format_budget(measure, x) for x in budget_grid(results, sweep, measure))
    star = results.sweeps[sweep].baseline
    where = (
        f"each {name} value the pre-trained rows were evaluated at ({grid}; {STAR} {star} is not pre-trained: "
        f"budget 0, its scores the same at every budget); rows interpolated in log({name}) per seed"
        if star in flat
        else f"each {name} value {STAR} was evaluated at ({grid}); other rows interpolated in log({name}) per seed"
    )
    notes = [
        f"Δ = row − {STAR} in {headline_label(results, sweep, measure, which)}, paired by seed, at {where}. "
        f"▲ / ▼ / {TIE} = the mark the table at that budget gives the row's Δ (Holm-adjusted: resolved better, "
        "resolved worse, tie; the table's notes give the test). Ranges join consecutive evaluated budgets with "
        "the same mark.",
        f"Δ = 0 at: where the mean Δ changes sign, interpolated linearly in log({name}) between the two budgets "
        "around the change (a point estimate).",
    ]
    others = [v for v in flat if v != star and v in steps]
    if others:
        notes.append(
            f"{', '.join(others)} ({CONSTANT}): not pre-trained, so budget 0 with no budget axis: its scores are the "
            "same at every budget (never interpolated); only the other side of its Δ moves."
        )
    if unresolved:
        notes.append(
            f"{NO_INTERVAL} (no interval: one seed, or the row could not be read there): {'; '.join(unresolved)}."
        )
    return TextTable(
        f"{sweep}: crossovers against {STAR} along {name}", header, rows, [[False] * 6 for _ in rows], notes
    )


def headline_label(results: Results, sweep: str, measure: str, which: str) -> str:
    x = budget_grid(results, sweep, measure)[0]
    return headline(matched_summary(matched_results(results, sweep, measure, x, refuse=False), which)).label


def mark_ranges(measure: str, seq: list[Step], mark: str) -> str:
    """'200–800, 3,200': runs of consecutive budgets whose step has `mark` ('' = no interval or unreadable)."""
    runs: list[list[float]] = []
    prev = False
    for s in seq:
        hit = (s.mark if s.delta is not None else "") == mark
        if hit:
            runs.append([s.x]) if not prev else runs[-1].append(s.x)
        prev = hit
    return ", ".join(
        format_budget(measure, r[0])
        if len(r) == 1
        else f"{format_budget(measure, r[0])}–{format_budget(measure, r[-1])}"
        for r in runs
    )


def zero_crossings(seq: list[Step]) -> list[float]:
    """Budgets where the mean Δ changes sign: linear in log(budget) between the two budgets around the change;
    where Δ is exactly 0 between opposite signs, the first such budget. A Δ that touches 0 and turns back, or is
    0 throughout, does not cross."""
    out: list[float] = []
    last: Step | None = None  # the latest step whose mean Δ is not 0
    zero_at: float | None = None  # the first budget of the exact zeros since `last`
    for s in seq:
        d = s.delta.mean  # type: ignore[union-attr]
        if d == 0:
            zero_at = s.x if zero_at is None else zero_at
            continue
        if last is not None and last.delta.mean * d < 0:  # type: ignore[union-attr]
            if zero_at is not None:
                out.append(zero_at)
            else:
                w = last.delta.mean / (last.delta.mean - d)  # type: ignore[union-attr]
                out.append(math.exp(math.log(last.x) + w * (math.log(s.x) - math.log(last.x))))
        last, zero_at = s, None
    return out


def write_budget_tables(
    results: Results,
    out_dir: str | os.PathLike,
    formats: Iterable[str],
    measure: str,
    at: float | None,
    along: bool,
    which: str = "best",
    paper_column: str | None = None,
    check_against: Results | None = None,
) -> tuple[str, list[Path]]:
    """(Markdown to print, files written): per sweep, the table at `at` and/or (along) crossovers and τ, and/or
    the interpolation check against `check_against` (budget_check.py). Markdown, LaTeX and HTML render the
    tables; CSV carries their numbers."""
    check_measure(measure)
    formats = list(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ReportError(f"unknown table format(s) {', '.join(bad)}; choose from {', '.join(FORMATS)}")
    tables: list[tuple[str, TextTable, pd.DataFrame]] = []
    for sweep in results.sweep_names():
        stem = safe_name(sweep)
        first = len(tables)
        if at is not None:
            table, matched, summary = budget_table(results, sweep, measure, at, which, paper_column)
            tables.append((f"{stem}_at_{measure}_{safe_name(f'{at:g}')}", table, at_frame(summary, matched)))
        if along:
            read = read_along(results, sweep, measure, which)
            steps = crossovers(results, sweep, measure, which, read)
            frame = crossover_frame(steps, measure)
            tables.append(
                (f"{stem}_crossovers_{measure}", crossover_table(results, sweep, measure, which, steps), frame)
            )
            every = tau_by_budget(results, sweep, measure, which, paper_column, read=read)
            pretrained = tau_by_budget(results, sweep, measure, which, paper_column, True, read)
            tau = tau_table(every, sweep, measure, pretrained)
            if tau is not None:
                tables.append((f"{stem}_tau_by_{measure}", tau, tau_frame(every, pretrained, measure)))
        if check_against is not None:
            checks = interpolation_check(results.for_sweep(sweep), check_against, measure, which)
            table = check_table(checks, measure, sweep, check_against.sweep_names()[0])
            tables.append((f"{stem}_interpolation_check_{measure}", table, check_frame(checks)))
        warning = total_dependent_note(total_dependent_rows(results, sweep))
        for _, table, _ in tables[first:]:
            table.notes[:0] = [warning] if warning else []
    out, paths = Path(out_dir), []
    for stem, table, frame in tables:
        for fmt in formats:
            path = out / f"{stem}{FORMATS[fmt]}"
            atomic_write_text(path, frame.to_csv(index=False) if fmt == "csv" else RENDERERS[fmt](table))
            paths.append(path)
    return "\n".join(to_markdown(t) for _, t, _ in tables), paths


def at_frame(summary: Summary, matched: Matched) -> pd.DataFrame:
    """The ordinary table's numbers (Summary.to_frame) with the budget and each row's interpolated seeds."""
    frame = summary.to_frame()
    frame.insert(1, "budget", matched.measure)
    frame.insert(2, "at", matched.at)
    frame.insert(3, "interpolated seeds", [len(matched.interpolated.get(v, ())) for v in frame["variant"]])
    return frame


def crossover_frame(steps: dict[str, list[Step]], measure: str) -> pd.DataFrame:
    """One line per row and budget: Δ vs. ★, its interval and mark (empty where the row could not be read)."""
    records = [
        {
            "variant": v,
            measure: s.x,
            "delta": s.delta.mean if s.delta else math.nan,
            "delta_lo": s.delta.lo if s.delta else math.nan,
            "delta_hi": s.delta.hi if s.delta else math.nan,
            "mark": s.mark if s.delta else "",
        }
        for v, seq in steps.items()
        for s in seq
    ]
    return pd.DataFrame(records, columns=["variant", measure, "delta", "delta_lo", "delta_hi", "mark"])
