"""TFDS as a source (offline, with tfds.testing.mock_data) and the seqio Task registration."""

from __future__ import annotations

import pytest
import seqio
import tensorflow_datasets as tfds

from t5explore.data.tasks import get_task
from t5explore.data.tasks.seqio_tasks import register_seqio_task


def test_glue_and_squad_from_tfds_mock_data():
    with tfds.testing.mock_data(num_examples=5):
        rte = get_task("glue_rte").examples("validation")
        stsb = get_task("glue_stsb").examples("train")
        squad = get_task("squad_v1").examples("validation")
    assert len(rte) == len(stsb) == len(squad) == 5
    assert all(e.inputs.startswith("rte sentence1: ") and " sentence2: " in e.inputs for e in rte)
    assert all(e.targets in ("entailment", "not_entailment") for e in rte)
    assert all(abs(float(e.targets) - e.meta["label"]) <= 0.1 + 1e-6 for e in stsb)  # rounded to 0.2
    assert all(e.inputs.startswith("question: ") and " context: " in e.inputs for e in squad)
    assert all(e.meta["answers"] and e.targets == e.meta["answers"][0] for e in squad)


def test_tfds_failure_names_the_dataset_and_the_local_alternative():
    with (
        pytest.raises(ValueError, match="TFDS dataset 'glue/rte'.*data_dir"),
        tfds.testing.mock_data(
            num_examples=1, policy=tfds.testing.MockPolicy.USE_FILES, data_dir="/nonexistent/t5explore"
        ),
    ):
        get_task("glue_rte").examples("train")


def test_seqio_task_yields_our_texts_and_scores_with_our_metrics(shared_data):
    vocab = seqio.ByteVocabulary()
    try:
        task = register_seqio_task("glue_rte", vocab, data_dir=str(shared_data))
        assert seqio.get_mixture_or_task("t5explore_glue_rte") is task
        ours = get_task("glue_rte").examples("validation", data_dir=shared_data)
        ds = task.get_dataset({"inputs": 512, "targets": 32}, split="validation", shuffle=False)
        got = list(ds.take(3).as_numpy_iterator())
        assert [g["inputs_pretokenized"].decode() for g in got] == [e.inputs for e in ours[:3]]
        assert vocab.decode(got[0]["targets"].tolist()) == ours[0].targets
        targets = [task.postprocess_fn(g["targets_pretokenized"].decode(), example=g, is_target=True) for g in got]
        preds = [ours[0].targets, ours[1].targets, "nonsense"]
        (metric_fn,) = task.metric_fns
        assert metric_fn(targets, preds) == pytest.approx({"accuracy": 200 / 3, "invalid_predictions": 1.0})
    finally:
        seqio.TaskRegistry.remove("t5explore_glue_rte")  # leave the global registry as we found it
