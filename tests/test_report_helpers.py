"""Hand-made, schema-1-correct results directories for the report tests (no tests here).

`known_sweep(root)` builds a Table-7-like sweep whose aggregates, bold cells and Kendall τ are worked out
by hand in the tests that use it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from t5explore.io_utils import atomic_write_json, atomic_write_text

SWEEP = "t5_table7_span_length"
# make_result's GLUE average covers CoLA and SST-2 of the paper's 9 GLUE tasks, and tables say so.
GLUE_LABEL = "GLUE (2/9 tasks)"


def make_result(
    sweep: str,
    run: str,
    variant: str,
    seed: int,
    *,
    baseline: bool = False,
    glue: float | None = None,
    squad_em: float | None = None,
    stdlib: float | None = None,
    loss: float = 3.0,
    tokens: int = 1_638_400,
    total_s: float = 120.0,
) -> dict:
    """A schema-1 result.json; scores that are None are left out, as a run without that task would."""
    downstream, best, last = {}, {}, {}
    if glue is not None:
        downstream["glue_cola"] = _task({"matthews_corr": glue - 40}, "matthews_corr")
        downstream["glue_sst2"] = _task({"accuracy": glue + 5}, "accuracy")
        best["glue_average"], last["glue_average"] = glue, glue - 1
    if squad_em is not None:
        downstream["squad_v1"] = _task({"exact_match": squad_em, "f1": squad_em + 8}, "exact_match")
        best["squad_em"], best["squad_f1"] = squad_em, squad_em + 8
        last["squad_em"], last["squad_f1"] = squad_em - 1, squad_em + 7
    if stdlib is not None:
        downstream["stdlib_module"] = _task({"accuracy": stdlib, "invalid_predictions": 1.0}, "accuracy")
    return {
        "schema": 1,
        "sweep": sweep,
        "run": run,
        "variant": variant,
        "variant_bindings": {"span_corruption.mean_noise_span_length": variant},
        "seed": seed,
        "baseline": baseline,
        "objective": "span_corruption",
        "pretrain": {
            "steps": 200,
            "tokens_seen": tokens,
            "final_loss": loss,
            "final_accuracy": 0.41,
            "eval_loss": loss + 0.1,
            "eval_accuracy": 0.40,
        },
        "downstream": downstream,
        "benchmarks": {"best": best, "last": last},
        "timing": {"compile_s": 12.0, "pretrain_s": 60.0, "finetune_s": 40.0, "eval_s": 5.0, "total_s": total_s},
        "throughput": {"pretrain_tokens_per_s": 12000.0, "mfu": None},
        "model": {"name": "tiny", "num_params": 1234567},
        "versions": {"t5explore": "0.1.0", "jax": "0.10.2", "flax": "0.12.8"},
        "git_commit": "abc123",
        "devices": {"platform": "cpu", "count": 1, "kind": "cpu"},
        "host": "testhost",
    }


def add_bootstrap(result: dict, samples: dict[str, list[float]], examples: dict | None = None) -> dict:
    """Give a result.json a `bootstrap` field (as data/bootstrap.py writes it) whose replicate values are
    `samples`: name -> values, a name being a benchmark (`glue_average`) or `task.metric`. Intervals are the
    2.5th/97.5th percentiles of the values."""
    best = {
        "tasks": {},
        "benchmarks": {},
        "replicates": {},
        "examples": examples if examples is not None else {"stdlib_module": {"n": 100, "hash": "abc"}},
        "samples": {"tasks": {}, "benchmarks": {}},
    }
    for name, values in samples.items():
        ci = [float(v) for v in np.percentile(values, [2.5, 97.5])]
        text = " ".join(repr(float(v)) for v in values)
        if "." in name:
            task, metric = name.split(".")
            best["tasks"].setdefault(task, {})[metric] = ci
            best["samples"]["tasks"].setdefault(task, {})[metric] = text
            best["replicates"][task] = len(values)
        else:
            best["benchmarks"][name] = ci
            best["samples"]["benchmarks"][name] = text
    result["bootstrap"] = {"replicates": 1000, "confidence": 0.95, "method": "percentile", "best": best}
    return result


def _task(scores: dict, primary: str) -> dict:
    return {
        "best": dict(scores),
        "last": {k: v - 1 for k, v in scores.items()},
        "best_step": 300,
        "primary_metric": primary,
    }


def loss_metrics(final_loss: float, points: int = 6, tokens_per_point: int = 1000) -> list[dict]:
    """Pretrain rows whose loss falls linearly to final_loss, plus one fine-tune row to be ignored."""
    rows = [
        {
            "phase": "pretrain",
            "step": 10 * i,
            "tokens_seen": tokens_per_point * i,
            "loss": final_loss + (points - i) * 0.5,
            "accuracy": 0.1 * i,
            "learning_rate": 0.01,
            "tokens_per_s": 1000.0,
        }
        for i in range(1, points + 1)
    ]
    rows.append({"phase": "finetune/glue_cola", "step": 5, "tokens_seen": 0, "loss": 9.0})
    return rows


def write_run(sweep_dir: Path, result: dict, metrics: list[dict] | None = None) -> Path:
    run_dir = Path(sweep_dir) / result["run"]
    atomic_write_text(run_dir / "config.gin", "# test\n")
    if metrics is not None:
        atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in metrics))
    atomic_write_json(run_dir / "result.json", result)
    return run_dir


def write_failed(sweep_dir: Path, run: str, message: str = "FloatingPointError: loss is nan") -> Path:
    run_dir = Path(sweep_dir) / run
    atomic_write_text(run_dir / "config.gin", "# test\n")
    atomic_write_text(run_dir / "FAILED", f"Traceback (most recent call last):\n  ...\n{message}\n")
    return run_dir


def write_incomplete(sweep_dir: Path, run: str) -> Path:
    run_dir = Path(sweep_dir) / run
    atomic_write_text(run_dir / "config.gin", "# test\n")
    atomic_write_text(run_dir / "metrics.jsonl", json.dumps(loss_metrics(4.0)[0]) + "\n")
    return run_dir


def write_sweep_json(sweep_dir: Path, name: str, runs: list[tuple[str, str]], baseline: str | None, **extra) -> None:
    """sweep.json as t5explore/sweep/runner.py writes it (only name, runs[].run/variant, baseline are read)."""
    atomic_write_json(
        Path(sweep_dir) / "sweep.json",
        {
            "schema": 1,
            "name": name,
            "sweep_file": "experiments/x.gin",
            "baseline": baseline,
            "baseline_name": baseline,
            "display_names": {},
            "runs": [
                {
                    "sweep": name,
                    "run": r,
                    "point": r.split("__seed_")[0],
                    "variant": v,
                    "variant_bindings": {},
                    "seed": None,
                    "baseline": v == baseline,
                    "index": i,
                    "gin_files": [],
                    "bindings": [],
                }
                for i, (r, v) in enumerate(runs)
            ],
            **extra,
        },
    )


# Known answers (see the tests):
#   i.i.d. ★  seeds 0,1,2: GLUE 80/82/84 (82 ± 2), SQuAD 50/52/54 (52 ± 2), stdlib 30/32/34, loss 3.0/3.2/3.4
#   μ = 2     seeds 0,1:   GLUE 85/87 (86 ± √2),  SQuAD 40/42 (41),          stdlib 40/40,    loss 2.9/3.1
#   μ = 3     seed 0:      GLUE 79,               SQuAD 60,                  stdlib 36,       loss 3.5
#   μ = 10    seed 0 FAILED, seed 1 incomplete (never wrote result.json)
KNOWN = {
    "i.i.d.": [(80, 50, 30, 3.0), (82, 52, 32, 3.2), (84, 54, 34, 3.4)],
    "μ = 2": [(85, 40, 40, 2.9), (87, 42, 40, 3.1)],
    "μ = 3": [(79, 60, 36, 3.5)],
}
RUN_NAMES = {"i.i.d.": "iid", "μ = 2": "span_2", "μ = 3": "span_3", "μ = 10": "span_10"}


def known_sweep(root: Path, name: str = SWEEP, with_sweep_json: bool = True) -> Path:
    sweep_dir = Path(root) / name
    planned = []
    for variant, seeds in KNOWN.items():
        for seed, (glue, squad, stdlib, loss) in enumerate(seeds):
            run = f"{RUN_NAMES[variant]}__seed_{seed}"
            planned.append((run, variant))
            res = make_result(
                name,
                run,
                variant,
                seed,
                baseline=variant == "i.i.d.",
                glue=glue,
                squad_em=squad,
                stdlib=stdlib,
                loss=loss,
            )
            write_run(sweep_dir, res, loss_metrics(loss))
    write_failed(sweep_dir, "span_10__seed_0")
    write_incomplete(sweep_dir, "span_10__seed_1")
    planned += [("span_10__seed_0", "μ = 10"), ("span_10__seed_1", "μ = 10")]
    if with_sweep_json:
        write_sweep_json(sweep_dir, name, planned, "i.i.d.")
    return sweep_dir
