"""The interpolation check (issue 20 §2): the ladder's interpolated scores against runs measured at that budget.

A budget sweep (the ladder) reads a row between two evaluated budgets by linear interpolation in log(budget),
per seed. A second sweep that pre-trains the same row, with the same seeds, for exactly the budget in
question (experiments/budget_interpolation_check.gin: replace-spans for the steps at which its target tokens
equal BERT-style's at 200 steps) measures what the interpolation estimates. With a schedule that does not
depend on the total, the measured run of seed s is the ladder's seed-s run stopped there, so the per-seed
difference (measured − interpolated) is the interpolation's error alone. They agree when the paired t interval
of those differences contains 0 (and the two rows' own t intervals are shown beside). Since ★'s scores are the
same runs on both sides, the difference in Δ vs. ★ at that budget is the same per-seed difference: the matched
ranking the ladder computes agrees with the measured one exactly when the scores do.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TypeGuard

import pandas as pd

from t5explore.report.aggregate import summarize
from t5explore.report.budget import MEASURES, check_measure, format_budget, headline, read_at, run_points
from t5explore.report.results import ReportError, Results
from t5explore.report.stats import Interval, paired_t_p, t_interval
from t5explore.report.tables import TextTable


@dataclass(frozen=True)
class SeedCheck:
    """One seed: the measured run's budget and score, and the ladder's value read at that budget."""

    seed: object
    x: float
    measured: float
    ladder: float
    interpolated: bool  # False: the ladder was evaluated at x itself


@dataclass(frozen=True)
class RowCheck:
    """One row over its seeds: the per-seed checks, the measured and ladder t intervals and their difference."""

    variant: str
    column: str
    seeds: list[SeedCheck]
    measured: Interval
    ladder: Interval
    difference: Interval  # measured − ladder, paired by seed, with its two-sided paired t p

    @property
    def agree(self) -> bool | None:
        """Whether the difference's interval contains 0 (None without an interval: one seed)."""
        return self.difference.contains_zero()


def interpolation_check(
    ladder: Results, measured: Results, measure: str = "target_tokens", which: str = "best"
) -> list[RowCheck]:
    """Every row of the one sweep in `measured` against the same-named row and seeds of the one sweep in `ladder`,
    read at each measured run's own final budget in `measure` (see the module doc). A measured row or seed the
    ladder lacks, or a budget outside the ladder's range, is an error naming it."""
    check_measure(measure)
    lsweep, msweep = _one(ladder, "ladder"), _one(measured, "--check_against")
    lruns, mruns = ladder.for_sweep(lsweep).runs, measured.for_sweep(msweep).runs
    if not len(mruns):
        raise ReportError(f"--check_against: sweep {msweep!r} has no finished run")
    column = headline(summarize(measured, msweep, which=which))
    out = []
    for v in dict.fromkeys(mruns["variant"]):
        rows = lruns[lruns["variant"] == v] if len(lruns) else lruns
        if not len(rows):
            raise ReportError(f"--check_against: row {v!r} of sweep {msweep!r} is not a row of sweep {lsweep!r}")
        seeds = []
        for _, run in mruns[mruns["variant"] == v].iterrows():
            seeds.append(_seed_check(run, rows, v, column.key, measure))
        m = t_interval([s.measured for s in seeds])
        lad = t_interval([s.ladder for s in seeds])
        diff = [s.measured - s.ladder for s in seeds]
        out.append(RowCheck(v, column.label, seeds, m, lad, dataclasses.replace(t_interval(diff), p=paired_t_p(diff))))
    return out


def _seed_check(run: pd.Series, ladder_rows: pd.DataFrame, variant: str, key: str, measure: str) -> SeedCheck:
    points = run_points(run, measure)
    if not points:
        raise ReportError(f"{run['run_dir']}: not pre-trained, so it has no {measure} to check the ladder at")
    x = points[-1].x
    mine = ladder_rows[ladder_rows["seed"] == run["seed"]]
    if not len(mine):
        raise ReportError(f"--check_against: row {variant!r} seed {run['seed']} has no run in the ladder sweep")
    lrun = mine.iloc[0]
    lpoints = run_points(lrun, measure)
    if not lpoints:
        raise ReportError(f"row {variant!r} of the ladder sweep has no budget axis to interpolate on")
    rec, _, between = read_at(lpoints, x, f"ladder row {variant!r} (run {lrun['run']})", measure)
    ladder_value, measured_value = (rec.get(key) if rec else lrun.get(key)), run.get(key)
    if not (_finite(measured_value) and _finite(ladder_value)):
        raise ReportError(f"row {variant!r} seed {run['seed']}: the measured or the ladder run has no {key}")
    return SeedCheck(run["seed"], x, float(measured_value), float(ladder_value), between)


def check_table(checks: list[RowCheck], measure: str, ladder: str, measured: str) -> TextTable:
    """One line per row and seed, then the row's intervals and the verdict."""
    name = MEASURES[measure][0]
    header = ["Variant", "seed", name, "measured", "ladder", "measured − ladder"]
    rows = []
    for c in checks:
        for s in c.seeds:
            how = "interpolated" if s.interpolated else "evaluated there"
            rows.append(
                [
                    c.variant,
                    str(s.seed),
                    format_budget(measure, s.x),
                    f"{s.measured:.2f}",
                    f"{s.ladder:.2f} ({how})",
                    f"{s.measured - s.ladder:+.2f}",
                ]
            )
        rows.append([c.variant, "all", "", _iv(c.measured), _iv(c.ladder), _iv(c.difference, signed=True)])
    notes = [
        f"Each run of sweep {measured!r} against the same row and seed of the ladder {ladder!r}, read at the "
        f"measured run's own {name} (linear in log({name}) between the ladder's two nearest evaluated budgets). "
        f"Column: {checks[0].column if checks else '–'}. '±' = 95% t interval over seeds; the difference is paired by "
        "seed (two-sided paired t p). It is also the difference in Δ vs. ★ at that budget, since ★'s runs are the "
        "same on both sides.",
        *(verdict_line(c) for c in checks),
    ]
    title = f"{ladder}: interpolated ladder against measured runs ({measured}) along {name}"
    return TextTable(title, header, rows, [[False] * len(header) for _ in rows], notes)


def verdict_line(c: RowCheck) -> str:
    d = c.difference
    if c.agree is None:
        return f"{c.variant}: one seed, so no interval: measured − ladder = {d.mean:+.2f}; agreement not judged."
    p = "" if math.isnan(d.p) else f", p = {d.p:.3g}"
    if c.agree:
        return (
            f"{c.variant}: the interpolation agrees with the measured runs: measured − ladder = {_iv(d, True)} over "
            f"{d.n} seeds{p}, an interval that contains 0."
        )
    return (
        f"{c.variant}: the interpolation DISAGREES with the measured runs: measured − ladder = {_iv(d, True)} over "
        f"{d.n} seeds{p}, an interval that excludes 0; the ladder's matched-budget scores for this row are off."
    )


def check_frame(checks: list[RowCheck]) -> pd.DataFrame:
    """The per-seed numbers for CSV."""
    return pd.DataFrame(
        [
            {
                "variant": c.variant,
                "seed": s.seed,
                "budget": s.x,
                "measured": s.measured,
                "ladder": s.ladder,
                "interpolated": s.interpolated,
                "difference": s.measured - s.ladder,
            }
            for c in checks
            for s in c.seeds
        ],
        columns=["variant", "seed", "budget", "measured", "ladder", "interpolated", "difference"],
    )


def _iv(iv: Interval, signed: bool = False) -> str:
    mean = f"{iv.mean:+.2f}" if signed else f"{iv.mean:.2f}"
    return f"{mean} ± {iv.half:.2f}" if iv.known else mean


def _one(results: Results, what: str) -> str:
    names = results.sweep_names()
    if len(names) != 1:
        raise ReportError(f"{what}: the check compares one sweep with one, found {len(names)} ({', '.join(names)})")
    return names[0]


def _finite(v: object) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
