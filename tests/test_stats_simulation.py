"""The report's verdicts hold their error rates on synthetic tables with known effects (seeded simulations).

A table compares several rows with one ★ over a few seeds. Seeds move every row together (initialisation,
data order), rows differ in their own noise, and all comparisons share ★'s values, so the tests of one table
are dependent. Holm–Bonferroni must still hold the family-wise false-positive rate at 5 %; the unadjusted
tests, which the tables used to mark, must not (else this test could not tell the two apart). The power
formula behind the seed count must match how often the paired t-test actually detects a true Δ.

Rates are compared within 3 Monte-Carlo standard errors of the number they should hit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from t5explore.report.stats import (
    ALPHA,
    SeedValues,
    compare_all,
    paired_t_p,
    paired_t_power,
    resolved,
    seeds_for_power,
)

TABLES = 2000


def _mc_bound(rate: float, draws: int = TABLES) -> float:
    """3 Monte-Carlo standard errors of a rate estimated from `draws` Bernoulli draws."""
    return 3.0 * math.sqrt(rate * (1.0 - rate) / draws)


def _table(rng: np.random.Generator, effects: list[float], sigmas: list[float], seeds: int) -> dict[str, SeedValues]:
    """★ and one row per effect: value = 50 + seed effect (shared by all rows) + row effect + row noise."""
    seed_effect = rng.normal(0.0, 5.0, seeds)
    rows = {"★": (0.0, 1.0), **{f"r{i}": (e, s) for i, (e, s) in enumerate(zip(effects, sigmas))}}
    return {
        name: SeedValues({k: 50.0 + seed_effect[k] + effect + rng.normal(0.0, sigma) for k in range(seeds)})
        for name, (effect, sigma) in rows.items()
    }


def _false_positive_rates(effects: list[float], sigmas: list[float], seeds: int = 3) -> tuple[float, float]:
    """(family-wise false-positive rate after Holm, the same with unadjusted p) over the rows whose true
    effect is 0, across TABLES synthetic tables."""
    rng = np.random.default_rng(19)
    null = {f"r{i}" for i, e in enumerate(effects) if e == 0.0}
    holm_hits = raw_hits = 0
    for _ in range(TABLES):
        comparisons = compare_all(_table(rng, effects, sigmas, seeds), "★")
        holm_hits += any(resolved(d, p) != 0 for v, (d, p) in comparisons.items() if v in null)
        raw_hits += any(resolved(d, d.p) != 0 for v, (d, _) in comparisons.items() if v in null)
    return holm_hits / TABLES, raw_hits / TABLES


@pytest.mark.parametrize(
    ("effects", "sigmas"),
    [
        ([0.0] * 4, [1.0, 1.0, 3.0, 0.5]),  # every row tied with ★, rows of different noise
        ([0.0, 0.0, 0.0, 0.0, 8.0], [1.0, 2.0, 1.0, 2.0, 1.0]),  # one real effect: the nulls stay controlled
    ],
)
def test_holm_holds_the_family_wise_false_positive_rate_and_raw_tests_do_not(effects, sigmas):
    holm_rate, raw_rate = _false_positive_rates(effects, sigmas)
    assert holm_rate <= ALPHA + _mc_bound(ALPHA), f"Holm's family-wise false-positive rate {holm_rate:.3f}"
    # four tests at 5 % each: the unadjusted family errs far more often than 5 %, so the test above can fail
    assert raw_rate > ALPHA + _mc_bound(ALPHA), f"unadjusted family-wise false-positive rate {raw_rate:.3f}"


@pytest.mark.parametrize(("sigma", "delta"), [(1.0, 1.0), (2.7, 1.0), (1.0, 2.5)])
def test_the_power_formula_matches_simulated_power(sigma, delta):
    """At the seed count seeds_for_power gives, the paired t-test detects the true Δ as often as
    paired_t_power says (≥ 80 %), and at one seed fewer it falls short as predicted."""
    rng = np.random.default_rng(7)
    n = seeds_for_power(sigma, delta)
    for seeds in (n, n - 1):
        if seeds < 2:
            continue
        expected = paired_t_power(seeds, sigma, delta)
        diffs = rng.normal(delta, sigma, size=(TABLES, seeds))
        simulated = float(np.mean([paired_t_p(d) < ALPHA for d in diffs]))
        assert abs(simulated - expected) <= _mc_bound(expected), (seeds, simulated, expected)
    assert paired_t_power(n, sigma, delta) >= 0.8 > paired_t_power(n - 1, sigma, delta) or n == 2
