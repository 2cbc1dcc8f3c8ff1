"""Budgets (Pretrain.eval_at_steps, train/budgets.py): one pre-training run evaluated at several steps.

The step-k budget of a longer run is, bit for bit, a k-step run: the same params, fine-tuning rows, predictions,
scores and bootstrap. Schedules that decay to the total are refused (or, opted in, labelled). Target tokens are
counted exactly across a resume. The model's FLOP count agrees with XLA's cost analysis of the compiled train
step. Files written before budgets existed still load. (tests/test_fault_injection.py SIGKILLs a run during one
budget's fine-tuning.)
"""

from __future__ import annotations

import json
from pathlib import Path

import gin
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from t5explore.config import ConfigError
from t5explore.results_schema import SCHEMA_VERSION, RunResult
from t5explore.run_config import Optimizer, Pretrain
from t5explore.train import budgets, faults
from t5explore.train.pretrain import BudgetPoint, pretrain
from t5explore.train.run import execute
from t5explore.train.writers import MetricsWriter, read_metrics

TIMING_KEYS = {"tokens_per_s", "real_tokens_per_s", "data_wait_share"}  # wall-clock fields of metrics rows
TINY = ["T5Config.num_encoder_layers = 1", "T5Config.num_decoder_layers = 1"]  # half the compilation
TASK = "stdlib_module"


def _execute(run_dir: Path, cache_dir: Path, *bindings: str) -> dict:
    try:
        return execute(run_dir, ["gin/runs/tiny_cpu.gin"], [f"Experiment.cache_dir = '{cache_dir}'", *TINY, *bindings])
    finally:
        gin.clear_config()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache_dir):
    """A 6-step run with budgets at 2 and 5 (5: neither a metrics row, an evaluation nor a checkpoint step of
    gin/runs/tiny_scale.gin), and a plain 5-step run."""
    root = tmp_path_factory.mktemp("budgets")
    long = _execute(root / "long", cache_dir, "Pretrain.eval_at_steps = [2, 5]")
    short = _execute(root / "short", cache_dir, "Pretrain.steps = 5")
    return root, long, short


def _rows(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in read_metrics(path)]


def _restore(path: Path) -> dict:
    checkpointer = ocp.StandardCheckpointer()
    try:
        return checkpointer.restore(path.absolute())
    finally:
        checkpointer.close()


@pytest.mark.slow
def test_the_step_k_budget_is_a_k_step_run_bit_for_bit(runs):
    root, long, short = runs
    assert [b["steps"] for b in long["budgets"]] == [2, 5, 6]
    at5, final = long["budgets"][1], short["budgets"][-1]
    for key in ("downstream", "benchmarks", "bootstrap"):
        assert at5[key] == short[key] == final[key], key
    assert at5["pretrain"] == {"loss": short["pretrain"]["final_loss"], "held_out_loss": short["pretrain"]["eval_loss"]}
    for key in ("steps", "input_tokens", "target_tokens", "flops", "schedule_depends_on_total"):
        assert at5[key] == final[key], key
    # params: the budget's kept params and the 5-step run's final checkpoint
    kept = _restore(root / "long" / "checkpoints" / "budgets" / "5" / "params")
    ended = _restore(root / "short" / "checkpoints" / "5" / "state")["params"]
    assert jax.tree.structure(kept) == jax.tree.structure(ended)
    for a, b in zip(jax.tree.leaves(kept), jax.tree.leaves(ended), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    # the budget's fine-tuning is the 5-step run's: every metrics row and prediction
    there = root / "long" / "budgets" / "5"
    assert _rows(there / "metrics.jsonl") == [
        r for r in _rows(root / "short" / "metrics.jsonl") if "finetune" in r["phase"]
    ]
    prediction = f"predictions/{TASK}.jsonl"
    assert (there / prediction).read_text() == (root / "short" / prediction).read_text()


@pytest.mark.slow
def test_budget_entries_follow_the_contract(runs):
    root, long, _ = runs
    entries = long["budgets"]
    tokens_per_step = 8 * 32  # gin/runs/tiny_scale.gin
    for entry in entries:
        assert set(entry) == {
            "steps",
            "input_tokens",
            "target_tokens",
            "flops",
            "wall_s",
            "pretrain",
            "schedule_depends_on_total",
            "downstream",
            "benchmarks",
            "bootstrap",
        }
        assert entry["input_tokens"] == entry["steps"] * tokens_per_step
        assert entry["flops"] == pytest.approx(entries[-1]["flops"] * entry["steps"] / 6, rel=1e-12)
        assert entry["schedule_depends_on_total"] is False  # rsqrt
        assert set(entry["downstream"]) == {TASK} and set(entry["benchmarks"]) == {"best", "last"}
    # counts grow with the steps; the span-corruption targets are a fraction of the inputs
    assert [e["target_tokens"] for e in entries] == sorted({e["target_tokens"] for e in entries})
    assert 0 < entries[-1]["target_tokens"] < entries[-1]["input_tokens"]
    assert 0 < entries[0]["wall_s"] < entries[1]["wall_s"] < entries[2]["wall_s"] <= long["timing"]["pretrain_s"]
    # held-out loss at every budget (evaluated there, logged as the run's other evaluations are)
    evals = {
        r["step"]: r["loss"] for r in read_metrics(root / "long" / "metrics.jsonl") if r["phase"] == "pretrain_eval"
    }
    assert [e["pretrain"]["held_out_loss"] for e in entries] == [evals[2], evals[5], evals[6]]
    # the final step is the top-level result too
    for key in ("downstream", "benchmarks", "bootstrap"):
        assert entries[-1][key] == long[key], key
    assert entries[-1]["pretrain"]["loss"] == long["pretrain"]["final_loss"]
    assert RunResult.from_json(long).to_json() == long and long["schema"] == SCHEMA_VERSION
    # a budget's fine-tuning lives in its own directory, its params beside the run's checkpoints
    assert (root / "long" / "budgets" / "2" / "checkpoints" / "finetune" / TASK).is_dir()
    assert not (root / "long" / "checkpoints" / "budgets" / "6" / "params").exists()  # the run's checkpoint has them


def test_eval_at_steps_must_be_ascending_steps_before_the_last():
    for bad in ([0], [10], [12], [5, 3], [3, 3], [-1]):
        with pytest.raises(ConfigError, match=r"Pretrain\.eval_at_steps"):
            Pretrain(objective=object(), steps=10, eval_at_steps=bad).validate()
    with pytest.raises(ConfigError, match=r"Pretrain\.eval_at_steps"):
        Pretrain(steps=0, eval_at_steps=[1]).validate()
    with pytest.raises(ConfigError, match=r"Pretrain\.eval_at_steps"):
        Pretrain(objective=object(), steps=10, eval_at_steps=["5"]).validate()
    cfg = Pretrain(objective=object(), steps=10, eval_at_steps=[2, 5])
    cfg.validate()
    assert cfg.budget_steps() == [2, 5, 10] and Pretrain(steps=0).budget_steps() == []


def test_a_schedule_that_decays_to_the_total_is_refused_or_labelled():
    cosine = Optimizer(schedule="cosine", warmup_steps=2)
    with pytest.raises(ConfigError, match=r"Pretrain\.eval_at_steps.*allow_total_dependent_budgets"):
        Pretrain(objective=object(), steps=10, eval_at_steps=[5], optimizer=cosine).validate()
    Pretrain(objective=object(), steps=10, optimizer=cosine).validate()  # no budgets: nothing to refuse
    for fine in (
        Optimizer(schedule="rsqrt"),
        Optimizer(schedule="constant"),
        Optimizer(schedule="cosine", decay_steps=10),
    ):
        cfg = Pretrain(objective=object(), steps=10, eval_at_steps=[5], optimizer=fine)
        cfg.validate()
        assert not cfg.schedule_depends_on_total()
    opted = Pretrain(
        objective=object(), steps=10, eval_at_steps=[5], optimizer=cosine, allow_total_dependent_budgets=True
    )
    opted.validate()
    recorder = budgets.Recorder(".", opted, 2.0, [])
    labels = [recorder.record(BudgetPoint(k, 4 * k, k, 1.0, None, 1.0))["schedule_depends_on_total"] for k in (5, 10)]
    assert labels == [True, False]  # the final step is a run of its own length
    resumed = budgets.Recorder(".", opted, 2.0, [{"pretrain_s": 3.0}, {"pretrain_s": None}])  # earlier attempts
    assert resumed.record(BudgetPoint(5, 20, 5, 1.0, None, 1.5))["wall_s"] == 4.5


class Killed(BaseException):
    """Raised at a kill point instead of SIGKILL (a BaseException, like a kill not handled by `except Exception`)."""


def test_target_tokens_are_counted_exactly_across_a_resume(tmp_path, monkeypatch):
    """The stand-in stream's batches hold 8 x 12 target tokens, 4 x 3 of them padding: 84 per step. Killed
    after budget 5, the run resumes from the checkpoint at 4 and counts on from it."""
    from test_train_loop import StandInStream, make_trainer

    def die():
        raise Killed

    monkeypatch.setattr(faults, "_die", die)
    cfg = Pretrain(
        objective=object(),
        steps=6,
        batch_size=8,
        inputs_length=12,
        log_every=3,  # rows at 3 and 6; checkpoints at 2, 4 (holding step 4's metrics, not yet in a row) and 6
        checkpoint_every=2,
        eval_every=0,
        eval_batches=1,
        eval_at_steps=[3, 5],
    )
    eval_batches = [next(StandInStream(seed=1))]

    def run(run_dir: Path) -> list[BudgetPoint]:
        points: list[BudgetPoint] = []
        writer = MetricsWriter(run_dir, tensorboard=False)
        pretrain(
            make_trainer(6),
            cfg,
            StandInStream(),
            eval_batches,
            writer,
            run_dir / "ckpt",
            on_budget=lambda p, _: points.append(p),
        )
        return points

    full = run(tmp_path / "full")
    assert [(p.steps, p.input_tokens, p.target_tokens) for p in full] == [(k, 96 * k, 84 * k) for k in (3, 5, 6)]
    assert all(p.held_out_loss is not None and p.loss is not None for p in full)
    monkeypatch.setenv(faults.KILL_ENV, "pretrain:6")  # at the row of step 6, before its checkpoint
    with pytest.raises(Killed):
        run(tmp_path / "cut")
    monkeypatch.delenv(faults.KILL_ENV)
    resumed = run(tmp_path / "cut")  # from the checkpoint at 4: budget 5 is trained (and handed over) again
    strip = [(p.steps, p.input_tokens, p.target_tokens, p.loss, p.held_out_loss) for p in full]
    assert [(p.steps, p.input_tokens, p.target_tokens, p.loss, p.held_out_loss) for p in resumed] == strip[1:]


def test_flops_per_token_agree_with_xla_cost_analysis():
    """XLA counts every op of the compiled train step (also softmax, norms, the optimiser update); the model
    counts matmuls only, so XLA's count is a little higher, most for the smallest model (measured: +7.5 % at
    d_model 64 with one layer, +1.9 % at 256 with two, +1.0 % at 512)."""
    from t5explore.train.trainer import to_features

    from tiny_models import tiny_model_and_params

    model, partitioner, params, shardings = tiny_model_and_params(1000, d_model=64, layers=1)
    from t5explore.train.trainer import Trainer

    trainer = Trainer(model, partitioner, params, shardings, Optimizer(schedule="constant", warmup_steps=0), 10, 0)
    rng = np.random.default_rng(0)
    batch, inputs_length, targets_length = 8, 32, 8
    inputs = rng.integers(2, 900, (batch, inputs_length)).astype(np.int32)
    targets = rng.integers(2, 900, (batch, targets_length)).astype(np.int32)
    sharded = partitioner.shard_batch(to_features({"inputs": inputs, "targets": targets}, model))
    cost = trainer.compiled_train_step(sharded).cost_analysis()
    xla = (cost[0] if isinstance(cost, list) else cost)["flops"]
    ours = model.flops_per_token(inputs_length, targets_length) * batch * inputs_length
    assert 1.0 <= xla / ours < 1.10, (xla, ours)


def test_result_files_without_budgets_still_load(tmp_path):
    from t5explore.report.results import load_results

    committed = Path("experiments/results/transductive/target_tokens_control/bert_style__seed_0/result.json")
    old = json.loads(committed.read_text())
    assert "budgets" not in old and old["schema"] < SCHEMA_VERSION
    assert RunResult.from_json(old).budgets is None
    run = tmp_path / "sweep" / "run"
    run.mkdir(parents=True)
    (run / "result.json").write_text(committed.read_text())
    assert len(load_results(tmp_path).runs) == 1


def test_a_run_pretrained_before_budgets_gets_its_final_entry_from_its_outcome():
    from t5explore.train.pretrain import PretrainOutcome

    pre = Pretrain(objective=object(), steps=6, batch_size=8, inputs_length=32)
    outcome = PretrainOutcome(steps=6, tokens_seen=6 * 8 * 32, final_loss=2.5, eval_loss=2.75)
    record = budgets.fallback_record(pre, outcome, 1000.0, 12.5)
    assert record == {
        "steps": 6,
        "input_tokens": 1536,
        "target_tokens": None,  # not counted by the code that pre-trained it
        "flops": 1536000.0,
        "wall_s": 12.5,
        "pretrain": {"loss": 2.5, "held_out_loss": 2.75},
        "schedule_depends_on_total": False,
    }


def test_an_attempts_finetuning_timing_sums_every_budget():
    from t5explore.train.finetune import FinetuneOutcome

    first = FinetuneOutcome(downstream={"a": 1}, finetune_s=2.0, eval_s=1.0, train_steps=4, real_tokens=10)
    final = FinetuneOutcome(downstream={"a": 2}, finetune_s=3.0, eval_s=0.5, train_steps=4, real_tokens=20)
    summed = budgets.add_timing(first, final)
    assert (summed.finetune_s, summed.eval_s, summed.train_steps, summed.real_tokens) == (5.0, 1.5, 8, 30)
    assert summed.downstream == {"a": 2} and budgets.add_timing(None, final) is final
