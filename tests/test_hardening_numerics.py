"""Numbers carry their code version (issue 21, part 5): the numerics version is in every fingerprint and
result.json, a sweep refuses to resume or share runs of another version unless told (--rerun_changed/--force),
and a table refuses to mix versions unless given --allow_mixed_numerics (then it says so under the table).

Sweeps run through the real CLI with launch_fakes.py's cheap executor; a bump is simulated by patching
NUMERICS_VERSION where the fingerprint reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_report_helpers import known_sweep

from t5explore import cli, io_utils
from t5explore.numerics import NUMERICS_VERSION
from t5explore.sweep import fingerprint
from t5explore.sweep.runner import EXECUTOR_ENV

from launch_fakes import EXECUTOR, NAMES, starts, write_sweep

pytestmark = pytest.mark.usefixtures("clean_gin")


@pytest.fixture
def sweep_cli(sweep_cli, monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, EXECUTOR)
    return sweep_cli


def test_the_fingerprint_holds_the_numerics_version_and_an_old_record_reads_as_version_1(tmp_path):
    fp = fingerprint.from_config_text("Pretrain.steps = 3\n")
    assert f"NUMERICS_VERSION = {NUMERICS_VERSION}" in fp.config and fp.numerics_version == NUMERICS_VERSION
    assert fingerprint.from_config_text("Pretrain.steps = 3\n", numerics_version=1).digest != fp.digest
    (tmp_path / "result.json").write_text("{}")  # progress, so that a change counts
    old = {"schema": 1, "fingerprint": "0" * 64, "config": [s for s in fp.config if "NUMERICS" not in s]}
    io_utils.atomic_write_json(tmp_path / "fingerprint.json", old)
    recorded = fingerprint.read(tmp_path)
    assert recorded.numerics_version == 1 and recorded.digest == "0" * 64
    assert fingerprint.changes(tmp_path, fp) == [f"NUMERICS_VERSION: 1 -> {NUMERICS_VERSION}"]


def test_a_sweep_refuses_runs_of_another_numerics_version_until_told(tmp_path, sweep_cli, capsys, monkeypatch):
    res = tmp_path / "results"
    sweep = write_sweep(tmp_path)
    assert sweep_cli(["sweep", sweep, f"--results_dir={res}"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(fingerprint, "NUMERICS_VERSION", NUMERICS_VERSION + 1)  # the code's arithmetic changed

    assert sweep_cli(["sweep", sweep, f"--results_dir={res}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"NUMERICS_VERSION: {NUMERICS_VERSION} -> {NUMERICS_VERSION + 1}" in err[0], err
    assert "--rerun_changed" in err[0] and "--force" in err[0]
    sdir = res / "fake_sweep"
    assert all(starts(sdir / n) == [0] for n in NAMES)  # nothing resumed or skipped as done

    assert sweep_cli(["sweep", sweep, f"--results_dir={res}", "--force"]) == 0
    assert all(starts(sdir / n) == [0] for n in NAMES)  # the old runs were deleted and trained again
    assert all(fingerprint.read(sdir / n).numerics_version == NUMERICS_VERSION + 1 for n in NAMES)


def test_a_run_of_another_numerics_version_is_not_shared(tmp_path, sweep_cli, capsys, monkeypatch):
    """Sweep b has sweep a's configs; after a bump, its runs are trained, not copied from a's."""
    res = tmp_path / "results"
    a = write_sweep(tmp_path)
    b = tmp_path / "other.gin"
    b.write_text(Path(a).read_text() + "Sweep.name = 'other'\n")
    assert sweep_cli(["sweep", a, f"--results_dir={res}"]) == 0
    monkeypatch.setattr(fingerprint, "NUMERICS_VERSION", NUMERICS_VERSION + 1)
    capsys.readouterr()
    assert sweep_cli(["sweep", str(b), f"--results_dir={res}"]) == 0
    out = capsys.readouterr().out
    assert "shared from" not in out and "4 ran" in out
    assert all(starts(res / "other" / n) == [0] for n in NAMES)


def _set_versions(sweep_dir: Path, versions: dict[str, int | None]) -> None:
    for run, v in versions.items():
        path = sweep_dir / run / "result.json"
        data = json.loads(path.read_text())
        data.pop("numerics_version", None)
        if v is not None:
            data["schema"], data["numerics_version"] = 3, v
        path.write_text(json.dumps(data))


def test_a_table_refuses_mixed_numerics_unless_allowed_and_then_labels_the_mix(tmp_path, capsys):
    sdir = known_sweep(tmp_path)
    _set_versions(sdir, {"iid__seed_0": 2, "iid__seed_1": 2, "iid__seed_2": 2, "span_2__seed_0": 2})
    out = tmp_path / "tables"
    assert cli.main(["table", str(sdir), "--format=md", f"--out={out}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mixes runs computed by code of different numerics versions" in err[0], err
    assert "version 1: span_2__seed_1, span_3__seed_0" in err[0] and "--allow_mixed_numerics" in err[0]
    assert not out.exists()  # refused before any file was written

    assert cli.main(["table", str(sdir), "--format=md", f"--out={out}", "--allow_mixed_numerics"]) == 0
    printed = capsys.readouterr().out
    note = "Mixed numerics versions (version 1: span_2__seed_1, span_3__seed_0; version 2: iid__seed_0,"
    assert note in printed
    assert note in (out / "t5_table7_span_length.md").read_text()


def test_one_numerics_version_gives_no_note(tmp_path, capsys):
    sdir = known_sweep(tmp_path)
    assert cli.main(["table", str(sdir), "--format=md", f"--out={tmp_path / 't'}"]) == 0
    assert "Mixed numerics" not in capsys.readouterr().out
