"""Every sweep in experiments/ parses for real (all its includes and configurables resolve) and expands to
rows named like the paper's table, with the paper's ★ baseline."""

from __future__ import annotations

import gin
import pytest

from t5explore.config import REPO_ROOT
from t5explore.sweep.grid import load_sweep

NONE = "No pre-training"
# The paper tables run 3 shared seeds at the CPU reproduction scale; the quickstart is one seed.
SEEDS = {"quickstart": [0]}
EXPECTED = {
    "quickstart": (
        ["Span corruption (μ = 3)", "Replace corrupted spans (i.i.d.)", "No pre-training"],
        "Span corruption (μ = 3)",
    ),
    "t5_table4_objectives": (["Prefix language modeling", "BERT-style", "Deshuffling", NONE], "BERT-style"),
    "t5_table5_corruption": (
        ["BERT-style", "MASS-style", "Replace corrupted spans", "Drop corrupted tokens", NONE],
        "Replace corrupted spans",
    ),
    "t5_table6_rate": (["10 %", "15 %", "25 %", "50 %", NONE], "15 %"),
    "t5_table7_span_length": (["i.i.d.", "μ = 2", "μ = 3", "μ = 5", "μ = 10", NONE], "i.i.d."),
    "ul2_vs_t5": (["T5 span corruption", "UL2 mixture of denoisers"], "T5 span corruption"),
    "budget_objectives": (
        ["BERT-style", "Replace corrupted spans", "μ = 3", "Deshuffling", "Prefix language modeling", NONE],
        "BERT-style",
    ),
    "budget_interpolation_check": (["Replace corrupted spans", "BERT-style"], "BERT-style"),
    "t5_table2_architectures": (
        [
            f"{arch} / {objective}"
            for objective in ("Denoising", "LM")
            for arch in ("Encoder-decoder", "Enc-dec, shared", "Enc-dec, 6 layers", "Language model", "Prefix LM")
        ],
        "Encoder-decoder / Denoising",
    ),
    "bart_noising": (
        [
            "Token Masking",
            "Token Deletion",
            "Text Infilling",
            "Document Rotation",
            "Sentence Shuffling",
            "Text Infilling + Sentence Shuffling",
            "T5 span corruption (15 %, μ = 3)",
            NONE,
        ],
        "Text Infilling",
    ),
    "target_tokens_control": (
        [
            "BERT-style, 800 steps",
            "BERT-style, 230 steps (replace-spans target tokens)",
            "Replace spans, 800 steps",
            "Replace spans, 2,780 steps (BERT-style target tokens)",
            NONE,
        ],
        "Replace spans, 800 steps",
    ),
}


pytestmark = pytest.mark.usefixtures("clean_gin")


def test_every_experiment_file_is_covered():
    assert sorted(p.stem for p in (REPO_ROOT / "experiments").glob("*.gin")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_experiment_parses_and_reads_like_the_paper_table(name):
    rows, star = EXPECTED[name]
    spec = load_sweep(f"experiments/{name}.gin")
    seeds = SEEDS.get(name, [0, 1, 2])
    assert spec.name == name
    assert [r.variant for r in spec.runs] == [row for row in rows for _ in seeds]
    assert [r.variant for r in spec.runs if r.baseline] == [star] * len(seeds)
    assert all(
        r.seed == seeds[i % len(seeds)] and r.bindings[-1] == f"Experiment.seed = {r.seed}"
        for i, r in enumerate(spec.runs)
    )
    # each run's full config (sweep file, its includes, the row's bindings) parses with real configurables
    for r in spec.runs:
        from t5explore.config import parse_gin

        parse_gin(r.gin_files, r.bindings)
        assert gin.query_parameter("Experiment.seed") == r.seed


def test_table7_rows_bind_span_lengths_and_table6_rows_bind_rates():
    t7 = load_sweep("experiments/t5_table7_span_length.gin").runs
    assert [r.variant_bindings.get("span_corruption.mean_noise_span_length") for r in t7 if r.seed == 0] == [
        None,
        "2.0",
        None,
        "5.0",
        "10.0",
        None,
    ]
    assert t7[0].gin_files[-1] == "gin/objectives/iid_replace_spans.gin"
    assert t7[6].gin_files[-1] == "gin/objectives/span_corruption.gin"  # μ = 3 is the objective file's default
    t6 = load_sweep("experiments/t5_table6_rate.gin").runs
    assert [r.variant_bindings.get("iid_replace_spans.noise_density") for r in t6 if r.seed == 0] == [
        "0.1",
        None,
        "0.25",
        "0.5",
        None,
    ]
    quick = load_sweep("experiments/quickstart.gin").runs
    assert "Pretrain.steps = 0" in quick[2].bindings


def test_the_target_token_control_matches_the_measured_targets_and_reuses_the_table_runs():
    """Its step counts come from the objectives' real target lengths at the CPU scale's 64 inputs, and its
    800-step rows are Table 4's and Table 5's runs (the same fingerprint, so a sweep copies them)."""
    import numpy as np

    from t5explore.objectives import named
    from t5explore.objectives.base import TokenSpace
    from t5explore.seeds import numpy_rng
    from t5explore.sweep.fingerprint import compute

    def targets_per_example(objective) -> float:
        chunks = numpy_rng(0, 99).integers(3, 1800, size=(4000, objective.plan(64).raw_length)).astype(np.int32)
        return float((objective(chunks, numpy_rng(0, 1), TokenSpace(vocab_size=2000))["targets"] != 0).sum(1).mean())

    ratio = targets_per_example(named.bert_style()) / targets_per_example(named.iid_replace_spans(noise_density=0.15))
    runs = {(r.variant, r.seed): r for r in load_sweep("experiments/target_tokens_control.gin").runs}
    steps = {v: int(dict(b.split(" = ") for b in r.bindings).get("Pretrain.steps", 800)) for (v, _), r in runs.items()}
    assert steps["BERT-style, 230 steps (replace-spans target tokens)"] == pytest.approx(800 / ratio, rel=0.01)
    assert steps["Replace spans, 2,780 steps (BERT-style target tokens)"] == pytest.approx(800 * ratio, rel=0.01)
    for mine, table, theirs in (
        ("BERT-style, 800 steps", "t5_table4_objectives", "BERT-style"),
        ("Replace spans, 800 steps", "t5_table5_corruption", "Replace corrupted spans"),
    ):
        other = {(r.variant, r.seed): r for r in load_sweep(f"experiments/{table}.gin").runs}
        a, b = runs[(mine, 1)], other[(theirs, 1)]
        assert compute(a.gin_files, a.bindings).digest == compute(b.gin_files, b.bindings).digest
