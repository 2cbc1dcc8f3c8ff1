"""`t5explore sweep --dry_run` (issue 22): each run's state in the results directory (done, pending, failed,
corrupt, stale, running elsewhere) and a cost estimate from the runs of the same scale that finished there, on
a sweep at gin/runs/tiny_scale.gin whose runs are executed by a stand-in that records known wall times."""

from __future__ import annotations

import io
import re

import pytest

from t5explore import io_utils
from t5explore.sweep import claim, dry_run
from t5explore.sweep.runner import run_sweep

pytestmark = pytest.mark.usefixtures("clean_gin")

GIN = ["gin/runs/tiny_scale.gin", "gin/objectives/span_corruption.gin"]  # Finetune: 4 steps of one task
PRE_S_PER_STEP, REST_S = 3.0, 20.0


def write_sweep(tmp_path) -> str:
    path = tmp_path / "dry.gin"
    path.write_text(
        "Sweep.variants = {'short': {'Pretrain.steps': '6'}, 'long': {'Pretrain.steps': '12'}, "
        "'none': {'Pretrain.steps': '0'}, 'mid': {'Pretrain.steps': '9'}}\n"
        "Sweep.seeds = [0, 1, 2]\nSweep.baseline = 'short'\n"
    )
    return str(path)


def timed_executor(fail: set[str]):
    """Writes result.json with timing: 3 s per pre-training step plus 20 s; raises for the runs in `fail`."""

    def execute(run_dir, gin_files, bindings, metadata):
        if metadata["run"] in fail:
            raise RuntimeError(f"injected failure in {metadata['run']}")
        steps = next(int(b.split(" = ")[1]) for b in bindings if b.startswith("Pretrain.steps"))
        timing = {"pretrain_s": PRE_S_PER_STEP * steps, "total_s": PRE_S_PER_STEP * steps + REST_S}
        result = {**metadata, "pretrain": {"steps": steps}, "timing": timing}
        io_utils.atomic_write_json(f"{run_dir}/result.json", result)
        return result

    return execute


def dry(sweep: str, res) -> str:
    out = io.StringIO()
    run_sweep(sweep, res, gin_files=GIN, dry_run=True, out=out)
    return out.getvalue()


def test_dry_run_shows_every_state_and_estimates_the_runs_left_from_the_finished_ones(tmp_path):
    sweep, res = write_sweep(tmp_path), tmp_path / "results"
    first = dry(sweep, res)
    assert "12 runs: 12 pending" in first and "no estimate, no finished run of this scale here" in first
    assert not res.exists()  # a dry run writes nothing

    for name in ("short__seed_0", "long__seed_0", "none__seed_0", "none__seed_1", "short__seed_1"):
        run_sweep(sweep, res, gin_files=GIN, only=name, executor=timed_executor({"short__seed_1"}), out=io.StringIO())
    sdir = res / "dry"
    (sdir / "none__seed_0" / "result.json").write_text('{"truncated')  # a damaged copy: corrupt
    recorded = io_utils.read_json(sdir / "none__seed_1" / "fingerprint.json")  # made under another config: stale
    recorded["config"] = [s.replace("Pretrain.log_every = 2", "Pretrain.log_every = 3") for s in recorded["config"]]
    io_utils.atomic_write_json(sdir / "none__seed_1" / "fingerprint.json", {**recorded, "fingerprint": "0" * 64})
    held = claim.try_claim(sdir / "long__seed_1")  # another worker runs this one now
    assert held is not None
    with held:
        text = dry(sweep, res)

    state = dict(re.findall(r"^(\w+)  \[[^]]+\]  ([a-z ]+)", text, re.M))
    assert state == {
        "short__seed_0": "done",
        "short__seed_1": "failed",
        "short__seed_2": "pending",
        "long__seed_0": "done",
        "long__seed_1": "running elsewhere",
        "long__seed_2": "pending",
        "none__seed_0": "corrupt",
        "none__seed_1": "stale",
        "none__seed_2": "pending",
        "mid__seed_0": "pending",
        "mid__seed_1": "pending",
        "mid__seed_2": "pending",
    }
    assert "none__seed_1  [none]  stale: made under another config: Pretrain.log_every: 3 -> 2" in text
    assert "short__seed_1  [short ★]  failed: RuntimeError: injected failure in short__seed_1" in text
    assert "12 runs: 2 done, 1 running elsewhere, 1 failed, 6 pending, 1 stale, 1 corrupt" in text
    # Same steps: the median of those runs (short 38 s, long 56 s, none 20 s: the stale run finished too).
    # Otherwise rates: pre-training (18 + 36) s / (6 + 12) steps = 3 s/step; the rest 60 s / 12 fine-tuning
    # steps = 5 s/step: a 9-step run is 27 + 20 = 47 s. Left: short 2x38, long 56, none 3x20, mid 3x47 = 333 s.
    assert "cost of 9 run(s) to do (scale 'tiny'): ~5m33s of wall time for 9 of them, from 3 finished run(s)" in text
    assert "dry/short__seed_0 (38s)" in text and "dry/long__seed_0 (56s)" in text and "dry/none__seed_1 (20s)" in text
    assert "based on: per-step rates and same steps" in text


def test_no_estimate_where_no_finished_run_did_the_same_kind_of_work():
    pre_only = dry_run.Finished("s/a", dry_run.Work("tiny", 6, 0, 0), 30.0, 18.0)
    assert dry_run.estimate(dry_run.Work("tiny", 6, 1, 4), [pre_only]) == (
        None,
        "no finished run of this scale fine-tuned",
    )
    ft_only = dry_run.Finished("s/b", dry_run.Work("tiny", 0, 1, 4), 20.0, 0.0)
    assert dry_run.estimate(dry_run.Work("tiny", 3, 1, 4), [ft_only]) == (
        None,
        "no finished run of this scale pre-trained",
    )
    assert dry_run.estimate(dry_run.Work("tiny", 3, 1, 4), [pre_only, ft_only]) == (3 * 3.0 + 4 * 5.0, "per-step rates")


def test_work_of_reads_budgets_tasks_and_the_fine_tuning_mode():
    config = [
        "Experiment.scale = 'cpu'",
        "Pretrain.steps = 100",
        "Pretrain.eval_at_steps = [25, 50, 100]",
        "Finetune.steps = 10",
        "Finetune.tasks = ['glue_cola', 'glue_rte']",
    ]
    assert dry_run.work_of(config) == dry_run.Work("cpu", 100, 3, 20)  # budgets 25, 50 + the final params
    mixture = dry_run.work_of([*config, "Finetune.mode = 'multi_task'"])
    assert mixture.finetune_steps == 10 and dry_run.work_of(["Pretrain.steps = 4"]) == dry_run.Work("", 4, 0, 0)
