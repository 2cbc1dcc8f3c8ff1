"""The report's statistics against hand-computed values: t intervals, paired differences, power, bootstrap lookup."""

from __future__ import annotations

import math

import numpy as np
import pytest

from t5explore.report.stats import (
    Boot,
    Interval,
    SeedValues,
    boot_for,
    cell_interval,
    intervals_overlap,
    paired_difference,
    pooled_paired_sd,
    seeds_to_resolve,
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


def test_interval_overlap_fallback():
    assert intervals_overlap(Interval(1, 0, 2, 1, "bootstrap"), Interval(3, 1.9, 4, 1, "bootstrap"))
    assert not intervals_overlap(Interval(1, 0, 2, 1, "bootstrap"), Interval(3, 2.1, 4, 1, "bootstrap"))
    assert intervals_overlap(Interval(1, 0, 2, 1, "bootstrap"), Interval(3, n=1)) is None


def test_pooled_sd_and_seeds_to_resolve_one_point():
    sigma, dof = pooled_paired_sd([np.array([1.0, 3.0]), np.array([0.0, 2.0, 4.0]), np.array([7.0])])
    assert dof == 3 and sigma == pytest.approx(math.sqrt((1 * 2.0 + 2 * 4.0) / 3))  # the one-seed array is skipped
    assert pooled_paired_sd([]) == (pytest.approx(math.nan, nan_ok=True), 0)
    # σ = 1: t(0.975, 5)/√6 = 1.050 ≥ 1, t(0.975, 6)/√7 = 0.925 < 1 -> 7 (normal approximation: 1.96² -> 4).
    assert seeds_to_resolve(1.0) == 7
    assert seeds_to_resolve(math.sqrt(2)) == 11
    assert seeds_to_resolve(0.0) == 2 and seeds_to_resolve(math.nan) is None and seeds_to_resolve(1e6) is None
    for sigma in (0.3, 2.5, 7.0):  # the fewest: n resolves, n − 1 does not
        n = seeds_to_resolve(sigma)
        assert t_quantile(n) * sigma / math.sqrt(n) < 1 <= t_quantile(n - 1) * sigma / math.sqrt(n - 1)


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
