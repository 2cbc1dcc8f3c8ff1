"""Exact resume inside one process: fine-tuning (per task and mixture) and pretraining cut at the test kill points
of t5explore/train/faults.py — made to raise here instead of SIGKILL — then run again, end with the numbers of an
uninterrupted run; a finished task is not trained again; the sampler position, non-finite states, TensorBoard
events and `status` progress. tests/test_fault_injection.py does the same with real SIGKILLs of a sweep."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from t5explore import compile_cache
from t5explore.data.tasks.base import DownstreamTask, TextExample
from t5explore.run_config import Finetune, Pretrain
from t5explore.train import faults
from t5explore.train.checkpoints import Checkpointer, NonFiniteStateError
from t5explore.train.finetune import MixtureSampler, TokenizedTask, finetune
from t5explore.train.pretrain import pretrain
from t5explore.train.writers import MetricsWriter, read_metrics

from tiny_models import tiny_model_and_params

pytestmark = pytest.mark.own_compile_cache  # its own cache directory: what it checks is compile vs load

TIMING_KEYS = {"tokens_per_s", "real_tokens_per_s", "data_wait_share"}


class Killed(BaseException):
    """Raised at a kill point (a BaseException, like a SIGKILL not handled by `except Exception`)."""


class ByteVocab:
    vocab_size = 262

    def encode(self, text):
        return [b + 6 for b in text.encode()]

    def decode(self, ids):
        return bytes(i - 6 for i in ids if 6 <= i < 262).decode(errors="replace")


def _overlap(targets, predictions, metas):
    """A score that moves with every evaluation (so best steps change): % of target characters predicted."""
    hits = [sum(a == b for a, b in zip(t, p)) / len(t) for t, p in zip(targets, predictions)]
    return {
        "overlap": 100 * float(np.mean(hits)),
        "exact": 100 * float(np.mean([t == p for t, p in zip(targets, predictions)])),
    }


def _task(name: str, shift: int) -> DownstreamTask:
    def examples(split, data_dir):
        n, offset = (24 + 8 * shift, 0) if split == "train" else (6, 100)
        return [TextExample(f"{name} {i + offset}", f"{(i + offset) * (shift + 2) % 97}", {}) for i in range(n)]

    return DownstreamTask(name, "builtin", "overlap", ("overlap", "exact"), None, examples, _overlap)


TASKS = {"task_a": _task("task_a", 0), "task_b": _task("task_b", 1)}


@pytest.fixture(scope="module")
def model_and_params():
    return tiny_model_and_params(ByteVocab.vocab_size, layers=1)


@pytest.fixture
def kills(monkeypatch):
    """kills(spec): the next run raises Killed at `<point>:<step>` (None: runs through)."""

    def die():
        raise Killed

    monkeypatch.setattr(faults, "_die", die)

    def set_kill(spec):
        if spec is None:
            monkeypatch.delenv(faults.KILL_ENV, raising=False)
        else:
            monkeypatch.setenv(faults.KILL_ENV, spec)

    return set_kill


def _run_finetune(run_dir, mode, model_and_params, made, packing=True):
    from t5explore.train.trainer import Trainer

    model, partitioner, params, shardings = model_and_params
    # packed: rows of 24 input tokens hold two examples (an example is ~10 tokens)
    cfg = Finetune(
        tasks=list(TASKS),
        mode=mode,
        steps=6,
        batch_size=4,
        inputs_length=24 if packing else 12,
        targets_length=4,
        learning_rate=1e-2 if packing else 3e-2,
        eval_every=2,
        log_every=3,
        eval_batch_size=8,
        packing=packing,
    )

    class CountingTrainer(Trainer):
        def reset(self):  # per-task groups share one Trainer: a group started on it counts like a new one
            made.append("reset")
            super().reset()

    def make_trainer(total):
        made.append(total)
        return CountingTrainer(model, partitioner, params, shardings, cfg.get_optimizer(), total, seed=0)

    writer = MetricsWriter(run_dir, tensorboard=False)
    return finetune(
        make_trainer,
        lambda p, x: model.greedy_decode(p, x, cfg.targets_length),
        cfg,
        TASKS,
        ByteVocab(),
        writer,
        run_dir,
        seed=0,
    )


def _numbers(run_dir, out) -> dict:
    rows = [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in read_metrics(run_dir / "metrics.jsonl")]
    predictions = {p.name: p.read_text() for p in sorted((run_dir / "predictions").iterdir())}
    return {"downstream": out.downstream, "bootstrap": out.bootstrap, "rows": rows, "predictions": predictions}


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, cuts, trainers, packing",
    [
        # killed mid-window (rows at 3 and 6, checkpoints at 2/4/6); in task_b's evaluation after task_a finished
        # (task_a is resumed, task_b started); while task_b's finishing checkpoint is written (task_a not retrained)
        ("per_task", ["finetune/task_a:3", "eval/task_b:4", "checkpoint/finetune/task_b:6"], [1, 2, 1], True),
        # one mixture: mid-window; task_b's evaluation at 4, after task_a's row at 4; the finishing checkpoint
        ("multi_task", ["finetune/mixture:3", "eval/task_b:2", "checkpoint/finetune/mixture:6"], [1, 1, 1], True),
        ("multi_task", ["finetune/mixture:3", "eval/task_b:2", "checkpoint/finetune/mixture:6"], [1, 1, 1], False),
    ],
)
def test_finetune_cut_anywhere_resumes_to_the_uninterrupted_numbers(
    tmp_path, model_and_params, kills, mode, cuts, trainers, packing
):
    with compile_cache.enabled(tmp_path / "jax_cache"):
        kills(None)
        full = _numbers(tmp_path / "full", _run_finetune(tmp_path / "full", mode, model_and_params, [], packing))
        for spec, expected_trainers in zip(cuts, trainers):
            kills(spec)
            made: list = []
            with pytest.raises(Killed):
                _run_finetune(tmp_path / "cut", mode, model_and_params, made, packing)
            assert len(made) == expected_trainers, (spec, made)  # finished tasks are not trained again
        kills(None)
        made = []
        resumed = _numbers(tmp_path / "cut", _run_finetune(tmp_path / "cut", mode, model_and_params, made, packing))
    assert made == [] and full == resumed
    assert {r["best_step"] for r in full["downstream"].values()} != {2}  # the best moved: predictions rewritten
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoints" / "finetune").iterdir()) == (
        ["task_a", "task_b"] if mode == "per_task" else ["mixture"]
    )


def test_finetune_checkpoint_of_another_config_is_refused(tmp_path):
    from t5explore.train import finetune_resume as resume

    cfg = Finetune(tasks=["task_a"], steps=4)
    ckpt = resume.GroupCheckpoint(tmp_path, "task_a", resume.signature(cfg, ["task_a"], 0))
    ckpt.save(2, None, {"finished": False})
    ckpt.close()
    other = resume.GroupCheckpoint(
        tmp_path, "task_a", resume.signature(Finetune(tasks=["task_a"], steps=8), ["task_a"], 0)
    )
    with pytest.raises(ValueError, match=r"made under another config \(steps changed\)"):
        other.saved()
    other.close()


def test_sampler_restored_from_its_state_draws_the_same_batches():
    def task(name, n):
        return TokenizedTask(
            name,
            None,
            np.arange(n * 3, dtype=np.int32).reshape(n, 3),
            np.arange(n, dtype=np.int32)[:, None],
            [],
            np.zeros((1, 3), np.int32),
        )

    tasks = [task("a", 5), task("b", 11)]
    first = MixtureSampler(tasks, 4, seed=7, cap=100, task_ids=[0, 1])
    for step in range(9):  # a few epochs of "a"
        first.batch(step)
    state = json.loads(json.dumps(first.state()))
    again = MixtureSampler(tasks, 4, seed=7, cap=100, task_ids=[0, 1])
    again.restore(state)
    for step in range(9, 20):
        a, b = first.batch(step), again.batch(step)
        np.testing.assert_array_equal(a["inputs"], b["inputs"])


def test_a_non_finite_state_is_never_checkpointed(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", every=1, keep=1)
    with pytest.raises(NonFiniteStateError, match="not saving the checkpoint of step 3"):
        ckpt.save(3, {"w": jnp.array([1.0, jnp.nan]), "count": jnp.array(2)}, {}, force=True)
    assert ckpt.save(4, {"w": jnp.ones(2), "count": jnp.array(2)}, {}, force=True)
    ckpt.close()
    assert Checkpointer(tmp_path / "ckpt", every=1, keep=1).latest_step() == 4


@pytest.mark.slow
def test_pretraining_cut_between_a_checkpoint_and_a_row_resumes_to_the_same_rows(tmp_path, kills):
    """log_every=2, checkpoint_every=3: the row at 4 averages steps 3 and 4, one of them before the checkpoint."""
    from test_train_loop import StandInStream, make_trainer

    cfg = Pretrain(
        objective=object(),
        steps=6,
        batch_size=8,
        inputs_length=12,
        log_every=2,
        checkpoint_every=3,
        keep_checkpoints=2,
        eval_every=3,
        eval_batches=1,
    )
    eval_batches = [next(StandInStream(seed=1))]

    def run(run_dir):
        writer = MetricsWriter(run_dir, tensorboard=False)
        pretrain(make_trainer(6), cfg, StandInStream(), eval_batches, writer, run_dir / "checkpoints")
        return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in read_metrics(run_dir / "metrics.jsonl")]

    kills(None)
    full = run(tmp_path / "full")
    kills("pretrain:4")
    with pytest.raises(Killed):
        run(tmp_path / "cut")
    kills(None)
    assert run(tmp_path / "cut") == full


def test_tensorboard_points_survive_a_kill_and_every_attempt_keeps_its_file(tmp_path):
    from test_fault_injection import _tensorboard_points

    first = MetricsWriter(tmp_path)
    first.write("pretrain", 2, {"loss": 1.5})  # then killed: never closed
    second = MetricsWriter(tmp_path)  # the next attempt, within the same second
    second.write("finetune/x", 2, {"loss": 0.5})
    assert _tensorboard_points(tmp_path) == {("pretrain/loss", 2), ("finetune/x/loss", 2)}
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    first.close()
    second.close()


def test_status_shows_the_phase_and_step_an_incomplete_run_reached(tmp_path):
    from t5explore.sweep.status import run_progress

    (tmp_path / "config.gin").write_text(
        "Finetune.mode = 'per_task'\nFinetune.steps = 500\nFinetune.tasks = \\\n"
        "    ['glue_cola', 'glue_rte',\n     'glue_sst2']\nPretrain.steps = 6\n"
    )
    writer = MetricsWriter(tmp_path, tensorboard=False)
    assert run_progress(tmp_path) == ""
    writer.write("pretrain", 4, {"loss": 1.0})
    writer.write("pretrain_eval", 3, {"loss": 1.0})
    assert run_progress(tmp_path) == "pretrain 4/6"
    writer.write("finetune/glue_rte", 300, {"loss": 1.0})
    writer.write("finetune_eval/glue_rte", 200, {"accuracy": 1.0})
    assert run_progress(tmp_path) == "finetune task 2/3 glue_rte step 300/500"
    (tmp_path / "config.gin").write_text(
        "Finetune.mode = 'multi_task'\nFinetune.steps = 500\nFinetune.tasks = ['glue_cola', 'glue_rte']\n"
    )
    writer.write("finetune/mixture", 300, {"loss": 1.0})
    assert run_progress(tmp_path) == "finetune mixture step 300/500"
