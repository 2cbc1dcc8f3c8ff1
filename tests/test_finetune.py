"""Fine-tuning: tokenisation with counted truncation, mixing rates, and a tiny T5 that really learns a task."""

from __future__ import annotations

import collections
import json

import jax
import numpy as np
import pytest

from t5explore.run_config import Finetune
from t5explore.train.finetune import MixtureSampler, TokenizedTask, detokenize, finetune, tokenize
from t5explore.train.partitioning import Partitioner
from t5explore.train.trainer import Trainer, init_params
from t5explore.train.writers import MetricsWriter, read_metrics

from tiny_models import tiny_encoder_decoder


class ByteVocab:
    """Stand-in vocabulary: UTF-8 bytes shifted past pad/eos/unk/mode ids, 100 sentinels on top."""

    offset = 6
    vocab_size = 256 + offset + 100

    def encode(self, text):
        return [b + self.offset for b in text.encode("utf-8")]

    def decode(self, ids):
        return bytes(i - self.offset for i in ids if self.offset <= i < 256 + self.offset).decode("utf-8", "replace")


def test_tokenize_appends_eos_pads_and_counts_truncations(capsys):
    vocab = ByteVocab()
    ids = tokenize(["ab", "abcd", "abcdefgh"], vocab, 4, "task x inputs")
    assert capsys.readouterr().err == "warning: task x inputs: truncated 2 of 3 texts to 4 tokens (66.7%)\n"
    assert ids.tolist() == [[103, 104, 1, 0], [103, 104, 105, 1], [103, 104, 105, 1]]
    tokenize(["ab"], vocab, 4, "task x inputs")
    assert capsys.readouterr().err == ""  # nothing truncated -> nothing said
    assert detokenize(np.array([[103, 104, 1, 105], [105, 0, 0, 0]]), vocab) == ["ab", "c"]


def test_load_task_reports_truncation_in_one_clean_line_per_split(capsys):
    from t5explore.data.tasks import TextExample
    from t5explore.train.finetune import load_task

    class Task:
        def examples(self, split, data_dir):
            n = 4 if split == "train" else 2
            return [TextExample("x" * (10 * (i + 1)), "yyyyyyyy" if i else "y", {}) for i in range(n)]

    cfg = Finetune(tasks=["t"], inputs_length=16, targets_length=4)
    loaded = load_task("t", Task(), cfg, ByteVocab())
    assert loaded.train_inputs.shape == (4, 16) and loaded.val_inputs.shape == (2, 16)
    assert capsys.readouterr().err.splitlines() == [
        "warning: task t train: truncated 3 of 4 inputs to 16 tokens (75.0%), 3 of 4 targets to 4 tokens (75.0%)",
        "warning: task t validation: truncated 1 of 2 inputs to 16 tokens (50.0%)",
    ]


def _fake_task(name, n):
    x = np.full((n, 3), 7, np.int32)
    return TokenizedTask(name, None, x, x, [], x)


def test_mixture_is_examples_proportional_with_cap_and_deterministic():
    tasks = [_fake_task("big", 1000), _fake_task("small", 10)]
    a = MixtureSampler(tasks, 64, seed=3, cap=100, task_ids=[0, 1])
    np.testing.assert_allclose(a.rates, [100 / 110, 10 / 110])
    b = MixtureSampler(tasks, 64, seed=3, cap=100, task_ids=[0, 1])
    for step in range(3):
        a.batch(step), b.batch(step)
    assert a._pos == b._pos and [o.tolist() for o in a._order] == [o.tolist() for o in b._order]
    # within one task, an epoch visits every example once before any repeats
    single = MixtureSampler([_fake_task("t", 10)], 5, seed=0, cap=100, task_ids=[0])
    seen = [single._take(0) for _ in range(10)]
    assert sorted(seen) == list(range(10))


@pytest.mark.slow  # fine-tunes on the built-in task until it beats the majority class (~18 s)
def test_tiny_t5_finetuned_on_stdlib_module_beats_majority_class(builtin_vocab, tmp_path, capsys):
    """From random init (the paper's no-pretraining row), 300 steps; not timed, takes ~30 s on 2 cores."""
    from t5explore.data.tasks import get_task

    tiny_t5 = tiny_encoder_decoder(builtin_vocab.vocab_size, d_model=64)
    task = get_task("stdlib_module")
    part = Partitioner()
    params, shardings = init_params(tiny_t5, part, seed=0)
    before = jax.tree.map(np.asarray, params)
    cfg = Finetune(
        tasks=["stdlib_module"],
        steps=300,
        batch_size=16,
        inputs_length=64,
        targets_length=8,
        learning_rate=1e-3,
        eval_every=150,
        log_every=50,
        eval_batch_size=64,
    )

    def make_trainer(total):
        return Trainer(tiny_t5, part, params, shardings, cfg.get_optimizer(), total, seed=0)

    writer = MetricsWriter(tmp_path, tensorboard=False)
    out = finetune(
        make_trainer,
        lambda p, x: tiny_t5.greedy_decode(p, x, cfg.targets_length),
        cfg,
        {"stdlib_module": task},
        builtin_vocab,
        writer,
        tmp_path,
        seed=0,
    )
    said = [ln for ln in capsys.readouterr().err.splitlines() if "truncated" in ln]  # once per split
    assert len(said) == 2 and said[0].startswith("warning: task stdlib_module train: truncated ")
    assert " of 1086 inputs to 64 tokens" in said[0] and said[1].startswith("warning: task stdlib_module validation:")
    rec = out.downstream["stdlib_module"]
    val = task.examples("validation")
    majority = 100 * collections.Counter(e.targets for e in val).most_common(1)[0][1] / len(val)
    assert rec["primary_metric"] == "accuracy" and rec["best_step"] in (150, 300)
    assert rec["best"]["accuracy"] >= rec["last"]["accuracy"]
    assert rec["best"]["accuracy"] > majority + 5, (rec, majority)
    # predictions of the best eval recompute its score
    rows = [json.loads(line) for line in (tmp_path / "predictions" / "stdlib_module.jsonl").read_text().splitlines()]
    assert len(rows) == len(val) and {"inputs", "target", "prediction"} <= set(rows[0])
    rescored = task.score([r["target"] for r in rows], [r["prediction"] for r in rows], [r["meta"] for r in rows])
    assert rescored["accuracy"] == pytest.approx(rec["best"]["accuracy"])
    phases = collections.Counter(r["phase"] for r in read_metrics(tmp_path / "metrics.jsonl"))
    assert phases == {"finetune/stdlib_module": 6, "finetune_eval/stdlib_module": 2}
    # the pretrained params survive (per-task fine-tuning restarts every task from them)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(params)):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_low_resource_subset_is_fixed_across_seeds_and_variants():
    """Finetune.max_train_examples keeps the same examples for every run (so seeds and rows stay paired),
    in their original order; None or a cap above the split keeps everything."""
    from t5explore.train.finetune import train_subset

    examples = [f"ex{i}" for i in range(1000)]
    kept = train_subset(examples, 100)
    assert len(kept) == 100 == len(set(kept))
    assert kept == train_subset(list(examples), 100)  # a pure function of the split, not of any run seed
    assert kept == sorted(kept, key=examples.index)  # original order
    assert kept != examples[:100]  # a random subset, not the head of the file
    assert train_subset(examples, None) is examples and train_subset(examples, 5000) is examples
