"""T5's text transforms checked against TensorFlow itself (T5 runs them as TF ops), on real data."""

from __future__ import annotations

import numpy as np
import tensorflow as tf  # T5 runs these transforms as TF ops, so TF is the oracle

from t5explore.data.tasks import get_task
from t5explore.data.tasks.formats import glue_inputs, pad_punctuation, squad_inputs, stsb_target


def test_stsb_target_equals_t5_tf_rounding_on_every_dev_label(shared_data):
    rows = (shared_data / "glue/STS-B/dev.tsv").read_text().split("\n")[1:]
    labels = np.array([float(r.split("\t")[9]) for r in rows if r] + [0.1, 0.3, 2.5, 2.7, 4.9, 5.0], np.float32)
    expected = tf.strings.as_string(tf.round(tf.constant(labels) * 5) / 5, precision=1).numpy()
    assert [stsb_target(x) for x in labels] == [e.decode() for e in expected]
    assert stsb_target(3.8) == "3.8" and stsb_target(2.5) == "2.4" and stsb_target(4.75) == "4.8"


def test_pad_punctuation_equals_t5_tf_regexes_on_squad(shared_data):
    examples = get_task("squad_v1").examples("validation", data_dir=shared_data)
    contexts = sorted({e.inputs.split(" context: ")[1] for e in examples})[:20]
    raw = [*contexts, "U.S. $5, (approx.)\tnaïve—“quoted” x_y  a\u00a0b\n", "D.H.T."]
    t = tf.strings.regex_replace(tf.constant(raw), r"([[:punct:]])", r" \1 ")
    t = tf.strings.regex_replace(t, r"\s+", " ")
    assert [pad_punctuation(s) for s in raw] == [s.decode() for s in t.numpy()]
    assert squad_inputs("Who?", "It was D.H.T.") == "question: Who ? context: It was D . H . T . "


def test_glue_inputs_sorts_feature_names_like_t5():
    assert glue_inputs("boolq", {"question": "q", "passage": "p"}) == "boolq passage: p question: q"
    assert glue_inputs("rte", {"sentence2": "b", "sentence1": "a"}) == "rte sentence1: a sentence2: b"
