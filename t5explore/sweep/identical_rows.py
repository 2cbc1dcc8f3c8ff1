"""Rows of a sweep that would train on identical batches at the scale it runs: a table row compared with itself.

At a small scale two objectives can coincide: at 32-token inputs (gin/runs/tiny_scale.gin) T5's span counts round
μ = 2 and μ = 3 (and μ = 5 and μ = 10) to the same mask, so their runs are bit-identical and their table compares
nothing. The sweep checks this before it runs anything, by applying each row's objective, with the row's own
noise stream, to the same synthetic chunks (no data, vocabulary or model needed), and prints one warning per
coinciding pair. Rows that differ only in the model file they include (T5 Table 2's architectures) or in their
step count (a budget control) share batches by design and are not reported.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import gin
import numpy as np

from t5explore.config import parse_gin
from t5explore.objectives.base import TokenSpace
from t5explore.run_config import Pretrain
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng

SYNTHETIC_VOCAB = TokenSpace(
    vocab_size=1100, mode_token_ids=(("[NLU]", 3), ("[S2S]", 4), ("[NLG]", 5)), first_regular_id=6
)
BATCH, NUM_BATCHES = 8, 4
_CHUNK_STREAM, _BOUNDARY_STREAM = 99, 98  # streams of this check alone: never a run's


def first_batches(run: Any) -> list[dict[str, np.ndarray]] | None:
    """The run's objective on fixed synthetic chunks with the run's own noise streams; None without pretraining.
    Leaves gin cleared."""
    try:
        parse_gin(run.gin_files, run.bindings)
        pre = Pretrain()
        if not pre.steps or pre.objective is None:  # no pre-training (or none configured: the run says so itself)
            return None
        plan = pre.objective.plan(pre.inputs_length)
        chunk_rng = numpy_rng(0, _CHUNK_STREAM)  # the same uncorrupted text for every row
        batches = []
        for k in range(NUM_BATCHES):
            tokens = SYNTHETIC_VOCAB
            shape = (BATCH, plan.raw_length)
            chunks = chunk_rng.integers(tokens.first_regular_id, tokens.vocab_size - tokens.num_sentinels, shape)
            rng = numpy_rng(run.seed, STREAM_OBJECTIVE, k, 0)
            if getattr(pre.objective, "needs_boundaries", False):  # BART's permutation and rotation
                batches.append(pre.objective(chunks.astype(np.int32), rng, tokens, boundaries=_boundaries(shape)))
            else:
                batches.append(pre.objective(chunks.astype(np.int32), rng, tokens))
        return batches
    finally:
        gin.clear_config()


def _boundaries(shape: tuple[int, int]) -> Any:
    """Fixed sentence starts every few tokens and a second document starting mid-row."""
    from t5explore.objectives.bart import Boundaries

    sentence = numpy_rng(0, _BOUNDARY_STREAM).random(shape) < 0.15
    document = np.zeros(shape, bool)
    document[:, 0] = document[:, shape[1] // 2] = True
    return Boundaries(sentence_start=sentence | document, document_start=document)


def data_bindings(variant_bindings: dict) -> dict:
    """A row's bindings that can change its batches: not the model files it includes, not its step count."""
    out = {k: v for k, v in variant_bindings.items() if k != "Pretrain.steps"}
    includes = out.pop("include", "")  # a sweep lists a variant's includes as one comma-separated string
    names = [i.strip() for i in (includes.split(",") if isinstance(includes, str) else includes)]
    out["include"] = tuple(i for i in names if i and not i.startswith("gin/models/"))
    return out


def same(a: Sequence[dict[str, np.ndarray]], b: Sequence[dict[str, np.ndarray]]) -> bool:
    return all(x.keys() == y.keys() and all(np.array_equal(x[f], y[f]) for f in x) for x, y in zip(a, b, strict=True))


def identical_rows(runs: Sequence[Any]) -> list[tuple[str, str]]:
    """Pairs of variants meant to see different data whose runs of one seed get identical batches."""
    if not runs:
        return []
    seed = runs[0].seed
    batches = {r.variant: b for r in runs if r.seed == seed and (b := first_batches(r)) is not None}
    rows = {r.variant: data_bindings(r.variant_bindings) for r in runs if r.variant in batches}
    return [
        (a, b) for a, b in itertools.combinations(batches, 2) if rows[a] != rows[b] and same(batches[a], batches[b])
    ]


def warnings(sweep_name: str, runs: Sequence[Any]) -> list[str]:
    """One line per pair of rows that train on the same batches at this scale."""
    return [
        f"warning: sweep {sweep_name}: rows {a!r} and {b!r} give identical pre-training batches at this scale "
        "(their objectives coincide at these lengths), so the table compares a run with itself; use a larger scale"
        for a, b in identical_rows(runs)
    ]
