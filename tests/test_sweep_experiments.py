"""Every sweep in experiments/ parses for real (all its includes and configurables resolve) and expands to
rows named like the paper's table, with the paper's ★ baseline."""

from __future__ import annotations

import gin
import pytest

from t5explore.config import REPO_ROOT
from t5explore.sweep.grid import load_sweep

EXPECTED = {
    "quickstart": (["Span corruption (μ = 3)", "Replace corrupted spans (i.i.d.)", "No pre-training"],
                   "Span corruption (μ = 3)"),
    "t5_table4_objectives": (["Prefix language modeling", "BERT-style", "Deshuffling"], "BERT-style"),
    "t5_table5_corruption": (["BERT-style", "MASS-style", "Replace corrupted spans", "Drop corrupted tokens"],
                             "Replace corrupted spans"),
    "t5_table6_rate": (["10 %", "15 %", "25 %", "50 %"], "15 %"),
    "t5_table7_span_length": (["i.i.d.", "μ = 2", "μ = 3", "μ = 5", "μ = 10"], "i.i.d."),
    "ul2_vs_t5": (["T5 span corruption", "UL2 mixture of denoisers"], "T5 span corruption"),
}


@pytest.fixture(autouse=True)
def _clean_gin():
    yield
    gin.clear_config()


def test_every_experiment_file_is_covered():
    assert sorted(p.stem for p in (REPO_ROOT / "experiments").glob("*.gin")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_experiment_parses_and_reads_like_the_paper_table(name):
    rows, star = EXPECTED[name]
    spec = load_sweep(f"experiments/{name}.gin")
    assert spec.name == name
    assert [r.variant for r in spec.runs] == rows
    assert [r.variant for r in spec.runs if r.baseline] == [star]
    assert all(r.seed == 0 and r.bindings[-1] == "Experiment.seed = 0" for r in spec.runs)
    # each run's full config (sweep file, its includes, the row's bindings) parses with real configurables
    for r in spec.runs:
        from t5explore.config import parse_gin

        parse_gin(r.gin_files, r.bindings)
        assert gin.query_parameter("Experiment.seed") == 0


def test_table7_rows_bind_span_lengths_and_table6_rows_bind_rates():
    t7 = load_sweep("experiments/t5_table7_span_length.gin").runs
    assert [r.variant_bindings.get("span_corruption.mean_noise_span_length") for r in t7] == [None, "2", "3", "5", "10"]
    assert t7[0].gin_files[-1] == "gin/objectives/iid_replace_spans.gin"
    t6 = load_sweep("experiments/t5_table6_rate.gin").runs
    assert [r.variant_bindings["iid_replace_spans.noise_density"] for r in t6] == ["0.1", "0.15", "0.25", "0.5"]
    quick = load_sweep("experiments/quickstart.gin").runs
    assert "Pretrain.steps = 0" in quick[2].bindings
