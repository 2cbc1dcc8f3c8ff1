"""SIGTERM stops a run cleanly (issue 21, part 2): at a checkpoint due within the grace period, or when the grace
period ends; the claim is released, no half-written orbax directory is left, the CLI exits 143 with one line,
and a resumed run gives exactly the numbers of an uninterrupted one, in pre-training and in fine-tuning.

The real-run test drives tiny sweeps like the SIGKILL test (tests/test_fault_injection.py, whose helpers it
reuses); the SIGTERM comes from the test-only kill points with $T5EXPLORE_TEST_KILL_SIGNAL=TERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_fault_injection import SWEEP, _numbers

from t5explore.sweep.runner import EXECUTOR_ENV
from t5explore.train import stopping
from t5explore.train.faults import KILL_ENV, SIGNAL_ENV

from launch_fakes import fake_execute, starts, write_sweep

pytestmark = pytest.mark.usefixtures("clean_gin")
HERE = Path(__file__).resolve().parent


def _sweep(sweep_file: Path, results: Path, env: dict, kill: str | None = None) -> subprocess.CompletedProcess:
    """test_fault_injection's `_sweep`, with room for a loaded machine (the first run builds the caches)."""
    env = {**env, KILL_ENV: kill} if kill else env
    cmd = [sys.executable, "-m", "t5explore.cli", "sweep", str(sweep_file), f"--results_dir={results}"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)


def test_the_first_sigterm_waits_for_a_checkpoint_a_second_one_stops_at_once():
    previous = stopping.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # handled between bytecodes: nothing raised yet
        assert stopping.requested()
        with pytest.raises(stopping.Terminated, match="stopped after saving the pretrain checkpoint of step 3"):
            stopping.after_checkpoint("pretrain", 3)
        stopping.install()
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(stopping.Terminated, match="a second SIGTERM came before the next checkpoint"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    finally:
        stopping.uninstall(previous)
    assert not stopping.requested() and signal.getsignal(signal.SIGTERM) is previous


def test_without_a_checkpoint_the_grace_period_ends_the_run(monkeypatch):
    monkeypatch.setenv(stopping.GRACE_ENV, "0.2")
    previous = stopping.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        t0 = time.monotonic()
        with pytest.raises(stopping.Terminated, match="no checkpoint fell due within the 0.2 s grace period"):
            while time.monotonic() - t0 < 10:
                time.sleep(0.01)  # a run busy in a step
        assert 0.2 <= time.monotonic() - t0 < 5
    finally:
        stopping.uninstall(previous)


def term_execute(run_dir, gin_files, bindings, metadata):
    """The fake executor, SIGTERMed at its second step (tests load it by path, like launch_fakes')."""
    if metadata["run"] == "alpha__seed_0" and not (Path(run_dir) / "checkpoints").exists():
        os.kill(os.getpid(), signal.SIGTERM)
    return fake_execute(run_dir, gin_files, bindings, metadata)


def test_a_sigtermed_sweep_releases_its_claim_and_exits_143_with_one_line(tmp_path, sweep_cli, capsys, monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, f"{HERE / 'test_hardening_sigterm.py'}:term_execute")
    monkeypatch.setenv(stopping.GRACE_ENV, "0.5")  # the fake run has no checkpoint the handler could wait for
    monkeypatch.setenv("FAKE_STEP_S", "0.3")
    res = tmp_path / "results"
    sweep = write_sweep(tmp_path)
    assert sweep_cli(["sweep", sweep, f"--results_dir={res}"]) == 143
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "t5explore: terminated (SIGTERM): no checkpoint fell due within the 0.5 s grace period; the run resumes "
        "from its last checkpoint when run again"
    ], err
    run = res / "fake_sweep" / "alpha__seed_0"
    assert not (run / "CLAIM").exists() and not (run / "result.json").exists()
    monkeypatch.setenv("FAKE_STEP_S", "0")
    assert sweep_cli(["sweep", sweep, f"--results_dir={res}"]) == 0
    assert starts(run)[0] == 0 and starts(run)[1] > 0  # resumed, not restarted


@pytest.mark.slow
def test_sigterm_in_pretraining_and_in_fine_tuning_then_rerun_gives_the_uninterrupted_numbers(tmp_path, cache_dir):
    """SIGTERM at pre-training row 2 stops after checkpoint 3 (due within the grace period); SIGTERM at
    fine-tuning row 3 with no grace stops before the next checkpoint; the final rerun equals the reference."""
    sweep_file = tmp_path / "faults.gin"
    sweep_file.write_text(SWEEP.replace("Sweep.seeds = [0, 1]", "Sweep.seeds = [0]"))
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "T5EXPLORE_CACHE": str(cache_dir),
        "T5EXPLORE_COMPILE_CACHE": str(tmp_path / "jax_cache"),
    }
    for key in (KILL_ENV, SIGNAL_ENV, stopping.GRACE_ENV):
        env.pop(key, None)
    reference = _sweep(sweep_file, tmp_path / "reference", env)
    assert reference.returncode == 0, reference.stdout + reference.stderr

    killed, run = tmp_path / "killed", tmp_path / "killed" / "faults" / "base__seed_0"
    term = {**env, SIGNAL_ENV: "TERM"}
    for kill, grace, says in (
        ("pretrain:2", "25", "stopped after saving the pretrain checkpoint of step 3"),
        ("finetune/stdlib_module:3", "0", "terminated (SIGTERM)"),
    ):
        proc = _sweep(sweep_file, killed, {**term, stopping.GRACE_ENV: grace}, kill=kill)
        assert proc.returncode == 143, (kill, proc.stdout[-3000:] + proc.stderr[-3000:])
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("t5explore: terminated (SIGTERM)") and says in last, last
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert not (run / "CLAIM").exists() and not (run / "result.json").exists()
        assert not list(run.glob("checkpoints/**/*.orbax-checkpoint-tmp*")), kill
    assert (run / "checkpoints" / "3").is_dir()

    final = _sweep(sweep_file, killed, env)
    assert final.returncode == 0, final.stdout + final.stderr
    want, got = _numbers(tmp_path / "reference" / "faults" / "base__seed_0"), _numbers(run)
    assert got["result"] == want["result"]
    assert got["rows"] == want["rows"]
    assert got["predictions"] == want["predictions"]
