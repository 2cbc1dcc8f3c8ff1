"""Fault injection: a real `t5explore sweep` of two tiny runs is SIGKILLed five times — during pretraining, during a
checkpoint write, during fine-tuning, during evaluation and just before result.json — and re-run each time; it
ends with exactly the numbers of an uninterrupted sweep (result.json's pretrain/downstream/benchmarks/bootstrap,
every metrics.jsonl row but its wall-clock fields, every prediction), keeps TensorBoard points and timing of
every attempt, and `t5explore status` says where an interrupted run stopped.

The kills come from the test-only hook $T5EXPLORE_TEST_KILL_AT=<point>:<step> (t5explore/train/faults.py): the
process SIGKILLs itself the first time it reaches `point` at a step >= `step`. Each kill's point and step are
drawn from a seeded RNG among the candidates of its phase, and so is where the kills move from the first run to
the second (the first is finished in between by `--only`). The phases are killed in the order they happen, so
every drawn kill is reached: in the run it interrupted last, or in the next one, which starts fresh.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from t5explore.sweep.status import print_status
from t5explore.train.faults import KILL_ENV
from t5explore.train.writers import read_metrics

# Draws the first run's pretraining row 4 (one step after checkpoint 3), its finishing fine-tuning checkpoint and
# its row 3 (two steps after checkpoint 2; the second run's if that checkpoint was complete before the kill),
# then the second run's evaluation at 4 and its result.json.
SEED = 76
RUNS = ("base__seed_0", "base__seed_1")
# Pretraining logs at 2/4/6, evaluates at 3/6 and checkpoints at 3/6 (gin/runs/tiny_scale.gin); fine-tuning
# logs at 3/4 (here), so a checkpoint at 2 holds two unlogged steps, and evaluates and checkpoints at 2/4.
# One layer each side: half the compilation of the tiny model, which is most of this test's time.
SWEEP = """include 'gin/runs/tiny_cpu.gin'
Sweep.name = 'faults'
Sweep.variants = {'base': {}}
Sweep.seeds = [0, 1]
Finetune.log_every = 3
T5Config.num_encoder_layers = 1
T5Config.num_decoder_layers = 1
"""
KILLS = {  # phase -> candidate kill points (point, step), in the order the phases happen
    "pretraining": [("pretrain", 2), ("pretrain", 4), ("pretrain_eval", 3)],
    "checkpoint write": [
        ("checkpoint/pretrain", 3),
        ("checkpoint/pretrain", 6),
        ("checkpoint/finetune/stdlib_module", 2),
        ("checkpoint/finetune/stdlib_module", 4),
    ],
    "fine-tuning": [("finetune/stdlib_module", 3), ("finetune/stdlib_module", 4)],
    "evaluation": [("eval/stdlib_module", 2), ("eval/stdlib_module", 4)],
    "result.json": [("result", 0)],
}
TIMING_KEYS = {"tokens_per_s", "real_tokens_per_s", "data_wait_share"}  # wall-clock fields of metrics rows


def _sweep(
    sweep_file: Path, results: Path, env: dict, kill: str | None = None, only: str | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    env = {**env, KILL_ENV: kill} if kill else env
    cmd = [sys.executable, "-m", "t5explore.cli", "sweep", str(sweep_file), f"--results_dir={results}"]
    return subprocess.run(
        cmd + ([f"--only={only}"] if only else []), env=env, capture_output=True, text=True, timeout=timeout
    )


def _numbers(run: Path) -> dict:
    result = json.loads((run / "result.json").read_text())
    rows = [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in read_metrics(run / "metrics.jsonl")]
    return {
        "result": {k: result[k] for k in ("pretrain", "downstream", "benchmarks", "bootstrap")},
        "rows": rows,
        "predictions": (run / "predictions" / "stdlib_module.jsonl").read_text(),
    }


def _tensorboard_points(run: Path) -> set[tuple[str, int]]:
    """(tag, step) of every scalar in every events file of `run` (TFRecord framing, tensorboardX's protos)."""
    from tensorboardX.proto import event_pb2

    points = set()
    for path in run.glob("events.out.tfevents.*"):
        data, at = path.read_bytes(), 0
        while at + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            if at + 16 + length > len(data):
                break  # a record cut by the kill
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
            points |= {(v.tag, event.step) for v in event.summary.value}
            at += 16 + length
    return points


def _sweep_env(tmp_path, cache_dir) -> dict:
    """The sweeps' environment: CPU, the session's shared cache, a compile cache of the test's own, no kill."""
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "T5EXPLORE_CACHE": str(cache_dir),
        "T5EXPLORE_COMPILE_CACHE": str(tmp_path / "jax_cache"),
    }
    env.pop(KILL_ENV, None)
    return env


@pytest.mark.slow
def test_sigkill_anywhere_then_rerun_gives_the_uninterrupted_numbers(tmp_path, cache_dir):
    sweep_file = tmp_path / "faults.gin"
    sweep_file.write_text(SWEEP)
    env = _sweep_env(tmp_path, cache_dir)
    reference = _sweep(sweep_file, tmp_path / "reference", env)
    assert reference.returncode == 0, reference.stdout + reference.stderr

    rng = random.Random(SEED)
    killed = tmp_path / "killed"
    second = rng.randint(1, len(KILLS) - 1)  # the kills from this one on interrupt the second run
    for k, (phase, candidates) in enumerate(KILLS.items()):
        if k == second:
            first = _sweep(sweep_file, killed, env, only=RUNS[0])
            assert first.returncode == 0, first.stdout + first.stderr
        point, step = rng.choice(candidates)
        proc = _sweep(sweep_file, killed, env, kill=f"{point}:{step}")
        assert proc.returncode == -signal.SIGKILL, (phase, point, step, proc.stdout[-3000:] + proc.stderr[-3000:])
        if phase == "fine-tuning":  # status names the phase and step an interrupted run reached
            out = io.StringIO()
            print_status(killed, out)
            shown = out.getvalue()
            assert "pending  interrupted" in shown, shown
            assert f"at finetune task 1/1 stdlib_module step {step}/4" in shown, shown
    final = _sweep(sweep_file, killed, env)
    assert final.returncode == 0, final.stdout + final.stderr

    for name in RUNS:
        want, got = _numbers(tmp_path / "reference" / "faults" / name), _numbers(killed / "faults" / name)
        assert got["result"] == want["result"], name
        assert got["rows"] == want["rows"], name
        assert got["predictions"] == want["predictions"], name
        run = killed / "faults" / name
        tags = {(f"{r['phase']}/loss", r["step"]) for r in read_metrics(run / "metrics.jsonl") if "loss" in r}
        assert tags <= _tensorboard_points(run), name  # every attempt's events file kept, flushed up to its kill
        result = json.loads((run / "result.json").read_text())
        attempts = result["attempts"]
        for key in ("compile_s", "pretrain_s", "finetune_s", "eval_s", "total_s"):
            assert result["timing"][key] == pytest.approx(sum(a[key] for a in attempts)), (name, key)
        assert result["timing"]["pretrain_s"] > 0 and result["timing"]["finetune_s"] > 0, result["timing"]
        assert len(attempts) >= 2 and [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))


# Budgets at 2 and 4 (train/budgets.py): each is fine-tuned like the final params, in run_dir/budgets/<step>/.
# Fine-tuning evaluates and checkpoints at 2, 4 and 6 and logs at 5 and 6: at the row of step 5 the checkpoint
# at 4 has started, so the one at 2 is complete (orbax finishes a save before it starts the next).
BUDGET_SWEEP = """include 'gin/runs/tiny_cpu.gin'
Sweep.name = 'budget_faults'
Sweep.variants = {'base': {}}
Sweep.seeds = [0]
Pretrain.eval_at_steps = [2, 4]
Finetune.steps = 6
Finetune.log_every = 5
T5Config.num_encoder_layers = 1
T5Config.num_decoder_layers = 1
"""


def _budget_numbers(run: Path) -> dict:
    """result.json's numbers (a budget's wall_s is wall-clock) and every budget's metrics rows and predictions."""
    result = json.loads((run / "result.json").read_text())
    budgets = [{k: v for k, v in b.items() if k != "wall_s"} for b in result["budgets"]]
    numbers = {k: result[k] for k in ("pretrain", "downstream", "benchmarks", "bootstrap")}
    for step in (2, 4):
        where = run / "budgets" / str(step)
        rows = [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in read_metrics(where / "metrics.jsonl")]
        predictions = (where / "predictions" / "stdlib_module.jsonl").read_text()
        numbers[f"budget {step}"] = {"rows": rows, "predictions": predictions}
    return {**numbers, "budgets": budgets}


@pytest.mark.slow
def test_sigkill_during_a_budgets_finetuning_resumes_there(tmp_path, cache_dir):
    """Killed in budget 4's fine-tuning (its row at 5, after its checkpoints at 2 and 4), the re-run resumes budget
    4 from one of them, leaves budget 2's finished fine-tuning as it was, and ends with the uninterrupted run's
    numbers."""
    sweep_file = tmp_path / "budgets.gin"
    sweep_file.write_text(BUDGET_SWEEP)
    env = _sweep_env(tmp_path, cache_dir)
    reference = _sweep(sweep_file, tmp_path / "reference", env, timeout=900)  # three fine-tunings
    assert reference.returncode == 0, reference.stdout + reference.stderr
    proc = _sweep(sweep_file, tmp_path / "killed", env, kill="budget/4/finetune/stdlib_module:5", timeout=900)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "killed" / "budget_faults" / "base__seed_0"
    assert not (run / "result.json").exists() and not (run / "budgets" / "6").exists()
    done = {p: p.stat().st_mtime_ns for p in (run / "budgets" / "2").rglob("*") if p.is_file()}
    final = _sweep(sweep_file, tmp_path / "killed", env, timeout=900)
    assert final.returncode == 0, final.stdout + final.stderr
    assert "finetune/stdlib_module: finished by an earlier attempt; not redone" in final.stdout  # budget 2
    assert re.search(r"finetune/stdlib_module: resumed from checkpoint at step [24]\n", final.stdout)  # budget 4
    assert {p: p.stat().st_mtime_ns for p in done} == done  # budget 2's files untouched
    assert _budget_numbers(run) == _budget_numbers(tmp_path / "reference" / "budget_faults" / "base__seed_0")
