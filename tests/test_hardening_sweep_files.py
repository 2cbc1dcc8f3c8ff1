"""Sweep files that say two things (issue 21, part 4): duplicate dict keys and empty seeds exit 2 with one line,
two configs never share a results directory unnoticed, and a run outside the repository root is quiet.

Sweeps run through the real CLI with launch_fakes.py's cheap executor.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from t5explore import config
from t5explore.report.sweep_tables import markdown_table
from t5explore.sweep.runner import EXECUTOR_ENV, run_sweep

from launch_fakes import EXECUTOR, NAMES, fake_execute, starts

pytestmark = pytest.mark.usefixtures("clean_gin")


@pytest.fixture
def sweep_cli(sweep_cli, monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, EXECUTOR)
    return sweep_cli


def sweep_file(tmp_path: Path, alpha_steps: str = "1", notes: str = "x", name: str = "fake_sweep.gin") -> str:
    path = tmp_path / name
    path.write_text(
        f"Experiment.notes = '{notes}'\nSweep.name = 'fake_sweep'\n"
        f"Sweep.variants = {{'alpha': {{'Pretrain.steps': '{alpha_steps}'}}, 'beta': {{'Pretrain.steps': '2'}}}}\n"
        "Sweep.seeds = [0, 1]\n"
    )
    return str(path)


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "Sweep.variants = {'a': {'Pretrain.steps': '1'},\n    'a': {'Pretrain.steps': '2'}}\n",
            "Sweep.variants in {file} (line 1) gives the key 'a' twice: {{'Pretrain.steps': '1'}} and "
            "{{'Pretrain.steps': '2'}}; gin would silently keep only the second",
        ),
        (
            "Sweep.variants = {'a': {'Pretrain.steps': '1', 'Pretrain.steps': '3'}}\n",
            "gives the key 'Pretrain.steps' twice: '1' and '3'",
        ),
        ("Sweep.variants = {'a': {'Pretrain.steps': '1'}}\nSweep.seeds = []\n", "Sweep.seeds = [] declares no seed"),
    ],
)
def test_a_sweep_file_that_says_two_things_exits_2_with_one_line(tmp_path, sweep_cli, capsys, body, message):
    path = tmp_path / "two.gin"
    path.write_text(body)
    res = tmp_path / "results"
    assert sweep_cli(["sweep", str(path), f"--results_dir={res}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message.format(file=path) in err[0], err
    assert not res.exists()  # nothing ran, nothing was written


def test_duplicate_keys_in_a_command_line_override_are_refused_too(tmp_path, sweep_cli, capsys):
    override = "--gin.Sweep.display_names={'alpha': 'A', 'alpha': 'B'}"
    assert sweep_cli(["sweep", sweep_file(tmp_path), f"--results_dir={tmp_path / 'r'}", override]) == 2
    assert "gives the key 'alpha' twice: 'A' and 'B'" in capsys.readouterr().err


def test_every_run_is_checked_against_the_directory_not_only_the_selected_ones(tmp_path, sweep_cli, capsys):
    res = tmp_path / "results"
    assert sweep_cli(["sweep", sweep_file(tmp_path), f"--results_dir={res}"]) == 0
    capsys.readouterr()
    changed = sweep_file(tmp_path, notes="y")  # every run's config changed
    assert sweep_cli(["sweep", changed, f"--results_dir={res}", "--only=beta__seed_0"]) == 2
    assert "was made under a different config: Experiment.notes: 'x' -> 'y'" in capsys.readouterr().err
    assert starts(res / "fake_sweep" / "beta__seed_0") == [0]  # not trained beside the other config's runs


def test_two_sweeps_of_different_configs_started_together_stop_before_the_second_trains(tmp_path, capsys):
    """Sweep A's first run is training (its executor is where B starts) when sweep B, of another config, starts
    in the same directory: B passes its up-front check (A has no progress yet), skips A's busy run, claims the
    next one and, rechecking the directory, stops before training it."""
    res = tmp_path / "results"
    a, b = sweep_file(tmp_path, notes="a", name="a.gin"), sweep_file(tmp_path, notes="b", name="b.gin")
    seen = {}

    def a_executor(run_dir, gin_files, bindings, metadata):
        if not seen:
            with pytest.raises(config.ConfigError) as e:
                run_sweep(b, res, executor=fake_execute, out=_Discard())
            seen["error"] = str(e.value)
        return fake_execute(run_dir, gin_files, bindings, metadata)

    outcome = run_sweep(a, res, executor=a_executor, out=_Discard())
    assert outcome.exit_code == 0
    assert "run alpha__seed_0 of sweep fake_sweep is being run right now under a different config" in seen["error"]
    assert "Experiment.notes: 'a' -> 'b'" in seen["error"]
    assert all(starts(res / "fake_sweep" / n) == [0] for n in NAMES)  # every run trained once, by A


def test_a_table_names_the_bindings_its_rows_differ_in_beyond_the_variants(tmp_path, sweep_cli, capsys):
    res = tmp_path / "results"
    assert sweep_cli(["sweep", sweep_file(tmp_path), f"--results_dir={res}"]) == 0
    other = sweep_file(tmp_path, notes="y")
    assert sweep_cli(["sweep", other, f"--results_dir={res}", "--rerun_changed", "--only=beta*"]) == 0
    out = markdown_table(res / "fake_sweep")
    assert "Rows differ in bindings that are not the sweep's variant bindings: Experiment.notes ('x', 'y')" in out

    assert sweep_cli(["sweep", other, f"--results_dir={res}", "--rerun_changed"]) == 0  # one config again
    assert "Rows differ" not in markdown_table(res / "fake_sweep")


def test_parsing_gin_outside_the_repository_root_logs_no_path_probes(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO):
        config.parse_gin(["gin/runs/tiny_cpu.gin"])
    assert not [r for r in caplog.records if "Path not found" in r.getMessage()]


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
