"""Packing (data/packing.py, train/finetune_data.PackedSampler): segment ids and positions, isolation of packed
examples through the train/eval step, deterministic and resumable packed batches, the logged packing ratio,
one compiled step for every per-task group, and evaluation batches (length buckets, fill rows done)."""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from t5explore.data.features import encdec_features
from t5explore.data.packing import RowPacker, pack_examples, token_counts
from t5explore.run_config import Finetune
from t5explore.train.finetune import PackedSampler, TokenizedTask, finetune
from t5explore.train.predict import predict
from t5explore.train.writers import MetricsWriter, read_metrics

sys.path.insert(0, str(Path(__file__).parent))
from test_finetune_resume import TASKS, ByteVocab  # the synthetic tasks and byte vocabulary

from tiny_models import tiny_encoder_decoder, tiny_model_and_params


@pytest.fixture(scope="module")
def tiny():
    return tiny_model_and_params(ByteVocab.vocab_size)


def test_packed_rows_restart_positions_and_decoder_inputs_per_segment():
    packer = RowPacker(rows=2, inputs_length=8, targets_length=5)
    assert packer.add(np.array([11, 12, 1]), np.array([21, 1]))
    assert packer.add(np.array([13, 14, 15, 1]), np.array([22, 23, 1]))  # fits row 0 too: first fit
    assert packer.add(np.array([16, 17, 1]), np.array([24, 1]))  # targets no longer fit row 0 -> row 1
    assert not packer.add(np.array([1] * 7), np.array([1]))  # fits no row: the batch is closed
    f = packer.features()
    np.testing.assert_array_equal(f["encoder_input_tokens"][0], [11, 12, 1, 13, 14, 15, 1, 0])
    np.testing.assert_array_equal(f["encoder_segment_ids"][0], [1, 1, 1, 2, 2, 2, 2, 0])
    np.testing.assert_array_equal(f["encoder_positions"][0], [0, 1, 2, 0, 1, 2, 3, 0])
    np.testing.assert_array_equal(f["decoder_target_tokens"][0], [21, 1, 22, 23, 1])
    np.testing.assert_array_equal(f["decoder_input_tokens"][0], [0, 21, 0, 22, 23])  # BOS at every segment
    np.testing.assert_array_equal(f["decoder_segment_ids"][0], [1, 1, 2, 2, 2])
    np.testing.assert_array_equal(f["decoder_positions"][0], [0, 1, 0, 1, 2])
    np.testing.assert_array_equal(f["encoder_segment_ids"][1], [1, 1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(f["decoder_loss_weights"][1], [1, 1, 0, 0, 0])
    assert packer.examples == 3 and token_counts(f) == (17, 26)


def test_a_packed_rows_loss_is_the_sum_of_its_examples_losses_through_the_step(tiny):
    """Through train/steps.py (model_apply_fn forwards the segment features): the packed batch's summed token
    loss equals the sum over the same examples decoded alone, and so does every example's own loss."""
    from t5explore.train.steps import make_eval_step, model_apply_fn

    model, _, params, _ = tiny
    rng = np.random.default_rng(0)
    examples = [
        (np.append(rng.integers(6, 200, n_in), 1), np.append(rng.integers(6, 200, n_tg), 1))
        for n_in, n_tg in ((5, 2), (9, 3), (3, 1), (12, 4), (6, 2))
    ]
    packed, n = pack_examples(
        [x for x, _ in examples], [y for _, y in examples], rows=2, inputs_length=24, targets_length=10
    )
    assert n == 5 and packed["encoder_segment_ids"].max() >= 3  # several segments per row
    step = jax.jit(make_eval_step(model_apply_fn(model)))
    summed = float(step(params, packed)["cross_entropy"]) * float(packed["decoder_loss_weights"].sum())
    alone = []
    for x, y in examples:
        inputs, targets = np.zeros((1, 24), np.int32), np.zeros((1, 10), np.int32)
        inputs[0, : len(x)], targets[0, : len(y)] = x, y
        m = step(params, encdec_features(inputs, targets))
        alone.append(float(m["cross_entropy"]) * float(m["num_tokens"]))
    assert summed == pytest.approx(sum(alone), rel=1e-5)
    # and without the segment features the examples would see each other: the check above can fail
    plain = {k: v for k, v in packed.items() if "segment" not in k and "positions" not in k}
    leaked = float(step(params, plain)["cross_entropy"]) * float(packed["decoder_loss_weights"].sum())
    assert abs(leaked - sum(alone)) > 1e-3 * abs(sum(alone))


def _tasks(n_a=13, n_b=29):
    def task(name, n, seed):
        rng = np.random.default_rng(seed)
        inputs, targets = np.zeros((n, 16), np.int32), np.zeros((n, 4), np.int32)
        for i in range(n):
            a, b = rng.integers(1, 15), rng.integers(1, 3)
            inputs[i, :a], inputs[i, a] = rng.integers(6, 200, a), 1
            targets[i, :b], targets[i, b] = 1000 * seed + i, 1  # the target names the example
        return TokenizedTask(name, None, inputs, targets, [], np.zeros((1, 16), np.int32))

    return [task("a", n_a, 1), task("b", n_b, 2)]


def _example_ids(batch) -> list[int]:
    t = batch["decoder_target_tokens"]
    return sorted({int(v) for v in t[t > 1]})  # a target repeats its id


def test_packed_batches_are_seeded_deterministic_and_resume_exactly():
    tasks = _tasks()
    first, same = (
        PackedSampler(tasks, 3, seed=5, cap=100, task_ids=[0, 1], inputs_length=16, targets_length=6) for _ in range(2)
    )
    other = PackedSampler(tasks, 3, seed=6, cap=100, task_ids=[0, 1], inputs_length=16, targets_length=6)
    batches = [first.batch(s) for s in range(10)]
    for s, b in enumerate(batches):
        again = same.batch(s)
        for k in b:
            np.testing.assert_array_equal(b[k], again[k])
    assert any(_example_ids(b) != _example_ids(other.batch(s)) for s, b in enumerate(batches))
    state = json.loads(json.dumps(first.state()))
    restored = PackedSampler(tasks, 3, seed=5, cap=100, task_ids=[0, 1], inputs_length=16, targets_length=6)
    restored.restore(state)
    for s in range(10, 30):  # across several epochs of both tasks
        a, b = first.batch(s), restored.batch(s)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_a_single_packed_task_takes_its_examples_in_the_seeded_order():
    from t5explore.seeds import STREAM_FINETUNE_ORDER, numpy_rng

    task = _tasks(n_b=40)[1]
    sampler = PackedSampler([task], 4, seed=3, cap=100, task_ids=[1], inputs_length=16, targets_length=6)
    order = list(2000 + numpy_rng(3, STREAM_FINETUNE_ORDER, 1, 0).permutation(40))
    taken = 0
    while taken < 40:  # every batch holds the next examples of the epoch's order, each once
        ids = _example_ids(sampler.batch(0))
        expected = order[taken : taken + len(ids)]
        assert ids == sorted(expected) or taken + len(ids) > 40
        taken += len(ids)


def _finetune(tiny, tmp_path, **overrides):
    from t5explore.train.trainer import Trainer

    model, partitioner, params, shardings = tiny
    made = []
    cfg = Finetune(
        **{
            "tasks": list(TASKS),
            "mode": "per_task",
            "steps": 4,
            "batch_size": 4,
            "inputs_length": 32,
            "targets_length": 6,
            "learning_rate": 1e-2,
            "eval_every": 0,
            "log_every": 2,
            "eval_batch_size": 4,
            **overrides,
        }
    )

    def make_trainer(total):
        made.append(total)
        return Trainer(model, partitioner, params, shardings, cfg.get_optimizer(), total, seed=0)

    writer = MetricsWriter(tmp_path, tensorboard=False)
    out = finetune(
        make_trainer,
        lambda p, x: model.greedy_decode(p, x, cfg.targets_length),
        cfg,
        TASKS,
        ByteVocab(),
        writer,
        tmp_path,
        seed=0,
    )
    writer.close()
    return out, read_metrics(tmp_path / "metrics.jsonl"), made, cfg


@pytest.mark.slow
def test_packing_ratio_is_logged_and_one_compiled_step_serves_every_task(tiny, tmp_path):
    from t5explore.train.finetune_data import load_task, make_sampler

    out, rows, made, cfg = _finetune(tiny, tmp_path)
    assert made == [4]  # one Trainer for both per-task groups
    assert out.compile_s > 0
    train_rows = [r for r in rows if r["phase"].startswith("finetune/")]
    assert len(train_rows) == 4 and all(r["real_tokens_per_s"] > 0 for r in train_rows)
    for i, name in enumerate(TASKS):  # the ratio of every row, recomputed from the same packed batches
        sampler = make_sampler([load_task(name, TASKS[name], cfg, ByteVocab())], cfg, 0, [i])
        for logged in (r for r in train_rows if r["phase"] == f"finetune/{name}"):
            counts = [token_counts(sampler.batch(s)) for s in range(2)]
            assert logged["packing_ratio"] == pytest.approx(sum(c[0] for c in counts) / sum(c[1] for c in counts))
            assert logged["packing_ratio"] > 0.5
    throughput = out.throughput()
    assert throughput["finetune_packing_ratio"] == pytest.approx(out.real_tokens / out.token_slots)
    assert throughput["finetune_real_tokens_per_s"] > 0


@pytest.mark.slow
def test_reusing_the_compiled_step_changes_no_number(tiny, tmp_path, monkeypatch):
    """Per-task groups on one reset Trainer give the numbers of a new Trainer per group."""
    from t5explore.train import finetune as ft

    shared, rows, _, _ = _finetune(tiny, tmp_path / "shared")

    def new_trainer(ctx, make_trainer):
        return make_trainer(max(ctx.cfg.steps, 1))

    monkeypatch.setattr(ft, "_trainer", new_trainer)
    fresh, fresh_rows, fresh_made, _ = _finetune(tiny, tmp_path / "fresh")
    assert len(fresh_made) == 2
    assert shared.downstream == fresh.downstream
    assert [r["loss"] for r in rows if "loss" in r] == [r["loss"] for r in fresh_rows if "loss" in r]


@pytest.mark.slow
def test_unpacked_rows_log_their_padding(tiny, tmp_path):
    _, rows, _, _ = _finetune(tiny, tmp_path, packing=False)
    ratios = [r["packing_ratio"] for r in rows if "packing_ratio" in r]
    assert ratios and max(ratios) < 0.5  # ~10-token examples alone in rows of 32 + 6 slots
    _, packed_rows, _, _ = _finetune(tiny, tmp_path / "packed")
    assert min(r["packing_ratio"] for r in packed_rows if "packing_ratio" in r) > max(ratios) + 0.2


def test_fill_rows_of_a_last_eval_batch_start_done_and_change_no_prediction(tiny):

    model, _, params, _ = tiny
    rng = np.random.default_rng(1)
    real = np.zeros((3, 16), np.int32)
    for i, n in enumerate((5, 11, 15)):
        real[i, :n], real[i, n] = rng.integers(6, 250, n), 1
    batch = np.concatenate([real, np.zeros((5, 16), np.int32)])
    out = np.asarray(model.greedy_decode(params, batch, 12))
    assert not out[3:].any()  # fill rows decode nothing: done from the start
    assert out[:3].any() and (out[:3] != 1).any(), "the random model must decode something for the test to bite"
    np.testing.assert_array_equal(out[:3], np.asarray(model.greedy_decode(params, real, 12)))


def test_length_bucketed_evaluation_gives_the_same_predictions(tiny):

    model, _, params, _ = tiny
    rng = np.random.default_rng(2)
    inputs = np.zeros((37, 128), np.int32)
    lengths = rng.integers(1, 128, 37)
    for i, n in enumerate(lengths):
        inputs[i, : n - 1], inputs[i, n - 1] = rng.integers(6, 250, n - 1), 1

    def decode(p, x):
        return model.greedy_decode(p, x, 8)

    bucketed = predict(decode, params, inputs, 8)
    full = predict(decode, params, inputs, 8, bucket=False)
    assert len({tuple(r) for r in full}) > 5  # varied predictions
    np.testing.assert_array_equal(bucketed, full)


@pytest.mark.slow
def test_packed_and_unpacked_finetuning_reach_the_same_scores_within_seed_noise(builtin_vocab, tmp_path):
    """stdlib_module from random init, 3 seeds each way (~2 min on a busy core): the mean accuracies differ by
    less than 3 standard errors of their difference (+ 3 points for so few seeds), and both learn."""
    from t5explore.data.tasks import get_task
    from t5explore.train.partitioning import Partitioner
    from t5explore.train.trainer import Trainer, init_params

    model = tiny_encoder_decoder(builtin_vocab.vocab_size, d_model=64)
    task = get_task("stdlib_module")
    part = Partitioner()
    scores: dict[bool, list[float]] = {True: [], False: []}
    for seed in range(3):
        params, shardings = init_params(model, part, seed=seed)
        for packing in (True, False):
            cfg = Finetune(
                tasks=["stdlib_module"],
                steps=150,
                batch_size=16,
                inputs_length=96,
                targets_length=8,
                learning_rate=1e-3,
                log_every=50,
                eval_batch_size=64,
                eval_max_examples=300,
                packing=packing,
            )
            run_dir = tmp_path / f"{seed}_{packing}"
            writer = MetricsWriter(run_dir, tensorboard=False)
            optimizer = cfg.get_optimizer()

            def make_trainer(total, params=params, shardings=shardings, optimizer=optimizer, seed=seed):
                return Trainer(model, part, params, shardings, optimizer, total, seed)

            out = finetune(
                make_trainer,
                lambda p, x: model.greedy_decode(p, x, 8),
                cfg,
                {"stdlib_module": task},
                builtin_vocab,
                writer,
                run_dir,
                seed=seed,
            )
            writer.close()
            scores[packing].append(out.downstream["stdlib_module"]["best"]["accuracy"])
    packed, unpacked = np.array(scores[True]), np.array(scores[False])
    spread = np.sqrt(packed.var(ddof=1) / 3 + unpacked.var(ddof=1) / 3)
    print("packed", packed, "unpacked", unpacked, "spread", spread)
    assert abs(packed.mean() - unpacked.mean()) <= 3 * spread + 3.0, (packed, unpacked)
    val = task.examples("validation")[:300]
    majority = 100 * max(collections.Counter(e.targets for e in val).values()) / len(val)
    assert min(packed.min(), unpacked.min()) > majority, (packed, unpacked, majority)  # both learned
