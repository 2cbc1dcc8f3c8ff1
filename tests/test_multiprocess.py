"""Two JAX processes (2 CPU devices each, joined by jax.distributed on localhost) pretrain the tiny config as
one run: the same losses as one process, metrics from process 0, one orbax checkpoint directory written by
both. And with per-process data (each process corrupts only its own rows) the losses equal one process fed
both hosts' rows. Plus: when the CLI initialises the distributed system, and what it refuses."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from t5explore import distributed
from t5explore.config import REPO_ROOT, ConfigError

from mesh_worker import run_worker  # tests/ is on sys.path under pytest

PRETRAIN = ["Pretrain.steps = 3", "Pretrain.log_every = 1", "Pretrain.checkpoint_every = 2", "Pretrain.eval_every = 2"]
TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def process_pair(argv: Callable[[str, int], list[str]], env: dict[str, str] | None = None):
    """Processes 0 and 1 of one distributed run on CPU, `argv(coordinator_address, process_id)` each, started
    together in the repository root; yields both Popens (text pipes) and kills any still running on the way out,
    so a failed assertion about one does not leave the other waiting for its peer."""
    coordinator = f"localhost:{free_port()}"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "T5EXPLORE_COMPILE_CACHE": "off", **(env or {})}
    procs = [
        subprocess.Popen(
            argv(coordinator, i), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def launch_pair(args: list[str], timeout: int = 600) -> list[dict]:
    """The worker as processes 0 and 1 of one distributed run; returns both results."""

    def worker(address: str, i: int) -> list[str]:
        return [
            sys.executable,
            str(REPO_ROOT / "tests" / "mesh_worker.py"),
            *args,
            f"--coordinator={address}",
            "--num_processes=2",
            f"--process_id={i}",
        ]

    outs = []
    with process_pair(worker, TWO_DEVICES) as procs:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, stderr[-3000:]
            outs.append(json.loads(next(ln for ln in stdout.splitlines() if ln.startswith("RESULT "))[7:]))
    return outs


@pytest.fixture(scope="module")
def one_process(cache_dir):
    """References in one process with 4 devices: the global stream, and both hosts' per-process rows."""
    cases = ["--case=-1,1/default/0/global", "--case=-1,1/default/0/two_hosts"]
    bindings = [a for b in PRETRAIN for a in ("--binding", b)]
    return run_worker(
        ["--cache", str(cache_dir), "--steps", "3", *bindings, *cases],
        {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"},
    )


@pytest.mark.slow
def test_two_processes_pretrain_like_one(one_process, cache_dir, tmp_path):
    run_dir = tmp_path / "run"
    bindings = [a for b in PRETRAIN for a in ("--binding", b)]
    p0, p1 = launch_pair(["--cache", str(cache_dir), "--run_dir", str(run_dir), *bindings])
    assert (p0["process"], p1["process"]) == (0, 1) and p0["processes"] == 2 and p0["mesh"] == {"data": 4, "model": 1}
    assert p0["wi_0_shard"] == [16, 128]  # FSDP over all 4 devices of both processes
    train = [r["loss"] for r in p0["rows"] if r["phase"] == "pretrain"]
    np.testing.assert_allclose(train, one_process["-1,1/default/0/global"]["losses"], rtol=1e-5)
    assert p1["rows"] == p0["rows"]  # both processes computed the same (replicated) metrics
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()) == ["2", "3"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["step"]) for r in rows] == [(r["phase"], r["step"]) for r in p0["rows"]]


@pytest.mark.slow
def test_per_process_data_equals_one_process_fed_both_hosts(one_process, cache_dir):
    p0, p1 = launch_pair(["--cache", str(cache_dir), "--steps", "3", "--data", "per_process"])
    reference = one_process["-1,1/default/0/two_hosts"]["losses"]
    np.testing.assert_allclose(p0["losses"], reference, rtol=1e-5)
    assert p1["losses"] == p0["losses"]
    # per-host corruption is other data than the global stream's: the reason it is not the default
    assert not np.allclose(reference, one_process["-1,1/default/0/global"]["losses"], rtol=1e-5)


def test_cli_initialises_from_gin_and_refuses_fine_tuning_across_processes(tmp_path):
    """`t5explore train` with Distributed bindings joins the processes before anything else, then refuses
    a config that fine-tunes (exit 2, one line naming the fix) in every process."""

    def train(address: str, i: int) -> list[str]:
        distributed = {"coordinator_address": f"'{address}'", "num_processes": 2, "process_id": i}
        return [
            *(sys.executable, "-m", "t5explore.cli", "train", "--gin_file=gin/runs/tiny_cpu.gin"),
            *(f"--gin.Distributed.{name}={value}" for name, value in distributed.items()),
            f"--run_dir={tmp_path / 'run'}",
        ]

    with process_pair(train) as procs:
        outs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, stderr) in zip(procs, outs):
        assert proc.returncode == 2, stderr[-2000:]
        assert "2 processes, and multi-process runs pretrain only" in stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),
        ({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, None),
        ({"SLURM_NTASKS": "4", "SLURM_PROCID": "2"}, "slurm"),
        ({"SLURM_NTASKS": "4"}, None),
        ({"OMPI_COMM_WORLD_SIZE": "2"}, "openmpi"),
        ({"OMPI_COMM_WORLD_SIZE": "1"}, None),
    ],
)
def test_launcher_detection(env, expected):
    assert distributed.launcher(env) == expected


def test_single_process_does_not_initialise():
    assert distributed.initialize(distributed.Distributed(), env={}) is False


def test_bad_settings_and_sweeps_are_refused():
    with pytest.raises(ConfigError, match="needs Distributed.num_processes"):
        distributed.Distributed(coordinator_address="localhost:1234")
    with pytest.raises(ConfigError, match="process_id must be in"):
        distributed.Distributed("localhost:1234", num_processes=2, process_id=2)
    with pytest.raises(ConfigError, match="need Distributed.coordinator_address"):
        distributed.Distributed(num_processes=2)
    with pytest.raises(ConfigError, match="does not run multi-process"):
        distributed.setup_command("sweep", [], ["Distributed.num_processes = 2"])
    with pytest.raises(ConfigError, match="SLURM_NTASKS='x'"):
        distributed.launcher({"SLURM_NTASKS": "x"})


def test_distributed_bindings_are_not_part_of_the_fingerprint():
    from t5explore.sweep.fingerprint import from_config_text

    plain = from_config_text("Pretrain.steps = 3\n")
    placed = from_config_text("Pretrain.steps = 3\nDistributed.process_id = 1\nDistributed.num_processes = 2\n")
    assert placed.digest == plain.digest
