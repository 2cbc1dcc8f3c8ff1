"""Trends along the pre-training budget, for a budget sweep's FINDINGS.md.

- Δ vs. ★ against log2(budget), per seed. Each seed s has its paired Δ_s(k) at every budget k of the
  comparison grid (as the crossover table pairs it); a least-squares line through (log2 k, Δ_s(k)) gives that
  seed's slope and its value extrapolated to the paper's step counts. The slopes' t interval over seeds, and its
  p Holm-adjusted over the rows (one family, like a table column), say whether the row gains or loses on ★ as
  the budget doubles. A Δ is extrapolated only for a row whose slope is resolved: with an unresolved trend the
  data do not say which way Δ goes, and a straight line in log(budget) far beyond the measured range is a
  guess whatever its interval (the interval covers the seeds' noise, not the choice of the line).
- The whole-input objectives against the others at matched budgets: rows whose targets are (nearly) their
  whole input (BERT-style, deshuffling: every input token is predicted) train on 3-4 times the target tokens of
  a span objective per step; read at matched target tokens instead of matched steps, are they still ahead?
  Every pair (whole-input row − other pre-trained row) is compared paired by seed at each budget of the grid,
  Holm-adjusted over the pairs of that budget.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from t5explore.report.aggregate import BETTER, TIE, WORSE
from t5explore.report.budget import Along, headline, run_points
from t5explore.report.budget_tables import Step
from t5explore.report.budget_tau import PAPER_STEPS, line_fit
from t5explore.report.results import Results
from t5explore.report.stats import Interval, holm, paired_difference, paired_t_p, resolved, t_interval

WHOLE_INPUT = 0.9  # a row whose target tokens are at least this share of its input tokens predicts its whole input
MARKS = {1: BETTER, -1: WORSE, 0: TIE}


@dataclass(frozen=True)
class Trend:
    """One row's Δ vs. ★ against log2(budget): the slope per doubling (t interval over seeds, raw p), its
    Holm-adjusted p and mark (▲ Δ rises, ▼ falls, ≈ not resolved, '' no interval), and Δ extrapolated to
    `targets` (only for a resolved slope along steps)."""

    variant: str
    slope: Interval
    p_holm: float
    mark: str
    budgets: int
    predicted: dict[int, Interval] = field(default_factory=dict)


def delta_trends(read: Along, baseline: str | None, targets: tuple[int, ...] = PAPER_STEPS) -> list[Trend]:
    """Every row's Δ trend against ★ (see the module doc); rows with no seed readable at ≥ 2 budgets are left out."""
    per_seed: dict[str, dict[object, list[tuple[float, float]]]] = {}
    for x, _, summary in read.points:
        key = headline(summary).key
        star = summary.seed_values.get((baseline, key)) if baseline is not None else None
        for v in summary.variants:
            mine = summary.seed_values.get((v, key))
            if v == baseline or star is None or mine is None:
                continue
            for s, value in mine.values.items():
                if s in star.values:
                    per_seed.setdefault(v, {}).setdefault(s, []).append((math.log2(x), value - star.values[s]))
    fits: dict[str, list[tuple[float, float]]] = {}
    for v, seeds in per_seed.items():
        lines = [line_fit(np.array([p[0] for p in pts]), np.array([p[1] for p in pts])) for pts in seeds.values()]
        fits[v] = [f for f in lines if f is not None]
    slopes = {v: _interval([f[0] for f in fs]) for v, fs in fits.items() if fs}
    adjusted = holm({v: iv.p for v, iv in slopes.items()})
    out = []
    for v, iv in slopes.items():
        mark = MARKS[resolved(iv, adjusted[v])] if iv.known else ""
        trend = Trend(v, iv, adjusted[v], mark, max(len(p) for p in per_seed[v].values()))
        if mark in (BETTER, WORSE) and read.measure == "steps":
            for t in targets:
                trend.predicted[t] = _interval([b + a * math.log2(t) for a, b in fits[v]])
        out.append(trend)
    return out


def _interval(values: list[float]) -> Interval:
    """t interval over seeds with its one-sample t p (that the mean is 0)."""
    return dataclasses.replace(t_interval(values), p=paired_t_p(values))


def whole_input_rows(results: Results, sweep: str) -> tuple[list[str], list[str]]:
    """(whole-input rows, other pre-trained rows), from the recorded target and input tokens of every budget."""
    runs = results.for_sweep(sweep).runs
    share: dict[str, list[float]] = {}
    for _, r in runs.iterrows():
        for target, inputs in zip(run_points(r, "target_tokens") or [], run_points(r, "input_tokens") or []):
            share.setdefault(r["variant"], []).append(target.x / inputs.x)
    whole = [v for v, s in share.items() if min(s) >= WHOLE_INPUT]
    return whole, [v for v in share if v not in whole]


def pair_steps(read: Along, whole: list[str], others: list[str]) -> dict[tuple[str, str], list[Step]]:
    """(whole-input row, other row) -> its paired Δ (whole − other) at each budget of `read`, marked after Holm
    over the pairs of that budget; a Step without a Δ where either row cannot be read there."""
    out: dict[tuple[str, str], list[Step]] = {(w, o): [] for w in whole for o in others}
    for x, _, summary in read.points:
        key = headline(summary).key
        deltas = {}
        for w, o in out:
            a, b = summary.seed_values.get((w, key)), summary.seed_values.get((o, key))
            deltas[(w, o)] = paired_difference(a, b) if a and b and a.values and b.values else None
        adjusted = holm({pair: d.p for pair, d in deltas.items() if d is not None})
        for pair, d in deltas.items():
            mark = "" if d is None or not d.known else MARKS[resolved(d, adjusted[pair])]
            out[pair].append(Step(x, d, mark))
    return out


def still_ahead(steps: dict[tuple[str, str], list[Step]]) -> tuple[list[str], list[str], list[str]]:
    """Pairs (as 'W − O') resolved ahead at every budget where both can be compared; ahead at some but not all;
    and never resolved ahead."""
    every, some, never = [], [], []
    for (w, o), seq in steps.items():
        marks = [s.mark for s in seq if s.delta is not None and s.delta.known]
        name = f"{w} − {o}"
        if marks and all(m == BETTER for m in marks):
            every.append(name)
        elif BETTER in marks:
            some.append(name)
        else:
            never.append(name)
    return every, some, never
