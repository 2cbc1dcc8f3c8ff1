"""Intervals and paired comparisons behind every table cell (numbers only: no pandas, no formatting).

Design: every variant of a sweep runs the same seeds, and a run's seed fixes its initialisation, its
pretraining data and its fine-tuning order, so two variants are compared seed by seed:

- a cell's interval is the 95% Student-t interval of the mean over seeds, `t(0.975, n-1)·s/√n` (ddof=1);
  with one seed it is the run's bootstrap interval over evaluation examples (result.json `bootstrap`,
  see data/bootstrap.py), a percentile interval, so not symmetric;
- a difference between two variants is paired: `a - b` per seed both have, with its Student-t interval;
  when they share a single seed, the paired bootstrap of that seed's two runs (same examples, same
  resampled indices replicate by replicate) if both stored their replicates, else no interval.
An interval that contains 0 is a tie.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
MAX_SEEDS = 100_000  # the power search gives up beyond this


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% interval; kind "t" (over seeds), "bootstrap" (over evaluation
    examples, one seed) or None (no interval: lo and hi are nan)."""

    mean: float
    lo: float = math.nan
    hi: float = math.nan
    n: int = 0
    kind: str | None = None

    @property
    def known(self) -> bool:
        return self.kind is not None and not (math.isnan(self.lo) or math.isnan(self.hi))

    @property
    def half(self) -> float:
        """Half the interval's width (the "±" of a t interval)."""
        return (self.hi - self.lo) / 2 if self.known else math.nan

    def contains_zero(self) -> bool | None:
        """None without an interval."""
        return self.lo <= 0.0 <= self.hi if self.known else None


@dataclass
class Boot:
    """One run's bootstrap over evaluation examples for one column (result.json `bootstrap.best`)."""

    lo: float
    hi: float
    samples: np.ndarray | None = None  # replicate values, replicate r = same resampled indices in every run
    examples: Any = None  # {task: {"n", "hash"}}: runs resample the same examples only if these agree


@dataclass
class SeedValues:
    """One variant's values in one column, by seed (several runs of one seed are averaged)."""

    values: dict[Hashable, float] = field(default_factory=dict)
    boot: dict[Hashable, Boot] = field(default_factory=dict)  # seed -> its run's bootstrap, when it has one

    def array(self) -> np.ndarray:
        return np.array(list(self.values.values()), dtype=np.float64)


def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """t(1 - α/2, n - 1): the multiplier of s/√n in a two-sided interval over n values."""
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1))


def t_interval(values) -> Interval:
    """Mean ± t(0.975, n-1)·s/√n (sample std, ddof=1); no interval with fewer than 2 values."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return Interval(math.nan)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, n=n)
    half = t_quantile(n) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, "t")


def percentile_interval(samples, confidence: float = CONFIDENCE) -> tuple[float, float]:
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    if not x.size:
        return math.nan, math.nan
    tail = 50.0 * (1.0 - confidence)
    lo, hi = np.percentile(x, [tail, 100.0 - tail])
    return float(lo), float(hi)


def cell_interval(sv: SeedValues) -> Interval:
    """The interval a cell shows: over seeds (t) with ≥ 2 seeds, else the one run's bootstrap, if any."""
    x = sv.array()
    if len(x) != 1:
        return t_interval(x)
    ((seed, value),) = sv.values.items()
    boot = sv.boot.get(seed)
    if boot is None or math.isnan(boot.lo) or math.isnan(boot.hi):
        return Interval(float(value), n=1)
    return Interval(float(value), boot.lo, boot.hi, 1, "bootstrap")


def paired_difference(a: SeedValues, b: SeedValues) -> Interval | None:
    """a − b over the seeds both have: the mean difference with its paired interval (see module doc).
    None when they share no seed."""
    shared = [k for k in a.values if k in b.values]
    if not shared:
        return None
    d = np.array([a.values[k] - b.values[k] for k in shared], dtype=np.float64)
    if len(shared) >= 2:
        return t_interval(d)
    (k,) = shared
    ba, bb = a.boot.get(k), b.boot.get(k)
    if ba is None or bb is None or ba.samples is None or bb.samples is None or ba.examples != bb.examples:
        return Interval(float(d[0]), n=1)
    m = min(len(ba.samples), len(bb.samples))
    lo, hi = percentile_interval(ba.samples[:m] - bb.samples[:m])
    if math.isnan(lo):
        return Interval(float(d[0]), n=1)
    return Interval(float(d[0]), lo, hi, 1, "bootstrap")


def significantly_different(d: Interval | None) -> bool | None:
    """True/False by whether the interval excludes 0 (a two-sided test at 95%); None if unknown."""
    if d is None:
        return None
    contains = d.contains_zero()
    return None if contains is None else not contains


def intervals_overlap(a: Interval, b: Interval) -> bool | None:
    """The fallback without a paired comparison: do two cells' intervals overlap? None if one is missing."""
    if not (a.known and b.known):
        return None
    return a.lo <= b.hi and b.lo <= a.hi


def pooled_paired_sd(differences: list[np.ndarray]) -> tuple[float, int]:
    """(σ, dof) of paired differences pooled over several comparisons, each with ≥ 2 seeds:
    σ² = Σ (nᵢ − 1)·sᵢ² / Σ (nᵢ − 1). (nan, 0) with none."""
    usable = [np.asarray(d, np.float64) for d in differences if len(d) >= 2]
    dof = sum(len(d) - 1 for d in usable)
    if not dof:
        return math.nan, 0
    return math.sqrt(sum((len(d) - 1) * float(d.var(ddof=1)) for d in usable) / dof), dof


def seeds_to_resolve(sigma: float, delta: float = 1.0, confidence: float = CONFIDENCE) -> int | None:
    """The fewest seeds n (≥ 2) whose paired t interval is narrower than ±delta: t(0.975, n−1)·σ/√n < delta.
    None if σ is unknown or more than MAX_SEEDS would be needed."""
    if sigma is None or math.isnan(sigma):
        return None

    def resolves(n: int) -> bool:
        return t_quantile(n, confidence) * sigma / math.sqrt(n) < delta

    if resolves(2):
        return 2
    if not resolves(MAX_SEEDS):
        return None
    lo, hi = 2, MAX_SEEDS  # resolves(lo) is False, resolves(hi) is True; the left side only shrinks with n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if resolves(mid) else (mid, hi)
    return hi


def boot_for(bootstrap: Mapping[str, Any] | None, key: str) -> Boot | None:
    """The bootstrap entry of a result.json for a report column key (best checkpoint only):
    `benchmarks.best.<name>` or `downstream.<task>.best.<metric>`."""
    if not isinstance(bootstrap, Mapping) or not isinstance(bootstrap.get("best"), Mapping):
        return None
    best = bootstrap["best"]
    parts = key.split(".")
    if len(parts) == 3 and parts[:2] == ["benchmarks", "best"]:
        path = ("benchmarks", parts[2])
    elif len(parts) == 4 and parts[0] == "downstream" and parts[2] == "best":
        path = ("tasks", parts[1], parts[3])
    else:
        return None
    ci, samples = _dig(best, path), _dig(best.get("samples"), path)
    if not (isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci)):
        return None
    arr = None  # replicate values: a space-separated string (as data/bootstrap.py writes them) or a list
    if isinstance(samples, str) and samples.strip():
        arr = np.array(samples.split(), dtype=np.float64)
    elif isinstance(samples, (list, tuple)) and samples:
        arr = np.asarray(samples, np.float64)
    return Boot(float(ci[0]), float(ci[1]), arr, best.get("examples"))


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for p in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(p)
    return obj
