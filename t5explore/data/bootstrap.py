"""Bootstrap intervals over evaluation examples: result.json's `bootstrap` field.

With one seed the report cannot put an interval on a score from seed-to-seed variation, so each run
resamples its best checkpoint's validation examples with replacement and re-scores every replicate with
the task's own `score()`:

- replicate `r` of task `t` draws `n` indices from `numpy_rng(seed, STREAM_EVAL_BOOTSTRAP, id(t), r)`
  (`id` = CRC-32 of the task name), so it is a pure function of (run seed, task, r): two variants run with
  the same seed on the same examples resample identically, which makes a paired bootstrap of their
  difference possible, and a shorter run of replicates is a prefix of a longer one;
- a benchmark average (GLUE, SuperGLUE) uses replicate `r` of every task it averages, so its interval is
  that of the average, computed per replicate;
- the interval is the percentile one: the 2.5th and 97.5th percentiles of the replicates.

Re-scoring 1000 times must stay cheap, so before calling `score()` on every replicate three exact
shortcuts are tried, each kept only if it reproduces `score()` on the full set and on the first
`CHECKS` replicates: a metric that is the mean (accuracy, exact match, SQuAD F1, ROUGE) or the sum
(invalid predictions) of per-example scores is resampled as such; corpus BLEU is recomputed from summed
per-sentence n-gram statistics. Other metrics (MCC, MRPC F1, STS-B correlations) call `score()` per
replicate; a scorer too slow for `budget_s` seconds gets fewer replicates (at least `MIN_REPLICATES`),
recorded per task under `replicates`.

Stored (result.json `bootstrap`): `best.tasks[task][metric]` and `best.benchmarks[name]` = [lo, hi] (null
if undefined); `best.replicates[task]` = replicates used; `best.examples[task]` = {n, hash of the targets};
`best.samples` = the replicate values themselves, as one space-separated string per series (so the indented
result.json stays readable), for the report's paired bootstrap of two runs with one seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from t5explore.seeds import STREAM_EVAL_BOOTSTRAP, numpy_rng

REPLICATES = 1000
CONFIDENCE = 0.95
BUDGET_S = 10.0  # per task, for scorers that must be called on every replicate
MIN_REPLICATES = 50
CHECKS = 2  # replicates scored by score() itself to verify a shortcut
SAMPLE_DIGITS = 4  # replicate values are stored rounded (the intervals are not)
TOL = 1e-6

Scorer = Callable[[Sequence[str], Sequence[str], Sequence[Mapping[str, Any]]], Mapping[str, float]]


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """One task's validation examples and the best checkpoint's predictions for them."""

    targets: Sequence[str]
    predictions: Sequence[str]
    metas: Sequence[Mapping[str, Any]]
    score: Scorer


def task_id(task: str) -> int:
    """A stable integer per task name (the stream index of its resampling)."""
    return zlib.crc32(task.encode("utf-8"))


def resample(seed: int, task: str, n: int, r: int) -> np.ndarray:
    """Indices of replicate `r`: n draws with replacement from range(n)."""
    return numpy_rng(seed, STREAM_EVAL_BOOTSTRAP, task_id(task), r).integers(0, n, n)


def examples_fingerprint(targets: Sequence[str]) -> str:
    """Short hash of the targets in order: two runs resample the same examples only if it agrees."""
    return hashlib.sha256(json.dumps(list(targets), ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def percentile_interval(samples, confidence: float = CONFIDENCE) -> list[float] | None:
    """[lo, hi]: the percentile bootstrap interval (None when there are no finite samples)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    if not x.size:
        return None
    tail = 50.0 * (1.0 - confidence)
    lo, hi = np.percentile(x, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def bootstrap_task(
    task: str, data: EvalSet, seed: int, replicates: int = REPLICATES, budget_s: float = BUDGET_S
) -> dict[str, np.ndarray]:
    """metric -> replicate values (all the same length) for one task."""
    n = len(data.targets)
    if n == 0 or replicates <= 0:
        return {}
    full = _score(data, np.arange(n))
    checks = [_score(data, resample(seed, task, n, r)) for r in range(min(CHECKS, replicates))]
    out: dict[str, np.ndarray] = {}
    missing = set(full)
    for shortcut in (_additive_samples, _bleu_samples):
        if not missing:
            break
        try:
            candidates = shortcut(task, data, seed, replicates, missing, full)
        except Exception:  # noqa: BLE001 - a scorer that cannot take one example, sacrebleu without its private API
            candidates = {}
        for metric, values in candidates.items():
            if _verified(values, metric, full, checks):
                out[metric] = values[1:]  # values[0] is the full set's
                missing.discard(metric)
    if missing:
        out.update(_scored_samples(task, data, seed, replicates, sorted(missing), checks, budget_s))
    count = min(len(v) for v in out.values())
    return {m: out[m][:count] for m in full}


def bootstrap_report(
    evals: Mapping[str, EvalSet],
    seed: int,
    replicates: int = REPLICATES,
    budget_s: float = BUDGET_S,
    benchmark_fn: Callable | None = None,
) -> dict[str, Any]:
    """result.json's `bootstrap` field for the best checkpoint's predictions of every task in `evals`."""
    if benchmark_fn is None:
        from t5explore.data.tasks import benchmark_scores

        benchmark_fn = benchmark_scores
    samples = {task: bootstrap_task(task, data, seed, replicates, budget_s) for task, data in evals.items()}
    samples = {t: s for t, s in samples.items() if s}
    counts = {t: len(next(iter(s.values()))) for t, s in samples.items()}
    bench = benchmark_samples(samples, counts, benchmark_fn)
    return {
        "replicates": replicates,
        "confidence": CONFIDENCE,
        "method": "percentile",
        "best": {
            "tasks": {t: {m: percentile_interval(v) for m, v in s.items()} for t, s in samples.items()},
            "benchmarks": {b: percentile_interval(v) for b, v in bench.items()},
            "replicates": counts,
            "examples": {
                t: {"n": len(evals[t].targets), "hash": examples_fingerprint(evals[t].targets)} for t in samples
            },
            "samples": {
                "tasks": {t: {m: encode_samples(v) for m, v in s.items()} for t, s in samples.items()},
                "benchmarks": {b: encode_samples(v) for b, v in bench.items()},
            },
        },
    }


def benchmark_samples(
    samples: Mapping[str, Mapping[str, np.ndarray]], counts: Mapping[str, int], benchmark_fn: Callable
) -> dict[str, np.ndarray]:
    """Benchmark scores per replicate: replicate r of every task a benchmark averages (same r for all).

    A benchmark has as many replicates as the fewest of its tasks."""
    if not samples:
        return {}
    members: dict[str, list[str]] = {}
    for task, s in samples.items():  # which benchmarks each task feeds
        for bench in benchmark_fn({task: {m: float(v[0]) for m, v in s.items()}}):
            members.setdefault(bench, []).append(task)
    length = {b: min(counts[t] for t in tasks) for b, tasks in members.items()}
    out = {b: np.full(n, np.nan) for b, n in length.items()}
    for r in range(max(length.values(), default=0)):
        per_task = {t: {m: float(v[r]) for m, v in s.items()} for t, s in samples.items() if counts[t] > r}
        for bench, value in benchmark_fn(per_task).items():
            if bench in out and r < length[bench]:
                out[bench][r] = value
    return out


# ------------------------------------------------------------------------------------------- internals


def _score(data: EvalSet, idx: np.ndarray) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in data.score(
            [data.targets[i] for i in idx], [data.predictions[i] for i in idx], [data.metas[i] for i in idx]
        ).items()
    }


def _verified(
    values: np.ndarray, metric: str, full: Mapping[str, float], checks: Sequence[Mapping[str, float]]
) -> bool:
    """values[0] (full set) and values[1 + r] (check replicates) equal what score() gave."""
    expected = [full[metric], *(c[metric] for c in checks)]
    if len(values) < len(expected):
        return False
    return all(math.isclose(float(v), e, rel_tol=TOL, abs_tol=TOL) for v, e in zip(values, expected))


def _replicate_totals(task: str, n: int, seed: int, replicates: int, table: np.ndarray) -> np.ndarray:
    """[1 + replicates, k]: per-example rows of `table` [n, k] summed over each replicate's draws;
    row 0 sums the full set. Built 100 replicates at a time (a count matrix of n columns each)."""
    out = np.empty((replicates + 1, table.shape[1]), np.float64)
    out[0] = table.sum(axis=0)
    for start in range(0, replicates, 100):
        rs = range(start, min(start + 100, replicates))
        counts = np.stack([np.bincount(resample(seed, task, n, r), minlength=n) for r in rs]).astype(np.float64)
        out[1 + start : 1 + rs.stop] = counts @ table
    return out


def _additive_samples(
    task: str, data: EvalSet, seed: int, replicates: int, metrics: set[str], full: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """Candidates for metrics that are the mean (or the sum) of per-example scores."""
    n = len(data.targets)
    per_example = [_score(data, np.array([i])) for i in range(n)]
    names = sorted(m for m in metrics if all(m in s for s in per_example))
    if not names:
        return {}
    table = np.array([[s[m] for m in names] for s in per_example], np.float64)  # [n, metrics]
    totals = _replicate_totals(task, n, seed, replicates, table)
    out = {}
    for j, m in enumerate(names):  # the full set decides between mean and sum; the checks confirm it
        is_mean = math.isclose(totals[0, j] / n, full[m], rel_tol=TOL, abs_tol=TOL)
        out[m] = totals[:, j] / n if is_mean else totals[:, j]
    return out


def _bleu_samples(
    task: str, data: EvalSet, seed: int, replicates: int, metrics: set[str], full: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """Corpus BLEU from summed sentence statistics (sacrebleu's settings as in data.metrics.bleu)."""
    if "bleu" not in metrics:
        return {}
    from sacrebleu.metrics import BLEU

    bleu = BLEU(
        lowercase=False, force=False, tokenize="intl", smooth_method="exp", smooth_value=0.0, effective_order=False
    )
    stats = np.asarray(bleu._extract_corpus_statistics(list(data.predictions), [list(data.targets)]), np.float64)
    totals = _replicate_totals(task, len(data.targets), seed, replicates, stats)
    return {"bleu": np.array([bleu._compute_score_from_stats(np.rint(row).astype(np.int64)).score for row in totals])}


def _scored_samples(
    task: str,
    data: EvalSet,
    seed: int,
    replicates: int,
    metrics: list[str],
    checks: Sequence[Mapping[str, float]],
    budget_s: float,
) -> dict[str, np.ndarray]:
    """score() on every replicate, stopping early (≥ MIN_REPLICATES) once `budget_s` is spent."""
    rows = [dict(c) for c in checks]
    t0 = time.perf_counter()
    for r in range(len(rows), replicates):
        if r >= MIN_REPLICATES and time.perf_counter() - t0 > budget_s:
            break
        rows.append(_score(data, resample(seed, task, len(data.targets), r)))
    return {m: np.array([row[m] for row in rows]) for m in metrics}


def encode_samples(values) -> str:
    """Replicate values as one line: space-separated, rounded to SAMPLE_DIGITS decimals ('nan' kept)."""
    return " ".join(
        f"{float(v):.{SAMPLE_DIGITS}f}".rstrip("0").rstrip(".") if math.isfinite(v) else "nan" for v in values
    )


def decode_samples(text: str) -> np.ndarray:
    return np.array(text.split(), dtype=np.float64)
