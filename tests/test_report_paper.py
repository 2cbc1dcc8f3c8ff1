"""The T5 paper's numbers as package data, row matching, and Kendall τ against hand-computed cases."""

from __future__ import annotations

import math

import pandas as pd
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


def _stdlib_only_sweep(root):
    """A Table 7 sweep scored only on the built-in task, ranking the variants in the reverse of the paper's
    GLUE order (paper: μ = 10 82.85 < i.i.d. 83.28 < μ = 2 83.54; ours: μ = 2 < i.i.d. < μ = 10 on each seed)."""
    from test_report_helpers import SWEEP, make_result, write_run

    d = root / SWEEP
    for variant, run, acc in (("i.i.d.", "iid", 40.0), ("μ = 2", "span_2", 30.0), ("μ = 10", "span_10", 50.0)):
        for seed in (0, 1):
            star = variant == "i.i.d."
            write_run(d, make_result(SWEEP, f"{run}__seed_{seed}", variant, seed, baseline=star, stdlib=acc + 2 * seed))
    return d


def test_paper_column_ranks_a_different_task_against_the_papers_column(tmp_path):
    res = load_results(_stdlib_only_sweep(tmp_path))
    summary = summarize(res)
    info = res.sweeps[summary.sweep]
    assert compare_with_paper(summary, info).no_shared_columns_line() is not None  # without it: nothing shared
    cmp = compare_with_paper(summary, info, paper_column="glue")  # the paper's spelling, case ignored
    assert [c.label for c in cmp.columns] == ["stdlib acc"] and cmp.other_task == "GLUE"
    assert cmp.no_shared_columns_line() is None
    assert list(cmp.frame["variant"]) == ["i.i.d.", "μ = 10", "μ = 2"]  # ★ first, then by name (no sweep.json)
    assert list(cmp.frame["stdlib acc (ours)"]) == [41.0, 51.0, 31.0]
    assert list(cmp.frame["stdlib acc (paper's GLUE)"]) == [83.28, 82.85, 83.54]
    # Every pair is discordant: τ = −1, and every seed resample keeps our order, so the CI is the point.
    tau, _, n = cmp.kendall["stdlib acc"]
    assert tau == pytest.approx(-1.0) and n == 3
    assert cmp.kendall_ci["stdlib acc"] == pytest.approx((-1.0, -1.0))
    assert "Different tasks: our stdlib acc is not the paper's GLUE" in cmp.different_tasks_line()
    # The column chosen matters. CNNDM: i.i.d. 19.24 < μ = 10 19.33 < μ = 2 19.39; ours μ = 2 < i.i.d. < μ = 10:
    # (i.i.d., μ = 10) concordant, (i.i.d., μ = 2) and (μ = 2, μ = 10) discordant -> τ = (1 − 2) / 3.
    cnndm = compare_with_paper(summary, info, paper_column="CNNDM")
    assert list(cnndm.frame["stdlib acc (paper's CNNDM)"]) == [19.24, 19.33, 19.39]
    assert cnndm.kendall["stdlib acc"][0] == pytest.approx(-1 / 3)


def test_paper_column_is_ignored_when_a_column_is_shared(tmp_path):
    res = load_results(known_sweep(tmp_path))
    summary = summarize(res)
    plain = compare_with_paper(summary, res.sweeps[summary.sweep])
    cmp = compare_with_paper(summary, res.sweeps[summary.sweep], paper_column="CNNDM")
    assert cmp.other_task is None and cmp.different_tasks_line() is None
    assert [c.label for c in cmp.columns] == [c.label for c in plain.columns] == [GLUE_LABEL, "SQuAD EM"]
    assert cmp.frame.equals(plain.frame) and cmp.kendall == plain.kendall


def test_an_unknown_paper_column_is_one_clear_error(tmp_path, capsys):
    from t5explore import cli
    from t5explore.report.sweep_tables import write_tables

    d = _stdlib_only_sweep(tmp_path)
    res = load_results(d)
    summary = summarize(res)
    with pytest.raises(ReportError, match="--paper_column 'MNLI' .* choose one of GLUE, CNNDM, SQuAD, SGLUE, EnDe"):
        compare_with_paper(summary, res.sweeps[summary.sweep], paper_column="MNLI")
    with pytest.raises(ReportError, match="--paper_column 'MNLI'"):
        write_tables(d, tmp_path / "out", paper_column="MNLI")
    assert not (tmp_path / "out").exists()  # refused before anything is written
    assert cli.main(["table", str(d), "--out", str(tmp_path / "cli"), "--findings", "--paper_column=MNLI"]) == 2
    err = capsys.readouterr().err
    assert "t5explore table: --paper_column 'MNLI' is not a column of the T5 paper's tables" in err
    assert "GLUE, CNNDM, SQuAD, SGLUE, EnDe, EnFr, EnRo" in err
    assert not (tmp_path / "cli").exists() and not (d / "FINDINGS.md").exists()


def test_table_and_findings_with_paper_column_say_it_is_order_only(tmp_path, capsys):
    from t5explore import cli

    d = _stdlib_only_sweep(tmp_path)
    out = tmp_path / "out"
    argv = ["table", str(d), "--out", str(out), "--format=md,csv", "--findings", "--paper_column", "GLUE"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    stem = d.name
    findings = (d / "FINDINGS.md").read_text()
    vs_paper = (out / f"{stem}_vs_paper.md").read_text()
    for text in (printed, findings, vs_paper):
        assert "| Variant | Paper row | stdlib acc (ours) | GLUE (paper) |" in text
        assert "Different tasks: our stdlib acc is not the paper's GLUE" in text and "(rank agreement)" in text
        assert "| Kendall τ |  | -1.00 [-1.00, -1.00] | n = 3 |" in text
        assert "comparison skipped" not in text
    assert "## Beside the paper" in findings
    assert (
        "- stdlib acc (ours) vs. GLUE (paper), different tasks, so order only: Kendall τ = -1.00 over 3 rows, "
        "permutation p = 0.333 (two-sided, exact over all 6 orders; the smallest p 3 rows allow is 0.333): not "
        "beyond chance."
    ) in findings
    csv = pd.read_csv(out / f"{stem}_vs_paper.csv")
    assert list(csv["stdlib acc (paper's GLUE)"]) == [83.28, 82.85, 83.54, 3]  # the τ row carries n
    assert list(csv["stdlib acc (ours)"]) == [41.0, 51.0, 31.0, -1.0]
    # Without the option nothing is compared, as before.
    assert cli.main(["table", str(d), "--out", str(tmp_path / "plain"), "--format=md", "--findings"]) == 0
    assert "comparison skipped" in capsys.readouterr().out and "comparison skipped" in (d / "FINDINGS.md").read_text()
    assert not (tmp_path / "plain" / f"{stem}_vs_paper.md").exists()


def test_table2_architectures_are_transcribed_with_their_budgets():
    """T5 Table 2 (§3.2.4), checked like Tables 4-7: every row's scores, the P / M budgets and the ★ row."""
    table = paper_table("table2")
    budgets = {r.name: (r.params, r.cost) for r in table.rows}
    assert budgets["Encoder-decoder / Denoising"] == ("2P", "M")
    assert budgets["Enc-dec, shared / LM"] == ("P", "M") and budgets["Enc-dec, 6 layers / LM"] == ("P", "M/2")
    assert budgets["Prefix LM / Denoising"] == ("P", "M") and budgets["No pre-training"] == ("", "")
    assert [r.name for r in table.rows if r.baseline] == ["Encoder-decoder / Denoising"]
    assert _scores("table2", "Encoder-decoder / Denoising") == [83.28, 19.24, 80.88, 71.36, 26.98, 39.82, 27.65]
    assert _scores("table2", "Enc-dec, shared / Denoising") == [82.81, 18.78, 80.63, 70.73, 26.72, 39.03, 27.46]
    assert _scores("table2", "Enc-dec, 6 layers / Denoising") == [80.88, 18.97, 77.59, 68.42, 26.38, 38.40, 26.95]
    assert _scores("table2", "Language model / Denoising") == [74.70, 17.93, 61.14, 55.02, 25.09, 35.28, 25.86]
    assert _scores("table2", "Prefix LM / Denoising") == [81.82, 18.61, 78.94, 68.11, 26.43, 37.98, 27.39]
    assert _scores("table2", "Encoder-decoder / LM") == [79.56, 18.59, 76.02, 64.29, 26.27, 39.17, 26.86]
    assert _scores("table2", "Enc-dec, shared / LM") == [79.60, 18.13, 76.35, 63.50, 26.62, 39.17, 27.05]
    assert _scores("table2", "Enc-dec, 6 layers / LM") == [78.67, 18.26, 75.32, 64.06, 26.13, 38.42, 26.89]
    assert _scores("table2", "Language model / LM") == [73.78, 17.54, 53.81, 56.51, 25.23, 34.31, 25.38]
    assert _scores("table2", "Prefix LM / LM") == [79.68, 17.84, 76.87, 64.86, 26.28, 37.51, 26.76]
    # The paper's claims hold in the transcription: denoising beats LM for every architecture on GLUE.
    for arch in ("Encoder-decoder", "Enc-dec, shared", "Enc-dec, 6 layers", "Prefix LM"):
        assert _scores("table2", f"{arch} / Denoising")[0] > _scores("table2", f"{arch} / LM")[0]
    assert detect_paper_table(SweepInfo("t5_table2_architectures")) == "table2"
    variants = ["encoder_decoder_denoising", "shared_lm", "half_denoising", "prefix_lm_lm", "lm_denoising"]
    matched = {v: r.name for v, r in match_rows(variants, table).items()}
    assert matched == {
        "encoder_decoder_denoising": "Encoder-decoder / Denoising",
        "shared_lm": "Enc-dec, shared / LM",
        "half_denoising": "Enc-dec, 6 layers / Denoising",
        "prefix_lm_lm": "Prefix LM / LM",
        "lm_denoising": "Language model / Denoising",
    }


def test_bart_table1_is_transcribed_with_each_columns_direction():
    from t5explore.report.paper import bart_table

    table, higher = bart_table()
    scores = {r.name: [r.scores[c] for c in higher] for r in table.rows}
    assert list(higher.values()) == [True, True, False, False, False, False]
    assert scores["Token Masking"] == [90.4, 84.1, 25.05, 7.08, 11.73, 6.10]
    assert scores["Token Deletion"] == [90.4, 84.1, 24.61, 6.90, 11.46, 5.87]
    assert scores["Text Infilling"] == [90.8, 84.0, 24.26, 6.61, 11.05, 5.83]
    assert scores["Document Rotation"] == [77.2, 75.3, 53.69, 17.14, 19.87, 10.59]
    assert scores["Sentence Shuffling"] == [85.4, 81.5, 41.87, 10.93, 16.67, 7.89]
    assert scores["Text Infilling + Sentence Shuffling"] == [90.8, 83.8, 24.17, 6.62, 11.12, 5.41]
    # experiments/bart_noising.gin's rows find theirs; the reference rows have none (BART has no such row)
    variants = ["Token Masking", "Sentence Shuffling", "Text Infilling + Sentence Shuffling", "No pre-training"]
    assert {v: r.name for v, r in match_rows(variants, table).items()} == {v: v for v in variants[:3]}
    assert detect_paper_table(SweepInfo("bart_noising")) is None  # never compared on T5's columns
