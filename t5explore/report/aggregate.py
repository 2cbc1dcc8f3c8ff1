"""Seeds -> one cell per (variant, column) with a 95% interval, a paired Δ against ★, and bold.

The conventions follow the T5 paper (Raffel et al. 2020, §3.1.4): the baseline is marked ★ and the best
scores are bold. What "best" means is tested rather than eyeballed (the statistics are in stats.py):

- Cell: mean over seeds ± the 95% Student-t half-width (ddof=1); with one seed, the run's 95% bootstrap
  interval over evaluation examples (result.json `bootstrap`), when it has one.
- Δ: variant − ★, paired seed by seed over the seeds both have, with its 95% paired-t interval (one shared
  seed: the paired bootstrap over evaluation examples, when both runs stored it). An interval that
  contains 0 is a tie (≈); otherwise the variant is better (▲) or worse (▼) than ★.
- Bold: the best mean of its column, and every variant not significantly worse than it: a two-sided paired
  t-test at 95% against the best variant over their shared seeds (one shared seed: the paired bootstrap).
  Without any paired comparison, a variant is bold when its interval overlaps the best's; with no interval
  at all, only the best (and exact ties) are bold.
- The paper's rule is still available: a σ the user gives for a column (e.g. `--baseline_std paper`, the
  paper's baseline std over 10 runs) makes that column bold "within 2σ of the best" instead.
Scores: higher is better; losses: lower is better; costs are not ranked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from t5explore.report.columns import TOL, Column, default_columns, per_task_columns  # noqa: F401
from t5explore.report.results import ReportError, Results
from t5explore.report.stats import (
    Interval,
    SeedValues,
    boot_for,
    cell_interval,
    intervals_overlap,
    paired_difference,
    pooled_paired_sd,
    seeds_to_resolve,
)

BETTER, WORSE, TIE = "▲", "▼", "≈"


def shows_delta(c: Column) -> bool:
    """Headline columns get a Δ-vs-★ column: higher-is-better scores (not losses, costs or error counts)."""
    return c.kind == "score" and c.better == "higher"


@dataclass
class Cell:
    mean: float = math.nan
    std: float = math.nan  # sample std over seeds (ddof=1); nan with fewer than 2
    n: int = 0  # seeds
    bold: bool = False
    ci: Interval = field(default_factory=lambda: Interval(math.nan))  # the 95% interval shown
    delta: Interval | None = None  # variant − ★, paired by seed; None for ★ itself or without a shared seed
    mark: str = ""  # vs ★: BETTER, WORSE, TIE, or "" (no interval)

    @property
    def lo(self) -> float:
        return self.ci.lo

    @property
    def hi(self) -> float:
        return self.ci.hi

    @property
    def tie(self) -> bool | None:
        """Δ's interval contains 0 (None when there is no interval)."""
        return None if self.delta is None else self.delta.contains_zero()


@dataclass(frozen=True)
class Power:
    """How noisy a column's paired differences are, and how many seeds would resolve Δ = 1 point."""

    sigma: float  # pooled sample std of the per-seed differences variant − ★
    dof: int
    comparisons: int  # variants that share ≥ 2 seeds with ★
    seeds: int | None  # fewest n with t(0.975, n−1)·σ/√n < 1; None if unknown or out of reach


@dataclass
class Summary:
    """One sweep aggregated over seeds: rows = variants in sweep order, one Cell per (variant, column)."""

    sweep: str
    variants: list[str]
    columns: list[Column]
    cells: dict[tuple[str, str], Cell]
    n_runs: dict[str, int]
    baseline: str | None
    failed: pd.DataFrame
    incomplete: pd.DataFrame
    sigma: dict[str, float] = field(default_factory=dict)  # a user's σ (2σ bold rule), per column key
    which: str = "best"
    seed_values: dict[tuple[str, str], SeedValues] = field(default_factory=dict)
    bold_rules: dict[str, set[str]] = field(default_factory=dict)  # column key -> rules that decided its bold
    power: dict[str, Power] = field(default_factory=dict)  # per Δ column
    tiny: bool = False  # every run says `"scale": "tiny"`

    def cell(self, variant: str, key: str) -> Cell:
        return self.cells[(variant, key)]

    def to_frame(self) -> pd.DataFrame:
        """Flat numbers for CSV / notebooks, per column: mean, std, ci_lo, ci_hi, ci (kind), n,
        delta, delta_lo, delta_hi, delta_n, tie, bold."""
        records = []
        for v in self.variants:
            rec: dict[str, object] = {"variant": v, "baseline": v == self.baseline, "n": self.n_runs[v]}
            for c in self.columns:
                cell, d = self.cell(v, c.key), self.cell(v, c.key).delta
                rec[c.label] = cell.mean
                rec.update(
                    {
                        f"{c.label} std": cell.std,
                        f"{c.label} ci_lo": cell.lo,
                        f"{c.label} ci_hi": cell.hi,
                        f"{c.label} ci": cell.ci.kind or "",
                        f"{c.label} n": cell.n,
                    }
                )
                if c.better is not None:
                    rec.update(
                        {
                            f"{c.label} delta": d.mean if d else math.nan,
                            f"{c.label} delta_lo": d.lo if d else math.nan,
                            f"{c.label} delta_hi": d.hi if d else math.nan,
                            f"{c.label} delta_n": d.n if d else 0,
                            f"{c.label} tie": "" if cell.tie is None else cell.tie,
                        }
                    )
                rec[f"{c.label} bold"] = cell.bold
            records.append(rec)
        return pd.DataFrame(records)


def summarize(
    results: Results,
    sweep: str | None = None,
    columns: list[Column] | None = None,
    which: str = "best",
    baseline_std: Mapping[str, float] | None = None,
    strict_std: bool = True,
) -> Summary:
    """Aggregate one sweep's runs by variant and seed. `baseline_std` maps a column key/label/paper name to
    a σ for the paper's 2σ bold rule in that column (the others are tested pairwise); with strict_std a
    name that matches no column is an error, else it is ignored."""
    if sweep is None:
        if len(results.sweeps) != 1:
            raise ReportError(f"several sweeps loaded ({', '.join(results.sweeps)}); name one")
        sweep = next(iter(results.sweeps))
    if sweep not in results.sweeps:
        raise ReportError(f"sweep {sweep!r} not found; loaded: {', '.join(results.sweeps) or 'none'}")
    res = results.for_sweep(sweep)
    info = res.sweeps[sweep]
    runs = res.runs
    columns = default_columns(runs, which) if columns is None else columns
    user_sigma = resolve_baseline_std(baseline_std or {}, columns, strict_std)

    variants = list(info.variants)
    for v in [*res.failed["variant"], *res.incomplete["variant"]]:
        if isinstance(v, str) and v not in variants:
            variants.append(v)
    n_runs = {v: int((runs["variant"] == v).sum()) if len(runs) else 0 for v in variants}
    seed_values = {
        (v, c.key): _seed_values(runs[runs["variant"] == v] if len(runs) else runs, c.key)
        for v in variants
        for c in columns
    }
    cells = {key: _cell(sv) for key, sv in seed_values.items()}
    summary = Summary(
        sweep,
        variants,
        columns,
        cells,
        n_runs,
        info.baseline,
        res.failed,
        res.incomplete,
        {},
        which,
        seed_values,
        tiny=_all_tiny(runs),
    )
    for c in columns:
        if c.better is None:
            continue
        col_cells = {v: cells[(v, c.key)] for v in variants}
        col_values = {v: seed_values[(v, c.key)] for v in variants}
        _mark_deltas(col_cells, col_values, info.baseline, c.better)
        if c.key in user_sigma:
            summary.sigma[c.key] = user_sigma[c.key]
            summary.bold_rules[c.key] = _mark_bold_2sigma(list(col_cells.values()), c.better, user_sigma[c.key])
        else:
            summary.bold_rules[c.key] = _mark_bold_paired(col_cells, col_values, c.better)
        if shows_delta(c) and info.baseline in variants:
            summary.power[c.key] = _power(col_values, info.baseline)
    return summary


def resolve_baseline_std(spec: Mapping[str, float], columns: list[Column], strict: bool = True) -> dict[str, float]:
    """Map user names (column key, label, benchmark name or paper column; any case) to column keys."""
    out = {}
    for name, value in spec.items():
        hits = [c for c in columns if name.lower() in _names(c)]
        if not hits and not strict:
            continue
        if not hits:
            labels = ", ".join(c.label for c in columns if c.better)
            raise ReportError(f"baseline std given for {name!r}, which names no column (columns: {labels})")
        if not (isinstance(value, (int, float)) and value >= 0):
            raise ReportError(f"baseline std for {name!r} must be a number ≥ 0, got {value!r}")
        for c in hits:
            out[c.key] = float(value)
    return out


def _names(c: Column) -> set[str]:
    names = {c.key, c.label, c.paper or ""}
    if c.key.startswith("benchmarks."):
        names.add(c.key.rsplit(".", 1)[1])
    return {n.lower() for n in names if n}


def _seed_values(group: pd.DataFrame, key: str) -> SeedValues:
    """A variant's values in column `key` by seed, with each seed's bootstrap when it has a single run.
    A run without a seed is a unit of its own (it pairs with nothing)."""
    sv = SeedValues()
    if key not in group.columns or not len(group):
        return sv
    values = pd.to_numeric(group[key], errors="coerce")
    boots = group["bootstrap"] if "bootstrap" in group.columns else [None] * len(group)
    by_seed: dict = {}
    for seed, run, value, boot in zip(group["seed"], group["run"], values, boots):
        if pd.isna(value):
            continue
        unit = ("run", run) if seed is None or pd.isna(seed) else int(seed)
        by_seed.setdefault(unit, []).append((float(value), boot_for(boot, key)))
    for unit, items in by_seed.items():
        sv.values[unit] = float(np.mean([v for v, _ in items]))
        if len(items) == 1 and items[0][1] is not None:
            sv.boot[unit] = items[0][1]
    return sv


def _cell(sv: SeedValues) -> Cell:
    x = sv.array()
    if not len(x):
        return Cell()
    return Cell(float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else math.nan, len(x), ci=cell_interval(sv))


def _oriented(d: Interval | None, better: str) -> Interval | None:
    """The interval with its sign flipped for lower-is-better columns (so > 0 always means better)."""
    if d is None or better == "higher":
        return d
    return Interval(-d.mean, -d.hi, -d.lo, d.n, d.kind)


def _mark_deltas(cells: dict[str, Cell], values: dict[str, SeedValues], baseline: str | None, better: str) -> None:
    if baseline not in cells or not cells[baseline].n:
        return
    for v, cell in cells.items():
        if v == baseline or not cell.n:
            continue
        cell.delta = paired_difference(values[v], values[baseline])
        up = _oriented(cell.delta, better)
        if up is not None and up.known:
            cell.mark = TIE if up.contains_zero() else (BETTER if up.lo > 0 else WORSE)


def _mark_bold_paired(cells: dict[str, Cell], values: dict[str, SeedValues], better: str) -> set[str]:
    """Bold = best mean, or not significantly worse than the best variant (see the module doc).
    Returns the rules that decided: 'paired t', 'paired bootstrap', 'overlap', 'best only'."""
    present = [v for v, c in cells.items() if c.n]
    if not present:
        return set()
    sign = 1.0 if better == "higher" else -1.0
    best = max(present, key=lambda v: sign * cells[v].mean)
    tol = TOL * max(1.0, abs(cells[best].mean))
    rules = set()
    for v in present:
        cell = cells[v]
        if sign * (cells[best].mean - cell.mean) <= tol:
            cell.bold = True
            continue
        gap = _oriented(paired_difference(values[best], values[v]), better)  # > 0: the best is better
        if gap is not None and gap.known:
            cell.bold = gap.lo <= 0.0
            rules.add("paired t" if gap.kind == "t" else "paired bootstrap")
            continue
        overlap = intervals_overlap(cells[best].ci, cell.ci)
        cell.bold = bool(overlap)
        rules.add("best only" if overlap is None else "overlap")
    return rules


def _mark_bold_2sigma(cells: list[Cell], better: str, sigma: float) -> set[str]:
    """The paper's rule with a given σ: bold within 2σ of the best mean."""
    means = [c.mean for c in cells if c.n]
    if not means:
        return set()
    best = max(means) if better == "higher" else min(means)
    tol = TOL * max(1.0, abs(best))
    for c in cells:
        if c.n:
            gap = best - c.mean if better == "higher" else c.mean - best
            c.bold = gap <= 2.0 * sigma + tol
    return {"2σ"}


def _power(values: dict[str, SeedValues], baseline: str) -> Power:
    """σ of the per-seed differences variant − ★, pooled over the variants sharing ≥ 2 seeds with ★."""
    base = values[baseline]
    diffs = []
    for v, sv in values.items():
        shared = [k for k in sv.values if k in base.values]
        if v != baseline and len(shared) >= 2:
            diffs.append(np.array([sv.values[k] - base.values[k] for k in shared]))
    sigma, dof = pooled_paired_sd(diffs)
    return Power(sigma, dof, len(diffs), seeds_to_resolve(sigma) if dof else None)


def _all_tiny(runs: pd.DataFrame) -> bool:
    return bool(len(runs)) and "scale" in runs.columns and bool((runs["scale"] == "tiny").all())
