"""Identical configs are computed once per results directory: a second sweep's identical run is a copy.

Also: the fingerprint's canonical form (Sweep bindings, comments and order do not count; the seed does), the
caller's gin config survives fingerprinting, and the real T5 tables share the runs the paper shares.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import gin
import pytest

from t5explore import io_utils
from t5explore.config import parse_gin
from t5explore.numerics import NUMERICS_VERSION
from t5explore.sweep import fingerprint, sharing
from t5explore.sweep.grid import load_sweep
from t5explore.sweep.runner import run_sweep

from launch_fakes import fake_execute

pytestmark = pytest.mark.usefixtures("clean_gin")


class CountingExecutor:
    """fake_execute plus the files a real run leaves (config.gin, metrics.jsonl, predictions/), counted."""

    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, run_dir, gin_files, bindings, metadata):
        self.calls.append(f"{metadata['sweep']}/{metadata['run']}")
        run = Path(run_dir)
        (run / "config.gin").write_text("Pretrain.steps = 1\n")
        (run / "metrics.jsonl").write_text('{"phase": "pretrain", "step": 1, "loss": 2.0}\n')
        (run / "predictions").mkdir(exist_ok=True)
        (run / "predictions" / "glue_cola.jsonl").write_text('{"prediction": "acceptable"}\n')
        return fake_execute(run_dir, gin_files, bindings, metadata)


def write_sweep(tmp_path: Path, name: str, variants: str, seeds: str = "[0]", baseline: str = "") -> str:
    path = tmp_path / f"{name}.gin"
    path.write_text(
        f"Sweep.name = '{name}'\nSweep.variants = {{{variants}}}\nSweep.seeds = {seeds}\n"
        + (f"Sweep.baseline = '{baseline}'\n" if baseline else "")
    )
    return str(path)


def test_an_identical_run_in_a_second_sweep_is_copied_not_trained(tmp_path):
    res, run = tmp_path / "results", CountingExecutor()
    a = write_sweep(tmp_path, "table_a", "'x': {'Pretrain.steps': '1'}, 'y': {'Pretrain.steps': '2'}", baseline="x")
    b = write_sweep(tmp_path, "table_b", "'star': {'Pretrain.steps': '1'}, 'z': {'Pretrain.steps': '3'}")
    run_sweep(a, res, executor=run, out=io.StringIO())
    out = io.StringIO()
    outcome = run_sweep(b, res, executor=run, out=out)
    assert run.calls == ["table_a/x__seed_0", "table_a/y__seed_0", "table_b/z__seed_0"]
    assert outcome.states == {"star__seed_0": "shared", "z__seed_0": "ran"} and outcome.exit_code == 0
    assert "star__seed_0: shared from table_a/x__seed_0" in out.getvalue()
    assert "1 shared from identical runs" in out.getvalue()

    src, dst = res / "table_a" / "x__seed_0", res / "table_b" / "star__seed_0"
    source, copy = io_utils.read_json(src / "result.json"), io_utils.read_json(dst / "result.json")
    assert (copy["sweep"], copy["run"], copy["variant"], copy["baseline"], copy["point"]) == (
        "table_b",
        "star__seed_0",
        "star",
        False,
        "star",
    )
    assert copy["variant_bindings"] == {"Pretrain.steps": "1"} and copy["shared_from"] == "table_a/x__seed_0"
    assert copy["pretrain"] == source["pretrain"] and "shared_from" not in source
    for name in ("config.gin", "metrics.jsonl", "predictions/glue_cola.jsonl"):
        assert (dst / name).read_text() == (src / name).read_text()
        assert not (dst / name).is_symlink() and not os.path.samefile(dst / name, src / name)
    assert fingerprint.read(dst) == fingerprint.read(src)
    assert not (dst / "starts.log").exists()  # never executed

    again = run_sweep(b, res, executor=run, out=io.StringIO())
    assert again.states == {"star__seed_0": "done", "z__seed_0": "done"} and len(run.calls) == 3


def test_different_seeds_are_never_shared(tmp_path):
    res, run = tmp_path / "results", CountingExecutor()
    run_sweep(write_sweep(tmp_path, "table_a", "'x': {'Pretrain.steps': '1'}"), res, executor=run, out=io.StringIO())
    outcome = run_sweep(
        write_sweep(tmp_path, "table_b", "'x': {'Pretrain.steps': '1'}", seeds="[0, 1]"),
        res,
        executor=run,
        out=io.StringIO(),
    )
    assert outcome.states == {"x__seed_0": "shared", "x__seed_1": "ran"}
    assert run.calls == ["table_a/x__seed_0", "table_b/x__seed_1"]


def test_an_incomplete_source_is_not_waited_for(tmp_path):
    res, run = tmp_path / "results", CountingExecutor()
    a = write_sweep(tmp_path, "table_a", "'x': {'Pretrain.steps': '1'}")
    run_sweep(a, res, executor=run, out=io.StringIO())
    os.replace(res / "table_a" / "x__seed_0" / "result.json", tmp_path / "moved.json")  # as if still running
    outcome = run_sweep(
        write_sweep(tmp_path, "table_b", "'x': {'Pretrain.steps': '1'}"), res, executor=run, out=io.StringIO()
    )
    assert outcome.states == {"x__seed_0": "ran"} and run.calls == ["table_a/x__seed_0", "table_b/x__seed_0"]
    fp = fingerprint.read(res / "table_b" / "x__seed_0")
    assert sharing.find_source(res, fp)[0] == "table_b/x__seed_0"  # the index now names the complete run


def test_fingerprint_is_the_canonical_config_without_sweep_bindings_comments_or_order(tmp_path):
    one, two = tmp_path / "one.gin", tmp_path / "two.gin"
    one.write_text(
        "# a comment\nPretrain.steps = 6\nExperiment.seed = 0\nSweep.seeds = [0]\n"
        "Finetune.tasks = ['glue_cola',\n    'glue_sst2']\n"
    )
    two.write_text(
        "Finetune.tasks = ['glue_cola', 'glue_sst2']\nExperiment.seed = 0\nPretrain.steps = 6\nSweep.name = 'other'\n"
    )
    fp = fingerprint.compute([str(one)])
    assert fp == fingerprint.compute([str(two)])
    assert fp.config == (
        "Experiment.seed = 0",
        "Finetune.tasks = ['glue_cola', 'glue_sst2']",
        f"NUMERICS_VERSION = {NUMERICS_VERSION}",  # the code's arithmetic (t5explore/numerics.py)
        "Pretrain.steps = 6",
    )
    other_seed = fingerprint.compute([str(one)], ["Experiment.seed = 1"])
    assert other_seed.digest != fp.digest
    assert fingerprint.diff(fp.config, other_seed.config) == ["Experiment.seed: 0 -> 1"]
    assert fingerprint.diff(fp.config, ())[0] == "Experiment.seed: 0 -> (unset)"
    assert fingerprint.statements("A.b = \\\n    {'x': 1,\n     'y': 2}\n# c\n") == ["A.b = {'x': 1, 'y': 2}"]


def test_fingerprinting_leaves_the_callers_gin_config_as_it_was():
    parse_gin([], ["Pretrain.steps = 123"])
    fingerprint.compute([], ["Pretrain.steps = 5", "Experiment.seed = 9"])
    assert gin.query_parameter("Pretrain.steps") == 123
    with pytest.raises(ValueError):
        gin.query_parameter("Experiment.seed")


def test_the_t5_tables_share_their_common_runs():
    """At the default (CPU reproduction) scale, and at paper scale: Tables 5, 6 and 7 share ★ (replace spans,
    15 %), Tables 4 and 5 share BERT-style, and the four no-pre-training rows are one run per seed."""

    def prints(gin_files=()):
        out = {}
        for table in ("t5_table4_objectives", "t5_table5_corruption", "t5_table6_rate", "t5_table7_span_length"):
            for r in load_sweep(f"experiments/{table}.gin", gin_files=gin_files).runs:
                if r.seed == 0:
                    out[f"{table[:9]}/{r.point}"] = fingerprint.compute(r.gin_files, r.bindings).digest
        return out

    for scale in ((), ("gin/runs/paper_scale.gin",)):
        fp = prints(scale)
        assert fp["t5_table4/bert_style"] == fp["t5_table5/bert_style"]
        assert fp["t5_table5/replace_spans"] == fp["t5_table6/rate_15"]
        # Table 7 pre-trains on 128-token inputs at the CPU scale (μ = 10 needs them), so it shares only at paper scale
        t7_shares = bool(scale)
        assert (fp["t5_table7/iid"] == fp["t5_table5/replace_spans"]) == t7_shares
        nones = {fp[f"{t}/no_pretraining"] for t in ("t5_table4", "t5_table5", "t5_table6", "t5_table7")}
        assert len(nones) == (1 if t7_shares else 2)
        assert len(set(fp.values())) == len(fp) - 1 - (2 if t7_shares else 1) - (3 if t7_shares else 2)


def test_the_run_identity_fields_are_result_json_s_and_what_the_trainer_fills_and_sharing_replaces(tmp_path):
    """One list, read off RunResult: the trainer names a run with exactly the fields that sharing replaces."""
    import dataclasses

    from t5explore.results_schema import RunResult
    from t5explore.run_layout import METADATA_KEYS
    from t5explore.train.run import run_metadata

    fields = [f.name for f in dataclasses.fields(RunResult)]
    assert set(METADATA_KEYS) <= set(fields) and {"seed", "pretrain", "downstream"}.isdisjoint(METADATA_KEYS)
    assert list(run_metadata(tmp_path / "s" / "r")) == list(METADATA_KEYS)
    given = {**{k: f"given {k}" for k in METADATA_KEYS}, "seed": 99}
    assert run_metadata(tmp_path / "s" / "r", given) == {k: given[k] for k in METADATA_KEYS}

    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir(), dest.mkdir()
    io_utils.atomic_write_json(source / "result.json", {**run_metadata(source), "seed": 1, "pretrain": {"steps": 2}})
    copied = sharing.materialise(source, "s/source", dest, {**{k: given[k] for k in METADATA_KEYS}, "unknown": 1})
    assert {k: copied[k] for k in METADATA_KEYS} == {k: given[k] for k in METADATA_KEYS}
    assert copied["seed"] == 1 and copied["pretrain"] == {"steps": 2} and "unknown" not in copied
