"""The fake executor of the sweep and launcher tests, and their helpers. Subprocesses (a killed `t5explore sweep`,
Slurm/Ray workers) load it by path (`EXECUTOR`), so it imports neither pytest nor the CLI and loads fast.

`fake_execute` behaves like train/run.py's `execute` as far as the sweep can tell: it resumes from the
"checkpoints" it left in the run dir (one `checkpoints/step_N` directory per step), logs every start to
`starts.log`, and writes result.json atomically at the end. Its switches are real gin bindings of
`Experiment.notes` (every run's config is parsed for real before the sweep starts, fingerprint.py):

    'fail'     raises before the first step (the sweep records it as FAILED)
    'nan'      completes with a NaN final loss (the sweep rejects it)
    'preempt'  after step 2 of its first attempt, sends itself SIGUSR2, as Slurm does before the time limit
               (submitit then checkpoints + requeues)
    'kill'     after step 2 of its first attempt, SIGKILLs its own process (a worker lost without a word)

$FAKE_STEP_S (seconds, default 0) is slept before each step, so a test can kill the sweep mid-run.
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
    if "Experiment.notes = 'fail'" in bindings:
        raise RuntimeError(f"injected failure in {metadata['run']}")
    step_s = float(os.environ.get("FAKE_STEP_S", "0"))
    for step in range(start + 1, STEPS + 1):
        time.sleep(step_s)
        (ckpts / f"step_{step}").mkdir()
        if step == 2 and start == 0:
            _maybe_interrupt(bindings)
    loss = float("nan") if "Experiment.notes = 'nan'" in bindings else 1.0 / (1 + len(metadata["run"]))
    result = {
        **metadata,
        "schema": 1,
        "bindings": list(bindings),
        "gin_files": list(gin_files),
        "pretrain": {"steps": STEPS, "final_loss": loss},
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


NAMES = ["alpha__seed_0", "alpha__seed_1", "beta__seed_0", "beta__seed_1"]  # the runs of write_sweep


def write_sweep(tmp_path: Path, extra_variants: str = "", display_names: dict[str, str] | None = None) -> str:
    """Two variants x two seeds (distinct configs, so no run is shared from another), baseline 'alpha'."""
    path = tmp_path / "fake_sweep.gin"
    path.write_text(
        "Sweep.variants = {'alpha': {'Pretrain.steps': '1'}, 'beta': {'Pretrain.steps': '2'}"
        f"{extra_variants}}}\nSweep.seeds = [0, 1]\nSweep.baseline = 'alpha'\n"
        + (f"Sweep.display_names = {display_names!r}\n" if display_names else "")
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
