"""Metric functions against hand-computed cases (0-100 scale)."""

from __future__ import annotations

import math

import pytest

from t5explore.data import metrics


def test_squad_normalisation_matches_official_rules():
    assert metrics.normalize_squad_answer("The  Cat's hat!") == "cats hat"
    assert metrics.normalize_squad_answer("An apple a day") == "apple day"
    assert metrics.normalize_squad_answer("theatre, anthem") == "theatre anthem"  # articles only as words
    assert metrics.normalize_squad_answer("D . H . T . ") == "d h t"


def test_squad_em_and_f1_take_the_max_over_gold_answers():
    golds = [["Denver Broncos", "The Denver Broncos"], ["the cat sat on mat", "cat sat"], ["red"]]
    preds = ["denver broncos.", "cat sat", "blue"]
    out = metrics.squad_scores(golds, preds)
    assert out["exact_match"] == pytest.approx(100 * 2 / 3)
    assert out["f1"] == pytest.approx(100 * 2 / 3)
    # Only the longer gold: precision 1, recall 2/4 -> F1 2/3; no exact match.
    out = metrics.squad_scores([["the cat sat on mat"]], ["cat sat"])
    assert out == pytest.approx({"exact_match": 0.0, "f1": 100 * 2 / 3})


def test_matthews_corr_hand_computed_and_degenerate():
    # tp=1 fn=1 tn=2 fp=0 -> (1*2 - 0*1) / sqrt(1*2*2*3)
    assert metrics.matthews_corr([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(100 * 2 / math.sqrt(12))
    assert metrics.matthews_corr([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-100.0)
    assert metrics.matthews_corr([1, 0, 1, 0], [1, 1, 1, 1]) == 0.0  # constant prediction: sklearn gives 0
    assert metrics.matthews_corr([1, 1, 1], [1, 0, 1]) == 0.0  # one gold class


def test_binary_f1_counts_the_positive_class():
    # tp=2 fp=1 fn=1 -> 4 / 6
    assert metrics.binary_f1([1, 1, 1, 0, 0], [1, 1, 0, 1, 0]) == pytest.approx(100 * 4 / 6)
    assert metrics.binary_f1([0, 0, 1], [0, 0, 0]) == 0.0
    assert metrics.binary_f1([1, 1, 1, 0, 0], [1, 1, 0, 1, 0], positive=0) == pytest.approx(100 * 2 / 4)


def test_invalid_predictions_are_wrong_and_counted():
    words = ("unacceptable", "acceptable")
    targets = ["acceptable", "unacceptable", "acceptable", "unacceptable", "acceptable"]
    preds = ["acceptable", "garbage", " acceptable\n", "unacceptable", "Acceptable"]
    out = metrics.classification_scores(targets, preds, words, ("accuracy", "matthews_corr", "f1"))
    assert out["invalid_predictions"] == 2.0  # 'garbage' and the wrongly cased 'Acceptable'
    assert out["accuracy"] == pytest.approx(60.0)
    # invalid -> opposite of gold: golds [1,0,1,0,1], preds [1,1,1,0,0]: tp=2 fp=1 fn=1 tn=1
    assert out["matthews_corr"] == pytest.approx(100 * (2 * 1 - 1 * 1) / math.sqrt(3 * 3 * 2 * 2))
    assert out["f1"] == pytest.approx(100 * 4 / 6)


def test_invalid_gold_target_is_an_error():
    with pytest.raises(ValueError, match="'maybe' is not one of the label words"):
        metrics.classification_scores(["maybe"], ["True"], ("False", "True"))


def test_multiclass_invalid_prediction_never_scores():
    words = ("email", "json", "xml")
    out = metrics.classification_scores(["email", "json", "xml"], ["email", "jsonx", "xml"], words)
    assert out == {"accuracy": pytest.approx(200 / 3), "invalid_predictions": 1.0}


def test_pearson_spearman_hand_computed():
    # deviations (-1,0,1) and (-7/3,-1/3,8/3): cov 5, var 2 and 114/9
    assert metrics.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(100 * 5 / math.sqrt(2 * 114 / 9))
    assert metrics.spearman([1, 2, 3], [2, 4, 7]) == pytest.approx(100.0)
    assert metrics.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(80.0)  # 1 - 6*2/(4*15)
    assert metrics.pearson([1, 2, 3], [2, 2, 2]) == 0.0  # undefined -> 0, not NaN


def test_stsb_non_numeric_prediction_counts_as_zero():
    out = metrics.regression_scores([1.0, 2.0, 3.0], ["1.0", " 2.0 ", "abc"])
    assert out["invalid_predictions"] == 1.0
    assert out["pearson"] == pytest.approx(-50.0)  # [1,2,3] vs [1,2,0]
    assert metrics.parse_score("nan") is None and metrics.parse_score("3.8") == 3.8


def test_benchmark_scores_average_two_metric_tasks_first():
    from t5explore.data.tasks import (
        benchmark_scores,  # the registry knows which metrics make a benchmark
    )

    per_task = {
        "glue_cola": {"matthews_corr": 20.0, "invalid_predictions": 3.0},
        "glue_mrpc": {"f1": 80.0, "accuracy": 70.0},
        "glue_stsb": {"pearson": 50.0, "spearman": 60.0},
        "superglue_boolq": {"accuracy": 62.0},
        "squad_v1": {"exact_match": 10.0, "f1": 20.0},
        "stdlib_module": {"accuracy": 99.0},
    }
    assert benchmark_scores(per_task) == pytest.approx(
        {"glue_average": (20 + 75 + 55) / 3, "superglue_average": 62.0, "squad_em": 10.0, "squad_f1": 20.0}
    )
    assert benchmark_scores({"stdlib_module": {"accuracy": 50.0}}) == {}
    with pytest.raises(KeyError, match="glue_mrpc has no metric 'f1'"):
        benchmark_scores({"glue_mrpc": {"accuracy": 70.0}})


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
        metrics.accuracy([1, 0], [1])


# ---------------------------------------------------------------------------------------------- generation


def test_rouge_identical_disjoint_and_averaged_over_examples():
    assert metrics.rouge_scores(["The cat sat ."], ["the cat sat ."]) == pytest.approx(
        {"rouge1": 100.0, "rouge2": 100.0, "rougeLsum": 100.0}
    )  # rouge_score lowercases
    assert metrics.rouge_scores(["a b c"], ["x y z"]) == {"rouge1": 0.0, "rouge2": 0.0, "rougeLsum": 0.0}
    out = metrics.rouge_scores(["a b c", "a b c"], ["a b c", "x y z"])
    assert out == pytest.approx({"rouge1": 50.0, "rouge2": 50.0, "rougeLsum": 50.0})


def test_rouge_hand_computed_f_measures():
    # 3 of 6 target unigrams, all 3 predicted: P=1, R=1/2 -> F=2/3. Bigrams: 2 of 5 -> F=2*0.4/1.4.
    out = metrics.rouge_scores(["the cat sat on the mat"], ["the cat sat"])
    assert out["rouge1"] == pytest.approx(100 * 2 / 3)
    assert out["rouge2"] == pytest.approx(100 * 0.8 / 1.4)
    assert out["rougeLsum"] == pytest.approx(100 * 2 / 3)


def test_rouge_lsum_splits_sentences_at_t5_periods():
    # Sentences swapped: one summary-level LCS over "x y z w" vs "z w x y" would be 2 of 4 (50); split at
    # " . " into sentences, each target sentence is matched whole -> 100. Bigrams xy, zw of xy yz zw -> 2/3.
    out = metrics.rouge_scores(["x y . z w"], ["z w . x y"])
    assert out["rougeLsum"] == pytest.approx(100.0)
    assert out["rouge2"] == pytest.approx(100 * 2 / 3)


def test_bleu_identical_disjoint_and_hand_computed():
    assert metrics.bleu(["The cat sat on the mat ."], ["The cat sat on the mat ."]) == pytest.approx(100.0)
    assert metrics.bleu(["a b c d e"], ["v w x y z"]) == 0.0
    # n-gram precisions 4/5, 3/4, 2/3, 1/2, equal lengths: (0.2)^(1/4).
    assert metrics.bleu(["a b c d f"], ["a b c d e"]) == pytest.approx(100 * 0.2**0.25)
    # All precisions 1, hypothesis 4 of 6 reference tokens: brevity penalty exp(1 - 6/4).
    assert metrics.bleu(["a b c d e f"], ["a b c d"]) == pytest.approx(100 * math.exp(-0.5))
    assert metrics.bleu([], []) == 0.0


def test_bleu_uses_exp_smoothing_and_intl_tokenisation_case_sensitively():
    # 1-/2-gram precisions 4/5, 2/4; no 3-/4-gram match: exp smoothing gives 1/(2*3) and 1/(4*2), not 0.
    assert metrics.bleu(["a b x d e"], ["a b c d e"]) == pytest.approx(100 * (0.8 * 0.5 / 6 / 8) ** 0.25)
    # 'intl' splits Unicode punctuation (German quotes) off words; '13a' would not, and score below 100.
    assert metrics.bleu(["„ Das ist gut “"], ["„Das ist gut“"]) == pytest.approx(100.0)
    assert metrics.bleu(["Das ist ein Haus"], ["das ist ein haus"]) < 100.0  # no lowercasing
    # Corpus BLEU pools n-gram counts over sentences (not a mean of sentence BLEU): 7/8, 5/6, 3/4, 1/2.
    pooled = 100 * (7 / 8 * 5 / 6 * 3 / 4 * 1 / 2) ** 0.25
    assert metrics.bleu(["a b c d", "e f g x"], ["a b c d", "e f g h"]) == pytest.approx(pooled)
    with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
        metrics.bleu(["a", "b"], ["a"])
