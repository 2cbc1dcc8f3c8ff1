"""Every row of every experiment, at the scale the experiment file configures (tiny CPU by default), must
train on data of its own: two rows whose objective produces identical batches from the same chunks and
seed are the same run twice, and the sweep's table compares nothing. This is what happens to Table 7
at inputs_length=32, where T5's span counts round μ=2 and μ=3 (and μ=5 and μ=10) to the same mask.

Found by running the sweeps end to end on CPU; the check itself needs no model, data or vocabulary.
"""

from __future__ import annotations

import itertools

import gin
import numpy as np
import pytest

from t5explore.config import REPO_ROOT, parse_gin
from t5explore.objectives.bart import Boundaries
from t5explore.objectives.base import TokenSpace
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng
from t5explore.sweep.grid import load_sweep
from t5explore.train.config import Pretrain

VOCAB = TokenSpace(vocab_size=1100, mode_token_ids=(("[NLU]", 3), ("[S2S]", 4), ("[NLG]", 5)), first_regular_id=6)
BATCH, NUM_BATCHES = 8, 4
EXPERIMENTS = sorted(p.stem for p in (REPO_ROOT / "experiments").glob("*.gin"))


pytestmark = pytest.mark.usefixtures("clean_gin")


def first_batches(run) -> list[dict[str, np.ndarray]] | None:
    """The run's objective applied to fixed synthetic chunks with the run's own noise streams; None if the
    run does no pretraining (e.g. the 'No pre-training' row)."""
    parse_gin(run.gin_files, run.bindings)
    pre = Pretrain()
    if not pre.steps:
        return None
    plan = pre.objective.plan(pre.inputs_length)
    chunk_rng = numpy_rng(0, 99)  # the same uncorrupted text for every row (stream 99: test-only)
    batches = []
    for k in range(NUM_BATCHES):
        chunks = chunk_rng.integers(
            VOCAB.first_regular_id,
            VOCAB.vocab_size - VOCAB.num_sentinels,
            size=(BATCH, plan.raw_length),
            dtype=np.int32,
        )
        rng = numpy_rng(run.seed, STREAM_OBJECTIVE, k, 0)
        if getattr(pre.objective, "needs_boundaries", False):  # BART's permutation and rotation
            batches.append(pre.objective(chunks, rng, VOCAB, boundaries=synthetic_boundaries(chunks.shape)))
        else:
            batches.append(pre.objective(chunks, rng, VOCAB))
    return batches


def synthetic_boundaries(shape: tuple[int, int]) -> Boundaries:
    """Fixed sentence starts every few tokens and a second document starting mid-row (the same for every row
    of every experiment, like the chunks)."""
    rng = numpy_rng(0, 98)  # test-only stream
    sentence = rng.random(shape) < 0.15
    document = np.zeros(shape, bool)
    document[:, 0] = document[:, shape[1] // 2] = True
    sentence |= document
    return Boundaries(sentence_start=sentence, document_start=document)


def data_bindings(variant_bindings: dict) -> dict:
    """A row's bindings that can change its batches: a model file it includes (an architecture of T5 Table 2)
    changes the model, not the data, so two rows differing only in that train on the same batches by design."""
    out = dict(variant_bindings)
    includes = out.pop("include", "")  # the sweep lists a variant's includes as one comma-separated string
    names = [i.strip() for i in (includes.split(",") if isinstance(includes, str) else includes)]
    out["include"] = tuple(i for i in names if i and not i.startswith("gin/models/"))
    return out


def same(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]]) -> bool:
    return all(x.keys() == y.keys() and all(np.array_equal(x[f], y[f]) for f in x) for x, y in zip(a, b))


def test_detector_tells_identical_from_different_objectives():
    """The check below would pass vacuously if `first_batches` ignored the run's bindings."""
    spec = load_sweep("experiments/t5_table6_rate.gin")
    ten, fifteen = spec.runs[0], spec.runs[1]
    assert same(first_batches(ten), first_batches(ten))
    assert not same(first_batches(ten), first_batches(fifteen))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_row_of_an_experiment_trains_on_its_own_batches(name):
    spec = load_sweep(f"experiments/{name}.gin")
    gin.clear_config()
    batches = {}
    for run in spec.runs:
        b = first_batches(run)
        gin.clear_config()
        if b is not None:
            batches[run.name] = b
    assert len(batches) >= 2, f"{name}: fewer than two pretraining rows"
    rows = {run.name: data_bindings(run.variant_bindings) for run in spec.runs}

    def differ_in_data(a: str, b: str) -> bool:
        """Rows meant to see other batches: they differ in more than the step count (the target-token
        control runs one objective for more or fewer steps of the same stream, so its first batches agree)."""
        keys = {k for k in rows[a].keys() | rows[b].keys() if rows[a].get(k) != rows[b].get(k)}
        return bool(keys - {"Pretrain.steps"})

    pairs = [(a, b) for a, b in itertools.combinations(batches, 2) if differ_in_data(a, b)]
    clones = [(a, b) for a, b in pairs if same(batches[a], batches[b])]
    assert not clones, f"{name}: rows train on identical batches at the configured scale: {clones}"
