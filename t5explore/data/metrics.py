"""Downstream metrics as the benchmarks define them, on the 0-100 scale of the T5 paper's tables.

Predictions arrive as decoded text. A classification prediction that is not one of the task's label words
counts as wrong and is counted (`invalid_predictions`): for binary metrics (MCC, F1) it is replaced by the
opposite of the gold label, as T5's `f1_score_with_invalid` does, so it can never score. An STS-B prediction
that is not a finite number counts as 0.0 and is counted.

Generation tasks are scored as `t5.evaluation.metrics` does: ROUGE with `rouge-score` (rouge1, rouge2,
rougeLsum F-measure x100, sentences split at " . " for rougeLsum) and BLEU with `sacrebleu.corpus_bleu`
(exp smoothing, intl tokenisation, case-sensitive).
"""

from __future__ import annotations

import collections
import math
import re
import string
from collections.abc import Sequence

import numpy as np

from t5explore.results_schema import MetricInfo

INVALID = -1  # class id of a prediction that is not a label word


# ---------------------------------------------------------------------------------------------- basics


def accuracy(golds: Sequence, preds: Sequence) -> float:
    """Percentage of predictions equal to the gold label."""
    _check_lengths(golds, preds)
    if len(golds) == 0:
        return 0.0
    return 100.0 * float(np.mean([g == p for g, p in zip(golds, preds)]))


def matthews_corr(golds: Sequence[int], preds: Sequence[int]) -> float:
    """Matthews correlation x100 (sklearn's multiclass formula); 0 when it is undefined (one class only)."""
    _check_lengths(golds, preds)
    classes = sorted(set(golds) | set(preds))
    index = {c: i for i, c in enumerate(classes)}
    conf = np.zeros((len(classes), len(classes)), dtype=np.float64)
    for g, p in zip(golds, preds):
        conf[index[g], index[p]] += 1
    n = conf.sum()
    true_sum, pred_sum = conf.sum(axis=1), conf.sum(axis=0)
    cov_tp = np.trace(conf) * n - true_sum @ pred_sum
    cov_pp = n * n - pred_sum @ pred_sum
    cov_tt = n * n - true_sum @ true_sum
    if cov_pp * cov_tt == 0:
        return 0.0
    return 100.0 * float(cov_tp / math.sqrt(cov_tt * cov_pp))


def binary_f1(golds: Sequence[int], preds: Sequence[int], positive: int = 1) -> float:
    """F1 x100 of the positive class (GLUE: MRPC `equivalent`); 0 when there is no true positive."""
    _check_lengths(golds, preds)
    tp = sum(g == positive and p == positive for g, p in zip(golds, preds))
    fp = sum(g != positive and p == positive for g, p in zip(golds, preds))
    fn = sum(g == positive and p != positive for g, p in zip(golds, preds))
    if tp == 0:
        return 0.0
    return 100.0 * 2 * tp / (2 * tp + fp + fn)


def pearson(golds: Sequence[float], preds: Sequence[float]) -> float:
    """Pearson correlation x100; 0 when undefined (fewer than 2 points or a constant side)."""
    return _correlation("pearsonr", golds, preds)


def spearman(golds: Sequence[float], preds: Sequence[float]) -> float:
    """Spearman rank correlation x100; 0 when undefined."""
    return _correlation("spearmanr", golds, preds)


def _correlation(name: str, golds, preds) -> float:
    import scipy.stats  # imported on use: it is slow to import and most callers never need it

    _check_lengths(golds, preds)
    g, p = np.asarray(golds, dtype=np.float64), np.asarray(preds, dtype=np.float64)
    if len(g) < 2 or np.ptp(g) == 0 or np.ptp(p) == 0:
        return 0.0
    return 100.0 * float(getattr(scipy.stats, name)(g, p)[0])


def _check_lengths(golds, preds) -> None:
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} gold labels but {len(preds)} predictions")


# ---------------------------------------------------------------------------------------------- SQuAD


def normalize_squad_answer(text: str) -> str:
    """SQuAD v1.1's official normalisation: lowercase, drop punctuation, articles and extra whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = frozenset(string.punctuation)


def _token_f1(gold: str, pred: str) -> float:
    gold_tokens, pred_tokens = gold.split(), pred.split()
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision, recall = num_same / len(pred_tokens), num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(gold_answers: Sequence[Sequence[str]], preds: Sequence[str]) -> dict[str, float]:
    """Exact match and token F1 x100, each the max over a question's gold answers (official v1.1 script)."""
    _check_lengths(gold_answers, preds)
    em, f1 = [], []
    for answers, pred in zip(gold_answers, preds):
        if not answers:
            raise ValueError("a SQuAD question has no gold answers")
        p = normalize_squad_answer(pred)
        golds = [normalize_squad_answer(a) for a in answers]
        em.append(max(float(g == p) for g in golds))
        f1.append(max(_token_f1(g, p) for g in golds))
    n = max(len(preds), 1)
    return {"exact_match": 100.0 * sum(em) / n, "f1": 100.0 * sum(f1) / n}


# ------------------------------------------------------------------------------ text -> metric inputs


def label_ids(texts: Sequence[str], label_words: Sequence[str]) -> tuple[list[int], int]:
    """Map label words to class ids (surrounding whitespace ignored); others -> INVALID. Returns (ids, n_invalid)."""
    lookup = {w: i for i, w in enumerate(label_words)}
    ids = [lookup.get(t.strip(), INVALID) for t in texts]
    return ids, sum(i == INVALID for i in ids)


def classification_scores(
    targets: Sequence[str],
    predictions: Sequence[str],
    label_words: Sequence[str],
    metrics: Sequence[str] = ("accuracy",),
    positive: int = 1,
) -> dict[str, float]:
    """Score label-word predictions. `metrics` from 'accuracy', 'matthews_corr', 'f1' (class `positive`)."""
    _check_lengths(targets, predictions)
    golds, bad_golds = label_ids(targets, label_words)
    if bad_golds:
        bad = next(t for t, g in zip(targets, golds) if g == INVALID)
        raise ValueError(f"gold target {bad!r} is not one of the label words {list(label_words)}")
    preds, n_invalid = label_ids(predictions, label_words)
    if len(label_words) == 2:  # an invalid prediction becomes the wrong class, so it can never score
        preds = [1 - g if p == INVALID else p for g, p in zip(golds, preds)]
    fns = {"accuracy": accuracy, "matthews_corr": matthews_corr, "f1": lambda g, p: binary_f1(g, p, positive)}
    unknown = set(metrics) - set(fns)
    if unknown:
        raise ValueError(f"unknown classification metrics {sorted(unknown)}; known: {sorted(fns)}")
    out = {m: fns[m](golds, preds) for m in metrics}
    out["invalid_predictions"] = float(n_invalid)
    return out


def parse_score(text: str) -> float | None:
    """A predicted STS-B score as a float, or None if the text is not a finite number."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def regression_scores(golds: Sequence[float], predictions: Sequence[str]) -> dict[str, float]:
    """STS-B: Pearson and Spearman x100 of parsed predictions; non-numeric predictions count as 0.0."""
    parsed = [parse_score(p) for p in predictions]
    values = [0.0 if v is None else v for v in parsed]
    return {
        "pearson": pearson(golds, values),
        "spearman": spearman(golds, values),
        "invalid_predictions": float(sum(v is None for v in parsed)),
    }


# ---------------------------------------------------------------------------------------------- generation

ROUGE_KEYS = ("rouge1", "rouge2", "rougeLsum")


def _sentences_on_lines(summary: str) -> str:
    """One sentence per line so rougeLsum sees sentence boundaries (T5's `_prepare_summary`)."""
    return summary.replace(" . ", " .\n")


def rouge_scores(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/Lsum F-measure x100 over examples (rouge_score's tokeniser: lowercase, alphanumerics,
    no stemming), as T5 scores CNN/DM. T5 reports the mid of a bootstrap over examples, which estimates this
    mean with sampling noise and a global RNG; the exact mean is used here so scores are reproducible."""
    from rouge_score import (
        rouge_scorer,  # imported on use: only generation tasks need it
    )

    _check_lengths(targets, predictions)
    if not targets:
        return {k: 0.0 for k in ROUGE_KEYS}
    scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS))
    totals = dict.fromkeys(ROUGE_KEYS, 0.0)
    for target, prediction in zip(targets, predictions):
        scores = scorer.score(_sentences_on_lines(target), _sentences_on_lines(prediction))
        for k in ROUGE_KEYS:
            totals[k] += scores[k].fmeasure
    return {k: 100.0 * totals[k] / len(targets) for k in ROUGE_KEYS}


def bleu(targets: Sequence[str], predictions: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of predictions against one reference each, with `t5.evaluation.metrics.bleu`'s
    sacrebleu settings (the paper: "exp" smoothing, "intl" tokenisation); 0 for an empty corpus."""
    import sacrebleu  # imported on use: only generation tasks need it

    _check_lengths(targets, predictions)
    if not targets:
        return 0.0
    result = sacrebleu.corpus_bleu(
        list(predictions),
        [list(targets)],
        smooth_method="exp",
        smooth_value=0.0,
        force=False,
        lowercase=False,
        tokenize="intl",
        use_effective_order=False,
    )
    return float(result.score)


# ---------------------------------------------------------------------------------------------- display

# How tables and plots name each metric (result.json carries these in `registry.metrics`). Which metrics
# make up a benchmark score is the task registry's business (data/tasks/registry.py), not this module's.
METRIC_INFO: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("acc", "accuracy (%)"),
    "matthews_corr": MetricInfo("MCC", "Matthews corr. ×100"),
    "f1": MetricInfo("F1", "F1 ×100"),
    "pearson": MetricInfo("Pearson", "Pearson ×100"),
    "spearman": MetricInfo("Spearman", "Spearman ×100"),
    "exact_match": MetricInfo("EM", "exact match (%)"),
    "invalid_predictions": MetricInfo("invalid", "invalid predictions", better="lower"),
    "rouge1": MetricInfo("R-1", "ROUGE-1 F"),
    "rouge2": MetricInfo("R-2", "ROUGE-2 F"),
    "rougeLsum": MetricInfo("R-Lsum", "ROUGE-Lsum F"),
    "bleu": MetricInfo("BLEU", "BLEU"),
}


def metric_info(name: str) -> MetricInfo:
    """Display facts of metric `name`; a metric not listed is shown under its own name, higher better."""
    return METRIC_INFO.get(name, MetricInfo(name, name))
