"""`--launcher=ray`: every run as a Ray task on a real local Ray cluster (2 CPUs, started once for this file),
with the fake executor of launch_fakes.py: the same results as the local launcher, and a run whose worker is
killed mid-way resumes from its checkpoint, whether Ray retries it or the sweep is re-run. One test runs a real
`t5explore sweep --launcher=ray` process, which starts (and stops) its own local cluster.

Skipped without ray (pip install 't5explore[ray]'), except in CI, where that is a failure.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from t5explore.sweep import launch
from t5explore.sweep.launch import settings, task
from t5explore.sweep.runner import run_sweep

from launch_fakes import EXECUTOR, NAMES, require, results, starts, write_sweep

ray = require("ray", "ray")

VICTIM = "victim__seed_0"
pytestmark = pytest.mark.usefixtures("clean_gin")


@pytest.fixture(scope="module")
def ray_cluster():
    """One small local cluster for the in-process tests: the launcher uses a Ray this process already joined."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024**2, log_to_driver=False)
    yield
    ray.shutdown()


def ray_launcher(**kw) -> launch.RemoteLauncher:
    return launch.RemoteLauncher("ray", settings.RaySettings(**kw))


def test_cli_sweep_on_a_ray_cluster_it_starts_ends_like_the_local_launcher(tmp_path):
    """A real `t5explore sweep --launcher=ray` process: it starts a local cluster, runs, and shuts it down."""
    sweep = write_sweep(tmp_path)
    local_res, ray_res = tmp_path / "local", tmp_path / "ray"
    assert run_sweep(sweep, local_res, executor=EXECUTOR, out=io.StringIO()).exit_code == 0
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "T5EXPLORE_SWEEP_EXECUTOR": EXECUTOR}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "t5explore.cli",
            "sweep",
            sweep,
            f"--results_dir={ray_res}",
            "--launcher=ray",
            "--ray_local_cpus=2",
            "--ray_num_cpus=1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 run(s) started as Ray tasks" in proc.stdout and "4 ran, 0 already done, 0 failed" in proc.stdout
    sdir = ray_res / "fake_sweep"
    assert results(sdir, ray_res) == results(local_res / "fake_sweep", local_res)
    (sub,) = task.submissions(sdir)
    for n in NAMES:
        rec = task.read_launch(sdir / n)
        assert rec["launcher"] == "ray" and rec["job_id"] == sub["runs"][n] and rec["attempt"] == 1
        assert starts(sdir / n) == [0] and not (sdir / n / "CLAIM").exists()
        assert task.describe(sdir / n).startswith(f"ray task {sub['runs'][n][:16]} on ")


def test_killed_worker_is_retried_by_ray_and_resumes(tmp_path, ray_cluster):
    sweep = write_sweep(tmp_path, ", 'victim': {'Experiment.notes': \"'kill'\"}")
    res = tmp_path / "results"
    out = io.StringIO()
    outcome = run_sweep(sweep, res, executor=EXECUTOR, out=out, only="*__seed_0", launcher=ray_launcher(max_retries=1))
    assert outcome.states == {"alpha__seed_0": "ran", "beta__seed_0": "ran", VICTIM: "ran"}, out.getvalue()
    run = res / "fake_sweep" / VICTIM
    assert starts(run) == [0, 2]  # the retry took over the dead worker's claim and resumed at step 2
    assert (run / "result.json").exists() and not (run / "FAILED").exists() and not (run / "CLAIM").exists()
    assert task.read_launch(run)["attempt"] == 2


def test_killed_worker_without_retries_is_recorded_and_the_rerun_resumes(tmp_path, ray_cluster):
    sweep = write_sweep(tmp_path, ", 'victim': {'Experiment.notes': \"'kill'\"}")
    res = tmp_path / "results"
    out = io.StringIO()
    first = run_sweep(sweep, res, executor=EXECUTOR, out=out, only=VICTIM, launcher=ray_launcher(max_retries=0))
    run = res / "fake_sweep" / VICTIM
    assert first.states == {VICTIM: "failed"} and first.exit_code == 1
    assert "ended without a result" in (run / "FAILED").read_text() and not (run / "result.json").exists()
    assert starts(run) == [0]

    again = run_sweep(
        sweep, res, executor=EXECUTOR, out=io.StringIO(), only=VICTIM, launcher=ray_launcher(max_retries=0)
    )
    assert again.states == {VICTIM: "ran"} and again.exit_code == 0
    assert starts(run) == [0, 2] and (run / "result.json").exists() and not (run / "FAILED").exists()
    assert "ended without a result" in (run / "FAILED.previous").read_text()
