"""Loading results directories: completed / failed / incomplete runs, merging sweeps, clear errors."""

from __future__ import annotations

import json

import pytest
from test_report_helpers import SWEEP, known_sweep, make_result, write_run, write_sweep_json

from t5explore.report.results import ReportError, load_metrics, load_results


def test_one_sweep_dir_flattens_runs_and_separates_failed_and_incomplete(tmp_path):
    sweep_dir = known_sweep(tmp_path)
    res = load_results(sweep_dir)
    assert sorted(res.runs["run"]) == sorted(
        ["iid__seed_0", "iid__seed_1", "iid__seed_2", "span_2__seed_0", "span_2__seed_1", "span_3__seed_0"]
    )
    row = res.runs.set_index("run").loc["span_3__seed_0"]
    assert row["benchmarks.best.glue_average"] == 79
    assert row["downstream.squad_v1.best.exact_match"] == 60
    assert row["pretrain.final_loss"] == 3.5
    assert row["timing.total_s"] == 120.0
    assert json.loads(row["variant_bindings"]) == {"span_corruption.mean_noise_span_length": "μ = 3"}
    assert list(res.failed["run"]) == ["span_10__seed_0"]
    assert "loss is nan" in res.failed["reason"].iloc[0]
    assert list(res.incomplete["run"]) == ["span_10__seed_1"]
    info = res.sweeps[SWEEP]
    assert info.variants == ["i.i.d.", "μ = 2", "μ = 3", "μ = 10"]
    assert info.baseline == "i.i.d."


def test_parent_dir_and_several_dirs_give_the_same_runs(tmp_path):
    known_sweep(tmp_path / "all", "t5_table7_a")
    known_sweep(tmp_path / "all", "t5_table7_b")
    from_parent = load_results(tmp_path / "all")
    from_both = load_results(tmp_path / "all" / "t5_table7_a", tmp_path / "all" / "t5_table7_b")
    assert set(from_parent.sweeps) == {"t5_table7_a", "t5_table7_b"}
    assert len(from_parent.runs) == len(from_both.runs) == 12
    assert len(from_parent.failed) == 2 and len(from_parent.incomplete) == 2


def test_runs_of_one_sweep_spread_over_machines_are_merged(tmp_path):
    # Two machines wrote halves of one sweep into their own folders on a shared filesystem.
    write_run(tmp_path / "hostA" / SWEEP, make_result(SWEEP, "a__seed_0", "A", 0, glue=70.0))
    write_run(tmp_path / "hostB" / SWEEP, make_result(SWEEP, "a__seed_1", "A", 1, glue=72.0))
    write_sweep_json(tmp_path / "hostB" / SWEEP, SWEEP, [("a__seed_0", "A"), ("a__seed_1", "A")], "A")
    res = load_results(tmp_path)
    assert list(res.sweeps) == [SWEEP]
    assert sorted(res.runs["seed"]) == [0, 1]
    # hostB's sweep.json lists a__seed_0, done on hostA: it must not be reported as not started.
    assert res.incomplete.empty
    assert res.sweeps[SWEEP].baseline == "A"


def test_planned_but_never_started_runs_are_incomplete(tmp_path):
    d = tmp_path / SWEEP
    write_run(d, make_result(SWEEP, "a__seed_0", "A", 0, glue=70.0))
    write_sweep_json(d, SWEEP, [("a__seed_0", "A"), ("b__seed_0", "B")], "A")
    res = load_results(d)
    assert list(res.incomplete["run"]) == ["b__seed_0"]
    assert res.incomplete["reason"].iloc[0] == "not started"
    assert res.sweeps[SWEEP].variants == ["A", "B"]


def test_malformed_result_json_is_a_failed_run_naming_the_file(tmp_path):
    """A truncated result.json (issue 21) is one bad run: the others load, and its reason names the file."""
    d = known_sweep(tmp_path)
    bad = d / "iid__seed_1" / "result.json"
    bad.write_text('{"schema": 1, "sweep": ')
    res = load_results(d)
    assert "iid__seed_1" not in set(res.runs["run"]) and len(res.runs) == 5
    reason = res.failed.set_index("run").loc["iid__seed_1", "reason"]
    assert reason.startswith(f"corrupt result.json: {bad}: malformed JSON") and "t5explore sweep" in reason


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r.pop("variant"), "missing required field 'variant'"),
        (lambda r: r.update(seed="0"), "field 'seed' must be int or null"),
        (lambda r: r.update(baseline="yes"), "field 'baseline' must be true or false"),
        (lambda r: r.update(schema=99), "schema version 99 is newer than this t5explore reads"),
        (lambda r: r.update(schema="1"), "schema version '1' is not a positive integer"),
        (lambda r: r["pretrain"].update(final_loss="low"), "field 'pretrain.final_loss' must be a number"),
        (lambda r: r["benchmarks"]["best"].update(glue_average=[1]), "benchmarks.best.glue_average"),
    ],
)
def test_bad_fields_name_file_and_field(tmp_path, edit, message):
    res = make_result(SWEEP, "r", "A", 0, glue=70.0)
    edit(res)
    write_run(tmp_path / SWEEP, res)
    with pytest.raises(ReportError) as e:
        load_results(tmp_path)
    assert message in str(e.value) and "result.json" in str(e.value)


def test_a_null_seed_is_accepted(tmp_path):
    res = make_result(SWEEP, "a", "A", 0, glue=70.0)
    res["seed"] = None  # a sweep without a seed axis
    write_run(tmp_path / SWEEP, res)
    assert load_results(tmp_path).runs["seed"].isna().all()


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="not found"):
        load_results(tmp_path / "nope")
    with pytest.raises(ReportError, match="no sweep or run directories"):
        load_results(tmp_path)


def test_load_metrics_reads_rows_and_skips_only_a_torn_last_line(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    rows = [{"phase": "pretrain", "step": i, "tokens_seen": 100 * i, "loss": 5.0 - i} for i in range(3)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (d / "metrics.jsonl").write_text(text + '{"phase": "pretr')  # a writer mid-line
    m = load_metrics(d)
    assert list(m["loss"]) == [5.0, 4.0, 3.0] and list(m["tokens_seen"]) == [0, 100, 200]
    (d / "metrics.jsonl").write_text(text + "not json\n" + text)
    with pytest.raises(ReportError, match=r"metrics\.jsonl:4: malformed JSON"):
        load_metrics(d)
    assert load_metrics(tmp_path / "absent").empty
