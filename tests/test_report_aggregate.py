"""Aggregation over seeds: intervals, paired Δ vs ★ with Holm-adjusted marks, the bold rule and per-row power,
on hand-made results with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_report_helpers import GLUE_LABEL, SWEEP, known_sweep, make_result, write_run

from t5explore.report.aggregate import default_columns, per_task_columns, summarize
from t5explore.report.results import ReportError, load_results

GLUE, SQUAD, STDLIB = (
    "benchmarks.best.glue_average",
    "benchmarks.best.squad_em",
    "downstream.stdlib_module.best.accuracy",
)
LOSS = "pretrain.final_loss"


@pytest.fixture()
def results(tmp_path):
    results = load_results(known_sweep(tmp_path))
    # Rows that differ in the model, not the objective, so their losses are ranked like scores (see
    # test_losses_are_ranked_only_between_rows_with_the_same_objective).
    results.runs["variant_bindings"] = results.runs["variant"].map(lambda v: f'{{"T5Config.num_layers": "{v}"}}')
    return results


def test_mean_sample_std_and_n(results):
    s = summarize(results)
    iid, mu2, mu3, mu10 = (s.cell(v, GLUE) for v in ["i.i.d.", "μ = 2", "μ = 3", "μ = 10"])
    assert (iid.mean, iid.std, iid.n) == (82.0, 2.0, 3)  # 80/82/84, ddof=1
    assert (mu2.mean, mu2.n) == (86.0, 2) and mu2.std == pytest.approx(math.sqrt(2))
    assert mu3.mean == 79.0 and mu3.n == 1 and math.isnan(mu3.std)
    assert mu10.n == 0 and math.isnan(mu10.mean)
    assert s.cell("i.i.d.", LOSS).mean == pytest.approx(3.2)
    assert s.n_runs == {"i.i.d.": 3, "μ = 2": 2, "μ = 3": 1, "μ = 10": 0}
    assert s.variants == ["i.i.d.", "μ = 2", "μ = 3", "μ = 10"] and s.baseline == "i.i.d."


def test_cells_carry_the_95_percent_t_interval_over_seeds(results):
    s = summarize(results)
    iid = s.cell("i.i.d.", GLUE)  # 80/82/84: s = 2, t(0.975, 2) = 4.303 -> ± 4.303·2/√3 = 4.968
    assert iid.ci.kind == "t" and iid.ci.half == pytest.approx(4.302653 * 2 / math.sqrt(3), rel=1e-6)
    assert (iid.lo, iid.hi) == pytest.approx((82 - 4.968275, 82 + 4.968275), rel=1e-6)
    mu2 = s.cell("μ = 2", GLUE)  # 85/87: s = √2, t(0.975, 1) = 12.706 -> ± 12.706
    assert mu2.ci.half == pytest.approx(12.7062047)
    mu3 = s.cell("μ = 3", GLUE)  # one seed, no stored bootstrap: no interval
    assert mu3.ci.kind is None and math.isnan(mu3.lo)


def test_bold_is_decided_by_holm_adjusted_paired_tests_against_the_best(results):
    s = summarize(results)
    bold = {c: [s.cell(v, c).bold for v in s.variants] for c in (GLUE, SQUAD, STDLIB, LOSS)}
    # GLUE: best μ = 2 (86). i.i.d. (82) is within 2σ (σ = 2) unpaired, but on seeds 0 and 1 it trails by
    # exactly 5 and 5 (p = 0, the only test in the family): resolved below, not bold. μ = 3 shares one seed
    # with μ = 2 and has no bootstrap: untested, so unresolved and bold.
    assert bold[GLUE] == [False, True, True, False]
    assert s.bold_rules[GLUE] == {"paired t", "untested"} and s.sigma == {}
    # SQuAD: best μ = 3 (one seed, no interval): nothing can be tested against it, so nothing is bold.
    assert bold[SQUAD] == [False] * 4 and s.bold_rules[SQUAD] == {"untested", "none resolved"}
    # stdlib: best μ = 2 (40, 40) vs i.i.d. (30, 32): −10, −8, p = 0.070: not resolved; a table that would
    # bold every row bolds none.
    assert bold[STDLIB] == [False] * 4 and "none resolved" in s.bold_rules[STDLIB]
    # Loss (lower is better): best μ = 2; i.i.d. is 0.1 worse on both shared seeds.
    assert bold[LOSS] == [False, True, True, False]
    # The paper's rule on the same numbers, given σ = 2, disagrees on both columns.
    paper = summarize(results, baseline_std={"GLUE": 2.0, "stdlib acc": 2.0})
    assert [paper.cell(v, GLUE).bold for v in s.variants] == [True, True, False, False]
    assert [paper.cell(v, STDLIB).bold for v in s.variants] == [False, True, True, False]
    assert paper.bold_rules[GLUE] == {"2σ"}


def test_delta_vs_baseline_is_paired_and_ties_are_called_ties(results):
    s = summarize(results)
    mu2 = s.cell("μ = 2", GLUE)  # 85-80, 87-82
    assert (mu2.delta.mean, mu2.delta.lo, mu2.delta.hi, mu2.delta.n) == (5.0, 5.0, 5.0, 2)
    assert mu2.mark == "▲" and mu2.tie is False
    assert s.cell("μ = 2", SQUAD).mark == "▼"  # 40-50, 42-52
    tie = s.cell("μ = 2", STDLIB)  # 10, 8: 9 ± 12.706 straddles 0, p = 0.070
    assert tie.delta.mean == 9.0 and tie.delta.lo < 0 < tie.delta.hi and tie.tie is True and tie.mark == "≈"
    assert tie.delta.p == pytest.approx(0.07045, abs=1e-5) and tie.p_holm == tie.delta.p  # a family of one
    assert [s.family[c] for c in (GLUE, SQUAD, STDLIB, LOSS)] == [1] * 4  # μ = 3 has no test, μ = 10 no value
    assert s.cell("μ = 2", LOSS).mark == "▲"  # lower loss is better: 2.9-3.0, 3.1-3.2
    one = s.cell("μ = 3", GLUE)  # one shared seed, no bootstrap: a difference without an interval
    assert one.delta.mean == -1.0 and one.delta.n == 1 and not one.delta.known and one.tie is None and one.mark == ""
    assert math.isnan(one.delta.p) and math.isnan(one.p_holm)
    assert s.cell("i.i.d.", GLUE).delta is None and s.cell("μ = 10", GLUE).delta is None


def test_holm_turns_a_raw_win_into_a_tie_when_the_family_grows(tmp_path):
    """Two rows each beat ★ at p < 0.05 unadjusted (their CIs exclude 0); tested together, Holm doubles the
    smaller p and neither survives. Alone, the same row is a win."""
    d = tmp_path / SWEEP
    base = [10.0, 20.0, 30.0]
    rows = {"V": [2.0, 3.0, 4.2], "W": [2.1, 3.2, 4.0]}  # raw p 0.040 and 0.030
    for seed, b in enumerate(base):
        write_run(d, make_result(SWEEP, f"b{seed}", "B", seed, baseline=True, glue=b))
        for v, diffs in rows.items():
            write_run(d, make_result(SWEEP, f"{v.lower()}{seed}", v, seed, glue=b + diffs[seed]))
    s = summarize(load_results(d))
    v, w = s.cell("V", GLUE), s.cell("W", GLUE)
    assert v.delta.lo > 0 and w.delta.lo > 0 and v.delta.p < 0.05 and w.delta.p < 0.05
    assert w.p_holm == pytest.approx(2 * w.delta.p) and v.p_holm == pytest.approx(max(v.delta.p, 2 * w.delta.p))
    assert v.mark == w.mark == "≈" and s.family[GLUE] == 2
    for seed in range(3):
        (d / f"w{seed}" / "result.json").unlink()
    alone = summarize(load_results(d)).cell("V", GLUE)
    assert alone.p_holm == pytest.approx(v.delta.p) and alone.mark == "▲"


def test_power_is_per_row_from_its_own_paired_sigma(results):
    s = summarize(results)
    # only μ = 2 shares ≥ 2 seeds with ★: stdlib differences 10, 8 -> σ = √2 (d = 1/√2: 18 seeds for 80%)
    assert list(s.power[STDLIB]) == ["μ = 2"]
    stdlib = s.power[STDLIB]["μ = 2"]
    assert stdlib.sigma == pytest.approx(math.sqrt(2)) and stdlib.n == 2 and stdlib.seeds == 18
    assert s.power[GLUE]["μ = 2"].sigma == 0.0 and s.power[GLUE]["μ = 2"].seeds == 2
    assert LOSS not in s.power  # Δ and power are for the headline score columns
    # a larger Δ to detect needs fewer seeds: Δ = 2 at σ = √2 is d = √2, 7 seeds (the normal approximation: 4)
    assert summarize(results, power_delta=2.0).power[STDLIB]["μ = 2"].seeds == 7
    with pytest.raises(ReportError, match="power delta must be a number > 0"):
        summarize(results, power_delta=0)


def test_user_baseline_std_overrides_seed_std(results):
    s = summarize(results, baseline_std={"GLUE": 0.5, "squad_em": 5.0, "benchmarks.best.glue_average": 0.5})
    assert [s.cell(v, GLUE).bold for v in s.variants] == [False, True, False, False]  # ≥ 85 only
    assert [s.cell(v, SQUAD).bold for v in s.variants] == [True, False, True, False]  # ≥ 50
    with pytest.raises(ReportError, match="'CNNDM', which names no column"):
        summarize(results, baseline_std={"CNNDM": 0.065})
    s = summarize(results, baseline_std={"CNNDM": 0.065}, strict_std=False)
    assert s.sigma == {} and s.bold_rules[GLUE] == {"paired t", "untested"}  # paired testing is the default


def test_two_seeds_give_a_wide_paired_interval_and_the_baseline_with_one_seed_pairs_once(tmp_path):
    d = tmp_path / SWEEP
    for run, variant, seed, glue in [
        ("b0", "B", 0, 70.0),
        ("a0", "A", 0, 80.0),
        ("a1", "A", 1, 82.0),
        ("c0", "C", 0, 90.0),
        ("c1", "C", 1, 94.0),
    ]:
        write_run(d, make_result(SWEEP, run, variant, seed, baseline=variant == "B", glue=glue))
    s = summarize(load_results(d))
    # A − C per seed: −10, −12 -> p = 0.058: A is not resolved below the best, and B (one seed, no bootstrap)
    # cannot be tested: nothing is resolved, so nothing is bold.
    assert {v: s.cell(v, GLUE).bold for v in s.variants} == {"A": False, "B": False, "C": False}
    assert s.bold_rules[GLUE] == {"paired t", "untested", "none resolved"}
    assert s.cell("A", GLUE).delta.n == 1 and s.power[GLUE] == {}  # no row shares 2 seeds with ★
    assert s.baseline == "B"  # from result.json, there is no sweep.json


def test_correlated_seeds_make_the_paired_delta_narrower_than_the_unpaired_difference(tmp_path):
    d = tmp_path / SWEEP
    base, variant = [70.0, 80.0, 90.0], [71.0, 81.5, 90.5]  # seeds move both a lot; the variant is ~1 better
    for seed, (b, v) in enumerate(zip(base, variant)):
        write_run(d, make_result(SWEEP, f"b{seed}", "B", seed, baseline=True, glue=b))
        write_run(d, make_result(SWEEP, f"v{seed}", "V", seed, glue=v))
    s = summarize(load_results(d))
    cell, b = s.cell("V", GLUE), s.cell("B", GLUE)
    # Paired: differences 1, 1.5, 0.5 -> 1 ± 4.303·0.5/√3 = 1 ± 1.242: a tie, but a narrow one.
    assert cell.delta.mean == pytest.approx(1.0) and cell.delta.half == pytest.approx(4.302653 * 0.5 / math.sqrt(3))
    # Unpaired, the two means' intervals (± 24.8 each) would say nothing at all.
    assert b.ci.half > 20 and cell.ci.half > 20 and cell.delta.half < 1.3
    assert cell.mark == "≈"
    write_run(d, make_result(SWEEP, "v2", "V", 2, glue=91.5))  # differences 1, 1.5, 1.5: resolved
    cell = summarize(load_results(d)).cell("V", GLUE)
    assert cell.delta.lo > 0 and cell.mark == "▲" and cell.tie is False
    assert cell.delta.p == pytest.approx(0.01527, abs=1e-5)


def test_one_seed_uses_the_stored_bootstrap_for_cells_delta_and_bold(tmp_path):
    from test_report_helpers import add_bootstrap

    d = tmp_path / SWEEP
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1.0, 1000)  # replicate r resamples the same examples in every run of seed 0
    runs = {
        "B": (70.0, 70.0 + noise),
        "V": (73.0, 73.0 + 1.3 * noise),
        "W": (71.0, 71.0 + noise + rng.normal(0, 3, 1000)),
    }
    for variant, (score, samples) in runs.items():
        res = make_result(SWEEP, variant.lower(), variant, 0, baseline=variant == "B", stdlib=score)
        write_run(d, add_bootstrap(res, {"stdlib_module.accuracy": samples}))
    s = summarize(load_results(d))
    b, v, w = (s.cell(x, STDLIB) for x in "BVW")
    assert b.ci.kind == "bootstrap" and (b.lo, b.hi) == pytest.approx(tuple(np.percentile(runs["B"][1], [2.5, 97.5])))
    # V − B per replicate = 0.3·noise + 3 (paired): [3 − 0.59, 3 + 0.59] excludes 0; no replicate ≤ 0, so the
    # bootstrap p is 2/1001, doubled by Holm over the family {V, W}.
    assert v.delta.kind == "bootstrap" and v.delta.mean == 3.0 and v.mark == "▲"
    assert v.delta.p == pytest.approx(2 / 1001) and v.p_holm == pytest.approx(4 / 1001) and s.family[STDLIB] == 2
    assert (v.delta.lo, v.delta.hi) == pytest.approx(tuple(np.percentile(runs["V"][1] - runs["B"][1], [2.5, 97.5])))
    assert w.delta.kind == "bootstrap" and w.mark == "≈"  # W − B = 1 + N(0, 3): a tie
    # Bold: V is best; W − V is paired-bootstrapped too (W's wide noise: not resolved), B is resolved below.
    assert [s.cell(x, STDLIB).bold for x in "BVW"] == [False, True, True]
    assert s.bold_rules[STDLIB] == {"paired bootstrap"}


def test_different_examples_do_not_pair_so_nothing_is_tested_or_bold(tmp_path):
    from test_report_helpers import add_bootstrap

    d = tmp_path / SWEEP
    for variant, score, examples in (("B", 70.0, "h1"), ("V", 75.0, "h2"), ("W", 71.0, "h3")):
        res = make_result(SWEEP, variant.lower(), variant, 0, baseline=variant == "B", stdlib=score)
        samples = score + np.linspace(-2, 2, 101)  # CI ≈ [score − 1.9, score + 1.9]
        write_run(
            d, add_bootstrap(res, {"stdlib_module.accuracy": samples}, {"stdlib_module": {"n": 100, "hash": examples}})
        )
    s = summarize(load_results(d))
    assert s.cell("V", STDLIB).delta.n == 1 and not s.cell("V", STDLIB).delta.known  # n/a: not the same examples
    # V [73.1, 76.9] and W [69.1, 72.9] do not overlap, but without a paired test that is no verdict.
    assert s.cell("V", STDLIB).mark == "" and s.family[STDLIB] == 0
    assert [s.cell(x, STDLIB).bold for x in "BVW"] == [False, False, False]
    assert s.bold_rules[STDLIB] == {"untested", "none resolved"}


def test_nothing_is_bold_without_any_test(tmp_path):
    d = tmp_path / SWEEP
    for run, variant, glue in [("a", "A", 80.0), ("b", "B", 80.0), ("c", "C", 79.9)]:
        write_run(d, make_result(SWEEP, run, variant, 0, glue=glue))
    s = summarize(load_results(d))
    assert [s.cell(v, GLUE).bold for v in s.variants] == [False, False, False]  # one seed each: no test
    from t5explore.report.tables import summary_table

    table = summary_table(s)  # no ★: no Δ columns, no Δ note, no power line
    assert table.header[:4] == ["Variant", "n", GLUE_LABEL, "Pre-train loss"]
    assert not any(n.startswith(("Δ =", "Power")) for n in table.notes) and s.power == {}


def test_columns_cover_benchmarks_uncovered_tasks_loss_and_cost(results):
    cols = default_columns(results.runs)
    assert [c.label for c in cols] == [
        GLUE_LABEL,
        "SQuAD EM",
        "stdlib acc",
        "Pre-train loss",
        "Held-out loss",
        "Tokens",
        "Wall time",
    ]
    assert [c.better for c in cols] == ["higher"] * 3 + ["lower"] * 2 + [None] * 2
    last = default_columns(results.runs, which="last")
    assert last[0].key == "benchmarks.last.glue_average"
    s = summarize(results, which="last")
    assert s.cell("i.i.d.", "benchmarks.last.glue_average").mean == 81.0
    detail = [c.label for c in per_task_columns(results.runs)]
    assert detail == ["CoLA MCC", "SST-2 acc", "SQuAD EM", "SQuAD F1", "stdlib acc", "stdlib invalid", GLUE_LABEL]
    with pytest.raises(ReportError, match="which must be"):
        default_columns(results.runs, which="mean")


def test_several_sweeps_need_a_name(tmp_path):
    known_sweep(tmp_path, "t5_table7_a")
    known_sweep(tmp_path, "t5_table7_b")
    res = load_results(tmp_path)
    with pytest.raises(ReportError, match="several sweeps"):
        summarize(res)
    assert summarize(res, "t5_table7_b").sweep == "t5_table7_b"
    with pytest.raises(ReportError, match="'nope' not found"):
        summarize(res, "nope")


def test_generation_benchmarks_get_the_paper_columns_in_the_paper_order(tmp_path):
    """CNNDM (ROUGE-2) and EnDe/EnFr/EnRo (BLEU) are main-table columns named as the paper names them, in its
    order (GLUE / CNNDM / SQuAD / SGLUE / EnDe / EnFr / EnRo), and their tasks are not repeated beside them."""
    result = make_result(SWEEP, "a", "A", 0, glue=80.0, squad_em=70.0)
    scores = {
        "cnn_dailymail": ("cnndm", "rouge2", 19.0),
        "wmt_en_de": ("en_de", "bleu", 27.0),
        "wmt_en_ro": ("en_ro", "bleu", 26.0),
    }
    for task, (key, metric, value) in scores.items():
        result["downstream"][task] = {
            "best": {metric: value},
            "last": {metric: value},
            "best_step": 1,
            "primary_metric": metric,
        }
        result["benchmarks"]["best"][key] = result["benchmarks"]["last"][key] = value
    write_run(tmp_path / SWEEP, result)
    cols = default_columns(load_results(tmp_path / SWEEP).runs)
    scored = [(c.label, c.paper) for c in cols if c.kind == "score"]
    assert scored == [
        (GLUE_LABEL, "GLUE"),
        ("CNNDM", "CNNDM"),
        ("SQuAD EM", "SQuAD"),
        ("EnDe", "EnDe"),
        ("EnRo", "EnRo"),
    ]


@pytest.mark.parametrize(
    ("objectives", "bindings", "ranked"),
    [
        (("span_corruption", "span_corruption"), ("T5Config.num_layers", "T5Config.num_layers"), True),
        (("span_corruption", "span_corruption"), ("span_corruption.mean_noise_span_length",) * 2, False),
        (("span_corruption", "prefix_lm"), ("T5Config.num_layers", "T5Config.num_layers"), False),
    ],
)
def test_losses_are_ranked_only_between_rows_with_the_same_objective(tmp_path, objectives, bindings, ranked):
    """A loss is per target token of a row's own objective: bold across objectives (or noise rates) would
    rank numbers that measure different things."""
    for i, (objective, key) in enumerate(zip(objectives, bindings)):
        for seed in (0, 1):
            result = make_result("s", f"v{i}__seed_{seed}", f"v{i}", seed, baseline=i == 0, stdlib=50, loss=3 + i)
            result["objective"], result["variant_bindings"] = objective, {key: str(i)}
            write_run(tmp_path / "s", result)
    s = summarize(load_results(tmp_path / "s"))
    loss = next(c for c in s.columns if c.label == "Pre-train loss")
    assert (loss.better == "lower") is ranked and (loss.note is None) is ranked
    assert s.cell("v0", loss.key).bold is ranked and not s.cell("v1", loss.key).bold
