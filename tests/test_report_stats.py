"""The report's statistics against hand-computed values: t intervals, paired differences and their p, Holm,
power, Kendall τ's permutation test, bootstrap lookup. (Their error rates are simulated in
test_stats_simulation.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from t5explore.report.stats import (
    MC_PERMUTATIONS,
    Boot,
    Interval,
    SeedValues,
    boot_for,
    bootstrap_p,
    cell_interval,
    compare_all,
    distinct_resamples,
    holm,
    kendall_tau_b,
    kendall_test,
    paired_difference,
    paired_t_p,
    paired_t_power,
    resolved,
    seeds_for_power,
    t_interval,
    t_quantile,
)


def test_t_interval_hand_computed():
    iv = t_interval([1.0, 2.0, 3.0])  # mean 2, s = 1, t(0.975, 2) = 4.303 -> ± 4.303/√3 = 2.484
    assert iv.mean == 2.0 and iv.n == 3 and iv.kind == "t"
    assert iv.half == pytest.approx(2.4842, abs=1e-4)
    assert (iv.lo, iv.hi) == pytest.approx((2 - 2.4842, 2 + 2.4842), abs=1e-4)
    assert t_quantile(2) == pytest.approx(12.7062, abs=1e-4) and t_quantile(31) == pytest.approx(2.0423, abs=1e-4)
    one = t_interval([5.0])
    assert one.mean == 5.0 and one.kind is None and not one.known and math.isnan(one.half)
    assert math.isnan(t_interval([]).mean)
    assert Interval(0.5, -0.1, 1.1, 3, "t").contains_zero() and not Interval(0.5, 0.1, 0.9, 3, "t").contains_zero()
    assert Interval(0.5).contains_zero() is None


def test_paired_difference_uses_only_shared_seeds_and_differs_from_the_unpaired_difference():
    a = SeedValues({0: 10.0, 1: 20.0, 2: 30.0, 3: 99.0})
    b = SeedValues({0: 9.0, 1: 18.0, 2: 30.0, 4: 0.0})
    d = paired_difference(a, b)  # seeds 0, 1, 2: differences 1, 2, 0 -> 1 ± 2.484
    assert (d.mean, d.n, d.kind) == (1.0, 3, "t") and d.half == pytest.approx(2.4842, abs=1e-4)
    assert d.mean != a.array().mean() - b.array().mean()  # 39.75 − 14.25 unpaired
    assert paired_difference(SeedValues({0: 1.0}), SeedValues({1: 1.0})) is None


def test_one_shared_seed_pairs_bootstrap_replicates_only_for_the_same_examples():
    base = np.linspace(-1, 1, 201)
    a = SeedValues({0: 5.0}, {0: Boot(3.0, 7.0, 5.0 + base, {"t": {"n": 9, "hash": "x"}})})
    b = SeedValues({0: 4.0}, {0: Boot(2.0, 6.0, 4.0 + 0.5 * base, {"t": {"n": 9, "hash": "x"}})})
    d = paired_difference(a, b)  # replicate differences 1 + 0.5·base: percentiles 1 ± 0.5·0.95
    assert d.kind == "bootstrap" and d.mean == 1.0 and (d.lo, d.hi) == pytest.approx((0.525, 1.475))
    b.boot[0].examples = {"t": {"n": 9, "hash": "y"}}
    d = paired_difference(a, b)
    assert d.kind is None and d.mean == 1.0 and d.n == 1
    assert cell_interval(a) == Interval(5.0, 3.0, 7.0, 1, "bootstrap")
    assert cell_interval(SeedValues({0: 5.0})) == Interval(5.0, n=1)


def test_paired_t_p_and_bootstrap_p_hand_computed():
    # 1, 2, 3: t = 2/(1/√3) = 3.464 with 2 dof -> p = 0.0742 (scipy's one-sample t-test agrees)
    assert paired_t_p([1.0, 2.0, 3.0]) == pytest.approx(0.07418, abs=1e-4)
    assert paired_t_p([1.0, 2.0, 3.0]) == pytest.approx(stats.ttest_1samp([1.0, 2.0, 3.0], 0.0).pvalue)
    assert paired_t_p([5.0, 5.0]) == 0.0 and paired_t_p([0.0, 0.0]) == 1.0 and math.isnan(paired_t_p([1.0]))
    base = np.linspace(-1, 1, 201)
    assert bootstrap_p(1.0 + 0.5 * base) == pytest.approx(2 / 202)  # no replicate at or below 0
    assert bootstrap_p(base) == 1.0 and math.isnan(bootstrap_p([]))
    d = paired_difference(SeedValues({0: 3.0, 1: 5.0, 2: 7.0}), SeedValues({0: 2.0, 1: 3.0, 2: 4.0}))
    assert d.p == pytest.approx(0.07418, abs=1e-4)  # the differences 1, 2, 3 again


def test_holm_adjusts_step_down_and_keeps_untested_out_of_the_family():
    # m = 3 tested: a 0.01·3 = 0.03; c 0.03·2 = 0.06; b 0.04·1 = 0.04, raised to 0.06 to stay monotone
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": math.nan})
    assert adjusted["a"] == pytest.approx(0.03) and adjusted["b"] == adjusted["c"] == pytest.approx(0.06)
    assert math.isnan(adjusted["d"]) and holm({}) == {} and holm({"x": 0.6, "y": 0.7}) == {"x": 1.0, "y": 1.0}


def test_compare_all_pairs_every_row_with_the_reference_and_adjusts_their_p_together():
    ref = SeedValues({0: 10.0, 1: 20.0, 2: 30.0})
    values = {
        "ref": ref,
        "up": SeedValues({0: 15.0, 1: 25.0, 2: 35.1}),  # +5, +5, +5.1: p ≈ 0.0004
        "flat": SeedValues({0: 11.0, 1: 19.0, 2: 30.5}),  # +1, −1, +0.5
        "one": SeedValues({0: 50.0}),  # one shared seed, no bootstrap: no test, not in the family
        "none": SeedValues({7: 1.0}),
    }
    out = compare_all(values, "ref")
    up_d, up_p = out["up"]
    assert up_p == pytest.approx(2 * up_d.p)  # the smaller of 2 tested p-values is doubled
    assert resolved(up_d, up_p) == 1 and resolved(*out["flat"]) == 0
    assert out["one"][0].n == 1 and math.isnan(out["one"][1]) and resolved(*out["one"]) == 0
    assert out["none"] == (None, pytest.approx(math.nan, nan_ok=True)) and "ref" not in out


def test_power_and_seeds_match_the_textbook_one_sample_t_values():
    # Cohen's d = Δ/σ. A two-sided one-sample t-test at α = 0.05 needs n = 10 for d = 1 (power 0.803)
    # and n = 34 for d = 0.5 (G*Power); the normal approximation would say 8 and 32.
    assert paired_t_power(10, 1.0, 1.0) == pytest.approx(0.8031, abs=1e-3)
    assert paired_t_power(9, 1.0, 1.0) < 0.8 <= paired_t_power(10, 1.0, 1.0)
    assert seeds_for_power(1.0) == 10 and seeds_for_power(2.0) == 34
    assert seeds_for_power(1.0, 2.0) == seeds_for_power(0.5)  # only Δ/σ matters
    assert seeds_for_power(0.0) == 2 and seeds_for_power(math.nan) is None and seeds_for_power(1e6) is None
    for sigma in (0.3, 2.5, 7.0):  # the fewest: n has the power, n − 1 does not
        n = seeds_for_power(sigma)
        assert paired_t_power(n, sigma, 1.0) >= 0.8 > paired_t_power(n - 1, sigma, 1.0)


def test_kendall_permutation_p_exact_and_monte_carlo():
    t = kendall_test([1, 2, 3, 4], [10, 30, 20, 40])  # one discordant pair of 6: τ = 4/6
    # |τ| ≥ 2/3 for 8 of the 24 orders (0 or 1 inversion, 5 or 6): p = 1/3; a perfect order gets 2/24.
    assert t.tau == pytest.approx(2 / 3) and t.p == pytest.approx(1 / 3) and t.min_p == pytest.approx(1 / 12)
    assert t.exact and t.orders == 24 and not t.beyond_chance()
    assert kendall_test([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]).p == pytest.approx(2 / 120)
    rng = np.random.default_rng(0)
    for x, y in ([rng.normal(size=6), rng.integers(0, 3, size=6)], [[1, 1, 2, 3, float("nan")], [4, 3, 2, 1, 0]]):
        known = ~np.isnan(np.asarray(x, float))
        assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(np.asarray(x)[known], np.asarray(y)[known])[0])
    x = rng.normal(size=9)
    y = x + rng.normal(size=9)  # 9 rows: a fixed Monte-Carlo sample, within its error of scipy's exact p
    mc, exact = kendall_test(x, y), stats.kendalltau(x, y, method="exact").pvalue
    assert not mc.exact and mc.orders == MC_PERMUTATIONS and mc == kendall_test(x, y)
    assert abs(mc.p - exact) < 4 * math.sqrt(exact * (1 - exact) / MC_PERMUTATIONS) + 1e-4
    assert math.isnan(kendall_test([1.0], [2.0]).p) and math.isnan(kendall_test([1, 1, 1], [1, 2, 3]).tau)


def test_distinct_resamples_counts_multisets():
    draws = np.random.default_rng(0).integers(0, 3, size=(1000, 3))
    assert distinct_resamples(draws) == 10  # C(3 + 3 − 1, 3): however many replicates
    assert distinct_resamples(np.array([[0, 1], [1, 0], [1, 1]])) == 2 and distinct_resamples(np.zeros((0, 0))) == 0


def test_boot_for_maps_report_columns_to_the_stored_bootstrap():
    boot = {
        "best": {
            "tasks": {"glue_cola": {"matthews_corr": [1.0, 3.0]}},
            "benchmarks": {"glue_average": [2.0, 4.0]},
            "examples": {"glue_cola": {"n": 3, "hash": "h"}},
            "samples": {"tasks": {"glue_cola": {"matthews_corr": "1 2.5 3"}}, "benchmarks": {}},
        }
    }
    cola = boot_for(boot, "downstream.glue_cola.best.matthews_corr")
    assert (cola.lo, cola.hi) == (1.0, 3.0) and cola.samples.tolist() == [1.0, 2.5, 3.0]
    glue = boot_for(boot, "benchmarks.best.glue_average")
    assert (glue.lo, glue.hi) == (2.0, 4.0) and glue.samples is None
    assert boot_for(boot, "benchmarks.last.glue_average") is None  # only the best checkpoint is bootstrapped
    assert boot_for(boot, "pretrain.final_loss") is None and boot_for(None, "benchmarks.best.glue_average") is None
    boot["best"]["benchmarks"]["glue_average"] = None  # an undefined interval
    assert boot_for(boot, "benchmarks.best.glue_average") is None
