"""Every row of every experiment must train on data of its own (t5explore/sweep/identical_rows.py): two rows whose
objective produces identical batches from the same chunks and seed are the same run twice, and the sweep's table
compares nothing. This is what happens to Table 7 at inputs_length=32, where T5's span counts round μ=2 and μ=3
(and μ=5 and μ=10) to the same mask; the sweep now warns about it before it runs anything.

Found by running the sweeps end to end on CPU; the check itself needs no model, data or vocabulary.
"""

from __future__ import annotations

import io

import pytest

from t5explore.config import REPO_ROOT
from t5explore.sweep.grid import load_sweep
from t5explore.sweep.identical_rows import first_batches, identical_rows, same, warnings
from t5explore.sweep.runner import run_sweep

EXPERIMENTS = sorted(p.stem for p in (REPO_ROOT / "experiments").glob("*.gin"))
TINY = "gin/runs/tiny_scale.gin"

pytestmark = pytest.mark.usefixtures("clean_gin")


def test_detector_tells_identical_from_different_objectives():
    """The check below would pass vacuously if `first_batches` ignored the run's bindings."""
    spec = load_sweep("experiments/t5_table6_rate.gin")
    ten, fifteen = spec.runs[0], spec.runs[1]
    assert same(first_batches(ten), first_batches(ten))
    assert not same(first_batches(ten), first_batches(fifteen))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_row_of_an_experiment_trains_on_its_own_batches(name):
    spec = load_sweep(f"experiments/{name}.gin")
    assert sum(first_batches(r) is not None for r in spec.runs) >= 2, f"{name}: fewer than two pretraining rows"
    assert not identical_rows(spec.runs), f"{name}: rows train on identical batches at the configured scale"


def test_the_tiny_smoke_scale_names_the_rows_it_cannot_tell_apart():
    """Issue 22: at the tiny scale μ = 2 / 3 and μ = 5 / 10 coincide; the sweep says so (and nothing else)."""
    spec = load_sweep("experiments/t5_table7_span_length.gin", gin_files=[TINY])
    assert set(identical_rows(spec.runs)) == {("μ = 2", "μ = 3"), ("μ = 5", "μ = 10")}
    out = io.StringIO()
    run_sweep("experiments/t5_table7_span_length.gin", "/nonexistent", gin_files=[TINY], dry_run=True, out=out)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("warning:")]
    assert lines == warnings(spec.name, spec.runs) and len(lines) == 2
    assert "rows 'μ = 2' and 'μ = 3' give identical pre-training batches at this scale" in lines[0]


TINY_COLLISIONS = {"t5_table7_span_length": {("μ = 2", "μ = 3"), ("μ = 5", "μ = 10")}}  # 32-token inputs


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_at_the_tiny_scale_only_the_known_rows_coincide(name):
    """Every committed sweep at the smoke scale: the rows it cannot tell apart are exactly the ones listed (and
    the sweep warns about them), so a smoke run of any other sweep shows that each row's binding took effect."""
    spec = load_sweep(f"experiments/{name}.gin", gin_files=[TINY])
    assert set(identical_rows(spec.runs)) == TINY_COLLISIONS.get(name, set())
