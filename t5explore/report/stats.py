"""Intervals and paired comparisons behind every table cell (numbers only: no pandas, no formatting).

Design: every variant of a sweep runs the same seeds, and a run's seed fixes its initialisation, its
pretraining data and its fine-tuning order, so two variants are compared seed by seed:

- a cell's interval is the 95% Student-t interval of the mean over seeds, `t(0.975, n-1)·s/√n` (ddof=1);
  with one seed it is the run's bootstrap interval over evaluation examples (result.json `bootstrap`,
  see data/bootstrap.py), a percentile interval, so not symmetric;
- a difference between two variants is paired: `a - b` per seed both have, with its Student-t interval;
  when they share a single seed, the paired bootstrap of that seed's two runs (same examples, same
  resampled indices replicate by replicate) if both stored their replicates, else no interval.
Each difference also carries a two-sided p (paired t on the per-seed differences; one shared seed: the
paired bootstrap's tail share). A table tests a family of differences at once (every row against ★), so
verdicts read the Holm–Bonferroni adjusted p (`holm`, `compare_all`), not the raw interval: an unadjusted
interval that excludes 0 is not yet a finding. The power of a paired t-test comes from the noncentral t
(`seeds_for_power`), and rank agreement with the paper is tested by permuting the rows (`kendall_test`).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE  # the level every verdict is decided at (after Holm)
POWER = 0.8  # the power the seed count is planned for
MAX_SEEDS = 100_000  # the power search gives up beyond this
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% interval; kind "t" (over seeds), "bootstrap" (over evaluation
    examples, one seed) or None (no interval: lo and hi are nan)."""

    mean: float
    lo: float = math.nan
    hi: float = math.nan
    n: int = 0
    kind: str | None = None
    p: float = math.nan  # a difference's two-sided unadjusted p (nan for a cell, or without a test)

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


@functools.lru_cache(maxsize=256)
def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """t(1 - α/2, n - 1): the multiplier of s/√n in a two-sided interval over n values."""
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1))


def t_interval(values: ArrayLike) -> Interval:
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


def percentile_interval(samples: ArrayLike, confidence: float = CONFIDENCE) -> tuple[float, float]:
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
    """a − b over the seeds both have: the mean difference with its paired interval and raw p (see the
    module doc). None when they share no seed; no interval and no p with one shared seed and no replicates."""
    shared = [k for k in a.values if k in b.values]
    if not shared:
        return None
    d = np.array([a.values[k] - b.values[k] for k in shared], dtype=np.float64)
    if len(shared) >= 2:
        iv = t_interval(d)
        return Interval(iv.mean, iv.lo, iv.hi, iv.n, iv.kind, paired_t_p(d))
    (k,) = shared
    ba, bb = a.boot.get(k), b.boot.get(k)
    if ba is None or bb is None or ba.samples is None or bb.samples is None or ba.examples != bb.examples:
        return Interval(float(d[0]), n=1)
    m = min(len(ba.samples), len(bb.samples))
    replicates = ba.samples[:m] - bb.samples[:m]
    lo, hi = percentile_interval(replicates)
    if math.isnan(lo):
        return Interval(float(d[0]), n=1)
    return Interval(float(d[0]), lo, hi, 1, "bootstrap", bootstrap_p(replicates))


def paired_t_p(d: ArrayLike) -> float:
    """Two-sided p of the paired t-test that the mean of the per-seed differences `d` is 0 (nan with < 2).
    Identical differences have s = 0: p is 0 if they are not 0, else 1."""
    x = np.asarray(d, dtype=np.float64)
    if len(x) < 2:
        return math.nan
    mean, s = float(x.mean()), float(x.std(ddof=1))
    if s == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    t = mean / (s / math.sqrt(len(x)))
    return float(2.0 * stats.t.sf(abs(t), len(x) - 1))


def bootstrap_p(replicates: ArrayLike) -> float:
    """Two-sided bootstrap p that a difference is 0: twice the smaller share of replicates on either side of
    0, counting the observed one ((k + 1) / (R + 1)) so it is never 0; nan without replicates."""
    x = np.asarray(replicates, dtype=np.float64)
    x = x[np.isfinite(x)]
    if not x.size:
        return math.nan
    tail = min(int((x <= 0).sum()), int((x >= 0).sum()))
    return min(1.0, 2.0 * (tail + 1) / (x.size + 1))


def holm(pvalues: Mapping[K, float]) -> dict[K, float]:
    """Holm–Bonferroni adjusted p-values of one family (step-down: the i-th smallest of m is multiplied by
    m − i + 1, kept monotone, capped at 1). It controls the family-wise error rate at any dependence
    between the tests (rows compared with one ★ share ★'s values). A nan p is not tested: it stays nan
    and does not count in m."""
    tested = sorted((k for k, p in pvalues.items() if not math.isnan(p)), key=lambda k: pvalues[k])
    out = {k: math.nan for k in pvalues}
    running = 0.0
    for i, k in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - i) * pvalues[k]))
        out[k] = running
    return out


def compare_all(values: Mapping[K, SeedValues], reference: K) -> dict[K, tuple[Interval | None, float]]:
    """Every other entry minus `reference`, paired by seed: {key: (difference with its raw p, Holm p)},
    the Holm family being these comparisons (those with a test). Entries without a value are left out."""
    deltas = {k: paired_difference(sv, values[reference]) for k, sv in values.items() if k != reference and sv.values}
    adjusted = holm({k: d.p for k, d in deltas.items() if d is not None})
    return {k: (d, adjusted.get(k, math.nan)) for k, d in deltas.items()}


def resolved(d: Interval | None, p_adjusted: float, alpha: float = ALPHA) -> int:
    """+1 / −1 when the difference is resolved above / below 0 at the adjusted level, 0 when it is not
    (a tie), and 0 without a test."""
    if d is None or math.isnan(p_adjusted) or p_adjusted >= alpha or d.mean == 0.0:
        return 0
    return 1 if d.mean > 0 else -1


def paired_t_power(n: int, sigma: float, delta: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test at level alpha over n seeds when the per-seed differences have
    mean delta and std sigma: P(|T| > t(1 − α/2, n − 1)) with T noncentral t, nc = delta·√n/σ. Where
    scipy's noncentral t gives no number (very large n or nc) the normal limit with the t critical value is
    used, which it converges to."""
    if n < 2:
        return 0.0
    if sigma == 0.0:
        return 1.0 if delta != 0.0 else alpha
    crit = float(stats.t.ppf(1.0 - alpha / 2.0, n - 1))
    nc = abs(delta) * math.sqrt(n) / sigma
    power = float(stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc))
    if not math.isfinite(power):
        power = float(stats.norm.sf(crit - nc) + stats.norm.cdf(-crit - nc))
    return power


def seeds_for_power(sigma: float, delta: float = 1.0, power: float = POWER, alpha: float = ALPHA) -> int | None:
    """The fewest seeds n (≥ 2) at which the paired t-test detects a true difference `delta` with the given
    power (see paired_t_power). None if σ is unknown or more than MAX_SEEDS would be needed.

    The search starts at the normal approximation n ≈ ((z(1 − α/2) + z(power))·σ/Δ)², which the t-test
    never beats, and steps up: a few noncentral-t evaluations, whatever σ is."""
    if sigma is None or math.isnan(sigma) or delta == 0.0:
        return None
    z = float(stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power))
    n = max(2, math.floor((z * sigma / abs(delta)) ** 2))
    if n > MAX_SEEDS:
        return None
    while n > 2 and paired_t_power(n - 1, sigma, delta, alpha) >= power:
        n -= 1
    while paired_t_power(n, sigma, delta, alpha) < power:
        if n >= MAX_SEEDS:
            return None
        n += 1
    return n


EXACT_UP_TO = 8  # rows: up to 8! = 40,320 orders are enumerated; more are sampled
MC_PERMUTATIONS = 20_000
MC_SEED = 20_240  # the Monte-Carlo orders are a fixed draw, so a table regenerates byte for byte


@dataclass(frozen=True)
class RankTest:
    """Kendall τ-b between two orderings with its permutation test (see kendall_test)."""

    tau: float
    n: int
    p: float = math.nan  # two-sided: the share of orders of our rows whose |τ| is at least ours
    min_p: float = math.nan  # the smallest p these n rows can reach (an order agreeing perfectly)
    exact: bool = True  # all n! orders enumerated; else MC_PERMUTATIONS random orders from MC_SEED
    orders: int = 0  # orders counted

    def beyond_chance(self, alpha: float = ALPHA) -> bool:
        return not math.isnan(self.p) and self.p < alpha


def kendall_tau_b(x: Iterable[float | None], y: Iterable[float | None]) -> float:
    """τ-b over the pairs where both are known (nan with fewer than 2, or when one side is all ties)."""
    xs, ys = _known_pairs(x, y)
    if len(xs) < 2:
        return math.nan
    s, denominator = _concordance(xs[None, :], ys)
    return float(s[0] / denominator) if denominator else math.nan


def kendall_test(x: Iterable[float | None], y: Iterable[float | None]) -> RankTest:
    """τ-b of x against y and its two-sided permutation p: under the null the rows' x values are in a random
    order relative to y, so p is the share of the n! orders (exact for n ≤ EXACT_UP_TO, else a fixed
    Monte-Carlo sample, p = (k + 1)/(R + 1)) whose |τ| reaches the observed |τ|. Ties stay tied under
    permutation, so τ-b's denominator is the same for every order and S alone decides."""
    xs, ys = _known_pairs(x, y)
    n = len(xs)
    tau = kendall_tau_b(xs, ys)
    if math.isnan(tau):
        return RankTest(tau, n)
    exact = n <= EXACT_UP_TO
    orders = _all_orders(n) if exact else _sampled_orders(n)
    s, _ = _concordance(xs[orders], ys)
    observed, _ = _concordance(xs[None, :], ys)
    at_least = np.abs(s) >= abs(observed[0]) - 1e-9
    if exact:
        p = float(at_least.mean())
        min_p = float((np.abs(s) >= np.abs(s).max() - 1e-9).mean())
    else:
        p, min_p = (int(at_least.sum()) + 1) / (len(s) + 1), math.nan
    return RankTest(tau, n, p, min_p, exact, len(s))


def _known_pairs(x: Iterable[float | None], y: Iterable[float | None]) -> tuple[np.ndarray, np.ndarray]:
    xs = np.asarray(list(x), dtype=np.float64)
    ys = np.asarray(list(y), dtype=np.float64)
    keep = np.isfinite(xs) & np.isfinite(ys)
    return xs[keep], ys[keep]


def _concordance(xs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """(S per row of xs: Σ_{i<j} sign(x_i − x_j)·sign(y_i − y_j), τ-b's denominator √((n0 − n1)(n0 − n2)))."""
    i, j = np.triu_indices(len(y), 1)
    sy = np.sign(y[i] - y[j])
    sx = np.sign(xs[:, i] - xs[:, j])
    n0 = len(i)
    denominator = math.sqrt(float(n0 - (sx[0] == 0).sum()) * float(n0 - (sy == 0).sum()))
    return sx @ sy, denominator


@functools.lru_cache(maxsize=EXACT_UP_TO)
def _all_orders(n: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(n))), dtype=np.intp).reshape(-1, n)


def _sampled_orders(n: int) -> np.ndarray:
    rng = np.random.default_rng(MC_SEED)
    return rng.permuted(np.tile(np.arange(n), (MC_PERMUTATIONS, 1)), axis=1)


def distinct_resamples(draws: np.ndarray) -> int:
    """How many different multisets of seeds a seed bootstrap drew (order within a draw does not matter):
    3 seeds allow only 10, however many replicates are drawn."""
    if not len(draws):
        return 0
    return int(np.unique(np.sort(np.asarray(draws), axis=1), axis=0).shape[0])


def boot_for(bootstrap: Mapping[str, Any] | None, key: str) -> Boot | None:
    """The bootstrap entry of a result.json for a report column key (best checkpoint only):
    `benchmarks.best.<name>` or `downstream.<task>.best.<metric>`."""
    if not isinstance(bootstrap, Mapping) or not isinstance(bootstrap.get("best"), Mapping):
        return None
    best = bootstrap["best"]
    parts = key.split(".")
    path: tuple[str, ...]
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
