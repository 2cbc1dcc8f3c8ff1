"""The CLI: configuration and input errors exit 2, run failures exit 1, each as one line on stderr (the
traceback in the run's FAILED file, or on stderr with --verbose); a closed pipe is no traceback; --help
imports nothing heavy; every subcommand's help says what it does and which gin flags it takes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from t5explore import cli

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def failing_execute(monkeypatch):
    import t5explore.train.run as run_mod

    def execute(run_dir, *args):
        raise RuntimeError("boom\n  In call to configurable 'Pretrain'")

    monkeypatch.setattr(run_mod, "execute", execute)


def test_run_failure_exits_1_with_one_line_and_the_traceback_in_failed(tmp_path, capsys, failing_execute):
    run_dir = tmp_path / "run"
    assert cli.main(["train", "--gin_file=gin/runs/tiny_cpu.gin", f"--run_dir={run_dir}"]) == 1
    assert capsys.readouterr().err == f"t5explore: run failed: RuntimeError: boom (traceback in {run_dir}/FAILED)\n"
    failed = (run_dir / "FAILED").read_text().splitlines()
    assert "Traceback (most recent call last):" in failed and failed[-1] == "RuntimeError: boom"

    from t5explore.sweep.rundir import run_state

    assert run_state(run_dir).detail == "RuntimeError: boom"  # what `status` shows


def test_verbose_prints_the_traceback_too(tmp_path, capsys, failing_execute):
    assert cli.main(["train", "--gin_file=gin/runs/tiny_cpu.gin", "--verbose", f"--run_dir={tmp_path}/r"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in execute" in err
    assert err.splitlines()[-1].startswith("t5explore: run failed: RuntimeError: boom")


def test_configuration_errors_exit_2_in_one_line(tmp_path, capsys):
    assert cli.main(["train", "--gin_file=gin/nowhere.gin", f"--run_dir={tmp_path}/r"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("t5explore: configuration error: gin file not found: 'gin/nowhere.gin'")
    assert err.count("\n") == 1
    assert cli.main(["status", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"t5explore status: no such directory: {tmp_path}/nowhere\n"


def test_a_closed_pipe_is_no_traceback(tmp_path):
    sweep = tmp_path / "s.gin"
    sweep.write_text("Sweep.variants = {'a': {'Pretrain.steps': '1'}, 'b': {'Pretrain.steps': '2'}}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "t5explore.cli", "sweep", str(sweep), "--dry_run"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # like `| head` that has already gone
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == cli.EXIT_BROKEN_PIPE
    assert err == ""


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from t5explore import cli; cli.build_parser(); "
        "print(sorted(m for m in ('jax', 'pandas', 'scipy', 'matplotlib', 'tensorflow', 'optax', 'numpy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "command, says, gin",
    [
        ("train", "One run: parse gin, pretrain", "--gin.SCOPE.PARAM=VALUE"),
        ("sweep", "Run every run of a sweep gin file", "--gin.SCOPE.PARAM=VALUE"),
        ("status", "show done/running/failed/pending runs", "--gin.SCOPE.PARAM=VALUE"),  # with --sweep_file
        ("table", "Aggregate seeds per variant", "gin flags: none (`t5explore table` ignores them)"),
        ("plot", "Loss curves, score bars", "gin flags: none (`t5explore plot` ignores them)"),
    ],
)
def test_every_subcommand_help_describes_it_and_its_gin_flags(command, says, gin):
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    text = sub.choices[command].format_help()
    assert says in text and gin in text
