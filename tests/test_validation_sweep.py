"""Sweeps: --dry_run parses and type-checks every run's gin (a typo inside a variant exits 2 naming the
binding), a failed run's reason (one line) is shown in the sweep summary, `status` and under the table, and
★ goes to the variant named exactly as Sweep.baseline."""

from __future__ import annotations

import io

import pytest

from t5explore import cli
from t5explore.sweep.grid import SweepSettings, expand
from t5explore.sweep.runner import run_sweep
from t5explore.sweep.status import print_status

pytestmark = pytest.mark.usefixtures("clean_gin")


def write_sweep(tmp_path, beta: str) -> str:
    path = tmp_path / "s.gin"
    path.write_text(f"Sweep.variants = {{'alpha': {{'Pretrain.steps': '1'}}, 'beta': {{{beta}}}}}\n")
    return str(path)


@pytest.mark.parametrize(
    "beta, message",
    [
        (
            "'Pretrain.stepz': '2'",
            "run beta__seed_0: in gin binding 'Pretrain.stepz = 2': Configurable 'Pretrain' "
            "doesn't have a parameter named 'stepz'",
        ),
        ("'Pretrain.steps': \"'two'\"", "run beta__seed_0: gin binding Pretrain.steps: must be int, got 'two' (str)"),
        ("'Pretrain.steps': 'two'", "run beta__seed_0: gin binding Pretrain.steps: cannot parse the value 'two'"),
        ("'Finetune.learning_rate': 'True'", "run beta__seed_0: gin binding Finetune.learning_rate: must be float"),
    ],
)
def test_dry_run_fails_on_a_bad_binding_inside_a_variant(tmp_path, capsys, beta, message):
    res = tmp_path / "results"
    assert cli.main(["sweep", write_sweep(tmp_path, beta), f"--results_dir={res}", "--dry_run"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"t5explore: configuration error: {message}") and captured.err.count("\n") == 1
    assert "alpha__seed_0" not in captured.out and not res.exists()


def failing_execute(run_dir, gin_files, bindings, metadata):
    raise ValueError("the real reason\n  In call to configurable 'Pretrain' (<class Pretrain>)\n    Pretrain.steps = 2")


def test_a_failed_runs_reason_is_shown_in_summary_status_and_table(tmp_path):
    res = tmp_path / "results"
    out = io.StringIO()
    outcome = run_sweep(
        write_sweep(tmp_path, "'Pretrain.steps': '2'"), res, executor=failing_execute, out=out, only="beta*"
    )
    assert outcome.exit_code == 1
    run_dir = res / "s" / "beta__seed_0"
    assert (run_dir / "FAILED").read_text().splitlines()[-1] == "ValueError: the real reason"
    log = out.getvalue()
    assert f"  FAILED beta__seed_0: ValueError: the real reason (see {run_dir}/FAILED)" in log
    assert "- Failed: beta__seed_0 (beta): ValueError: the real reason" in log  # under the table
    status = io.StringIO()
    print_status(res / "s", status)
    assert "beta__seed_0   failed   ValueError: the real reason" in status.getvalue()


def test_baseline_star_matches_the_exact_variant_name():
    settings = SweepSettings(
        variants={"a": {"Experiment.notes": "'1'"}, "../a": {"Experiment.notes": "'2'"}}, baseline="a"
    )
    runs = expand(settings, "x.gin", "x").runs
    assert [(r.variant, r.point, r.baseline) for r in runs] == [("a", "a", True), ("../a", "a", False)]
