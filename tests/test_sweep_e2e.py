"""A real (tiny) sweep through train/run.py: two seeds of one objective on a small Gutenberg book.

Both runs have the same shapes, so the second loads the first one's executables from the sweep's JAX
persistent compilation cache; the vocabulary and token store are built once in `<results>/.cache`.
"""

from __future__ import annotations

import io

import pytest

from t5explore import compile_cache, io_utils
from t5explore.sweep.runner import run_sweep

pytestmark = pytest.mark.usefixtures("clean_gin")


@pytest.mark.slow
@pytest.mark.own_compile_cache  # a sweep's own cache directory, used where none is configured
def test_real_tiny_sweep_writes_results_table_and_shares_caches(tmp_path, shared_data, monkeypatch):
    monkeypatch.delenv(compile_cache.ENV, raising=False)
    book = shared_data / "pretrain" / "gutenberg" / "pg1656.txt"
    sweep = tmp_path / "real_tiny.gin"
    sweep.write_text(f"""
include 'gin/models/tiny.gin'
Pretrain.corpus = @text_files()
text_files.pattern = '{book}'
vocabulary.sp_vocab_size = 400
Pretrain.objective = @span_corruption()
Pretrain.inputs_length = 16
Pretrain.batch_size = 2
Pretrain.steps = 2
Pretrain.log_every = 1
Pretrain.checkpoint_every = 1
Pretrain.eval_batches = 1
Optimizer.warmup_steps = 1
Finetune.tasks = []
Sweep.variants = {{'spans': {{'span_corruption.mean_noise_span_length': '3'}}}}
Sweep.seeds = [0, 1]
Sweep.display_names = {{'spans': 'μ = 3'}}
Sweep.baseline = 'spans'
""")
    results = tmp_path / "results"
    out = io.StringIO()
    outcome = run_sweep(str(sweep), results, out=out)
    assert outcome.exit_code == 0, out.getvalue()
    assert outcome.states == {"spans__seed_0": "ran", "spans__seed_1": "ran"}
    sdir = results / "real_tiny"
    for seed in (0, 1):
        run = sdir / f"spans__seed_{seed}"
        result = io_utils.read_json(run / "result.json")
        assert (result["sweep"], result["run"], result["variant"], result["seed"], result["baseline"]) == (
            "real_tiny",
            f"spans__seed_{seed}",
            "μ = 3",
            seed,
            True,
        )
        assert result["variant_bindings"] == {"span_corruption.mean_noise_span_length": "3"}
        assert result["pretrain"]["steps"] == 2
        assert "span_corruption.mean_noise_span_length = 3" in (run / "config.gin").read_text()
        assert not (run / "CLAIM").exists()
    assert any((results / ".cache" / "jax_compilation").iterdir())  # the persistent cache was used
    assert {p.name for p in (results / ".cache").iterdir()} >= {"jax_compilation", "vocab"}
    assert "μ = 3" in (sdir / "table.md").read_text()

    again = run_sweep(str(sweep), results, out=io.StringIO())  # nothing left to do
    assert again.states == {"spans__seed_0": "done", "spans__seed_1": "done"}
