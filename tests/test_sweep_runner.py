"""run_sweep with the cheap fake executor of launch_fakes.py: completion, skip/resume, failure isolation, shards,
dry run, status."""

from __future__ import annotations

import io
import os

import pytest

from t5explore import io_utils
from t5explore.sweep.runner import run_sweep, select_runs
from t5explore.sweep.status import print_status

from launch_fakes import fake_execute, starts, write_sweep

pytestmark = pytest.mark.usefixtures("clean_gin")


def sweep_file(tmp_path, extra_variants: str = "") -> str:
    """launch_fakes' sweep, its baseline shown as 'Alpha ★'."""
    return write_sweep(tmp_path, extra_variants, display_names={"alpha": "Alpha ★"})


def test_four_run_sweep_completes_and_rerun_skips_everything(tmp_path):
    out = io.StringIO()
    res = tmp_path / "results"
    outcome = run_sweep(
        sweep_file(tmp_path), res, executor=fake_execute, out=out, overrides=["Experiment.notes = 'everywhere'"]
    )
    names = ["alpha__seed_0", "alpha__seed_1", "beta__seed_0", "beta__seed_1"]
    assert outcome.exit_code == 0 and outcome.states == {n: "ran" for n in names}
    sdir = res / "fake_sweep"
    for n in names:
        result = io_utils.read_json(sdir / n / "result.json")
        assert result["run"] == n and result["sweep"] == "fake_sweep"
        assert result["bindings"][-1] == "Experiment.notes = 'everywhere'"
        assert result["cache_env"] == str(res / ".cache")  # one vocab/token cache per results dir
        assert starts(sdir / n) == [0]
        assert not (sdir / n / "CLAIM").exists()
    assert io_utils.read_json(sdir / "alpha__seed_1" / "result.json")["baseline"] is True
    meta = io_utils.read_json(sdir / "sweep.json")
    assert meta["name"] == "fake_sweep" and meta["baseline"] == "Alpha ★" and meta["baseline_name"] == "alpha"
    assert [(r["run"], r["variant"]) for r in meta["runs"]] == [
        ("alpha__seed_0", "Alpha ★"),
        ("alpha__seed_1", "Alpha ★"),
        ("beta__seed_0", "beta"),
        ("beta__seed_1", "beta"),
    ]
    log = out.getvalue()
    assert "[sweep 4/4 |" in log and "ETA" in log and "4 ran, 0 already done, 0 failed" in log
    assert "T5EXPLORE_CACHE" not in os.environ or os.environ["T5EXPLORE_CACHE"] != str(res / ".cache")

    again = run_sweep(
        sweep_file(tmp_path),
        res,
        executor=fake_execute,
        out=io.StringIO(),
        overrides=["Experiment.notes = 'everywhere'"],
    )  # the same config: nothing to do
    assert again.states == {n: "done" for n in names}
    assert all(starts(sdir / n) == [0] for n in names)


def test_failing_and_nan_runs_are_recorded_and_the_others_complete(tmp_path):
    extra = ", 'broken': {'Experiment.notes': \"'fail'\"}, 'diverged': {'Experiment.notes': \"'nan'\"}"
    res = tmp_path / "results"
    out = io.StringIO()
    outcome = run_sweep(sweep_file(tmp_path, extra), res, executor=fake_execute, out=out, only="*__seed_0")
    sdir = res / "fake_sweep"
    assert outcome.states == {
        "alpha__seed_0": "ran",
        "beta__seed_0": "ran",
        "broken__seed_0": "failed",
        "diverged__seed_0": "failed",
    }
    assert outcome.exit_code == 1
    failed = (sdir / "broken__seed_0" / "FAILED").read_text()
    assert "Traceback" in failed and "RuntimeError: injected failure in broken__seed_0" in failed
    assert "non-finite pretraining loss" in (sdir / "diverged__seed_0" / "FAILED").read_text()
    assert not (sdir / "diverged__seed_0" / "result.json").exists()
    assert (sdir / "alpha__seed_0" / "result.json").exists() and (sdir / "beta__seed_0" / "result.json").exists()
    assert "FAILED broken__seed_0" in out.getvalue()

    status = io.StringIO()
    assert print_status(sdir, status) == 0
    text = status.getvalue()
    assert "8 runs: 2 done, 0 running, 2 failed, 4 pending" in text
    assert "RuntimeError: injected failure" in text


def test_shards_cover_every_run_exactly_once(tmp_path):
    path = tmp_path / "big.gin"
    path.write_text(
        "Sweep.variants = {'a': {}, 'b': {}, 'c': {}}\nSweep.axes = {'x.y': [1, 2, 3]}\nSweep.seeds = [0, 1, 2]\n"
    )
    from t5explore.sweep.grid import load_sweep

    runs = load_sweep(str(path)).runs
    assert len(runs) == 27
    for n in (1, 2, 4, 5, 27, 30):
        parts = [select_runs(runs, shard=f"{i}/{n}") for i in range(n)]
        names = [r.name for p in parts for r in p]
        assert sorted(names) == sorted(r.name for r in runs), n
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    only = select_runs(runs, only="b__*__seed_2")
    assert [r.name for r in only] == ["b__y_1__seed_2", "b__y_2__seed_2", "b__y_3__seed_2"]

    res = tmp_path / "results"
    for i in range(3):  # three workers, one shard each, run the whole sweep exactly once
        run_sweep(sweep_file(tmp_path), res, shard=f"{i}/3", executor=fake_execute, out=io.StringIO())
    sdir = res / "fake_sweep"
    assert sorted(d.name for d in sdir.iterdir() if d.is_dir()) == sorted(
        ["alpha__seed_0", "alpha__seed_1", "beta__seed_0", "beta__seed_1"]
    )
    assert all(starts(d) == [0] for d in sdir.iterdir() if d.is_dir())


def test_cli_dry_run_lists_names_and_bindings_and_writes_nothing(tmp_path, capsys, sweep_cli):
    res = tmp_path / "results"
    code = sweep_cli(
        [
            "sweep",
            sweep_file(tmp_path),
            f"--results_dir={res}",
            "--dry_run",
            "--gin.Sweep.seeds=[7]",
            "--gin.Experiment.notes='x'",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "sweep fake_sweep: 2 of 2 runs" in out
    assert "alpha__seed_7  [Alpha ★ ★]" in out and "beta__seed_7  [beta]" in out
    assert "    Pretrain.steps = 2\n    Experiment.seed = 7\n    Experiment.notes = 'x'" in out
    assert not res.exists()


def test_cli_bad_shard_and_status_of_missing_dir(tmp_path, capsys, sweep_cli):
    assert sweep_cli(["sweep", sweep_file(tmp_path), "--shard=3/3", "--dry_run"]) == 2
    assert "--shard='3/3'" in capsys.readouterr().err
    assert sweep_cli(["status", str(tmp_path / "nowhere")]) == 2


def test_interrupted_run_resumes_from_its_checkpoints(tmp_path):
    res = tmp_path / "results"
    run = res / "fake_sweep" / "alpha__seed_0"
    (run / "checkpoints" / "step_2").mkdir(parents=True)  # what a killed worker leaves behind
    (run / "FAILED").write_text("an earlier failure\n")
    out = io.StringIO()
    run_sweep(sweep_file(tmp_path), res, only="alpha__seed_0", executor=fake_execute, out=out)
    assert starts(run) == [2]
    assert (run / "result.json").exists() and not (run / "FAILED").exists()
    assert (run / "FAILED.previous").read_text() == "an earlier failure\n"
    assert "resuming alpha__seed_0" in out.getvalue()
