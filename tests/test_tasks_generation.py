"""CNN/DM and WMT tasks: T5's text formats, the TFDS path (mock data), local JSONL files and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import gin
import pytest
import tensorflow_datasets as tfds

from t5explore.data.tasks import TASK_NAMES, TaskDataError, benchmark_scores, get_task
from t5explore.data.tasks.generation import summarize_inputs, translate_inputs
from t5explore.data.tasks.registry import task_spec

REPO_ROOT = Path(__file__).resolve().parent.parent
WMT_TASKS = {"wmt_en_de": ("de", "German"), "wmt_en_fr": ("fr", "French"), "wmt_en_ro": ("ro", "Romanian")}


def _write_jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


def test_text_formats_match_t5_preprocessors():
    assert summarize_inputs("Storm hits coast .") == "summarize: Storm hits coast ."
    assert translate_inputs("Hello world", "en", "de") == "translate English to German: Hello world"
    assert translate_inputs("Hi", "en", "ro") == "translate English to Romanian: Hi"


def test_tasks_are_registered_with_their_primary_metrics():
    assert {"cnn_dailymail", *WMT_TASKS} <= set(TASK_NAMES)
    cnndm = get_task("cnn_dailymail")
    assert (cnndm.benchmarks, cnndm.primary_metric, cnndm.metric_names, cnndm.label) == (
        {"cnndm": ("rouge2",)},
        "rouge2",
        ("rouge1", "rouge2", "rougeLsum"),
        "CNNDM",
    )
    for name in WMT_TASKS:
        task = get_task(name)
        assert (task.benchmarks, task.primary_metric, task.metric_names, task.label_words) == (
            {"en_" + name[-2:]: ("bleu",)},
            "bleu",
            ("bleu",),
            None,
        )


def test_generation_tasks_from_tfds_mock_data():
    with tfds.testing.mock_data(num_examples=4):
        cnndm = get_task("cnn_dailymail").examples("validation")
        wmt = {name: get_task(name).examples("train") for name in WMT_TASKS}
    assert len(cnndm) == 4 and all(e.inputs.startswith("summarize: ") and e.targets for e in cnndm)
    for name, (_, language) in WMT_TASKS.items():
        assert len(wmt[name]) == 4
        assert all(e.inputs.startswith(f"translate English to {language}: ") for e in wmt[name])
    # Random mock strings still flow through the metrics with the right keys.
    scores = get_task("cnn_dailymail").score(
        [e.targets for e in cnndm], [e.targets for e in cnndm], [e.meta for e in cnndm]
    )
    assert scores == pytest.approx({"rouge1": 100.0, "rouge2": 100.0, "rougeLsum": 100.0})
    de = wmt["wmt_en_de"]
    assert get_task("wmt_en_de").score([e.targets for e in de], [""] * 4, [e.meta for e in de]) == {"bleu": 0.0}


def test_cnndm_local_jsonl(tmp_path):
    rows = [
        {"article": "A storm hit the coast on Monday .", "highlights": "Storm hits coast .\nNo one hurt ."},
        {"article": "Prices rose .", "highlights": "Prices up .", "id": "abc"},
    ]
    _write_jsonl(tmp_path / "cnn_dailymail" / "validation.jsonl", rows)
    examples = get_task("cnn_dailymail").examples("validation", data_dir=tmp_path)
    assert [e.inputs for e in examples] == ["summarize: A storm hit the coast on Monday .", "summarize: Prices rose ."]
    assert [e.targets for e in examples] == ["Storm hits coast .\nNo one hurt .", "Prices up ."]
    assert [e.meta["id"] for e in examples] == ["1", "abc"]


@pytest.mark.parametrize("name", sorted(WMT_TASKS))
def test_wmt_local_jsonl(tmp_path, name):
    code, language = WMT_TASKS[name]
    _write_jsonl(
        tmp_path / "wmt" / f"en-{code}" / "train.jsonl",
        [{"en": "Good morning .", code: "target one"}, {"en": "Thanks", code: "target two"}],
    )
    examples = get_task(name).examples("train", data_dir=str(tmp_path))
    assert [(e.inputs, e.targets) for e in examples] == [
        (f"translate English to {language}: Good morning .", "target one"),
        (f"translate English to {language}: Thanks", "target two"),
    ]


def test_malformed_local_lines_name_file_and_line(tmp_path):
    path = tmp_path / "wmt" / "en-de" / "validation.jsonl"
    _write_jsonl(path, [{"en": "a", "de": "b"}, '{"en": "a", "de": ', {"en": "c", "de": "d"}])
    with pytest.raises(TaskDataError, match=rf"{path}:2: invalid JSON"):
        get_task("wmt_en_de").examples("validation", data_dir=tmp_path)
    _write_jsonl(path, [{"en": "a", "de": "b"}, {"en": "a", "fr": "b"}])  # wrong language for this pair
    with pytest.raises(TaskDataError, match=rf"{path}:2: field 'de' must be str"):
        get_task("wmt_en_de").examples("validation", data_dir=tmp_path)
    cnn = tmp_path / "cnn_dailymail" / "train.jsonl"
    _write_jsonl(cnn, [{"article": "x", "highlights": 3}])
    with pytest.raises(TaskDataError, match=rf"{cnn}:1: field 'highlights' must be str"):
        get_task("cnn_dailymail").examples("train", data_dir=tmp_path)


def test_missing_local_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"wmt/en-fr/validation\.jsonl: no such file"):
        get_task("wmt_en_fr").examples("validation", data_dir=tmp_path)


def test_benchmark_scores_report_generation_columns_as_the_paper():
    per_task = {
        "glue_rte": {"accuracy": 60.0},
        "squad_v1": {"exact_match": 40.0, "f1": 50.0},
        "cnn_dailymail": {"rouge1": 38.0, "rouge2": 19.2, "rougeLsum": 35.0},
        "wmt_en_de": {"bleu": 27.0},
        "wmt_en_fr": {"bleu": 39.8},
        "wmt_en_ro": {"bleu": 27.6},
    }
    assert benchmark_scores(per_task) == pytest.approx(
        {
            "glue_average": 60.0,
            "squad_em": 40.0,
            "squad_f1": 50.0,
            "cnndm": 19.2,
            "en_de": 27.0,
            "en_fr": 39.8,
            "en_ro": 27.6,
        }
    )
    assert "cnndm" not in benchmark_scores({"glue_rte": {"accuracy": 60.0}})
    with pytest.raises(KeyError, match="wmt_en_ro has no metric 'bleu'"):
        benchmark_scores({"wmt_en_ro": {"rouge2": 1.0}})


def test_paper_tfds_gin_lists_every_paper_task():
    from t5explore.run_config import Finetune

    try:
        gin.parse_config_file(str(REPO_ROOT / "gin" / "data" / "tasks_paper_tfds.gin"))
        finetune = Finetune()
    finally:
        gin.clear_config()
    assert finetune.data_dir is None
    # Every registered task but the built-in one and those that keep their own files (a user's local task).
    paper = {n for n in TASK_NAMES if n != "stdlib_module" and task_spec(n).data_dir is None}
    assert sorted(finetune.tasks) == sorted(paper)
