"""Fakes for the launcher tests (tests/test_launch_*.py): a cheap executor that worker processes load by path.

`fake_execute` keeps the on-disk conventions of test_sweep_runner.py's fake (one `checkpoints/step_N` directory
per step, every start logged to `starts.log`, result.json written atomically last), without importing pytest or
the CLI, so Slurm/Ray worker processes load it fast. `Experiment.notes` (a real gin binding) makes a run
interrupt itself after step 2 of its first attempt:

    'preempt'  sends itself SIGUSR2, as Slurm does before the time limit (submitit then checkpoints + requeues)
    'kill'     SIGKILLs its own process (a worker lost without a word)
"""

from __future__ import annotations

import importlib
import os
import signal
import time
from pathlib import Path

from t5explore import io_utils

HERE = Path(__file__).resolve().parent
STEPS = 4
EXECUTOR = f"{HERE / 'launch_fakes.py'}:fake_execute"


def fake_execute(run_dir, gin_files, bindings, metadata):
    run_dir = Path(run_dir)
    ckpts = run_dir / "checkpoints"
    ckpts.mkdir(parents=True, exist_ok=True)
    done = sorted(int(p.name.split("_")[1]) for p in ckpts.glob("step_*"))
    start = done[-1] if done else 0
    with open(run_dir / "starts.log", "a") as f:
        f.write(f"{start}\n")
    for step in range(start + 1, STEPS + 1):
        (ckpts / f"step_{step}").mkdir()
        if step == 2 and start == 0:
            _maybe_interrupt(bindings)
    result = {
        **metadata,
        "schema": 1,
        "bindings": list(bindings),
        "gin_files": list(gin_files),
        "pretrain": {"steps": STEPS, "final_loss": 1.0 / (1 + len(metadata["run"]))},
        "cache_env": os.environ.get("T5EXPLORE_CACHE"),
    }
    io_utils.atomic_write_json(run_dir / "result.json", result)
    return result


def _maybe_interrupt(bindings) -> None:
    if "Experiment.notes = 'preempt'" in bindings:
        os.kill(os.getpid(), signal.SIGUSR2)  # submitit's handler requeues and exits (SystemExit)
        time.sleep(60)
        raise AssertionError("SIGUSR2 did not stop the run")
    if "Experiment.notes = 'kill'" in bindings:
        os.kill(os.getpid(), signal.SIGKILL)


def write_sweep(tmp_path: Path, extra_variants: str = "") -> str:
    """Two variants x two seeds (distinct configs, so no run is shared from another)."""
    path = tmp_path / "fake_sweep.gin"
    path.write_text(
        "Sweep.variants = {'alpha': {'Pretrain.steps': '1'}, 'beta': {'Pretrain.steps': '2'}"
        f"{extra_variants}}}\nSweep.seeds = [0, 1]\nSweep.baseline = 'alpha'\n"
    )
    return str(path)


def starts(run_dir: Path) -> list[int]:
    return [int(x) for x in (Path(run_dir) / "starts.log").read_text().split()]


def results(sweep_dir: Path, results_dir: Path) -> dict[str, dict]:
    """Every run's result.json, with the results directory written as '<results>' (it differs per launcher)."""
    out = {}
    for p in sorted(Path(sweep_dir).glob("*/result.json")):
        d = io_utils.read_json(p)
        d["cache_env"] = str(d.get("cache_env")).replace(str(results_dir), "<results>")
        out[p.parent.name] = d
    return out


def require(module: str, extra: str):
    """Import an optional launcher package, or skip with the reason; in CI ($CI set) a missing one fails."""
    import pytest

    try:
        return importlib.import_module(module)
    except ImportError as e:
        why = f"{module} is not installed (pip install 't5explore[{extra}]'): {e}"
        if os.environ.get("CI"):
            pytest.fail(f"CI must test the {extra} launcher: {why}", pytrace=False)
        pytest.skip(why, allow_module_level=True)
