"""`--launcher=slurm` (submitit): the sbatch script it would submit, and the array's tasks run for real as local
processes (submitit's LocalExecutor, `--slurm_cluster=local`) with the fake executor of launch_fakes.py.

Skipped without submitit (pip install 't5explore[slurm]'), except in CI, where that is a failure.
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest

from t5explore import io_utils
from t5explore.sweep import launch
from t5explore.sweep.launch import settings, task
from t5explore.sweep.runner import run_sweep

from launch_fakes import EXECUTOR, NAMES, require, results, starts, write_sweep

submitit = require("submitit", "slurm")
from t5explore.sweep.launch import slurm  # noqa: E402 - needs submitit

pytestmark = pytest.mark.usefixtures("clean_gin")


def local_array(**kw) -> launch.RemoteLauncher:
    """The Slurm launcher, its array's tasks run as local processes, followed to the end."""
    return launch.RemoteLauncher("slurm", settings.SlurmSettings(cluster="local", wait=True, poll_s=0.2, **kw))


def test_sbatch_script_asks_for_the_resources_an_array_and_requeue(tmp_path):
    s = settings.SlurmSettings(
        partition="gpu",
        gpus_per_task=2,
        gpu_type="a100",
        cpus_per_task=8,
        mem_gb=32,
        time_min=240,
        array_parallelism=3,
        account="lab",
        setup=["module load cuda"],
    )
    text = slurm.sbatch_script(s, tmp_path / ".submitit", 6, "t5x_sweep")
    lines = text.splitlines()
    for line in [
        "#SBATCH --partition=gpu",
        "#SBATCH --gres=gpu:a100:2",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=32GB",
        "#SBATCH --time=240",
        "#SBATCH --array=0-5%3",
        "#SBATCH --requeue",
        "#SBATCH --signal=USR2@120",
        "#SBATCH --account=lab",
        "#SBATCH --job-name=t5x_sweep",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "module load cuda",
    ]:
        assert line in lines, (line, text)
    assert f"#SBATCH --output={tmp_path / '.submitit'}/%A_%a_0_log.out" in lines
    assert lines[-1].startswith("srun --unbuffered") and "-m submitit.core._submit" in lines[-1]
    single = slurm.sbatch_script(settings.SlurmSettings(), tmp_path, 1, "one")
    assert "--array" not in single and "--gres" not in single and "#SBATCH --time=240" in single


def test_cli_dry_run_prints_the_sbatch_script_and_keeps_launcher_gin_out_of_the_runs(tmp_path, capsys, sweep_cli):
    res = tmp_path / "results"
    cluster = tmp_path / "cluster.gin"
    cluster.write_text("SlurmLauncher.partition = 'from_gin'\nSlurmLauncher.cpus_per_task = 4\n")
    code = sweep_cli(
        [
            "sweep",
            write_sweep(tmp_path),
            f"--results_dir={res}",
            "--dry_run",
            "--launcher=slurm",
            f"--launcher_gin={cluster}",
            "--gin.SlurmLauncher.qos='high'",
            "--slurm_cpus_per_task=16",
            "--slurm_gpus_per_task=1",
            "--slurm_time_min=30",
            "--slurm_setup=source venv/bin/activate",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "#SBATCH --partition=from_gin" in out and "#SBATCH --qos=high" in out  # gin
    assert "#SBATCH --cpus-per-task=16" in out and "#SBATCH --gres=gpu:1" in out  # flags win over gin
    assert "#SBATCH --time=30" in out and "#SBATCH --array=0-3%4" in out and "source venv/bin/activate" in out
    assert "SlurmLauncher" not in out.split("#!/bin/bash")[0]  # not a binding of any run
    assert not res.exists()


def test_array_on_local_processes_ends_like_the_local_launcher(tmp_path):
    sweep = write_sweep(tmp_path)
    local_res, slurm_res = tmp_path / "local", tmp_path / "slurm"
    assert run_sweep(sweep, local_res, executor=EXECUTOR, out=io.StringIO()).exit_code == 0
    out = io.StringIO()
    outcome = run_sweep(sweep, slurm_res, executor=EXECUTOR, out=out, launcher=local_array())
    assert outcome.exit_code == 0 and outcome.states == {n: "ran" for n in NAMES}, out.getvalue()
    sdir = slurm_res / "fake_sweep"
    assert results(sdir, slurm_res) == results(local_res / "fake_sweep", local_res)
    assert len(results(sdir, slurm_res)) == 4 and "4 ran, 0 already done, 0 failed" in out.getvalue()
    waits = [line for line in out.getvalue().splitlines() if "waiting for" in line]  # --slurm_wait is not silent
    assert waits and all(
        re.fullmatch(r"\[0:\d\d:\d\d\] Slurm job \d+: [0-3]/4 ended.*, waiting for \d+ \w+.*", w) for w in waits
    )
    (sub,) = task.submissions(sdir)
    assert sub["launcher"] == "slurm" and sorted(sub["runs"]) == NAMES
    for n in NAMES:
        rec = task.read_launch(sdir / n)
        assert rec["launcher"] == "slurm" and rec["job_id"] == sub["runs"][n] and rec["attempt"] == 1
        assert task.describe(sdir / n).startswith(f"slurm job {rec['job_id']} on ")
        assert starts(sdir / n) == [0] and not (sdir / n / "CLAIM").exists()
    assert (sdir / "table.md").exists()

    again = run_sweep(sweep, slurm_res, executor=EXECUTOR, out=io.StringIO(), launcher=local_array())
    assert again.states == {n: "done" for n in NAMES} and len(task.submissions(sdir)) == 1  # nothing submitted


def test_preempted_task_is_requeued_and_resumes_from_its_checkpoint(tmp_path):
    sweep = write_sweep(tmp_path, ", 'victim': {'Experiment.notes': \"'preempt'\"}")
    res = tmp_path / "results"
    out = io.StringIO()
    outcome = run_sweep(sweep, res, executor=EXECUTOR, out=out, only="victim__seed_0", launcher=local_array())
    run = res / "fake_sweep" / "victim__seed_0"
    assert outcome.states == {"victim__seed_0": "ran"}, out.getvalue()
    assert starts(run) == [0, 2]  # the requeued task resumed at step 2, not from scratch
    assert (run / "result.json").exists() and not (run / "FAILED").exists() and not (run / "CLAIM").exists()
    rec = task.read_launch(run)
    assert rec["attempt"] == 2 and "attempt 2" in task.describe(run)
    log = Path(rec["log"]).read_text()
    assert "this job is preempted" in log and "Requeued job" in log, log


def test_submitted_without_wait_is_queued_and_status_can_say_where(tmp_path):
    sweep = write_sweep(tmp_path)
    res = tmp_path / "results"
    launcher = launch.RemoteLauncher("slurm", settings.SlurmSettings(cluster="local", wait=False))
    out = io.StringIO()
    outcome = run_sweep(sweep, res, executor=EXECUTOR, out=out, only="alpha__seed_0", launcher=launcher)
    assert outcome.states == {"alpha__seed_0": "submitted"} and outcome.exit_code == 0
    assert "t5explore status" in out.getvalue()
    sdir = res / "fake_sweep"
    line = json.loads((sdir / task.SUBMISSIONS_FILE).read_text().splitlines()[-1])
    assert task.describe(sdir / "alpha__seed_0").startswith(f"submitted as slurm job {line['runs']['alpha__seed_0']}")
    from t5explore.sweep.status import print_status

    shown = io.StringIO()
    print_status(sdir, shown)  # `t5explore status` says where the run is
    assert f"slurm job {line['runs']['alpha__seed_0']}" in shown.getvalue()
    deadline = time.time() + 120  # the task is a detached local process: wait for its result
    while not (sdir / "alpha__seed_0" / "result.json").exists():
        assert time.time() < deadline, "the submitted task never finished"
        time.sleep(0.2)
    assert io_utils.read_json(sdir / "alpha__seed_0" / "result.json")["run"] == "alpha__seed_0"


def test_the_wait_line_counts_queued_running_and_ended_jobs():
    line = slurm.wait_line("123", 5, {"a": "ran", "b": "failed", "c": "ran"}, ["RUNNING", "PENDING"])
    assert line == "Slurm job 123: 3/5 ended (1 failed, 2 ran), waiting for 1 PENDING, 1 RUNNING"
    assert slurm.wait_line("9", 2, {}, ["PENDING", "PENDING"]) == "Slurm job 9: 0/2 ended, waiting for 2 PENDING"
