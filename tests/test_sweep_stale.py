"""A re-run whose config changed is refused (one error, before anything runs) unless told what to do.

Runs go through the real CLI (`t5explore.cli.main`) with the fake executor of launch_fakes.py, which logs
every start to starts.log and keeps one "checkpoint" directory per step, so an execution or a resume shows.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from t5explore import cli, io_utils, run_layout
from t5explore.numerics import NUMERICS_VERSION
from t5explore.report.results import find_sweep_dirs, load_results
from t5explore.sweep import fingerprint
from t5explore.sweep.runner import EXECUTOR_ENV, run_sweep
from t5explore.sweep.status import print_status

from launch_fakes import EXECUTOR, NAMES, starts

pytestmark = pytest.mark.usefixtures("clean_gin")


@pytest.fixture
def sweep_cli(sweep_cli, monkeypatch):
    """conftest's sweep CLI plus the train command, running the fake executor."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "t5explore.train.commands"))
    monkeypatch.setenv(EXECUTOR_ENV, EXECUTOR)
    return sweep_cli


def write_sweep(tmp_path: Path, alpha_steps: str = "1", notes: str = "ok") -> str:
    path = tmp_path / "fake_sweep.gin"
    path.write_text(f"""
Experiment.notes = '{notes}'
Sweep.variants = {{'alpha': {{'Pretrain.steps': '{alpha_steps}'}}, 'beta': {{'Pretrain.steps': '2'}}}}
Sweep.seeds = [0, 1]
""")
    return str(path)


def test_changed_binding_after_completion_is_refused_naming_old_and_new_values(tmp_path, sweep_cli, capsys):
    res = tmp_path / "results"
    assert sweep_cli(["sweep", write_sweep(tmp_path), f"--results_dir={res}"]) == 0
    sdir = res / "fake_sweep"
    before = {n: (sdir / n / "result.json").read_text() for n in NAMES}
    recorded = io_utils.read_json(sdir / "alpha__seed_0" / "fingerprint.json")
    assert "Pretrain.steps = 1" in recorded["config"] and len(recorded["fingerprint"]) == 64
    assert not any(line.startswith("Sweep.") for line in recorded["config"])
    capsys.readouterr()

    assert sweep_cli(["sweep", write_sweep(tmp_path, alpha_steps="3"), f"--results_dir={res}"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert (
        "run alpha__seed_0 of sweep fake_sweep was made under a different config: Pretrain.steps: 1 -> 3 "
        "(also changed: alpha__seed_1)"
    ) in err
    assert "--rerun_changed" in err and "--force" in err
    assert {n: (sdir / n / "result.json").read_text() for n in NAMES} == before  # nothing ran, nothing changed
    assert all(starts(sdir / n) == [0] for n in NAMES)


def test_rerun_changed_keeps_the_old_runs_aside_and_reruns_only_them(tmp_path, sweep_cli, capsys):
    res = tmp_path / "results"
    sdir = res / "fake_sweep"
    assert sweep_cli(["sweep", write_sweep(tmp_path), f"--results_dir={res}"]) == 0
    assert sweep_cli(["sweep", write_sweep(tmp_path, alpha_steps="3"), f"--results_dir={res}", "--rerun_changed"]) == 0
    out = capsys.readouterr().out
    assert "alpha__seed_0: config changed (Pretrain.steps: 1 -> 3); old run moved to" in out
    aside = sorted((sdir / run_layout.STALE_DIR).iterdir())
    assert [p.name.split(".")[0] for p in aside] == ["alpha__seed_0", "alpha__seed_1"]
    old = io_utils.read_json(aside[0] / "result.json")
    assert "Pretrain.steps = 1" in old["bindings"] and starts(aside[0]) == [0]
    new = io_utils.read_json(sdir / "alpha__seed_0" / "result.json")
    assert "Pretrain.steps = 3" in new["bindings"] and starts(sdir / "alpha__seed_0") == [0]
    assert "Pretrain.steps = 3" in fingerprint.read(sdir / "alpha__seed_0").config
    assert starts(sdir / "beta__seed_0") == [0]  # unchanged runs stay done
    # the aside copies are not runs: neither status nor the report reads them
    status = io.StringIO()
    print_status(res, status)
    assert "4 runs: 4 done, 0 running, 0 failed, 0 pending, 0 stale" in status.getvalue()
    assert find_sweep_dirs(res) == [sdir]
    assert sorted(load_results(res).runs["run"]) == NAMES


def test_force_deletes_the_old_run_and_reruns(tmp_path, sweep_cli, capsys):
    res = tmp_path / "results"
    sdir = res / "fake_sweep"
    assert sweep_cli(["sweep", write_sweep(tmp_path), f"--results_dir={res}"]) == 0
    assert sweep_cli(["sweep", write_sweep(tmp_path, alpha_steps="3"), f"--results_dir={res}", "--force"]) == 0
    assert "old run deleted" in capsys.readouterr().out
    assert not (sdir / run_layout.STALE_DIR).exists()
    assert "Pretrain.steps = 3" in io_utils.read_json(sdir / "alpha__seed_1" / "result.json")["bindings"]
    assert starts(sdir / "alpha__seed_1") == [0]
    with pytest.raises(SystemExit):  # one way out at a time
        sweep_cli(["sweep", write_sweep(tmp_path), f"--results_dir={res}", "--rerun_changed", "--force"])


def interrupted_execute(run_dir, gin_files, bindings, metadata):
    """Dies after its second checkpoint, like a killed worker."""
    (Path(run_dir) / "checkpoints" / "step_2").mkdir(parents=True)
    raise RuntimeError("killed")


def test_checkpoints_made_under_another_config_are_never_resumed(tmp_path, sweep_cli, capsys):
    res = tmp_path / "results"
    run = res / "fake_sweep" / "alpha__seed_0"
    run_sweep(write_sweep(tmp_path), res, only="alpha__seed_0", executor=interrupted_execute, out=io.StringIO())
    assert (run / "checkpoints" / "step_2").is_dir() and not (run / "result.json").exists()

    assert sweep_cli(["sweep", write_sweep(tmp_path, notes="changed"), f"--results_dir={res}"]) == 2
    err = capsys.readouterr().err
    assert (
        "run alpha__seed_0 of sweep fake_sweep was made under a different config: "
        "Experiment.notes: 'ok' -> 'changed'" in err
    )
    assert not (run / "starts.log").exists() and not (res / "fake_sweep" / "beta__seed_0").exists()

    assert sweep_cli(["sweep", write_sweep(tmp_path, notes="changed"), f"--results_dir={res}", "--rerun_changed"]) == 0
    assert starts(run) == [0]  # started afresh, not from the other config's step 2


def test_changed_config_of_a_run_without_progress_just_runs(tmp_path, sweep_cli):
    """A run that failed before its first checkpoint has nothing to mix: fixing its config needs no flag."""
    res = tmp_path / "results"
    run = res / "fake_sweep" / "alpha__seed_0"
    sweep = write_sweep(tmp_path)
    assert sweep_cli(["sweep", sweep, f"--results_dir={res}", "--gin.Experiment.notes='fail'"]) == 1
    assert (run / "FAILED").exists() and (run / "fingerprint.json").exists()
    assert sweep_cli(["sweep", sweep, f"--results_dir={res}", "--gin.Experiment.notes='fixed'"]) == 0
    assert starts(run) == [0, 0] and (run / "result.json").exists()


def test_status_shows_stale_runs_against_the_sweep_file_the_user_names(tmp_path, sweep_cli, capsys):
    """Status never parses the sweep file sweep.json names (a results directory is data); given one on the
    command line, with the sweep's gin flags, it names the changed bindings."""
    res = tmp_path / "results"
    sweep = write_sweep(tmp_path)
    assert sweep_cli(["sweep", sweep, f"--results_dir={res}", "--gin.Optimizer.warmup_steps=5"]) == 0
    out = io.StringIO()
    print_status(res / "fake_sweep", out)
    assert "4 runs: 4 done, 0 running, 0 failed, 0 pending, 0 stale, 0 corrupt" in out.getvalue()

    write_sweep(tmp_path, alpha_steps="3")
    out = io.StringIO()
    assert print_status(res / "fake_sweep", out) == 0
    assert "4 runs: 4 done, 0 running, 0 failed, 0 pending, 0 stale" in out.getvalue()  # no file named: not read
    capsys.readouterr()
    assert sweep_cli(["status", str(res), f"--sweep_file={sweep}", "--gin.Optimizer.warmup_steps=5"]) == 0
    text = capsys.readouterr().out
    assert "4 runs: 2 done, 0 running, 0 failed, 0 pending, 2 stale" in text  # the override still applies
    line = next(ln for ln in text.splitlines() if "alpha__seed_1" in ln)
    assert "stale" in line and "Pretrain.steps: 1 -> 3" in line
    assert "--rerun_changed" in text


def test_status_shows_runs_stale_against_the_fingerprints_the_last_sweep_recorded(tmp_path, sweep_cli):
    """A sweep re-run under a changed config for one run leaves the other changed run stale; status sees it from
    the fingerprints sweep.json and the run directory recorded, without any sweep file."""
    res = tmp_path / "results"
    assert sweep_cli(["sweep", write_sweep(tmp_path), f"--results_dir={res}"]) == 0
    sweep = write_sweep(tmp_path, alpha_steps="3")
    assert sweep_cli(["sweep", sweep, f"--results_dir={res}", "--rerun_changed", "--only=alpha__seed_0"]) == 0
    out = io.StringIO()
    assert print_status(res / "fake_sweep", out) == 0
    text = out.getvalue()
    assert "4 runs: 3 done, 0 running, 0 failed, 0 pending, 1 stale" in text
    line = next(ln for ln in text.splitlines() if "alpha__seed_1" in ln)
    assert "stale" in line and "the last `t5explore sweep` of this directory" in line and "--sweep_file" in line


def test_train_refuses_a_run_dir_made_under_another_config(tmp_path, sweep_cli, capsys):
    run = tmp_path / "one"
    (run / "checkpoints" / "3").mkdir(parents=True)
    fingerprint.write(run, fingerprint.compute([], ["Pretrain.steps = 6", "Experiment.seed = 0"]))
    gin_file = tmp_path / "run.gin"
    gin_file.write_text("Pretrain.steps = 6\nExperiment.seed = 1\n")
    assert sweep_cli(["train", f"--run_dir={run}", f"--gin_file={gin_file}"]) == 2
    err = capsys.readouterr().err
    assert f"run directory {run} was made under a different config (Experiment.seed: 0 -> 1)" in err
    recorded = json.loads((run / "fingerprint.json").read_text())["config"]
    assert recorded == ["Experiment.seed = 0", f"NUMERICS_VERSION = {NUMERICS_VERSION}", "Pretrain.steps = 6"]
