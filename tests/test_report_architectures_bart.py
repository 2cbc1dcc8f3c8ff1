"""Issue 23's report parts on hand-made results: Table 2's Params / FLOPs / paper P-M columns appear by
themselves when rows differ in architecture, and a BART-noising sweep is compared with BART's Table 1 by
order only (τ with its exact permutation p over the rows both have), in the tables, the CSV and FINDINGS.md.
The real tiny sweeps are in test_table2_tiny_sweep.py."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats as scipy_stats
from test_report_helpers import make_result, write_run, write_sweep_json

from t5explore.report.aggregate import summarize
from t5explore.report.bart_compare import ORDER_ONLY, compare_with_bart
from t5explore.report.columns import default_columns
from t5explore.report.findings import write_findings
from t5explore.report.paper import bart_table
from t5explore.report.results import load_results
from t5explore.report.sweep_tables import markdown_table, write_tables
from t5explore.report.tables import BUDGET_HEADER, summary_table

# (variant as experiments/t5_table2_architectures.gin displays it, architecture, num_params, FLOPs/example)
ARCH_ROWS = [
    ("Encoder-decoder / Denoising", "encoder_decoder", 3_000_000, 6.0e8),
    ("Enc-dec, shared / Denoising", "encoder_decoder_shared", 2_000_000, 6.0e8),
    ("Enc-dec, 6 layers / Denoising", "encoder_decoder_half", 1_500_000, 3.0e8),
    ("my_custom_row", "decoder_only_lm", 1_000_000, 7.0e8),  # matches no paper row: no P / M label
]


def _arch_sweep(root, name="t5_table2_architectures", architectures=True):
    sweep_dir = root / name
    planned = []
    for variant, arch, params, flops in ARCH_ROWS:
        for seed in (0, 1):
            run = f"{arch}__seed_{seed}"
            res = make_result(name, run, variant, seed, baseline=variant == ARCH_ROWS[0][0], stdlib=30 + seed)
            res["model"] = {"name": "tiny", "num_params": params}
            if architectures:
                res["model"].update({"architecture": arch, "train_flops_per_example": flops})
            write_run(sweep_dir, res)
            planned.append((run, variant))
    write_sweep_json(sweep_dir, name, planned, ARCH_ROWS[0][0])
    return sweep_dir


def test_rows_of_different_architectures_show_params_flops_and_the_papers_budget(tmp_path):
    results = load_results(_arch_sweep(tmp_path))
    labels = [c.label for c in default_columns(results.runs)]
    assert labels[-2:] == ["Params", "FLOPs/example"]  # not asked for: the runs' architectures differ
    table = summary_table(summarize(results))
    at = table.header.index(BUDGET_HEADER)
    assert table.header[at : at + 3] == [BUDGET_HEADER, "Params", "FLOPs/example"]
    got = {row[0].lstrip("★ "): row[at : at + 3] for row in table.rows}
    assert got == {
        "Encoder-decoder / Denoising": ["2P, M", "3M", "600M"],
        "Enc-dec, shared / Denoising": ["P, M", "2M", "600M"],
        "Enc-dec, 6 layers / Denoising": ["P, M/2", "1.5M", "300M"],
        "my_custom_row": ["–", "1M", "700M"],
    }
    assert any(n.startswith(f"{BUDGET_HEADER} = the paper's budget") for n in table.notes)
    csv = write_tables(tmp_path / "results", tmp_path / "out", formats=["csv"], results=results)[0]
    frame = pd.read_csv(csv, keep_default_na=False)
    assert list(frame[BUDGET_HEADER]) == ["2P, M", "P, M", "P, M/2", ""]
    assert list(frame["Params"]) == [3_000_000, 2_000_000, 1_500_000, 1_000_000]  # exact, not the rounded text


def test_one_architecture_or_no_record_keeps_the_table_as_it_was(tmp_path):
    """Rows of one architecture (every objective table) or older result.json files without the field get no
    extra columns; a Table 2 sweep of older files still shows the paper's budget of each row."""
    results = load_results(_arch_sweep(tmp_path, architectures=False))
    assert "Params" not in [c.label for c in default_columns(results.runs)]
    table = summary_table(summarize(results))
    assert table.header[-1] == BUDGET_HEADER and table.rows[1][-1] == "P, M"
    other = load_results(_arch_sweep(tmp_path / "other", name="t5_table7_span_length"))
    assert BUDGET_HEADER not in summary_table(summarize(other)).header  # Table 7 states no budgets


# BART rows as experiments/bart_noising.gin displays them, and our reference rows (no BART row).
BART_ROWS = [
    "Token Masking",
    "Token Deletion",
    "Text Infilling",
    "Document Rotation",
    "Sentence Shuffling",
    "Text Infilling + Sentence Shuffling",
]
REFERENCE_ROWS = ["T5 span corruption (15 %, μ = 3)", "No pre-training"]


def _bart_sweep(root, ours: dict[str, float]):
    """Three seeds per row, seed s scoring ours[row] + s - 1 (so each row's mean is ours[row])."""
    sweep_dir = root / "bart_noising"
    planned = []
    for i, variant in enumerate([*BART_ROWS, *REFERENCE_ROWS]):
        for seed in range(3):
            run = f"row{i}__seed_{seed}"
            score = ours[variant] + seed - 1
            write_run(sweep_dir, make_result("bart_noising", run, variant, seed, stdlib=score, baseline=i == 2))
            planned.append((run, variant))
    write_sweep_json(sweep_dir, "bart_noising", planned, "Text Infilling")
    return sweep_dir


def test_bart_sweep_is_ranked_against_each_bart_column_by_order_only(tmp_path):
    table, higher = bart_table()
    xsum = {r.name: r.scores["XSum PPL"] for r in table.rows}
    # Ours in exactly XSum's order (lower perplexity = better = a higher score of ours).
    ours = {v: 100 - 5 * xsum[v] for v in BART_ROWS} | {REFERENCE_ROWS[0]: 40.0, REFERENCE_ROWS[1]: 1.0}
    results = load_results(_bart_sweep(tmp_path, ours))
    cmp = compare_with_bart(summarize(results))
    assert cmp is not None and [c.label for c in cmp.columns] == ["stdlib acc"]
    assert list(cmp.frame["variant"]) == BART_ROWS and cmp.unmatched == REFERENCE_ROWS
    perfect = cmp.tests[("stdlib acc", "XSum PPL")]
    assert (perfect.tau, perfect.n, perfect.exact, perfect.orders) == (1.0, 6, True, 720)
    assert perfect.p == pytest.approx(2 / 720)  # two-sided: only the order itself and its reverse reach |τ| = 1
    our_means = [ours[v] for v in BART_ROWS]
    for column, up in higher.items():
        bart = [r.scores[column] for r in table.rows]
        want = scipy_stats.kendalltau(our_means, bart if up else [-x for x in bart]).statistic  # τ-b, ties too
        assert cmp.tests[("stdlib acc", column)].tau == pytest.approx(want), column
    lo, hi = cmp.spread[("stdlib acc", "XSum PPL")]
    assert lo <= 1.0 <= hi and not math.isnan(lo)

    md = markdown_table(tmp_path, results=results)
    assert f"bart_noising vs. BART Table 1 ({ORDER_ONLY})" in md and "Order only: BART's tasks differ" in md
    assert "| XSum PPL (BART) |" in md and "No BART row for: T5 span corruption" in md
    assert "| 84.0 | 24.26 | 6.61 | 11.05 | 5.83 |" in md and "| 6.10 |" in md  # BART's own precision per column
    written = write_tables(tmp_path, tmp_path / "out", formats=["csv", "md"], results=results)
    csv = pd.read_csv(next(p for p in written if p.name == "bart_noising_vs_bart.csv"))
    tau_row = csv[csv["variant"].str.startswith("Kendall tau")].iloc[0]
    assert tau_row["XSum PPL (BART)"] == pytest.approx(1.0) and ORDER_ONLY in tau_row["variant"]
    findings = write_findings(tmp_path / "bart_noising", results=results).read_text(encoding="utf-8")
    assert f"## Beside BART's Table 1 ({ORDER_ONLY})" in findings
    assert f"- stdlib acc (ours) vs. BART's XSum PPL ({ORDER_ONLY}): Kendall τ = 1.00 over 6 rows" in findings
    assert "exact over all 720 orders" in findings and "## Beside the paper" not in findings


def test_a_reversed_order_is_negative_and_other_sweeps_are_not_compared_with_bart(tmp_path):
    table, _ = bart_table()
    squad = {r.name: r.scores["SQuAD 1.1 F1"] for r in table.rows}
    reversed_ours = {v: -squad[v] for v in BART_ROWS} | dict.fromkeys(REFERENCE_ROWS, 0.0)
    cmp = compare_with_bart(summarize(load_results(_bart_sweep(tmp_path, reversed_ours))))
    assert cmp is not None and cmp.tests[("stdlib acc", "SQuAD 1.1 F1")].tau == pytest.approx(-1.0)
    arch = load_results(_arch_sweep(tmp_path / "arch"))
    assert compare_with_bart(summarize(arch)) is None
    tied = _bart_sweep(tmp_path / "tied", dict.fromkeys([*BART_ROWS, *REFERENCE_ROWS], 5.0))  # a tiny run's zeros
    findings = write_findings(tied).read_text(encoding="utf-8")
    assert f"- stdlib acc (ours) vs. BART's MNLI Acc ({ORDER_ONLY}): no Kendall τ: our 6 rows have no order" in findings
