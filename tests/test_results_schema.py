"""result.json's typed, versioned schema: the docs are generated from it, old files load as version 1, a
newer version is one clear error, fields are checked by name, and unknown fields survive a round trip."""

from __future__ import annotations

import json
import re

import pytest

from t5explore.config import REPO_ROOT
from t5explore.report.results import ReportError, load_results, read_result
from t5explore.results_schema import (
    SCHEMA_VERSION,
    ResultSchemaError,
    RunResult,
    documented_block,
    json_key,
    schema_fields,
    schema_markdown,
)

ARCHITECTURE = REPO_ROOT / "docs" / "ARCHITECTURE.md"
COMMITTED = sorted((REPO_ROOT / "experiments").rglob("result.json"))
MINIMAL = {"sweep": "s", "run": "r", "variant": "v", "seed": 0, "pretrain": {"steps": 0}}


def test_the_architecture_doc_holds_the_generated_field_table():
    block = documented_block(ARCHITECTURE.read_text(encoding="utf-8"))
    assert block is not None, "docs/ARCHITECTURE.md lost its result-schema markers"
    assert block == schema_markdown(), (
        "docs/ARCHITECTURE.md's result.json table is out of date: run "
        "`python -m t5explore.results_schema --update docs/ARCHITECTURE.md`"
    )
    for f in schema_fields():  # every field, by its JSON key, and nothing else
        assert f"| `{json_key(f)}` |" in block
    assert len(re.findall(r"^\| `", block, flags=re.MULTILINE)) == len(schema_fields())


def test_the_architecture_example_is_a_valid_current_result():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text[text.index("### result.json") :]
    example = json.loads(re.search(r"```json\n(.*?)```", section, flags=re.DOTALL).group(1))
    result = RunResult.from_json(example, "ARCHITECTURE.md")
    assert result.schema_version == SCHEMA_VERSION and result.registry is not None and not result.extra
    optional_absent = {"shared_from"}  # written only by a shared run
    assert set(example) == {json_key(f) for f in schema_fields()} - optional_absent


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_committed_result_loads_through_the_schema(path):
    data = json.loads(path.read_text())
    result = read_result(path)
    assert result.schema_version == data.get("schema", 1)
    if result.schema_version == 1:  # the first reproduction's runs: no registry (the report's legacy labels)
        assert result.registry is None
    else:  # newer runs carry their registry, and nothing they wrote is unknown to the schema
        assert result.registry is not None and not result.extra
    out = result.to_json()
    assert {k: out[k] for k in data} == data  # nothing read is changed


def test_a_file_without_a_version_is_version_1_and_a_newer_one_is_refused(tmp_path):
    assert RunResult.from_json(dict(MINIMAL)).schema_version == 1
    run = tmp_path / "sw" / "r"
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps({**MINIMAL, "schema": SCHEMA_VERSION + 1}))
    with pytest.raises(ReportError) as e:
        load_results(tmp_path)
    assert str(e.value) == (
        f"{run / 'result.json'}: schema version {SCHEMA_VERSION + 1} is newer than this "
        f"t5explore reads (versions 1-{SCHEMA_VERSION}); update t5explore to read it"
    )
    for bad in (0, "2", True, None):
        with pytest.raises(ResultSchemaError, match="is not a positive integer"):
            RunResult.from_json({**MINIMAL, "schema": bad}, "x.json")


def test_registry_is_a_version_2_field_and_is_checked():
    registry = {
        "tasks": {"t": {"label": "T", "benchmarks": ["b"]}},
        "benchmarks": {"b": {"label": "B", "paper_tasks": ["T", "U"]}},
        "metrics": {},
    }
    result = RunResult.from_json({**MINIMAL, "schema": 2, "registry": registry})
    assert result.registry.tasks["t"].benchmarks == ("b",) and result.registry.benchmarks["b"].headline
    assert result.to_json()["registry"]["benchmarks"]["b"]["paper_tasks"] == ["T", "U"]
    with pytest.raises(ResultSchemaError, match=r"x.json: field 'registry.tasks.t'.benchmarks must be a list"):
        RunResult.from_json(
            {**MINIMAL, "schema": 2, "registry": {"tasks": {"t": {"label": "T", "benchmarks": "b"}}}}, "x.json"
        )
    with pytest.raises(ResultSchemaError, match=r"registry.metrics.m' has unknown key\(s\) \['colour'\]"):
        RunResult.from_json(
            {**MINIMAL, "schema": 2, "registry": {"metrics": {"m": {"label": "M", "colour": "red"}}}}, "x.json"
        )


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r.pop("run"), "x.json: missing required field 'run'"),
        (lambda r: r.update(seed=1.5), "x.json: field 'seed' must be int or null, got 1.5"),
        (lambda r: r.update(seed=True), "x.json: field 'seed' must be int or null, got True"),
        (lambda r: r.update(baseline=1), "x.json: field 'baseline' must be true or false, got 1"),
        (lambda r: r.update(attempts={}), "x.json: field 'attempts' must be array, got {}"),
        (lambda r: r.update(downstream=[]), "x.json: field 'downstream' must be object or null, got []"),
    ],
)
def test_fields_are_checked_by_name(edit, message):
    data = dict(MINIMAL)
    edit(data)
    with pytest.raises(ResultSchemaError) as e:
        RunResult.from_json(data, "x.json")
    assert str(e.value) == message


def test_fields_this_version_does_not_define_are_kept():
    data = {**MINIMAL, "schema": SCHEMA_VERSION, "fingerprint": "abc", "shared_from": "s/r0"}
    result = RunResult.from_json(data)
    assert result.extra == {"fingerprint": "abc"} and result.shared_from == "s/r0"
    out = result.to_json()
    assert out["fingerprint"] == "abc" and out["shared_from"] == "s/r0" and "registry" not in out
