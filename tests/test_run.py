"""One run end to end through `execute` (and the CLI): every file of the run directory, the exact
result.json schema, and a re-run that resumes instead of repeating."""

from __future__ import annotations

import collections
import json

import gin
import pytest

from t5explore.results_schema import SCHEMA_VERSION, RunResult, schema_fields
from t5explore.train.attempts import TIMING_KEYS, phases
from t5explore.train.run import execute, run_metadata
from t5explore.train.writers import read_metrics

SCHEMA_KEYS = {
    "schema",
    "sweep",
    "run",
    "variant",
    "variant_bindings",
    "seed",
    "scale",
    "baseline",
    "objective",
    "pretrain",
    "downstream",
    "benchmarks",
    "bootstrap",
    "timing",
    "attempts",
    "throughput",
    "model",
    "versions",
    "git_commit",
    "devices",
    "host",
    "registry",
    "budgets",  # every pre-training run: at least its final step (train/budgets.py)
    "numerics_version",  # t5explore/numerics.py
    "hygiene",  # a run with tasks: de-duplication of its corpus and its checkpoint selection
}
METADATA = {
    "sweep": "t",
    "run": "r0",
    "variant": "μ = 3",
    "variant_bindings": {"Pretrain.steps": "6"},
    "baseline": True,
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("run") / "r0"
    try:
        first = execute(out, ["gin/runs/tiny_cpu.gin"], [f"Experiment.cache_dir = '{cache_dir}'"], METADATA)
        again = execute(out, ["gin/runs/tiny_cpu.gin"], [f"Experiment.cache_dir = '{cache_dir}'"], METADATA)
    finally:
        gin.clear_config()
    return out, first, again


@pytest.mark.slow  # shares run_dir: a whole tiny run (~24 s) that the first of them pays for
def test_result_has_exactly_the_schema(run_dir):
    out, result, again = run_dir
    assert set(result) == SCHEMA_KEYS
    assert json.loads((out / "result.json").read_text()) == json.loads(json.dumps(again))  # the latest run's
    assert {k: result[k] for k in METADATA} == METADATA and result["schema"] == SCHEMA_VERSION and result["seed"] == 0
    assert result["scale"] == "tiny"  # gin/runs/tiny_cpu.gin labels itself, so tables say it is a smoke test
    assert result["objective"] == "span_corruption"
    assert set(result["pretrain"]) == {
        "steps",
        "tokens_seen",
        "final_loss",
        "final_accuracy",
        "eval_loss",
        "eval_accuracy",
    }
    assert result["pretrain"]["steps"] == 6 and result["pretrain"]["tokens_seen"] == 6 * 8 * 32
    assert result["pretrain"]["final_loss"] > 0 and result["pretrain"]["eval_loss"] > 0
    task = result["downstream"]["stdlib_module"]
    assert set(task) == {"best", "last", "best_step", "primary_metric", "selected_on"}
    assert task["primary_metric"] == "accuracy" and task["selected_on"] == "validation"  # tiny: no selection
    assert 0 <= task["best"]["accuracy"] <= 100 and task["best_step"] in (2, 4)
    assert set(result["benchmarks"]) == {"best", "last"}
    boot = result["bootstrap"]["best"]  # intervals over the 16 evaluation examples (data/bootstrap.py)
    lo, hi = boot["tasks"]["stdlib_module"]["accuracy"]
    assert 0 <= lo <= hi <= 100 and boot["replicates"] == {"stdlib_module": 1000}
    assert boot["examples"]["stdlib_module"]["n"] == 16
    assert len(boot["samples"]["tasks"]["stdlib_module"]["accuracy"].split()) == 1000
    assert set(result["timing"]) == set(TIMING_KEYS) | set(phases({}))  # train/attempts.py
    assert result["timing"]["compile_s"] > 0 and result["timing"]["total_s"] > result["timing"]["pretrain_s"]
    timing = result["timing"]  # the per-phase breakdown: decoding and checkpoints timed, compilations counted
    assert timing["eval_decode_s"] > 0 and timing["checkpoint_s"] > 0 and timing["compiles"] >= 3
    assert 0 < timing["pretrain_steps_s"] <= timing["pretrain_s"] and timing["eval_metrics_s"] > 0
    assert [a["attempt"] for a in result["attempts"]] == [1] and not result["attempts"][0]["resumed"]
    assert {k: result["attempts"][0][k] for k in result["timing"]} == result["timing"]
    assert result["throughput"]["pretrain_tokens_per_s"] > 0 and result["throughput"]["mfu"] is None
    assert result["throughput"]["finetune_real_tokens_per_s"] > 0  # fine-tuning's, packed by default
    assert 0 < result["throughput"]["finetune_packing_ratio"] <= 1
    assert result["model"]["name"] == "tiny" and result["model"]["num_params"] > 10_000
    assert {"t5explore", "jax", "jaxlib", "flax", "optax", "numpy", "python", "cpu", "jax_backend"} <= set(
        result["versions"]
    )
    assert result["versions"]["jax"] and result["versions"]["numpy"]
    assert result["devices"]["platform"] == "cpu" and result["devices"]["count"] >= 1
    # the task registry's labels travel with the result, so the report needs no data/ import
    assert result["registry"]["tasks"] == {"stdlib_module": {"label": "stdlib", "benchmarks": []}}
    assert result["registry"]["benchmarks"] == {}
    assert result["registry"]["metrics"]["invalid_predictions"] == {
        "label": "invalid",
        "axis": "invalid predictions",
        "better": "lower",
    }
    assert RunResult.from_json(result).to_json() == result  # the file is exactly the typed record


@pytest.mark.slow  # shares run_dir: a whole tiny run (~24 s) that the first of them pays for
def test_run_directory_files(run_dir):
    out, _, _ = run_dir
    config = (out / "config.gin").read_text()
    assert "Pretrain.steps = 6" in config and "T5Config.d_model = 64" in config and "Finetune.tasks" in config
    assert sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit()) == [3, 6]
    assert list(out.glob("events.out.tfevents.*"))
    preds = (out / "predictions" / "stdlib_module.jsonl").read_text().splitlines()
    assert len(preds) == 16 and {"inputs", "target", "prediction"} <= set(json.loads(preds[0]))


@pytest.mark.slow  # shares run_dir: a whole tiny run (~24 s) that the first of them pays for
def test_rerun_resumes_and_never_duplicates_metrics(run_dir):
    out, first, again = run_dir
    rows = read_metrics(out / "metrics.jsonl")
    keys = collections.Counter((r["phase"], r["step"]) for r in rows)
    assert max(keys.values()) == 1
    assert {k for k in keys if k[0] == "pretrain"} == {("pretrain", s) for s in (2, 4, 6)}
    evals = {k for k in keys if k[0] == "finetune_eval/stdlib_module"}
    assert evals == {("finetune_eval/stdlib_module", s) for s in (2, 4)}
    assert again["pretrain"] == first["pretrain"]  # nothing retrained: the numbers come from metrics.jsonl
    assert again["throughput"]["pretrain_tokens_per_s"] is None
    # nor fine-tuned: the scores come from the finished task's checkpoint, the bootstrap from its predictions
    assert again["downstream"] == first["downstream"] and again["bootstrap"] == first["bootstrap"]
    assert sorted(p.name for p in (out / "checkpoints" / "finetune" / "stdlib_module").iterdir()) == ["4"]
    # both attempts' timing is kept: the second trained nothing, so the totals keep the first's training time
    assert [a["attempt"] for a in again["attempts"]] == [1, 2] and again["attempts"][0] == first["attempts"][0]
    for key, total in again["timing"].items():
        assert total == pytest.approx(sum(a[key] for a in again["attempts"]))
    assert again["timing"]["pretrain_s"] == pytest.approx(first["timing"]["pretrain_s"])  # the 2nd's pretrain_s is 0
    assert again["timing"]["finetune_s"] == pytest.approx(first["timing"]["finetune_s"])


def test_cli_train_reports_a_missing_gin_file(tmp_path, capsys):
    from t5explore.cli import main

    assert main(["train", "--gin_file=gin/runs/nope.gin", f"--run_dir={tmp_path}"]) == 2
    assert "gin/runs/nope.gin" in capsys.readouterr().err
    gin.clear_config()


def test_standalone_run_is_named_after_its_directory_and_sweep_metadata_wins(tmp_path):
    run_dir = tmp_path / "my_sweep" / "my_run"
    standalone = run_metadata(run_dir)
    assert standalone == {
        "sweep": "my_sweep",
        "run": "my_run",
        "variant": "my_run",
        "variant_bindings": {},
        "baseline": False,
    }
    types = {f.name: f.metadata["types"] for f in schema_fields()}
    for key in ("sweep", "run", "variant"):  # what the report requires of result.json
        assert isinstance(standalone[key], types[key])
    assert run_metadata(run_dir, METADATA) == METADATA
    assert run_metadata(run_dir, {"variant": "v"})["sweep"] == "my_sweep"
