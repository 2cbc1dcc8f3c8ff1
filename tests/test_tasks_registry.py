"""The task registry: a new task is one entry, and it reaches fine-tuning, the metrics, result.json and the
report's labels without an edit anywhere else; bad entries are refused with a clear error."""

from __future__ import annotations

import gin
import pytest

from t5explore.data import metrics
from t5explore.data.tasks import (
    TASK_NAMES,
    TaskData,
    TaskSpec,
    TextExample,
    benchmark_scores,
    get_task,
    register_task,
    registry_info,
    task_spec,
    unregister_task,
)
from t5explore.report.columns import default_columns, per_task_columns
from t5explore.report.results import load_results
from t5explore.report.sweep_tables import markdown_table

TOY = "toy_cb"
WORDS = ("even", "odd")


def toy_source(metric_names: tuple[str, ...]) -> TaskData:
    """A real (tiny) task: is the number of 'b's in a short string even or odd?"""

    def example(i: int) -> TextExample:
        text = " ".join("ab"[(i >> k) & 1] for k in range(5))
        return TextExample(f"toy parity: {text}", WORDS[text.count("b") % 2], {"idx": i})

    splits = {"train": [example(i) for i in range(24)], "validation": [example(i) for i in range(24, 32)]}

    def load(split, data_dir):
        return list(splits[split])

    def score(targets, predictions, metas):
        return metrics.classification_scores(targets, predictions, WORDS, metric_names)

    return TaskData(load, score, WORDS)


@pytest.fixture
def toy_task():
    # The one entry: label, source, metrics, and membership of an existing benchmark (as a SuperGLUE task).
    register_task(TaskSpec(TOY, "CB", toy_source, ("accuracy",), benchmarks={"superglue_average": ("accuracy",)}))
    try:
        yield TOY
    finally:
        unregister_task(TOY)
    assert TOY not in TASK_NAMES


def test_a_registered_task_is_usable_by_name_and_scored_into_its_benchmark(toy_task):
    assert toy_task in TASK_NAMES
    task = get_task(toy_task)
    val = task.examples("validation")
    assert (task.label, task.primary_metric, task.label_words, len(val)) == ("CB", "accuracy", WORDS, 8)
    scores = task.score([e.targets for e in val], ["even"] * 8, [e.meta for e in val])
    expected = 100.0 * sum(e.targets == "even" for e in val) / 8
    assert scores == {"accuracy": expected, "invalid_predictions": 0.0}
    both = benchmark_scores({toy_task: scores, "superglue_boolq": {"accuracy": 60.0}})
    assert both == {"superglue_average": pytest.approx((expected + 60.0) / 2)}
    info = registry_info([toy_task], scores)
    assert info.tasks[toy_task].label == "CB" and info.tasks[toy_task].benchmarks == ("superglue_average",)
    assert list(info.benchmarks) == ["superglue_average"] and info.metrics["accuracy"].label == "acc"


def test_a_new_task_flows_from_one_entry_to_the_table(toy_task, tmp_path, cache_dir):
    """Fine-tuned by name through `execute`, scored, written to result.json with its label, and shown in
    the report under that label: nothing but the registry entry knows about the task."""
    from t5explore.train.run import execute

    run_dir = tmp_path / "toy_sweep" / "r0"
    try:
        result = execute(
            run_dir,
            ["gin/runs/tiny_cpu.gin"],
            [f"Experiment.cache_dir = '{cache_dir}'", "Pretrain.steps = 0", f"Finetune.tasks = ['{TOY}']"],
        )
    finally:
        gin.clear_config()
    assert set(result["downstream"]) == {TOY} and result["downstream"][TOY]["primary_metric"] == "accuracy"
    assert (run_dir / "predictions" / f"{TOY}.jsonl").is_file()  # its validation examples were decoded
    best = result["downstream"][TOY]["best"]
    assert result["benchmarks"]["best"] == {"superglue_average": best["accuracy"]}
    assert result["registry"]["tasks"] == {TOY: {"label": "CB", "benchmarks": ["superglue_average"]}}

    unregister_task(TOY)  # the report must not need the registry: it reads the labels from result.json
    runs = load_results(tmp_path / "toy_sweep").runs
    assert [c.label for c in default_columns(runs) if c.kind == "score"] == ["SGLUE (CB)"]
    assert [c.label for c in per_task_columns(runs)] == ["CB acc", "CB invalid", "SGLUE (CB)"]
    table = markdown_table(tmp_path / "toy_sweep")
    assert "| SGLUE (CB) |" in table and "SGLUE (CB) = the mean of CB; the paper's SGLUE averages 8 tasks" in table


def test_bad_entries_are_refused_with_the_task_named():
    with pytest.raises(ValueError, match="'glue_cola' is already registered"):
        register_task(TaskSpec("glue_cola", "CoLA", toy_source, ("accuracy",)))
    with pytest.raises(ValueError, match="toy_x: primary metric 'f1' is not one of its metrics"):
        register_task(TaskSpec("toy_x", "X", toy_source, ("accuracy",), primary_metric="f1"))
    with pytest.raises(ValueError, match="toy_x: unknown benchmark 'glue'"):
        register_task(TaskSpec("toy_x", "X", toy_source, ("accuracy",), benchmarks={"glue": ("accuracy",)}))
    with pytest.raises(ValueError, match="toy_x: benchmark glue_average averages .*not among its metrics"):
        register_task(TaskSpec("toy_x", "X", toy_source, ("accuracy",), benchmarks={"glue_average": ("f1",)}))
    assert "toy_x" not in TASK_NAMES


def test_a_scorer_that_misses_a_declared_metric_is_an_error():
    spec = TaskSpec("toy_y", "Y", toy_source, ("accuracy", "f1"))  # toy_source is asked for both...
    task = spec.build(toy_source(("accuracy",)))  # ...but this build only computes accuracy
    val = task.examples("validation")
    with pytest.raises(ValueError, match=r"toy_y: its scorer returned .* not the declared \['f1'\]"):
        task.score([e.targets for e in val], [e.targets for e in val], [e.meta for e in val])


def test_each_benchmark_fact_lives_in_the_registry_only():
    """GLUE's metric names are the GLUE entries' (nothing in metrics.py duplicates them), and the averages
    follow the entries: MRPC's F1 and accuracy are averaged first, then the tasks."""
    assert not any(name.endswith("_TASK_METRICS") or name == "GENERATION_BENCHMARKS" for name in vars(metrics))
    glue = {
        name: task_spec(name).benchmarks["glue_average"]
        for name in TASK_NAMES
        if "glue_average" in task_spec(name).benchmarks
    }
    assert glue == {
        "glue_cola": ("matthews_corr",),
        "glue_sst2": ("accuracy",),
        "glue_mrpc": ("f1", "accuracy"),
        "glue_qnli": ("accuracy",),
        "glue_rte": ("accuracy",),
        "glue_stsb": ("pearson", "spearman"),
    }
