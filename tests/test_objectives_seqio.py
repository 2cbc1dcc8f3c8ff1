"""The seqio adapter: a seqio Task over a FunctionDataSource yields exactly the directly computed examples."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from t5explore.objectives import named
from t5explore.objectives.base import TokenSpace
from t5explore.objectives.seqio_adapter import objective_preprocessor
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng

tf = pytest.importorskip("tensorflow")
seqio = pytest.importorskip("seqio")


@pytest.mark.parametrize(
    "make",
    [
        named.span_corruption,
        named.iid_replace_spans,
        lambda: named.mixture([named.span_corruption(), named.prefix_lm()]),
    ],
)
def test_seqio_task_yields_the_same_examples_as_the_objective(shared_data, make):
    book = sorted((shared_data / "pretrain" / "gutenberg").glob("*.txt"))[0]
    lines = book.read_text(encoding="utf-8").split("\n\n")[:300]
    vocab = {}
    docs = [[vocab.setdefault(w, 6 + len(vocab)) for w in p.split()] for p in lines if p.split()]
    tokens = TokenSpace(vocab_size=6 + len(vocab) + 100, first_regular_id=6)
    seed, batch, inputs_length = 7, 4, 64

    def dataset_fn(split, shuffle_files, seed=None):
        return tf.data.Dataset.from_generator(
            lambda: ({"targets": np.array(d, np.int32)} for d in docs),
            output_signature={"targets": tf.TensorSpec([None], tf.int32)},
        )

    feature = seqio.Feature(seqio.PassThroughVocabulary(tokens.vocab_size), add_eos=False)
    task = seqio.Task(
        "t5explore_objective_adapter_test",
        source=seqio.FunctionDataSource(dataset_fn, splits=["train"]),
        preprocessors=[
            functools.partial(objective_preprocessor, objective=make(), tokens=tokens, seed=seed, batch_size=batch)
        ],
        output_features={"inputs": feature, "targets": feature},
    )
    direct_obj = make()
    plan = direct_obj.plan(inputs_length)
    got = list(
        task.get_dataset(
            {"inputs": inputs_length, "targets": plan.targets_length}, split="train", shuffle=False
        ).as_numpy_iterator()
    )

    flat = np.concatenate([np.array(d, np.int32) for d in docs])
    n_batches = len(flat) // plan.raw_length // batch
    assert len(got) == n_batches * batch > 0
    chunks = flat[: n_batches * batch * plan.raw_length].reshape(n_batches, batch, plan.raw_length)
    for k in range(n_batches):
        want = direct_obj(chunks[k], numpy_rng(seed, STREAM_OBJECTIVE, k, 0), tokens)
        for i in range(batch):
            assert np.array_equal(got[k * batch + i]["inputs"], want["inputs"][i])
            assert np.array_equal(got[k * batch + i]["targets"], want["targets"][i])


def test_batched_output_cuts_documents_of_any_length_like_a_flat_stream():
    """unbatch=False yields the batches as computed; documents shorter than a chunk, empty or many chunks
    long are cut exactly as their concatenation would be (the scan carries the leftover tokens)."""
    rng = np.random.default_rng(3)
    docs = [rng.integers(6, 500, n).astype(np.int32) for n in rng.choice([0, 1, 7, 40, 150, 400], 120)]
    tokens = TokenSpace(vocab_size=600, first_regular_id=6)
    obj = named.span_corruption()
    plan = obj.plan(32)
    ds = tf.data.Dataset.from_generator(
        lambda: ({"targets": d} for d in docs), output_signature={"targets": tf.TensorSpec([None], tf.int32)}
    )
    got = list(
        objective_preprocessor(
            ds, objective=obj, tokens=tokens, seed=5, batch_size=8, inputs_length=32, unbatch=False
        ).as_numpy_iterator()
    )
    flat = np.concatenate(docs)
    n_batches = len(flat) // plan.raw_length // 8
    assert len(got) == n_batches > 1
    chunks = flat[: n_batches * 8 * plan.raw_length].reshape(n_batches, 8, plan.raw_length)
    for k, batch in enumerate(got):
        want = obj(chunks[k], numpy_rng(5, STREAM_OBJECTIVE, k, 0), tokens)
        assert np.array_equal(batch["inputs"], want["inputs"]) and np.array_equal(batch["targets"], want["targets"])
