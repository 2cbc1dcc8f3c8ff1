"""Seeds -> one cell per (variant, column) with a 95% interval, a paired Δ against ★, and bold.

The conventions follow the T5 paper (Raffel et al. 2020, §3.1.4): the baseline is marked ★ and the best
scores are bold. What a mark or a bold means is tested rather than eyeballed (the statistics are in stats.py),
and every verdict survives the multiple testing a table does:

- Cell: mean over seeds ± the 95% Student-t half-width (ddof=1); with one seed, the run's 95% bootstrap
  interval over evaluation examples (result.json `bootstrap`), when it has one.
- Δ: variant − ★, paired seed by seed over the seeds both have, with its unadjusted 95% paired-t interval
  and the paired t-test's raw p (one shared seed: the paired bootstrap over evaluation examples, when both
  runs stored it). The family of a column is every row's comparison with ★ that has a test; its p-values
  are Holm–Bonferroni adjusted, and the mark reads the adjusted p: ▲ / ▼ when it is < 0.05, else ≈ (tie).
  A row without a shared seed, or with one shared seed and no stored replicates, has no test, no mark, and
  is not in the family.
- Bold: the rows not resolved below the column's best row, by the same test against the best, and only
  when some row is resolved below it: with 3 seeds most differences are not resolved, and a table that
  bolds every row says nothing. Its Holm family is every distinct comparison of the column (each row vs. the
  best and each row vs. ★), so bold never contradicts a mark. A row without a test against the best is
  unresolved.
- Power: per row, σ of its own per-seed differences from ★ and the seeds a paired t-test needs for 80%
  power at a stated Δ (noncentral t; not pooled: rows differ in noise, and they share ★'s values).
- The paper's rule is still available: a σ the user gives for a column (e.g. `--baseline_std paper`, the
  paper's baseline std over 10 runs) makes that column bold "within 2σ of the best" instead.
Scores: higher is better; losses: lower is better; costs are not ranked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from t5explore.report.columns import TOL, Column, default_columns, per_task_columns  # noqa: F401
from t5explore.report.hygiene import hygiene_notes
from t5explore.report.results import ReportError, Results, SweepInfo
from t5explore.report.stats import (
    Interval,
    SeedValues,
    boot_for,
    cell_interval,
    compare_all,
    holm,
    paired_difference,
    resolved,
    seeds_for_power,
)

BETTER, WORSE, TIE = "▲", "▼", "≈"
POWER_DELTA = 1.0  # the Δ (in a column's units, e.g. accuracy points) the power line plans for


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
    delta: Interval | None = None  # variant − ★, paired by seed, raw p in delta.p; None for ★ or no shared seed
    p_holm: float = math.nan  # delta.p adjusted over the column's family of comparisons with ★
    mark: str = ""  # vs ★ at the adjusted p: BETTER, WORSE, TIE, or "" (no test)

    @property
    def lo(self) -> float:
        return self.ci.lo

    @property
    def hi(self) -> float:
        return self.ci.hi

    @property
    def tie(self) -> bool | None:
        """Not resolved from ★ after Holm (None when there is no test)."""
        return None if not self.mark else self.mark == TIE


@dataclass(frozen=True)
class Power:
    """One row's noise against ★ and the seeds a paired t-test needs to detect Summary.power_delta."""

    sigma: float  # sample std (ddof=1) of this row's per-seed differences from ★
    n: int  # the seeds it shares with ★ (σ is estimated from them: rough at n = 3)
    seeds: int | None  # fewest n with 80% power (two-sided, α = 0.05); None if out of reach


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
    power: dict[str, dict[str, Power]] = field(default_factory=dict)  # Δ column -> variant -> its power
    power_delta: float = POWER_DELTA
    family: dict[str, int] = field(default_factory=dict)  # column key -> comparisons with ★ in its Holm family
    tiny: bool = False  # every run says `"scale": "tiny"`
    hygiene: list[str] = field(default_factory=list)  # leakage and selection status of the runs (report/hygiene.py)
    info: SweepInfo | None = None  # the sweep's sweep.json (its paper table and rows: Table 2's P / M labels)

    def cell(self, variant: str, key: str) -> Cell:
        return self.cells[(variant, key)]

    def to_frame(self) -> pd.DataFrame:
        """Flat numbers for CSV / notebooks, per column: mean, std, ci_lo, ci_hi, ci (kind), n, bold; ranked
        columns add delta, delta_lo, delta_hi, delta_n, p (raw), p_holm, tie; Δ columns add the row's
        paired σ and the seeds for 80% power."""
        records = []
        for v in self.variants:
            rec: dict[str, object] = {"variant": v, "baseline": v == self.baseline, "n": self.n_runs[v]}
            for c in self.columns:
                rec.update(self._cell_record(v, c))
            records.append(rec)
        return pd.DataFrame(records)

    def _cell_record(self, v: str, c: Column) -> dict[str, object]:
        cell, d, name = self.cell(v, c.key), self.cell(v, c.key).delta, c.label
        rec: dict[str, object] = {name: cell.mean}
        rec.update({f"{name} {k}": x for k, x in (("std", cell.std), ("ci_lo", cell.lo), ("ci_hi", cell.hi))})
        rec.update({f"{name} ci": cell.ci.kind or "", f"{name} n": cell.n})
        if c.better is not None:
            known = [("delta", d.mean), ("delta_lo", d.lo), ("delta_hi", d.hi), ("p", d.p)] if d else []
            rec.update({f"{name} {k}": math.nan for k in ("delta", "delta_lo", "delta_hi", "p")})
            rec.update({f"{name} {k}": x for k, x in known})
            rec.update({f"{name} delta_n": d.n if d else 0, f"{name} p_holm": cell.p_holm})
            rec[f"{name} tie"] = "" if cell.tie is None else cell.tie
        if c.key in self.power:
            power = self.power[c.key].get(v)
            rec[f"{name} paired_sigma"] = power.sigma if power else math.nan
            rec[f"{name} seeds_for_power"] = power.seeds if power and power.seeds else ""
        rec[f"{name} bold"] = cell.bold
        return rec


def summarize(
    results: Results,
    sweep: str | None = None,
    columns: list[Column] | None = None,
    which: str = "best",
    baseline_std: Mapping[str, float] | None = None,
    strict_std: bool = True,
    power_delta: float = POWER_DELTA,
    extra_columns: Sequence[str] = (),
) -> Summary:
    """Aggregate one sweep's runs by variant and seed. `baseline_std` maps a column key/label/paper name to
    a σ for the paper's 2σ bold rule in that column (the others are tested pairwise); with strict_std a
    name that matches no column is an error, else it is ignored. `power_delta` is the true difference the
    power line plans for (> 0, in the column's units). `extra_columns` names opt-in columns (columns.py's
    OPT_IN_COLUMNS, e.g. "Params") added to the default ones."""
    if not (isinstance(power_delta, (int, float)) and power_delta > 0):
        raise ReportError(f"power delta must be a number > 0, got {power_delta!r}")
    if sweep is None:
        if len(results.sweeps) != 1:
            raise ReportError(f"several sweeps loaded ({', '.join(results.sweeps)}); name one")
        sweep = next(iter(results.sweeps))
    if sweep not in results.sweeps:
        raise ReportError(f"sweep {sweep!r} not found; loaded: {', '.join(results.sweeps) or 'none'}")
    res = results.for_sweep(sweep)
    info = res.sweeps[sweep]
    runs = res.runs
    columns = default_columns(runs, which, extra_columns) if columns is None else columns
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
        power_delta=float(power_delta),
        tiny=_all_tiny(runs),
        hygiene=hygiene_notes(runs),
        info=info,
    )
    for c in columns:
        if c.better is None:
            continue
        col_cells = {v: cells[(v, c.key)] for v in variants}
        col_values = {v: seed_values[(v, c.key)] for v in variants}
        summary.family[c.key] = _mark_deltas(col_cells, col_values, info.baseline, c.better)
        if c.key in user_sigma:
            summary.sigma[c.key] = user_sigma[c.key]
            summary.bold_rules[c.key] = _mark_bold_2sigma(list(col_cells.values()), c.better, user_sigma[c.key])
        else:
            summary.bold_rules[c.key] = _mark_bold_paired(col_cells, col_values, c.better, info.baseline)
        if shows_delta(c) and info.baseline in variants:
            summary.power[c.key] = _power(col_values, info.baseline, summary.power_delta)
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
    return Interval(-d.mean, -d.hi, -d.lo, d.n, d.kind, d.p)


def _mark_deltas(cells: dict[str, Cell], values: dict[str, SeedValues], baseline: str | None, better: str) -> int:
    """Δ vs ★ with raw and Holm p, and the mark the adjusted p gives; returns the family's size."""
    if baseline not in cells or not cells[baseline].n:
        return 0
    comparisons = compare_all({v: sv for v, sv in values.items() if cells[v].n}, baseline)
    for v, (d, p_holm) in comparisons.items():
        cell = cells[v]
        cell.delta, cell.p_holm = d, p_holm
        if not math.isnan(p_holm):
            cell.mark = {1: BETTER, -1: WORSE, 0: TIE}[resolved(_oriented(d, better), p_holm)]
    return sum(not math.isnan(p) for _, p in comparisons.values())


def _mark_bold_paired(
    cells: dict[str, Cell], values: dict[str, SeedValues], better: str, baseline: str | None
) -> set[str]:
    """Bold = not resolved below the best row (see the module doc). The Holm family is every distinct
    comparison the column makes: each row against the best, and each row's Δ vs ★ (the best-vs-★ pair once).
    A larger family never resolves more, so a bold verdict cannot contradict a mark. Returns the rules that
    decided: 'paired t', 'paired bootstrap', 'untested' (no test against the best), 'none resolved'."""
    present = [v for v, c in cells.items() if c.n]
    if not present:
        return set()
    sign = 1.0 if better == "higher" else -1.0
    best = max(present, key=lambda v: sign * cells[v].mean)
    gaps = {v: paired_difference(values[v], values[best]) for v in present if v != best}  # < 0: below the best
    family = {("best", v): d.p for v, d in gaps.items() if d is not None}
    for v in present:
        d = cells[v].delta
        if v not in (best, baseline) and d is not None:
            family[("star", v)] = d.p
    adjusted = holm(family)
    below = {v for v, d in gaps.items() if resolved(_oriented(d, better), adjusted.get(("best", v), math.nan)) < 0}
    rules = {"untested" if d is None or math.isnan(d.p) else f"paired {d.kind}" for d in gaps.values()}
    if not below:
        return rules | {"none resolved"}
    for v in present:
        cells[v].bold = v not in below
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


def _power(values: dict[str, SeedValues], baseline: str, delta: float) -> dict[str, Power]:
    """Per row sharing ≥ 2 seeds with ★: σ of its own per-seed differences and the seeds for 80% power."""
    base = values[baseline]
    out = {}
    for v, sv in values.items():
        shared = [k for k in sv.values if k in base.values]
        if v != baseline and len(shared) >= 2:
            sigma = float(np.std([sv.values[k] - base.values[k] for k in shared], ddof=1))
            out[v] = Power(sigma, len(shared), seeds_for_power(sigma, delta))
    return out


def _all_tiny(runs: pd.DataFrame) -> bool:
    return bool(len(runs)) and "scale" in runs.columns and bool((runs["scale"] == "tiny").all())
