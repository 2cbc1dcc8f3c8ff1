"""What `train` prints (issue 22): no empty benchmark sections, and token accuracy in percent on every console
line, while result.json and metrics.jsonl keep their fractions."""

from __future__ import annotations

import io

from t5explore.train.commands import summary
from t5explore.train.writers import Progress


def result(benchmarks: dict, downstream: dict) -> dict:
    pretrain = {"steps": 6, "final_loss": 5.25, "final_accuracy": 0.1234, "eval_loss": 5.5, "eval_accuracy": None}
    return {"pretrain": pretrain, "benchmarks": benchmarks, "downstream": downstream, "timing": {"total_s": 12.345}}


def test_a_run_without_tasks_prints_no_benchmark_or_downstream_section():
    printed = summary("runs/a", result({"best": {}, "last": {}}, {}))
    assert printed == {
        "run_dir": "runs/a",
        "pretrain": {
            "steps": 6,
            "final_loss": 5.25,
            "final_accuracy_pct": 12.34,
            "eval_loss": 5.5,
            "eval_accuracy": None,
        },
        "total_s": 12.3,
    }


def test_a_run_with_tasks_prints_only_the_benchmark_sections_that_hold_scores():
    scores = {"stdlib_module": {"best": {"accuracy": 50.0}, "last": {"accuracy": 40.0}}}
    printed = summary("runs/b", result({"best": {"glue_average": 70.0}, "last": {}}, scores))
    assert printed["benchmarks"] == {"best": {"glue_average": 70.0}}
    assert printed["downstream"] == {"stdlib_module": {"accuracy": 50.0}}


def test_training_lines_print_token_accuracy_in_percent():
    out = io.StringIO()
    line = Progress("pretrain", 10, stream=out).report(2, loss=3.5, acc=0.4321, lr=0.01)
    assert "acc 43.21%" in line and "loss 3.5" in line and "lr 0.01" in line
    assert out.getvalue().strip() == line
