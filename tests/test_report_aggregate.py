"""Aggregation over seeds and the paper's bold/★ rules, on hand-made results with known answers."""

from __future__ import annotations

import math

import pytest
from test_report_helpers import SWEEP, known_sweep, make_result, write_run

from t5explore.report.aggregate import default_columns, per_task_columns, summarize
from t5explore.report.results import ReportError, load_results

GLUE, SQUAD, STDLIB = "benchmarks.best.glue_average", "benchmarks.best.squad_em", "downstream.stdlib_module.best.accuracy"
LOSS = "pretrain.final_loss"


@pytest.fixture()
def results(tmp_path):
    return load_results(known_sweep(tmp_path))


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


def test_bold_within_two_baseline_seed_stds_of_the_best(results):
    s = summarize(results)
    bold = {c: [s.cell(v, c).bold for v in s.variants] for c in (GLUE, SQUAD, STDLIB, LOSS)}
    # σ = baseline's seed std = 2: GLUE best 86 -> ≥ 82 bold (82 exactly on the edge).
    assert bold[GLUE] == [True, True, False, False]
    assert bold[SQUAD] == [False, False, True, False]  # best 60 -> ≥ 56
    assert bold[STDLIB] == [False, True, True, False]  # best 40 -> ≥ 36 (edge)
    # Loss is lower-better: best 3.0, σ = 0.2 -> ≤ 3.4.
    assert bold[LOSS] == [True, True, False, False]
    assert s.sigma[GLUE] == 2.0


def test_user_baseline_std_overrides_seed_std(results):
    s = summarize(results, baseline_std={"GLUE": 0.5, "squad_em": 5.0, "benchmarks.best.glue_average": 0.5})
    assert [s.cell(v, GLUE).bold for v in s.variants] == [False, True, False, False]  # ≥ 85 only
    assert [s.cell(v, SQUAD).bold for v in s.variants] == [True, False, True, False]  # ≥ 50
    with pytest.raises(ReportError, match="'CNNDM', which names no column"):
        summarize(results, baseline_std={"CNNDM": 0.065})
    s = summarize(results, baseline_std={"CNNDM": 0.065}, strict_std=False)
    assert s.sigma[GLUE] == 2.0


def test_pooled_std_when_the_baseline_has_one_seed(tmp_path):
    d = tmp_path / SWEEP
    for run, variant, seed, glue in [("b0", "B", 0, 70.0), ("a0", "A", 0, 80.0), ("a1", "A", 1, 82.0),
                                     ("c0", "C", 0, 90.0), ("c1", "C", 1, 94.0)]:
        write_run(d, make_result(SWEEP, run, variant, seed, baseline=variant == "B", glue=glue))
    s = summarize(load_results(d))
    # Pooled over A (var 2) and C (var 8), one dof each: σ = √5; best 92 -> bold if ≥ 92 - 2√5 ≈ 87.53.
    assert s.sigma[GLUE] == pytest.approx(math.sqrt(5))
    assert {v: s.cell(v, GLUE).bold for v in s.variants} == {"A": False, "B": False, "C": True}
    assert s.baseline == "B"  # from result.json, there is no sweep.json


def test_only_the_best_is_bold_without_any_std(tmp_path):
    d = tmp_path / SWEEP
    for run, variant, glue in [("a", "A", 80.0), ("b", "B", 80.0), ("c", "C", 79.9)]:
        write_run(d, make_result(SWEEP, run, variant, 0, glue=glue))
    s = summarize(load_results(d))
    assert [s.cell(v, GLUE).bold for v in s.variants] == [True, True, False]  # ties both bold


def test_columns_cover_benchmarks_uncovered_tasks_loss_and_cost(results):
    cols = default_columns(results.runs)
    assert [c.label for c in cols] == ["GLUE", "SQuAD EM", "stdlib acc", "Pre-train loss", "Held-out loss",
                                       "Tokens", "Wall time"]
    assert [c.better for c in cols] == ["higher"] * 3 + ["lower"] * 2 + [None] * 2
    last = default_columns(results.runs, which="last")
    assert last[0].key == "benchmarks.last.glue_average"
    s = summarize(results, which="last")
    assert s.cell("i.i.d.", "benchmarks.last.glue_average").mean == 81.0
    detail = [c.label for c in per_task_columns(results.runs)]
    assert detail == ["CoLA MCC", "SST-2 acc", "SQuAD EM", "SQuAD F1", "stdlib acc", "stdlib invalid", "GLUE"]
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
    scores = {"cnn_dailymail": ("cnndm", "rouge2", 19.0), "wmt_en_de": ("en_de", "bleu", 27.0),
              "wmt_en_ro": ("en_ro", "bleu", 26.0)}
    for task, (key, metric, value) in scores.items():
        result["downstream"][task] = {"best": {metric: value}, "last": {metric: value}, "best_step": 1,
                                      "primary_metric": metric}
        result["benchmarks"]["best"][key] = result["benchmarks"]["last"][key] = value
    write_run(tmp_path / SWEEP, result)
    cols = default_columns(load_results(tmp_path / SWEEP).runs)
    scored = [(c.label, c.paper) for c in cols if c.kind == "score"]
    assert scored == [("GLUE", "GLUE"), ("CNNDM", "CNNDM"), ("SQuAD EM", "SQuAD"), ("EnDe", "EnDe"), ("EnRo", "EnRo")]
