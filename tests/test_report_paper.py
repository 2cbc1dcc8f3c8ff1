"""The T5 paper's numbers as package data, row matching, and Kendall τ against hand-computed cases."""

from __future__ import annotations

import math

import pytest
from test_report_helpers import GLUE_LABEL, known_sweep

from t5explore.report.aggregate import summarize
from t5explore.report.paper import (
    compare_with_paper,
    detect_paper_table,
    kendall_tau,
    kendall_tau_ci,
    match_rows,
    paper_baseline_std,
    paper_columns,
    paper_source,
    paper_table,
)
from t5explore.report.results import ReportError, SweepInfo, load_results
from t5explore.report.stats import SeedValues


def _scores(table, name):
    row = next(r for r in paper_table(table).rows if r.name == name)
    return [row.scores[c] for c in paper_columns()]


def test_paper_data_matches_the_issue_and_names_its_source():
    assert paper_columns() == ["GLUE", "CNNDM", "SQuAD", "SGLUE", "EnDe", "EnFr", "EnRo"]
    assert "Raffel" in paper_source() and "JMLR" in paper_source() and "Tables 4-7" in paper_source()
    assert paper_baseline_std()["GLUE"] == 0.235 and paper_baseline_std()["SGLUE"] == 0.416
    assert _scores("table4", "Deshuffling") == [73.17, 18.59, 67.61, 58.47, 26.11, 39.30, 25.62]
    assert _scores("table5", "Replace corrupted spans") == [83.28, 19.24, 80.88, 71.36, 26.98, 39.82, 27.65]
    assert _scores("table5", "Drop corrupted tokens")[0] == 84.44
    assert _scores("table6", "50 %") == [81.27, 19.32, 79.80, 70.33, 27.01, 39.90, 27.49]
    assert _scores("table7", "μ = 10") == [82.85, 19.33, 81.84, 70.44, 26.79, 39.49, 27.69]
    assert _scores("table7", "No pre-training") == [66.22, 17.60, 50.31, 53.04, 25.86, 39.77, 24.04]
    assert [r.name for r in paper_table("7").rows if r.baseline] == ["i.i.d."]
    with pytest.raises(ReportError, match="unknown T5 paper table"):
        paper_table("table9")


def test_kendall_tau_hand_computed():
    # Pairs (a,b),(a,c),(a,d),(b,c),(b,d),(c,d): ours 1,2,3,4 vs paper 1,3,2,4 -> 5 concordant, 1 discordant.
    tau, _, n = kendall_tau([1, 2, 3, 4], [10, 30, 20, 40])
    assert tau == pytest.approx(4 / 6) and n == 4
    assert kendall_tau([1, 2, 3], [3, 2, 1])[0] == pytest.approx(-1.0)
    tau, _, n = kendall_tau([1.0, float("nan"), 3.0], [1.0, 2.0, 3.0])  # nan pairs are dropped
    assert tau == pytest.approx(1.0) and n == 2
    assert math.isnan(kendall_tau([1.0], [2.0])[0])


def test_detect_and_match_rows():
    assert detect_paper_table(SweepInfo("t5_table7_span_length")) == "table7"
    assert detect_paper_table(SweepInfo("my sweep", paper_table="6")) == "table6"
    assert detect_paper_table(SweepInfo("quickstart")) is None
    assert detect_paper_table(SweepInfo("table17")) is None
    t6 = paper_table("table6")
    m = match_rows(["10%", "rate 25", "0.5", "No pre-training", "mine"], t6)
    assert {v: r.name for v, r in m.items()} == {
        "10%": "10 %",
        "rate 25": "25 %",
        "0.5": "50 %",
        "No pre-training": "No pre-training",
    }
    # The sweep's ★ baseline falls back to the table's ★ row; an explicit mapping wins.
    m = match_rows(["default", "mine"], t6, {"mine": "25 %"}, baseline="default")
    assert m["default"].name == "15 %" and m["mine"].name == "25 %"
    with pytest.raises(ReportError, match="paper row '99 %' .* not in table6"):
        match_rows(["x"], t6, {"x": "99 %"})


def test_compare_with_paper_on_the_known_sweep(tmp_path):
    res = load_results(known_sweep(tmp_path))
    summary = summarize(res)
    cmp = compare_with_paper(summary, res.sweeps[summary.sweep])
    assert cmp.table.id == "table7"
    assert list(cmp.frame["variant"]) == ["i.i.d.", "μ = 2", "μ = 3", "μ = 10"]
    assert list(cmp.frame[f"{GLUE_LABEL} (paper)"]) == [83.28, 83.54, 83.49, 82.85]
    # GLUE ours 82, 86, 79 vs paper 83.28, 83.54, 83.49: concordant (iid,μ2), (μ2,μ3); discordant (iid,μ3).
    assert cmp.kendall[GLUE_LABEL][0] == pytest.approx(1 / 3) and cmp.kendall[GLUE_LABEL][2] == 3
    # SQuAD ours 52, 41, 60 vs paper 80.88, 82.09, 81.84: one concordant, two discordant.
    assert cmp.kendall["SQuAD EM"][0] == pytest.approx(-1 / 3)
    assert cmp.unmatched == [] and cmp.no_shared_columns_line() is None
    # Every seed resample keeps the order μ = 3 < i.i.d. < μ = 2, so τ's interval is the point itself.
    assert cmp.kendall_ci[GLUE_LABEL] == pytest.approx((1 / 3, 1 / 3))
    assert list(cmp.frame[f"{GLUE_LABEL} (ours ci)"]) == ["t", "t", "", ""]
    assert compare_with_paper(summary, SweepInfo("quickstart")) is None
    # An explicit mapping (as sweep.json `paper_rows` gives) reaches rows the names don't match.
    cmp = compare_with_paper(summary, res.sweeps[summary.sweep], table_id="table6", mapping={"μ = 3": "50 %"})
    assert list(cmp.frame["paper_row"]) == ["15 %", "50 %"] and cmp.unmatched == ["μ = 2", "μ = 10"]


def test_kendall_tau_ci_resamples_seeds_jointly_and_contains_the_point():
    # Means A 3, B 2.5, C 3.5 vs the paper's A < B < C: τ = 1/3. Seeds {0, 0}: A 1 < B 2 < C 3 (τ = 1);
    # seeds {1, 1}: B 3 < C 4 < A 5 (τ = −1/3); a draw of both seeds gives the full means back (τ = 1/3).
    values = [SeedValues({0: 1.0, 1: 5.0}), SeedValues({0: 2.0, 1: 3.0}), SeedValues({0: 3.0, 1: 4.0})]
    paper = [1.0, 2.0, 3.0]
    tau = kendall_tau([3.0, 2.5, 3.5], paper)[0]
    lo, hi = kendall_tau_ci(values, paper)
    assert tau == pytest.approx(1 / 3) and lo <= tau <= hi
    assert (lo, hi) == pytest.approx((-1 / 3, 1.0))  # each extreme has probability 1/4 > 2.5%
    assert kendall_tau_ci(values, paper) == (lo, hi)  # a fixed random stream
    one_seed = [SeedValues({0: 1.0}), SeedValues({0: 2.0}), SeedValues({0: 3.0})]
    assert all(math.isnan(x) for x in kendall_tau_ci(one_seed, paper))  # resampling one seed says nothing
