"""Each benchmark loader on the real files in ../shared/data: counts, label mapping, exact T5 text; and a task
that keeps its own files (its registry entry's data_dir, no TFDS name) outside that tree."""

from __future__ import annotations

import collections
import json

import pytest

from t5explore.data.tasks import TASK_NAMES, TaskDataError, get_task
from t5explore.data.tasks.benchmarks import GlueSource, squad_source
from t5explore.data.tasks.registry import TaskSpec, register_task, task_spec, unregister_task

GLUE_TSV = {  # task -> (folder, has header, label column, {file label: label word})
    "glue_cola": ("CoLA", False, 1, {"0": "unacceptable", "1": "acceptable"}),
    "glue_sst2": ("SST-2", True, 1, {"0": "negative", "1": "positive"}),
    "glue_mrpc": ("MRPC", True, 0, {"0": "not_equivalent", "1": "equivalent"}),
    "glue_qnli": ("QNLI", True, 3, {"entailment": "entailment", "not_entailment": "not_entailment"}),
    "glue_rte": ("RTE", True, 3, {"entailment": "entailment", "not_entailment": "not_entailment"}),
}


def shared_layout_tasks() -> list[str]:
    """The registered tasks that read ../shared/data's GLUE / SuperGLUE / SQuAD layout: a task with its own
    data_dir, or another source (generation, the built-in task, a user's), reads elsewhere."""
    return [
        name
        for name in TASK_NAMES
        if task_spec(name).data_dir is None
        and (isinstance(task_spec(name).source, GlueSource) or task_spec(name).source is squad_source)
    ]


def _label_counts(path, has_header, column, mapping):
    lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line]
    rows = lines[1:] if has_header else lines
    return collections.Counter(mapping[r.split("\t")[column]] for r in rows)


@pytest.mark.parametrize("task_name", sorted(GLUE_TSV))
@pytest.mark.parametrize("split, filename", [("train", "train.tsv"), ("validation", "dev.tsv")])
def test_glue_classification_counts_and_labels(shared_data, task_name, split, filename):
    folder, has_header, column, mapping = GLUE_TSV[task_name]
    task = get_task(task_name)
    examples = task.examples(split, data_dir=shared_data)
    expected = _label_counts(shared_data / "glue" / folder / filename, has_header, column, mapping)
    assert collections.Counter(e.targets for e in examples) == expected
    assert set(expected) == set(task.label_words) and set(task.benchmarks) == {"glue_average"}
    assert all(e.inputs.startswith(task_name.split("_")[1] + " ") for e in examples)


def test_known_rows_are_formatted_exactly_as_t5(shared_data):
    def first(name, split="validation", i=0):
        e = get_task(name).examples(split, data_dir=shared_data)[i]
        return e.inputs, e.targets

    assert first("glue_cola", "train") == ("cola sentence: John took Bill to be a fool.", "acceptable")
    assert first("glue_sst2") == ("sst2 sentence: one long string of cliches .", "negative")
    assert first("glue_mrpc") == (
        "mrpc sentence1: He said the foodservice pie business doesn 't fit the company 's long-term growth "
        'strategy . sentence2: " The foodservice pie business does not fit our long-term growth strategy .',
        "equivalent",
    )
    assert first("glue_qnli") == (
        "qnli question: What came into force after the new constitution was herald? sentence: As of that day, "
        "the new constitution heralding the Second Republic came into force.",
        "entailment",
    )
    assert first("glue_rte")[0].startswith("rte sentence1: Dana Reeve, the widow of the actor")
    assert first("glue_rte")[0].endswith(" sentence2: Christopher Reeve had an accident.")
    assert first("glue_stsb") == (
        "stsb sentence1: A man with a hard hat is dancing. sentence2: A man wearing a hard hat is dancing.",
        "5.0",
    )
    # dev.tsv line 52 has score 0.500: x5 = 2.5 rounds half to even (TF's tf.round) -> 0.4, not 0.6.
    assert first("glue_stsb", i=50) == (
        "stsb sentence1: Two little girls are talking on the phone. sentence2: A little girl is walking down "
        "the street.",
        "0.4",
    )
    inputs, target = first("superglue_boolq")
    assert inputs.startswith("boolq passage: Rita Bennett -- In the fourth season opener, Rita and Dexter")
    assert inputs.endswith(" question: did rita die in season 4 of dexter") and target in ("True", "False")
    assert first("squad_v1") == (
        "question: Along with pop , soul , rhythm and blues , quiet storm , and rock , what musical style "
        "influenced adult contemporary ? context: " + first("squad_v1")[0].split(" context: ")[1],
        "easy listening",
    )
    assert first("squad_v1")[0].split(" context: ")[1].startswith("Adult contemporary music ( AC ) is a style")


def test_stsb_counts_and_float_labels(shared_data):
    task = get_task("glue_stsb")
    assert task.label_words is None
    for split, filename in (("train", "train.tsv"), ("validation", "dev.tsv")):
        rows = [r.split("\t") for r in (shared_data / "glue/STS-B" / filename).read_text().split("\n")[1:] if r]
        examples = task.examples(split, data_dir=shared_data)
        assert [e.meta["label"] for e in examples] == [float(r[9]) for r in rows]
        for e in examples:
            assert abs(float(e.targets) - e.meta["label"]) <= 0.1 + 1e-6 and round(float(e.targets) * 5, 6) % 1 == 0


def test_boolq_counts_and_labels(shared_data):
    task = get_task("superglue_boolq")
    for split, filename in (("train", "train.jsonl"), ("validation", "val.jsonl")):
        rows = [json.loads(line) for line in (shared_data / "superglue/BoolQ" / filename).open()]
        examples = task.examples(split, data_dir=shared_data)
        assert [e.targets for e in examples] == [str(r["label"]) for r in rows]
        assert [e.meta["idx"] for e in examples] == [r["idx"] for r in rows]
    assert task.benchmarks == {"superglue_average": ("accuracy",)} and task.label == "BoolQ"


def test_squad_counts_and_gold_answers(shared_data):
    task = get_task("squad_v1")
    for split, filename in (("train", "train.json"), ("validation", "dev.json")):
        data = json.loads((shared_data / "squad/v1.1" / filename).read_text())["data"]
        qas = [qa for article in data for p in article["paragraphs"] for qa in p["qas"]]
        examples = task.examples(split, data_dir=shared_data)
        assert [e.meta["id"] for e in examples] == [qa["id"] for qa in qas]
        assert [len(e.meta["answers"]) for e in examples] == [len(qa["answers"]) for qa in qas]
    by_id = {e.meta["id"]: e for e in examples}
    assert by_id["56e6d8036fe0821900b8ebcd"].targets == "D . H . T . "  # T5 pads punctuation in answers too
    assert task.label_words is None and task.primary_metric == "exact_match"


def test_scoring_gold_targets_is_perfect_and_wrong_labels_are_not(shared_data):
    assert len(shared_layout_tasks()) == 8  # 6 GLUE, BoolQ, SQuAD
    for name in shared_layout_tasks():
        task = get_task(name)
        val = task.examples("validation", data_dir=shared_data)[:200]
        targets, metas = [e.targets for e in val], [e.meta for e in val]
        scores = task.score(targets, targets, metas)
        assert scores[task.primary_metric] > 97.0, (name, scores)  # STS-B: rounding to 0.2 costs a little
        assert scores.get("invalid_predictions", 0.0) == 0.0
        assert set(task.metric_names) <= set(scores)
        bad = task.score(targets, ["zzz"] * len(val), metas)
        assert bad[task.primary_metric] <= 0.0 + 1e-9, (name, bad)


def test_unknown_task_and_split_are_clear_errors(shared_data):
    with pytest.raises(ValueError, match="unknown downstream task 'glue_mnli'.*glue_cola"):
        get_task("glue_mnli")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        get_task("glue_rte").examples("test", data_dir=shared_data)
    with pytest.raises(FileNotFoundError, match="RTE/train.tsv"):
        get_task("glue_rte").examples("train", data_dir=shared_data / "nowhere")


LOCAL_TSV = GlueSource(
    "polarity",
    None,  # no TFDS dataset: local files only
    "",  # the task's data_dir holds train.tsv and dev.tsv itself
    ("sentence",),
    ("negative", "positive"),
    columns={"sentence": 0, "label": 1},
    tsv_header=False,
    tsv_width=2,
)


@pytest.fixture()
def local_task(tmp_path):
    """A user's local TSV task, its files outside ../shared/data, registered for one test."""
    (tmp_path / "train.tsv").write_text("good film\t1\nbad plot\t0\nfine cast\t1\n", encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("dull\t0\n", encoding="utf-8")
    register_task(TaskSpec("tmp_polarity", "Polarity", LOCAL_TSV, ("accuracy",), data_dir=str(tmp_path)))
    try:
        yield get_task("tmp_polarity")
    finally:
        unregister_task("tmp_polarity")


def test_a_local_task_reads_its_own_data_dir_without_tfds(local_task, shared_data):
    for run_data_dir in (None, shared_data):  # the run's Finetune.data_dir does not move the task's files
        train = local_task.examples("train", data_dir=run_data_dir)
        assert [(e.inputs, e.targets) for e in train] == [
            ("polarity sentence: good film", "positive"),
            ("polarity sentence: bad plot", "negative"),
            ("polarity sentence: fine cast", "positive"),
        ]
    assert [e.targets for e in local_task.examples("validation")] == ["negative"]
    assert "tmp_polarity" in TASK_NAMES and "tmp_polarity" not in shared_layout_tasks()


def test_a_local_files_source_without_a_data_dir_says_what_to_bind():
    register_task(TaskSpec("tmp_polarity_nodir", "Polarity", LOCAL_TSV, ("accuracy",)))
    try:
        with pytest.raises(TaskDataError, match=r"'polarity' reads local files only .*bind Finetune\.data_dir"):
            get_task("tmp_polarity_nodir").examples("train", data_dir=None)
    finally:
        unregister_task("tmp_polarity_nodir")
