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
    Matched,
    Tau,
    check_measure,
    format_budget,
    headline,
    matched_results,
    matched_summary,
    star_grid,
    tau_at,
    total_dependent_note,
    total_dependent_rows,
)
from t5explore.report.results import ReportError, Results
from t5explore.report.stats import Interval
from t5explore.report.sweep_tables import FORMATS, safe_name
from t5explore.report.table_render import RENDERERS, to_markdown
from t5explore.report.tables import MISSING, STAR, TextTable, summary_table

NO_INTERVAL = "n/a"


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
        table.notes.append(_tau_line(tau))
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


def _tau_line(tau: Tau) -> str:
    ci = "" if math.isnan(tau.lo) else f" [{tau.lo:.2f}, {tau.hi:.2f}]"
    value = "n/a (no order: one side is all ties)" if math.isnan(tau.tau) else f"{tau.tau:.2f}"
    same = tau.column.paper == tau.paper_column
    what = "" if same else f" (rank agreement only: our {tau.column.label} is not the paper's {tau.paper_column})"
    return (
        f"Kendall τ-b of the rows' {tau.column.label} against the paper's {tau.paper_column}: {value}{ci} "
        f"(n = {tau.n} rows; 95% bootstrap CI over seeds){what}."
    )


@dataclass(frozen=True)
class Step:
    """One row against ★ at one budget."""

    x: float
    delta: Interval | None  # None: the row could not be read at x (outside its range) or shares no seed
    mark: str  # ▲ / ▼ / ≈, or "" without an interval


def crossovers(results: Results, sweep: str, measure: str, which: str = "best") -> dict[str, list[Step]]:
    """variant -> its paired Δ vs. ★ in the headline column at each budget ★ was evaluated at."""
    check_measure(measure)
    baseline = results.sweeps[sweep].baseline
    out: dict[str, list[Step]] = {}
    for x in star_grid(results, sweep, measure):
        summary = matched_summary(matched_results(results, sweep, measure, x, refuse=False), which)
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
    for v, seq in steps.items():
        known = [s for s in seq if s.delta is not None]
        ranges = {m: _ranges(measure, seq, m) for m in ("▲", "▼", TIE, "")}
        if ranges[""]:
            unresolved.append(f"{v} ({ranges['']})")
        zeros = ", ".join(f"≈ {format_budget(measure, x)}" for x in zero_crossings(known))
        ends = f"{known[0].delta.mean:+.2f} → {known[-1].delta.mean:+.2f}" if known else MISSING  # type: ignore[union-attr]
        rows.append([v, ranges["▲"] or MISSING, ranges["▼"] or MISSING, ranges[TIE] or MISSING, zeros or MISSING, ends])
    grid = ", ".join(format_budget(measure, x) for x in star_grid(results, sweep, measure))
    notes = [
        f"Δ = row − {STAR} in {headline_label(results, sweep, measure, which)}, paired by seed, at each {name} value "
        f"{STAR} was evaluated at ({grid}); other rows interpolated in log({name}) per seed. ▲ / ▼ / {TIE} = the mark "
        f"the table at that budget gives the row's Δ (resolved better, resolved worse, tie; the table's notes give "
        "the test). Ranges join consecutive evaluated budgets with the same mark.",
        f"Δ = 0 at: where the mean Δ changes sign, interpolated linearly in log({name}) between the two budgets "
        "around the change (a point estimate).",
    ]
    if unresolved:
        notes.append(
            f"{NO_INTERVAL} (no interval: one seed, or the row could not be read there): {'; '.join(unresolved)}."
        )
    return TextTable(
        f"{sweep}: crossovers against {STAR} along {name}", header, rows, [[False] * 6 for _ in rows], notes
    )


def headline_label(results: Results, sweep: str, measure: str, which: str) -> str:
    x = star_grid(results, sweep, measure)[0]
    return headline(matched_summary(matched_results(results, sweep, measure, x, refuse=False), which)).label


def _ranges(measure: str, seq: list[Step], mark: str) -> str:
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


def tau_by_budget(
    results: Results,
    sweep: str,
    measure: str,
    which: str = "best",
    paper_column: str | None = None,
    pretrained_only: bool = False,
) -> list[tuple[float, Tau | None]]:
    """Kendall τ against the paper at each budget ★ was evaluated at (None where < 2 rows match the paper);
    pretrained_only: without the no-pre-training row (budget.tau_at)."""
    out = []
    for x in star_grid(results, sweep, measure):
        summary = matched_summary(matched_results(results, sweep, measure, x, refuse=False), which)
        out.append((x, tau_at(summary, results.sweeps[sweep], paper_column, pretrained_only)))
    return out


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
    notes = [_tau_line(t0).split(":")[0] + f", at each {name} value ★ was evaluated at (other rows interpolated)."]
    if t0.column.paper != t0.paper_column:
        notes.append(f"Rank agreement only: our {t0.column.label} is not the paper's {t0.paper_column}.")
    notes.append(
        "CI: 95% bootstrap over seeds; p: the two-sided p of τ (paper.kendall_tau, as in the _vs_paper tables). "
        "Without no pre-training: that row is last in both orders at every budget, so it adds agreement that "
        "says nothing about the objectives."
    )
    title = f"{sweep}: Kendall τ against the paper along {name}"
    return TextTable(title, header, rows, [[False] * len(header) for _ in rows], notes)


def _tau_cells(t: Tau) -> list[str]:
    ci = MISSING if math.isnan(t.lo) else f"[{t.lo:.2f}, {t.hi:.2f}]"
    tau = MISSING if math.isnan(t.tau) else f"{t.tau:.2f}"
    return [tau, ci, str(t.n), MISSING if math.isnan(t.p) else f"{t.p:.2f}"]


def write_budget_tables(
    results: Results,
    out_dir: str | os.PathLike,
    formats: Iterable[str],
    measure: str,
    at: float | None,
    along: bool,
    which: str = "best",
    paper_column: str | None = None,
) -> tuple[str, list[Path]]:
    """(Markdown to print, files written): per sweep, the table at `at` and/or (along) crossovers and τ.
    Markdown, LaTeX and HTML render the tables; CSV carries their numbers (budget_frames)."""
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
            steps = crossovers(results, sweep, measure, which)
            frame = crossover_frame(steps, measure)
            tables.append(
                (f"{stem}_crossovers_{measure}", crossover_table(results, sweep, measure, which, steps), frame)
            )
            every = tau_by_budget(results, sweep, measure, which, paper_column)
            pretrained = tau_by_budget(results, sweep, measure, which, paper_column, pretrained_only=True)
            tau = tau_table(every, sweep, measure, pretrained)
            if tau is not None:
                tables.append((f"{stem}_tau_by_{measure}", tau, tau_frame(every, pretrained, measure)))
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
