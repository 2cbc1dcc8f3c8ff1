"""Malformed local files raise one clear error naming the file and the line (or JSON path)."""

from __future__ import annotations

import json
import shutil

import pytest

from t5explore.data.tasks import TaskDataError, get_task


def _write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_row_with_missing_column_names_file_and_line(tmp_path):
    path = _write(tmp_path, "glue/CoLA/train.tsv", "src\t1\t\tGood sentence.\nsrc\t0\t*\tBad one.\nsrc\t1\tshort\n")
    with pytest.raises(TaskDataError, match=f"{path}:3: expected 4 tab-separated columns, got 3"):
        get_task("glue_cola").examples("train", data_dir=tmp_path)


def test_tsv_bad_label_names_file_and_line(tmp_path):
    header = "index\tsentence1\tsentence2\tlabel\n"
    path = _write(tmp_path, "glue/RTE/dev.tsv", header + "0\ta\tb\tentailment\n1\ta\tb\tcontradiction\n")
    with pytest.raises(TaskDataError, match=f"{path}:3: bad label 'contradiction'"):
        get_task("glue_rte").examples("validation", data_dir=tmp_path)
    path = _write(tmp_path, "glue/SST-2/train.tsv", "sentence\tlabel\ngood\t1\nbad\t2\n")
    with pytest.raises(TaskDataError, match=f"{path}:3: bad label '2'"):
        get_task("glue_sst2").examples("train", data_dir=tmp_path)
    path = _write(tmp_path, "glue/STS-B/train.tsv", "sentence1\tsentence2\tscore\na\tb\tnan\n")
    with pytest.raises(TaskDataError, match=f"{path}:2: bad label 'nan'"):
        get_task("glue_stsb").examples("train", data_dir=tmp_path)


def test_tsv_header_missing_a_column(tmp_path):
    path = _write(tmp_path, "glue/MRPC/train.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\n1\t2\t3\ta\n")
    with pytest.raises(TaskDataError, match=f"{path}:1: header lacks column.*#2 String"):
        get_task("glue_mrpc").examples("train", data_dir=tmp_path)


def test_jsonl_errors_name_file_and_line(tmp_path):
    good = json.dumps({"question": "q?", "passage": "p.", "idx": 0, "label": True})
    path = _write(tmp_path, "superglue/BoolQ/val.jsonl", good + "\n" + good.replace("true", '"yes"') + "\n")
    with pytest.raises(TaskDataError, match=f"{path}:2: field 'label' must be bool"):
        get_task("superglue_boolq").examples("validation", data_dir=tmp_path)
    path = _write(tmp_path, "superglue/BoolQ/val.jsonl", good + "\n" + good + "\n{broken\n")
    with pytest.raises(TaskDataError, match=f"{path}:3: invalid JSON"):
        get_task("superglue_boolq").examples("validation", data_dir=tmp_path)
    path = _write(tmp_path, "superglue/BoolQ/val.jsonl", good.replace('"idx": 0', '"idx": true') + "\n")
    with pytest.raises(TaskDataError, match=f"{path}:1: field 'idx' must be int"):
        get_task("superglue_boolq").examples("validation", data_dir=tmp_path)


def test_squad_structure_errors_name_file_and_json_path(tmp_path, shared_data):
    doc = json.loads((shared_data / "squad/v1.1/dev.json").read_text())
    del doc["data"][1]["paragraphs"][2]["qas"][0]["answers"]
    path = _write(tmp_path, "squad/v1.1/dev.json", json.dumps(doc))
    with pytest.raises(TaskDataError, match=rf"{path}: data\[1\]\.paragraphs\[2\]\.qas\[0\]\.answers must be a list"):
        get_task("squad_v1").examples("validation", data_dir=tmp_path)
    path = _write(tmp_path, "squad/v1.1/dev.json", '{"version": "1.1",\n "data": [}\n')
    with pytest.raises(TaskDataError, match=f"{path}:2: invalid JSON"):
        get_task("squad_v1").examples("validation", data_dir=tmp_path)


def test_a_valid_copy_of_real_data_still_loads(tmp_path, shared_data):
    """The error checks above must not reject the real files' layout (guards against over-strict checks)."""
    shutil.copytree(shared_data / "glue/CoLA", tmp_path / "glue/CoLA")
    assert len(get_task("glue_cola").examples("validation", data_dir=tmp_path)) == 1043


def test_misdeclared_source_fails_naming_the_missing_field(tmp_path):
    """A headerless TSV without a width, or a class label without label words, is a bug in the source's
    declaration: one error naming the GlueSource field, not a misleading 'expected None columns' or a TypeError."""
    from t5explore.data.tasks import local_files

    path = _write(tmp_path, "glue/CoLA/train.tsv", "src\t1\t\tGood sentence.\n")
    with pytest.raises(ValueError, match=r"headerless TSV needs num_columns \(GlueSource.tsv_width\)"):
        local_files.read_glue_tsv(path, {"sentence": 3, "label": 1}, header=False)
    assert local_files.read_glue_tsv(path, {"sentence": 3, "label": 1}, header=False, num_columns=4) == [
        (1, {"sentence": "Good sentence.", "label": "1"})
    ]
    for kind in ("index", "name"):
        with pytest.raises(ValueError, match=rf"label kind '{kind}' needs label_words \(GlueSource.label_words\)"):
            local_files.parse_label(path, 1, "1", kind, None)
    assert local_files.parse_label(path, 1, "2.5", "float", None) == 2.5
