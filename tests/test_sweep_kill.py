"""SIGKILL a real `t5explore sweep` mid-run, re-run it: every run completes and none restarts from scratch.

The subprocess runs the fake executor of launch_fakes.py (via $T5EXPLORE_SWEEP_EXECUTOR), which keeps
one "checkpoint" directory per step and logs the step it starts from, so a second start from 0 would show.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from t5explore.sweep.runner import EXECUTOR_ENV

from launch_fakes import EXECUTOR, NAMES, starts, write_sweep


def sweep_cmd(sweep: Path, results: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "t5explore.cli",
        "sweep",
        str(sweep),
        f"--results_dir={results}",
        "--gin.Experiment.notes='killed'",
    ]


def test_sigkill_mid_run_then_rerun_finishes_without_training_twice(tmp_path):
    # distinct configs: identical runs would be computed once (copied), which is not what this test is about
    sweep = Path(write_sweep(tmp_path))
    results = tmp_path / "results"
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "FAKE_STEP_S": "0.3",
        EXECUTOR_ENV: EXECUTOR,
    }
    victim = results / "fake_sweep" / "alpha__seed_1"
    proc = subprocess.Popen(sweep_cmd(sweep, results), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while not (victim / "checkpoints" / "step_2").exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "the sweep never reached the second run"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (victim / "result.json").exists() and (victim / "CLAIM").exists()
    assert (results / "fake_sweep" / "alpha__seed_0" / "result.json").exists()

    status = subprocess.run(
        [sys.executable, "-m", "t5explore.cli", "status", str(results)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "4 runs: 1 done, 0 running, 0 failed, 3 pending" in status.stdout, status.stdout + status.stderr
    assert "interrupted" in status.stdout

    rerun = subprocess.run(
        sweep_cmd(sweep, results), env={**env, "FAKE_STEP_S": "0"}, capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resuming alpha__seed_1" in rerun.stdout
    for name in NAMES:
        run = results / "fake_sweep" / name
        assert (run / "result.json").exists(), name
        assert not (run / "CLAIM").exists(), name
        assert starts(run).count(0) == 1, (name, starts(run))  # trained from scratch exactly once
    victim_starts = starts(victim)
    assert victim_starts[0] == 0 and victim_starts[1] >= 2
