"""A results directory is data (issue 21, part 1): reading it never runs code from it.

The malicious directory below holds a gin file that imports a Python module placed beside it; that module
writes a trace file when imported. sweep.json points at the gin file (as `sweep_file`, an invocation gin file
and an `import` override), a run's config.gin carries the import too, and the sharing index points into it.
Every reading command (status, table, plot, a sweep sharing the results directory) must leave no trace. The
last step proves the trap is armed: parsing the gin file for real does write the trace.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from test_report_helpers import make_result, write_run

from t5explore import cli, io_utils
from t5explore.sweep.fingerprint import isolated_gin
from t5explore.sweep.runner import EXECUTOR_ENV

from launch_fakes import EXECUTOR, write_sweep

MODULE = "t5explore_evil_payload"
PAYLOAD = """
from pathlib import Path
Path(__file__).with_name("TRACE").write_text("code from a results directory ran")
"""
pytestmark = pytest.mark.usefixtures("clean_gin")


@pytest.fixture
def evil(tmp_path, monkeypatch) -> Path:
    """results/evil/ with its trap; the payload module is importable (on sys.path), as an attacker would need."""
    res = tmp_path / "results"
    sdir = res / "evil"
    sdir.mkdir(parents=True)
    (sdir / f"{MODULE}.py").write_text(PAYLOAD)
    monkeypatch.syspath_prepend(str(sdir))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    gin_file = sdir / "evil.gin"
    gin_file.write_text(f"import {MODULE}\n")
    run = write_run(sdir, make_result("evil", "a__seed_0", "A", 0, glue=70.0, baseline=True))
    (run / "config.gin").write_text(f"import {MODULE}\nPretrain.steps = 6\n")
    io_utils.atomic_write_json(
        run / "fingerprint.json", {"schema": 1, "fingerprint": "f" * 64, "config": [f"import {MODULE}"]}
    )
    io_utils.atomic_write_json(
        sdir / "sweep.json",
        {
            "schema": 1,
            "name": "evil",
            "sweep_file": str(gin_file),
            "baseline": "A",
            "runs": [
                {"run": "a__seed_0", "variant": "A", "gin_files": [str(gin_file)]},
                {"run": "../x", "variant": "B"},  # never followed out of the sweep directory
            ],
            "invocation": {"gin_files": [str(gin_file)], "overrides": [f"import {MODULE}"]},
        },
    )
    io_utils.atomic_write_json(res / ".by_fingerprint" / ("f" * 64 + ".json"), {"sweep": "evil", "run": "a__seed_0"})
    return sdir


@pytest.mark.slow  # table and plot import pandas, scipy and matplotlib: ~15 s
def test_no_reading_command_runs_code_from_a_results_directory(evil, tmp_path, capsys, monkeypatch):
    trace = evil / "TRACE"
    res = evil.parent
    assert cli.main(["status", str(res)]) == 0
    shown = capsys.readouterr().out
    assert "a__seed_0" in shown and "../x" not in shown
    assert cli.main(["table", str(res), "--format=md", f"--out={tmp_path / 'tables'}"]) == 0
    assert cli.main(["plot", str(res), f"--out={tmp_path / 'plots'}"]) == 0
    monkeypatch.setenv(EXECUTOR_ENV, EXECUTOR)  # a sweep of the user's own file, sharing the results directory
    assert cli.main(["sweep", write_sweep(tmp_path), f"--results_dir={res}"]) == 0
    assert not trace.exists(), "a reading command ran code from the results directory"
    assert MODULE not in sys.modules

    with isolated_gin():  # the trap is armed: gin's import statement runs the module
        import gin

        gin.parse_config_file(json.loads((evil / "sweep.json").read_text())["sweep_file"])
    assert trace.exists()


def test_sweep_json_paths_are_relative_to_the_results_directory(tmp_path, monkeypatch):
    """A copied results directory still names the same files: every path in sweep.json is relative to it."""
    monkeypatch.setenv(EXECUTOR_ENV, EXECUTOR)
    res = tmp_path / "results"
    sweep = write_sweep(tmp_path)
    assert cli.main(["sweep", sweep, f"--results_dir={res}"]) == 0
    meta = json.loads((res / "fake_sweep" / "sweep.json").read_text())
    paths = [meta["sweep_file"], *(f for r in meta["runs"] for f in r["gin_files"])]
    assert paths and all(not Path(p).is_absolute() for p in paths), paths
    assert (res / meta["sweep_file"]).resolve() == Path(sweep).resolve()
    assert all(len(r["fingerprint"]) == 64 for r in meta["runs"])  # status's record of each run's config
