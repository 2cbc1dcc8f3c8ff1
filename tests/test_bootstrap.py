"""Bootstrap over evaluation examples (data/bootstrap.py): replicates are score() of resampled examples,
the shortcuts agree with score(), benchmark averages are taken per replicate, and all of it is deterministic."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from t5explore.data import bootstrap as B
from t5explore.data import metrics
from t5explore.seeds import STREAM_EVAL_BOOTSTRAP, numpy_rng

LABELS = ("yes", "no")


def _classification(targets, preds, names=("accuracy",)):
    def score(t, p, m):
        return metrics.classification_scores(t, p, LABELS, names)

    return B.EvalSet(targets, preds, [{}] * len(targets), score)


def _random_labels(n, seed, p_right=0.7):
    rng = np.random.default_rng(seed)
    targets = [LABELS[i] for i in rng.integers(0, 2, n)]
    preds = [t if rng.random() < p_right else LABELS[1 - LABELS.index(t)] for t in targets]
    return targets, preds


def test_resampling_is_a_pure_function_of_seed_task_and_replicate():
    idx = B.resample(3, "glue_rte", 5, 7)
    expected = numpy_rng(3, STREAM_EVAL_BOOTSTRAP, B.task_id("glue_rte"), 7).integers(0, 5, 5)
    np.testing.assert_array_equal(idx, expected)
    assert B.task_id("glue_rte") == B.task_id("glue_rte") != B.task_id("glue_cola")
    assert not np.array_equal(B.resample(3, "glue_rte", 50, 0), B.resample(4, "glue_rte", 50, 0))


def test_hand_checked_accuracy_replicates():
    # Correct, wrong, correct, correct: replicate r = 100 · mean(correct[indices of r]).
    data = _classification(["yes", "yes", "no", "no"], ["yes", "no", "no", "no"])
    samples = B.bootstrap_task("t", data, seed=0, replicates=200)
    correct = np.array([1.0, 0.0, 1.0, 1.0])
    expected = [100 * correct[B.resample(0, "t", 4, r)].mean() for r in range(200)]
    np.testing.assert_allclose(samples["accuracy"], expected)
    assert set(np.unique(samples["accuracy"])) <= {0.0, 25.0, 50.0, 75.0, 100.0}
    np.testing.assert_array_equal(samples["invalid_predictions"], np.zeros(200))  # a count: summed, not averaged
    # 0..100 in steps of 1: the 2.5th and 97.5th percentiles are 2.5 and 97.5.
    assert B.percentile_interval(np.arange(101.0)) == pytest.approx([2.5, 97.5])
    assert B.percentile_interval([np.nan]) is None


def test_invalid_predictions_are_counted_per_replicate():
    data = _classification(["yes", "no", "no"], ["yes", "maybe", "maybe"])
    samples = B.bootstrap_task("t", data, seed=1, replicates=50)
    invalid = np.array([0.0, 1.0, 1.0])
    np.testing.assert_allclose(
        samples["invalid_predictions"], [invalid[B.resample(1, "t", 3, r)].sum() for r in range(50)]
    )


@pytest.mark.parametrize("names", [("matthews_corr",), ("f1", "accuracy")])
def test_non_additive_metrics_call_score_on_every_replicate(names):
    targets, preds = _random_labels(60, 0)
    data = _classification(targets, preds, names)
    samples = B.bootstrap_task("t", data, seed=2, replicates=40)
    for r in range(40):
        idx = B.resample(2, "t", 60, r)
        want = data.score([targets[i] for i in idx], [preds[i] for i in idx], [{}] * 60)
        for m in names:
            assert samples[m][r] == pytest.approx(want[m], abs=1e-9), (m, r)


def test_bleu_shortcut_equals_corpus_bleu_of_each_replicate():
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "with", "blue", "red", "dog", "house"]
    targets = [" ".join(rng.choice(words, 8)) for _ in range(30)]
    preds = [" ".join(rng.choice(words, 8)) for _ in range(30)]
    data = B.EvalSet(targets, preds, [{}] * 30, lambda t, p, m: {"bleu": metrics.bleu(t, p)})
    samples = B.bootstrap_task("wmt", data, seed=0, replicates=12)
    for r in range(12):
        idx = B.resample(0, "wmt", 30, r)
        assert samples["bleu"][r] == pytest.approx(metrics.bleu([targets[i] for i in idx], [preds[i] for i in idx]))


def test_a_slow_scorer_gets_fewer_replicates_and_says_so():
    targets, preds = _random_labels(20, 1)
    inner = _classification(targets, preds, ("matthews_corr",))

    def slow(t, p, m):
        time.sleep(0.001)
        return inner.score(t, p, m)

    report = B.bootstrap_report(
        {"slow": B.EvalSet(targets, preds, [{}] * 20, slow)}, seed=0, replicates=400, budget_s=0.0
    )
    assert report["best"]["replicates"] == {"slow": B.MIN_REPLICATES}
    assert len(report["best"]["samples"]["tasks"]["slow"]["matthews_corr"].split()) == B.MIN_REPLICATES


def test_benchmark_average_is_computed_per_replicate_from_the_same_replicate_of_each_task():
    cola_t, cola_p = _random_labels(40, 2)
    sst_t, sst_p = _random_labels(30, 3)
    evals = {
        "glue_cola": _classification(cola_t, cola_p, ("matthews_corr",)),
        "glue_sst2": _classification(sst_t, sst_p, ("accuracy",)),
    }
    report = B.bootstrap_report(evals, seed=5, replicates=100)
    best = report["best"]
    cola = B.decode_samples(best["samples"]["tasks"]["glue_cola"]["matthews_corr"])
    sst = B.decode_samples(best["samples"]["tasks"]["glue_sst2"]["accuracy"])
    glue = B.decode_samples(best["samples"]["benchmarks"]["glue_average"])
    np.testing.assert_allclose(glue, (cola + sst) / 2, atol=2e-4)  # stored rounded to 4 decimals
    assert best["benchmarks"]["glue_average"] == pytest.approx(B.percentile_interval((cola + sst) / 2), abs=1e-3)
    assert best["replicates"] == {"glue_cola": 100, "glue_sst2": 100}
    assert best["examples"]["glue_cola"] == {"n": 40, "hash": B.examples_fingerprint(cola_t)}
    lo, hi = best["tasks"]["glue_sst2"]["accuracy"]
    full = metrics.accuracy(sst_t, sst_p)
    assert lo <= full <= hi and hi - lo > 5  # 30 examples: a wide interval around the score


def test_report_is_deterministic_and_json_ready():
    targets, preds = _random_labels(50, 4)
    evals = {"glue_sst2": _classification(targets, preds)}
    a, b = B.bootstrap_report(evals, seed=0, replicates=300), B.bootstrap_report(evals, seed=0, replicates=300)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.loads(json.dumps(a, allow_nan=False)) == a
    other = B.bootstrap_report(evals, seed=1, replicates=300)
    assert other["best"]["samples"] != a["best"]["samples"]
    assert a["replicates"] == 300 and a["confidence"] == 0.95 and a["method"] == "percentile"


def test_finetune_stores_the_best_evaluations_bootstrap(tmp_path):
    """steps=0: the pretrained model is scored once; its predictions are bootstrapped into the outcome."""
    from t5explore.data.tasks.base import DownstreamTask, TextExample
    from t5explore.run_config import Finetune
    from t5explore.train.finetune import finetune
    from t5explore.train.writers import MetricsWriter

    class Vocab:  # bytes shifted past the special ids
        def encode(self, text):
            return [b + 6 for b in text.encode()]

        def decode(self, ids):
            return bytes(i - 6 for i in ids if 6 <= i < 262).decode()

    golds = ["yes", "no", "no", "yes", "no", "yes"]
    examples = [TextExample(f"q{i}", g, {}) for i, g in enumerate(golds)]
    task = DownstreamTask(
        "glue_sst2",
        "glue",
        "accuracy",
        ("accuracy",),
        LABELS,
        lambda split, d: examples,
        lambda t, p, m: metrics.classification_scores(t, p, LABELS, ("accuracy",)),
    )

    class Trainer:
        params, compile_s, train_compile_s = None, 0.0, 0.0

    def decode(params, inputs):  # always "yes" + EOS
        return np.tile(np.array([ord("y") + 6, ord("e") + 6, ord("s") + 6, 1], np.int32), (len(inputs), 1))

    cfg = Finetune(tasks=["glue_sst2"], steps=0, inputs_length=8, targets_length=4, batch_size=4)
    out = finetune(
        lambda total: Trainer(),
        decode,
        cfg,
        {"glue_sst2": task},
        Vocab(),
        MetricsWriter(tmp_path, tensorboard=False),
        tmp_path,
        seed=0,
    )
    assert out.downstream["glue_sst2"]["best"]["accuracy"] == 50.0
    boot = out.bootstrap["best"]
    correct = np.array([g == "yes" for g in golds], np.float64)
    expected = [100 * correct[B.resample(0, "glue_sst2", 6, r)].mean() for r in range(B.REPLICATES)]
    np.testing.assert_allclose(
        B.decode_samples(boot["samples"]["tasks"]["glue_sst2"]["accuracy"]), expected, atol=1e-4
    )  # stored rounded to 4 decimals
    assert boot["tasks"]["glue_sst2"]["accuracy"] == pytest.approx(B.percentile_interval(expected))
    assert boot["benchmarks"]["glue_average"] == boot["tasks"]["glue_sst2"]["accuracy"]
