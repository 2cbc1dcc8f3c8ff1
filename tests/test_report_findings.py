"""FINDINGS.md is generated from a sweep's results: resolved differences and ties, τ, compute, notes verbatim."""

from __future__ import annotations

import pytest

from t5explore import cli
from t5explore.report.findings import write_findings
from t5explore.report.results import ReportError
from tests.test_report_helpers import GLUE_LABEL, known_sweep, make_result, write_run


def test_findings_call_resolved_differences_and_ties_by_the_adjusted_tests(tmp_path):
    sweep = known_sweep(tmp_path)
    text = write_findings(sweep).read_text()
    # μ = 2 vs ★ on seeds 0,1: GLUE +5/+5 (resolved better), SQuAD −10/−10 (resolved worse),
    # stdlib +10/+8 -> 9 ± 12.7 (t with 1 dof, p = 0.070): a tie, not a win.
    assert (
        f"{GLUE_LABEL}: **μ = 2** better than ★: Δ = +5.00 [+5.00, +5.00] over 2 paired seed(s); paired t "
        "p = <0.001, Holm-adjusted p = <0.001 (Holm over the 1 comparison with ★)."
    ) in text
    assert "SQuAD EM: **μ = 2** worse than ★: Δ = -10.00" in text
    # the GLUE column is the subset it is, here and beside the paper's full average
    assert f"{GLUE_LABEL} = the mean of CoLA, SST-2; the paper's GLUE averages 9 tasks" in text
    assert f"| {GLUE_LABEL} (ours) | {GLUE_LABEL} (paper) |" in text
    assert "stdlib acc: **μ = 2** tied with ★ (Holm-adjusted p ≥ 0.05): Δ = +9.00 [-3.71, +21.71]" in text
    assert "paired t p = 0.070, Holm-adjusted p = 0.070 (Holm over the 1 comparison with ★)." in text
    assert (
        "- stdlib acc: seeds for 80% power to detect a true Δ of 1 point (two-sided paired t, α = 0.05), from "
        "each row's own paired σ: μ = 2: 18 (σ 1.41)."
    ) in text
    # 3 rows in the same order in every seed draw: τ = 1/3, which every one of the 6 orders reaches or beats
    assert (
        f"- {GLUE_LABEL}: Kendall τ = 0.33 over 3 rows, permutation p = 1.000 (two-sided, exact over all 6 orders; "
        "the smallest p 3 rows allow is 0.333): not beyond chance. Spread of τ over seed-bootstrap resamples: "
        "[0.33, 0.33] (10 distinct resamples of the seeds; a spread, not a test)."
    ) in text
    assert "- Completed runs: 6 of 8 (1 failed, 1 not complete)." in text
    assert "Kendall τ" in text and "## Beside the paper" in text
    # 6 runs of 120 s each trained here, none shared
    assert "6 runs trained here, 0 copied" in text and "12.0 min in all" in text
    assert "## Interpretation" not in text


def test_shared_runs_cost_nothing_and_notes_are_copied_verbatim(tmp_path):
    sweep = tmp_path / "s"
    for seed in (0, 1):
        star = make_result("s", f"a__seed_{seed}", "A", seed, baseline=True, stdlib=50 + seed, total_s=100)
        star["shared_from"] = f"other/a__seed_{seed}"
        write_run(sweep, star)
        write_run(sweep, make_result("s", f"b__seed_{seed}", "B", seed, stdlib=60 + seed, total_s=30))
    notes = tmp_path / "notes.md"
    notes.write_text("At this scale B wins; the paper's scale may differ.\n")
    assert cli.main(["table", str(sweep), "--format=md", "--findings", f"--notes={notes}"]) == 0
    text = (sweep / "FINDINGS.md").read_text()
    assert "2 runs trained here, 2 copied from identical runs" in text and "1.0 min in all" in text
    assert text.rstrip().endswith("At this scale B wins; the paper's scale may differ.")
    assert "stdlib acc: **B** better than ★: Δ = +10.00 [+10.00, +10.00]" in text


def test_a_raw_win_that_does_not_survive_holm_is_called_a_tie_and_says_so(tmp_path):
    sweep = tmp_path / "s"
    for seed, base in enumerate([10.0, 20.0, 30.0]):
        write_run(sweep, make_result("s", f"b__seed_{seed}", "B", seed, baseline=True, stdlib=base))
        for v, diff in (("V", [2.0, 3.0, 4.2]), ("W", [2.1, 3.2, 4.0])):  # raw p 0.040 and 0.030
            write_run(sweep, make_result("s", f"{v}__seed_{seed}", v, seed, stdlib=base + diff[seed]))
    text = write_findings(sweep).read_text()
    assert "better than ★" not in text
    assert (
        "stdlib acc: **W** tied with ★ (Holm-adjusted p ≥ 0.05): Δ = +3.10 [+0.73, +5.47] over 3 paired seed(s); "
        "paired t p = 0.030, Holm-adjusted p = 0.060 (Holm over the 2 comparisons with ★); its unadjusted CI "
        "excludes 0, but that does not survive the adjustment."
    ) in text


def test_findings_need_exactly_one_sweep_and_an_existing_notes_file(tmp_path):
    known_sweep(tmp_path, "one")
    known_sweep(tmp_path, "two")
    with pytest.raises(ReportError, match="one sweep"):
        write_findings(tmp_path)
    with pytest.raises(ReportError, match="no such file"):
        write_findings(tmp_path / "one", notes=tmp_path / "missing.md")


def test_runs_from_more_than_one_commit_are_flagged(tmp_path):
    """A fingerprint covers the gin config, not the code: rows trained at different commits get a warning."""
    sweep = tmp_path / "s"
    for seed in (0, 1):
        for run, variant, commit in ((f"a__seed_{seed}", "A", "1111111111aaaa"), (f"b__seed_{seed}", "B", None)):
            result = make_result("s", run, variant, seed, baseline=variant == "A", stdlib=50 + seed)
            result["git_commit"] = commit or ("2222222222bbbb" if seed else "1111111111aaaa")
            result["versions"] = {"jax": "0.10.2", "flax": "0.12.8", "numpy": "2.4.6", "cpu": "AMD EPYC"}
            write_run(sweep, result)
    text = write_findings(sweep).read_text()
    assert "jax 0.10.2, flax 0.12.8, numpy 2.4.6, CPU AMD EPYC, commit 1111111111 (3 runs) / 2222222222 (1 run)" in text
    assert "**Mixed provenance** (commit differ between runs)" in text
    same = tmp_path / "same"
    for seed in (0, 1):
        write_run(same, make_result("same", f"a__seed_{seed}", "A", seed, baseline=True, stdlib=50))
    text = write_findings(same).read_text()
    assert "CPU unknown, commit abc123." in text and "Mixed provenance" not in text
