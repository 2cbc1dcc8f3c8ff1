"""`t5explore status` finds every sweep under a results root, including one that also holds loose runs."""

from __future__ import annotations

import io
import json

from t5explore.sweep.status import find_sweeps, print_status


def _run(path, result: bool = True):
    path.mkdir(parents=True)
    (path / "config.gin").write_text("# test\n")
    if result:
        (path / "result.json").write_text(json.dumps({"schema": 1}))
    return path


def test_root_with_loose_runs_still_shows_the_sweep_folders_below_it(tmp_path):
    _run(tmp_path / "standalone")  # `t5explore train --run_dir=results/standalone`
    _run(tmp_path / "sweep_a" / "x__seed_0")
    _run(tmp_path / "sweep_a" / "y__seed_0", result=False)
    (tmp_path / "sweep_b").mkdir()
    (tmp_path / "sweep_b" / "sweep.json").write_text(json.dumps({"name": "sweep_b", "runs": [{"run": "p"}]}))
    _run(tmp_path / "group" / "sweep_c" / "z__seed_0")  # sweeps grouped one level deeper
    (tmp_path / "standalone" / "checkpoints" / "6").mkdir(parents=True)  # not searched: inside a run

    assert find_sweeps(tmp_path) == [
        tmp_path,
        tmp_path / "group" / "sweep_c",
        tmp_path / "sweep_a",
        tmp_path / "sweep_b",
    ]
    out = io.StringIO()
    assert print_status(tmp_path, out) == 0
    text = out.getvalue()
    assert f"sweep {tmp_path.name} ({tmp_path})\n" in text and "standalone" in text
    assert "sweep sweep_a" in text and "2 runs: 1 done" in text
    assert "sweep sweep_b" in text and "1 runs: 0 done, 0 running, 0 failed, 1 pending" in text
    assert "sweep sweep_c" in text and "z__seed_0" in text


def test_a_sweep_dir_is_its_own_single_sweep(tmp_path):
    _run(tmp_path / "s" / "a__seed_0")
    assert find_sweeps(tmp_path / "s") == [tmp_path / "s"]
    (tmp_path / "empty_root").mkdir()
    assert find_sweeps(tmp_path / "empty_root") == []
