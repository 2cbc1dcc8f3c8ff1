"""A budget sweep's FINDINGS.md sections, the trends along the budget, no pre-training as ★, and the
interpolation check, on hand-made schema-3 results with known per-seed curves (k = log2(steps / 100)):

  ★ BERT-style              whole input (target = input tokens)   50 + 4k + s
  Deshuffling               whole input                            ★ − 1 + f_s          (Δ flat: slope 0)
  Replace corrupted spans   512 target tokens per step (share 1/4) ★ − 12 + (6 + g_s)k + e_s
  No pre-training           no budgets                             10 + s
with e = (0, .5, −.5), f = (0, 1, −1), g = (0, .2, −.2). So replace-spans gains 6 points on ★ per doubling
(resolved), overtakes it by 800 steps (τ against the paper, where it is first, rises), and at matched target
tokens (its 400 steps = ★'s 100) it is ahead of both whole-input rows.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from test_report_helpers import write_sweep_json

from t5explore.io_utils import atomic_write_json, atomic_write_text
from t5explore.report.aggregate import BETTER, TIE, WORSE
from t5explore.report.budget import read_along
from t5explore.report.budget_check import check_table, interpolation_check
from t5explore.report.budget_tables import budget_table, crossovers
from t5explore.report.budget_tau import tau_trend
from t5explore.report.budget_trends import delta_trends, pair_steps, still_ahead, whole_input_rows
from t5explore.report.findings import write_findings
from t5explore.report.results import ReportError, load_results
from t5explore.results_schema import RunResult

SWEEP = "budget_findings_test"
STAR, DES, RS, NPT = "BERT-style", "Deshuffling", "Replace corrupted spans", "No pre-training"
E, F, G = (0.0, 0.5, -0.5), (0.0, 1.0, -1.0), (0.0, 0.2, -0.2)
STEPS = (100, 200, 400, 800)
TARGETS = {STAR: 2048, DES: 2048, RS: 512}
REPO = Path(__file__).resolve().parents[1]
S7 = REPO / "experiments" / "regime" / "results" / "regime_s7"


def score(variant: str, steps: float, s: int) -> float:
    k = math.log2(steps / 100)
    star = 50 + 4 * k + s
    return {STAR: star, DES: star - 1 + F[s], RS: star - 12 + (6 + G[s]) * k + E[s]}[variant]


def _downstream(acc: float) -> dict:
    scores = {"accuracy": acc, "invalid_predictions": 0.0}
    return {"stdlib_module": {"best": scores, "last": scores, "best_step": 600, "primary_metric": "accuracy"}}


def _result(sweep: str, variant: str, seed: int, steps: tuple[float, ...], offset: float = 0.0) -> RunResult:
    name = f"{variant.split()[0].lower()}__seed_{seed}"
    common = dict(sweep=sweep, run=name, variant=variant, seed=seed, baseline=variant == STAR, scale="test")
    timing = {"total_s": 100.0 + seed, "pretrain_s": 60.0, "finetune_s": 40.0}
    if variant == NPT:
        pre = {"steps": 0, "tokens_seen": 0, "final_loss": None, "eval_loss": None}
        return RunResult(**common, pretrain=pre, downstream=_downstream(10.0 + seed), timing=timing)
    budgets = [
        {
            "steps": k,
            "input_tokens": k * 2048,
            "target_tokens": k * TARGETS[variant],
            "flops": k * 1e9,
            "wall_s": k * 0.1,
            "pretrain": {"loss": 4.0 - math.log2(k / 100) / 10, "held_out_loss": 4.1 - math.log2(k / 100) / 10},
            "downstream": _downstream(score(variant, k, seed) + offset + (0.1, -0.2, 0.15)[seed] * bool(offset)),
            "benchmarks": {"best": {}, "last": {}},
            "bootstrap": None,
        }
        for k in steps
    ]
    last = budgets[-1]
    pre = {"steps": last["steps"], "tokens_seen": last["input_tokens"], "final_loss": 1.0, "eval_loss": 1.1}
    return RunResult(
        **common, objective=variant, pretrain=pre, downstream=last["downstream"], budgets=budgets, timing=timing
    )


def _write(root: Path, sweep: str, rows: dict[str, tuple[float, ...]], baseline: str | None, seeds=(0, 1, 2), **kw):
    planned = []
    for variant, steps in rows.items():
        for seed in seeds:
            result = _result(sweep, variant, seed, steps, **kw)
            atomic_write_text(root / result.run / "config.gin", "# test\n")
            atomic_write_json(root / result.run / "result.json", result.to_json())
            planned.append((result.run, variant))
    write_sweep_json(root, sweep, planned, baseline)
    return root


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    rows = {STAR: STEPS, DES: STEPS, RS: STEPS, NPT: ()}
    return _write(tmp_path_factory.mktemp("b") / SWEEP, SWEEP, rows, STAR)


@pytest.fixture(scope="module")
def results(sweep_dir):
    return load_results(sweep_dir)


def test_delta_trends_fit_each_seed_and_predict_only_resolved_rows(results):
    trends = {t.variant: t for t in delta_trends(read_along(results, SWEEP, "steps"), STAR)}
    rs = trends[RS]
    assert rs.slope.mean == pytest.approx(6.0) and rs.slope.n == 3 and rs.mark == BETTER
    assert rs.slope.half == pytest.approx(4.302653 * 0.2 / math.sqrt(3), rel=1e-5)  # t(0.975, 2)·s/√3, s = 0.2
    k18 = 18 - math.log2(100)
    assert rs.predicted[2**18].mean == pytest.approx(-12 + 6 * k18)  # mean e = mean g = 0
    assert trends[DES].mark == TIE and not trends[DES].predicted  # Δ flat: nothing to extrapolate
    assert trends[NPT].slope.mean == pytest.approx(-4.0) and trends[NPT].mark == WORSE  # constant vs. ★'s +4
    assert trends[RS].budgets == 4


def test_whole_input_rows_and_matched_target_tokens(results):
    whole, others = whole_input_rows(results, SWEEP)
    assert whole == [STAR, DES] and others == [RS]  # no pre-training has no budgets: in neither
    by_steps = pair_steps(read_along(results, SWEEP, "steps"), whole, others)
    assert [s.mark for s in by_steps[(STAR, RS)]] == [BETTER, BETTER, TIE, WORSE]
    by_tokens = pair_steps(read_along(results, SWEEP, "target_tokens"), whole, others)
    seq = by_tokens[(STAR, RS)]  # ★'s target tokens 204.8k ... 1.64M; replace-spans reaches 409.6k only
    assert [round(s.x) for s in seq] == [204800, 409600, 819200, 1638400]
    assert [s.mark for s in seq[:2]] == [WORSE, WORSE] and seq[2].delta is None and seq[3].delta is None
    assert seq[0].delta.mean == pytest.approx(-8.0)  # ★ at 100 steps (50) − replace-spans at 400 (58)
    every, some, never = still_ahead(by_tokens)
    assert (every, some) == ([], []) and never == [f"{STAR} − {RS}", f"{DES} − {RS}"]


def test_tau_trend_rises_when_the_paper_s_first_row_overtakes(results):
    trend = tau_trend(read_along(results, SWEEP, "steps"), results.sweeps[SWEEP])
    # pre-trained rows vs. the paper's GLUE (replace spans 83.28 > BERT-style 82.96 > deshuffling 73.17):
    # τ = −1/3 while replace-spans is last, 1 once it is first (800 steps).
    assert trend is not None and trend.rows == 3 and trend.slope > 0 and trend.resolved
    assert set(trend.predicted) == {2**18, 2**19} and trend.predicted[2**18][0] == 1.0  # clipped to τ's range


def test_findings_answer_the_questions_and_regenerate_exactly(sweep_dir, tmp_path):
    first = write_findings(sweep_dir, out=tmp_path / "a.md", paper_column="GLUE").read_text()
    again = write_findings(sweep_dir, out=tmp_path / "b.md", paper_column="GLUE").read_text()
    assert first == again
    for needle in (
        "## Along the pre-training budget",
        "- Every planned run has finished.",
        "### Does τ against the paper rise with budget?",
        "exact two-sided permutation p over all 6 orders of the 3 pre-trained rows",
        "**rises** with budget",
        "crossovers against ★ along steps",
        "crossovers against ★ along target tokens",
        f"{NPT} (budget 0, constant)",
        f"Never resolved ahead at matched target tokens: {STAR} − {RS}, {DES} − {RS}.",
        "| Replace corrupted spans | +6.00 ± 0.50 |",
        "held-out pre-training loss by budget",
        "wall time of each run",
    ):
        assert needle in first, needle
    assert first.index("## Along the pre-training budget") < first.index("## Compute")


def test_findings_of_a_partial_sweep_name_the_missing_runs(sweep_dir, tmp_path):
    partial = tmp_path / SWEEP
    shutil.copytree(sweep_dir, partial)
    shutil.rmtree(partial / "bert-style__seed_2")
    shutil.rmtree(partial / "replace__seed_1")
    text = write_findings(partial, out=tmp_path / "F.md").read_text()
    assert "**Partial sweep**: 2 planned run(s) have not finished" in text
    assert f"- {RS}: 2 of 3 runs finished (seeds 0, 2); missing: replace__seed_1 (not started)." in text


def test_no_pretraining_as_star_is_budget_zero(tmp_path):
    root = _write(tmp_path / "npt_star", "npt_star", {NPT: (), RS: STEPS}, NPT)
    res = load_results(root)
    steps = crossovers(res, "npt_star", "steps")[RS]
    # Δ_s = RS(k) − (10 + s) = 40 − 12 + (4 + 6 + g_s)k + e_s: ★ is the same at every budget
    assert [s.x for s in steps] == list(STEPS)
    assert [s.delta.mean for s in steps] == pytest.approx([28 + 10 * k for k in range(4)])
    _, matched, _ = budget_table(res, "npt_star", "steps", 283)  # between 200 and 400: replace-spans only
    assert matched.unbudgeted == {NPT} and matched.interpolated == {RS: {0, 1, 2}}


@pytest.mark.skipif(not S7.is_dir(), reason="the committed regime_s7 records")
def test_regime_s7_pretraining_against_none_matches_docs_cpu_regime():
    """docs/cpu_regime.md's S7 table: Δ vs. none −1.36 ± 1.40, −0.82 ± 3.09, −2.32 ± 8.12, +0.78 ± 2.22."""
    res = load_results(S7)
    steps = crossovers(res, "regime_s7", "steps")["pretrained"]
    assert [s.x for s in steps] == [200, 400, 800, 1600]
    assert [round(s.delta.mean, 2) for s in steps] == [-1.36, -0.82, -2.32, 0.78]
    assert [round(s.delta.half, 2) for s in steps] == [1.40, 3.09, 8.12, 2.22]
    assert [s.mark for s in steps] == [TIE] * 4


def test_interpolation_check_agrees_on_the_curve_and_flags_an_offset(sweep_dir, tmp_path):
    ladder = load_results(sweep_dir)
    on_curve = load_results(_write(tmp_path / "m1", "m1", {RS: (283,)}, None))
    (check,) = interpolation_check(ladder, on_curve)
    assert [round(s.x) for s in check.seeds] == [283 * 512] * 3 and all(s.interpolated for s in check.seeds)
    assert check.difference.mean == pytest.approx(0.0, abs=1e-9) and check.agree  # log-linear truth, exact
    off = load_results(_write(tmp_path / "m2", "m2", {RS: (283,)}, None, offset=3.0))
    (bad,) = interpolation_check(ladder, off)
    assert bad.difference.mean == pytest.approx(3.0 + (0.1 - 0.2 + 0.15) / 3) and bad.agree is False
    assert "DISAGREES" in "\n".join(check_table([bad], "target_tokens", SWEEP, "m2").notes)
    noisy = load_results(_write(tmp_path / "m3", "m3", {RS: (283,)}, None, offset=1e-9))
    assert interpolation_check(ladder, noisy)[0].agree  # differences 0.1, −0.2, 0.15: contains 0


def test_interpolation_check_refuses_what_it_cannot_compare(sweep_dir, tmp_path):
    ladder = load_results(sweep_dir)
    beyond = load_results(_write(tmp_path / "m4", "m4", {RS: (1000,)}, None))
    with pytest.raises(ReportError, match="extrapolation is refused"):
        interpolation_check(ladder, beyond)
    ladder_without = load_results(_write(tmp_path / "l", "l", {STAR: STEPS}, STAR))
    with pytest.raises(ReportError, match="is not a row of sweep 'l'"):
        interpolation_check(ladder_without, load_results(_write(tmp_path / "m5", "m5", {RS: (283,)}, None)))


def test_cli_check_against_writes_the_check_and_the_findings_section(sweep_dir, tmp_path, capsys):
    import argparse
    import csv

    from t5explore.report.commands import add_commands

    def cli(argv):
        parser = argparse.ArgumentParser()
        add_commands(parser.add_subparsers())
        args = parser.parse_args(argv)
        return args.func(args, [], [])

    measured = _write(tmp_path / "m6", "m6", {RS: (283,)}, None, offset=3.0)
    out = tmp_path / "tables"
    argv = ["table", str(sweep_dir), "--budget=target_tokens", f"--check_against={measured}", "--format=md,csv"]
    assert cli([*argv, "--out", str(out)]) == 0
    assert "the interpolation DISAGREES with the measured runs" in capsys.readouterr().out
    with open(out / f"{SWEEP}_interpolation_check_target_tokens.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [round(float(r["difference"]), 2) for r in rows] == [3.1, 2.8, 3.15]
    copy = tmp_path / SWEEP
    shutil.copytree(sweep_dir, copy)
    assert cli(["table", str(copy), "--findings", f"--check_against={measured}", "--out", str(tmp_path / "t")]) == 0
    assert "interpolated ladder against measured runs (m6)" in (copy / "FINDINGS.md").read_text()
    assert cli(["table", str(sweep_dir), "--budget=target_tokens", f"--check_against={tmp_path}/none"]) == 2
