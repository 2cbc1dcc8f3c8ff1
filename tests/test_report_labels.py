"""Column labels come from result.json's `registry`; version-1 files (no registry) render exactly as the
same results written today, through the report's frozen legacy table; benchmark subsets are labelled."""

from __future__ import annotations

import json
import shutil

import pytest
from test_report_helpers import GLUE_LABEL, SWEEP, known_sweep, make_result, write_run

from t5explore.config import REPO_ROOT
from t5explore.data.tasks import registry_info
from t5explore.report import legacy_labels
from t5explore.report.columns import default_columns
from t5explore.report.results import load_results
from t5explore.report.sweep_tables import markdown_table, write_tables
from t5explore.results_schema import SCHEMA_VERSION

S4 = REPO_ROOT / "experiments" / "regime" / "results" / "s4"  # committed version-1 results


def upgrade(run_dir) -> None:
    """Rewrite a version-1 result.json as this version writes it: the registry's labels added."""
    path = run_dir / "result.json"
    data = json.loads(path.read_text())
    scored = [m for r in data["downstream"].values() for w in ("best", "last") for m in (r[w] or {})]
    data.update(schema=SCHEMA_VERSION, registry=registry_info(data["downstream"], scored).to_json())
    path.write_text(json.dumps(data))


def test_the_legacy_table_says_what_the_registry_says_about_version_1_tasks():
    metrics = list(legacy_labels.METRICS)
    for task, legacy in legacy_labels.TASKS.items():
        now = registry_info([task], metrics)
        assert now.tasks[task] == legacy, task
        assert now.benchmarks == {b: legacy_labels.BENCHMARKS[b] for b in legacy.benchmarks}, task
        assert now.metrics == legacy_labels.METRICS


@pytest.mark.parametrize("which_files", ["known_sweep", "committed_s4"])
def test_an_old_result_renders_the_same_table_as_one_written_today(tmp_path, which_files):
    old = tmp_path / "old"
    if which_files == "known_sweep":
        known_sweep(old)
    else:
        shutil.copytree(S4, old / "s4")
    new = tmp_path / "new"
    shutil.copytree(old, new)
    for result in new.rglob("result.json"):
        upgrade(result.parent)
    assert json.loads(next(new.rglob("result.json")).read_text())["registry"]  # really upgraded
    tables = {}
    for name in ("old", "new"):
        out = tmp_path / f"{name}_tables"
        write_tables(tmp_path / name, out, formats=["md", "csv"], per_task=True)
        tables[name] = {p.name: p.read_text().replace(str(tmp_path / name), "DIR") for p in sorted(out.iterdir())}
        tables[name]["printed"] = markdown_table(tmp_path / name)
    assert tables["old"] == tables["new"] and len(tables["old"]) >= 5


def test_the_committed_s4_table_is_unchanged():
    """`t5explore table experiments/regime/results/s4` as it rendered before result.json carried labels (its
    labels and numbers; bold has meant "not resolved below the best row" since issue 19, and this sweep has no ★
    to resolve anything against, so nothing is bold)."""
    table = markdown_table(S4)
    assert "| Variant | n | stdlib acc | Pre-train loss | Held-out loss | Tokens | Wall time |" in table
    assert "| pre_s0_n400 | 1 | 48.26 [45.09, 51.33] | 3.179 | 3.211 | 1.64M | 2.4 min |" in table
    assert "| none_s0_n200 | 1 | 31.60 [28.83, 34.46] | – | – | 0 | 4.8 min |" in table


def test_benchmark_averages_over_fewer_tasks_than_the_paper_say_so(tmp_path):
    res = make_result(SWEEP, "a", "A", 0, glue=70.0)
    for task in ("glue_mrpc", "glue_stsb", "glue_qnli", "glue_rte"):
        res["downstream"][task] = {
            "best": {"accuracy": 1.0},
            "last": {"accuracy": 1.0},
            "best_step": 1,
            "primary_metric": "accuracy",
        }
    res["downstream"]["superglue_boolq"] = dict(res["downstream"]["glue_rte"])
    res["benchmarks"]["best"]["superglue_average"] = 1.0
    write_run(tmp_path / SWEEP, res)
    cols = {c.paper: c for c in default_columns(load_results(tmp_path).runs) if c.paper}
    assert cols["GLUE"].label == "GLUE (6/9 tasks)" and cols["SGLUE"].label == "SGLUE (BoolQ)"
    assert cols["GLUE"].note == (
        "GLUE (6/9 tasks) = the mean of CoLA, SST-2, MRPC, STS-B, QNLI, RTE; the paper's "
        "GLUE averages 9 tasks (CoLA, SST-2, MRPC, STS-B, QQP, MNLI-m, MNLI-mm, QNLI, RTE), "
        "so the two are not the same score."
    )
    assert GLUE_LABEL == "GLUE (2/9 tasks)"  # the helpers' two-task fixture, used across the report tests


def test_a_label_written_in_result_json_wins_over_the_legacy_table(tmp_path):
    res = make_result(SWEEP, "a", "A", 0, stdlib=40.0)
    res.update(
        schema=SCHEMA_VERSION,
        registry={
            "tasks": {"stdlib_module": {"label": "Std-lib module", "benchmarks": []}},
            "metrics": {"accuracy": {"label": "accuracy", "axis": "accuracy (%)", "better": "higher"}},
        },
    )
    write_run(tmp_path / SWEEP, res)
    labels = [c.label for c in default_columns(load_results(tmp_path).runs) if c.kind == "score"]
    assert labels == ["Std-lib module accuracy"]
