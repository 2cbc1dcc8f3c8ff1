"""The same config run twice into two fresh run directories gives bit-identical numbers: the pretraining
summary, every downstream score, every logged loss and metric, every prediction. Any seed taken from the
clock, the process, a dict order or the run directory's name would break this.

The runs share a persistent compilation cache, as `t5explore train` and `sweep` runs do: the second run
loads the executables the first compiled, which also checks that cached executables give the same numbers
(and halves the test's time)."""

from __future__ import annotations

import gin
import pytest

from t5explore import compile_cache
from t5explore.train.run import execute
from t5explore.train.writers import read_metrics

pytestmark = pytest.mark.own_compile_cache  # its own cache directory: what it checks is compile vs load

# Wall-clock measurements in metrics.jsonl rows; every other value must repeat exactly.
TIMING_KEYS = {"tokens_per_s", "real_tokens_per_s", "data_wait_share"}


def _numbers(run_dir) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in read_metrics(run_dir / "metrics.jsonl")]


@pytest.mark.slow
def test_two_runs_of_one_config_give_identical_numbers(tmp_path, cache_dir, monkeypatch):
    monkeypatch.delenv(compile_cache.ENV, raising=False)
    bindings = [f"Experiment.cache_dir = '{cache_dir}'"]
    try:
        with compile_cache.enabled(tmp_path / "jax_cache"):
            first = execute(tmp_path / "first", ["gin/runs/tiny_cpu.gin"], bindings)
            second = execute(tmp_path / "second", ["gin/runs/tiny_cpu.gin"], bindings)
    finally:
        gin.clear_config()

    assert first["pretrain"]["final_loss"] > 0 and first["pretrain"]["eval_loss"] > 0
    assert first["pretrain"] == second["pretrain"]  # exact: floats compare bit for bit
    assert list(first["downstream"]) == ["stdlib_module"]
    assert first["downstream"] == second["downstream"]
    assert first["benchmarks"] == second["benchmarks"]
    assert {"jax", "jaxlib", "flax", "optax", "numpy", "python", "cpu", "jax_backend"} <= set(first["versions"])

    rows = _numbers(tmp_path / "first")
    phases = {r["phase"] for r in rows if "loss" in r}
    assert {"pretrain", "pretrain_eval"} <= phases and any(p.startswith("finetune") for p in phases), phases
    assert rows == _numbers(tmp_path / "second")

    predictions = "predictions/stdlib_module.jsonl"
    assert (tmp_path / "first" / predictions).read_text() == (tmp_path / "second" / predictions).read_text()
