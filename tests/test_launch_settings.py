"""Launcher settings and records that need neither submitit nor ray: flags and gin, launcher bindings kept out of
the runs, the message when an extra is missing, and what `t5explore status` can say about a launched run."""

from __future__ import annotations

import argparse
import sys
import time

import pytest

from t5explore.config import ConfigError
from t5explore.sweep import launch
from t5explore.sweep.launch import settings, task

from launch_fakes import write_sweep

pytestmark = pytest.mark.usefixtures("clean_gin")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    launch.add_flags(p)
    return p.parse_args(argv)


def test_flags_win_over_gin_and_gin_over_defaults(tmp_path):
    cluster = tmp_path / "cluster.gin"
    cluster.write_text("SlurmLauncher.partition = 'gpu'\nSlurmLauncher.time_min = 60\n")
    args = parse(["--launcher=slurm", "--slurm_time_min=30", "--slurm_setup=a", "--slurm_setup=b", "--slurm_wait"])
    s = settings.load("slurm", args, [str(cluster)], ["SlurmLauncher.qos = 'high'"])
    assert (s.partition, s.time_min, s.qos, s.setup, s.wait, s.gpus_per_task) == (
        "gpu",
        30,
        "high",
        ["a", "b"],
        True,
        0,
    )
    args = parse(["--ray_num_gpus=0.5", "--ray_address=auto"])
    r = settings.load("ray", args, bindings=["RayLauncher.max_retries = 7"])
    assert (r.address, r.num_gpus, r.num_cpus, r.max_retries) == ("auto", 0.5, 1.0, 7)
    with pytest.raises(ConfigError, match="SlurmLauncher has no setting partitionn"):
        settings.load("slurm", bindings=["SlurmLauncher.partitionn = 'x'"])


def test_launcher_bindings_never_reach_the_runs():
    runs, launcher = launch.split_bindings(
        [
            "Pretrain.steps = 2",
            "SlurmLauncher.partition = 'gpu'",
            " RayLauncher.num_gpus = 1",
            "Experiment.notes = 'SlurmLauncher.x'",
        ]
    )
    assert runs == ["Pretrain.steps = 2", "Experiment.notes = 'SlurmLauncher.x'"]
    assert launcher == ["SlurmLauncher.partition = 'gpu'", " RayLauncher.num_gpus = 1"]


@pytest.mark.parametrize("name,package", [("slurm", "submitit"), ("ray", "ray")])
def test_a_missing_extra_says_what_to_install(name, package, monkeypatch, tmp_path, capsys, sweep_cli):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if it were not installed
    monkeypatch.delitem(sys.modules, launch.BACKENDS[name][0], raising=False)
    with pytest.raises(ConfigError, match=rf"pip install 't5explore\[{name}\]'"):
        launch.backend(name)
    assert sweep_cli(["sweep", write_sweep(tmp_path), f"--results_dir={tmp_path / 'r'}", f"--launcher={name}"]) == 2
    assert f"t5explore[{name}]" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_describe_says_where_a_run_is(tmp_path):
    sdir = tmp_path / "sweep"
    run = sdir / "a__seed_0"
    run.mkdir(parents=True)
    assert task.describe(run) == ""
    task.record_submission(sdir, "slurm", {"a__seed_0": "123_4"}, job_id="123")
    assert task.describe(run).startswith("submitted as slurm job 123_4 ") and task.describe(run).endswith(" ago")
    time.sleep(0.01)
    where = {"job_id": "123_4"}
    task.write_launch(run, "slurm", lambda: where)
    assert task.describe(run).startswith("slurm job 123_4 on ")
    task.write_launch(run, "slurm", lambda: where)  # the requeued task starts again
    assert task.describe(run).endswith(", attempt 2")
    task.write_launch(run, "ray", lambda: {"job_id": "f" * 48})
    assert task.describe(run, task.submissions(sdir)).startswith(f"ray task {'f' * 16} on ")
