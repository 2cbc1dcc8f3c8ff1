"""FINDINGS.md is generated from a sweep's results: resolved differences and ties, τ, compute, notes verbatim."""

from __future__ import annotations

import pytest

from t5explore import cli
from t5explore.report.findings import write_findings
from t5explore.report.results import ReportError
from tests.test_report_helpers import GLUE_LABEL, known_sweep, make_result, write_run


def test_findings_call_resolved_differences_and_ties_by_the_paired_intervals(tmp_path):
    sweep = known_sweep(tmp_path)
    text = write_findings(sweep).read_text()
    # μ = 2 vs ★ on seeds 0,1: GLUE +5/+5 (resolved better), SQuAD −10/−10 (resolved worse),
    # stdlib +10/+8 -> 9 ± 12.7 (t with 1 dof): a tie, not a win.
    assert f"{GLUE_LABEL}: **μ = 2** better than ★: Δ = +5.00 [+5.00, +5.00] over 2 paired seed(s)." in text
    assert "SQuAD EM: **μ = 2** worse than ★: Δ = -10.00" in text
    # the GLUE column is the subset it is, here and beside the paper's full average
    assert f"{GLUE_LABEL} = the mean of CoLA, SST-2; the paper's GLUE averages 9 tasks" in text
    assert f"| {GLUE_LABEL} (ours) | {GLUE_LABEL} (paper) |" in text
    assert "stdlib acc: **μ = 2** tied with ★" in text and "Δ = +9.00 [-3.71, +21.71]" in text
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
