"""The mesh gin files shard for real: the tiny config pretrained on 1 device, on 8 (data parallel and FSDP)
and on a 2 x 4 data x model mesh gives the same loss curve, and each layout shards the weights as its gin file
says. Eight CPU devices need XLA_FLAGS before jax starts, so the runs happen in a fresh interpreter
(tests/mesh_worker.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mesh_worker import run_worker  # tests/ is on sys.path under pytest

CASES = {  # case -> (mesh, the [embed, mlp] spec of an MLP kernel, the shape of one device's shard of it)
    "1,1/default/1/global": ({"data": 1, "model": 1}, ["data", "model"], [64, 128]),
    "8,1/data_parallel/0/global": ({"data": 8, "model": 1}, ["None", "None"], [64, 128]),
    "8,1/fsdp/0/global": ({"data": 8, "model": 1}, ["data", "model"], [8, 128]),
    "-1,4/tensor_parallel/0/global": ({"data": 2, "model": 4}, ["None", "model"], [64, 32]),
}


@pytest.fixture(scope="module")
def mesh_runs(cache_dir):
    args = ["--cache", str(cache_dir), "--steps", "3"] + [f"--case={case}" for case in CASES]
    return run_worker(args, {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"})


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_each_mesh_shards_the_weights_as_its_gin_file_says(mesh_runs, case):
    mesh, spec, shard = CASES[case]
    run = mesh_runs[case]
    assert run["mesh"] == mesh and run["devices"] == int(np.prod(list(mesh.values())))
    assert [s for s in run["wi_0_spec"]] == spec and run["wi_0_shard"] == shard
    if case.startswith("8,1/fsdp"):  # the optimiser state is sharded like the params, not replicated
        assert run["opt_state_share"] < 0.35
    elif case.startswith(("1,1", "8,1/data_parallel")):
        assert run["opt_state_share"] == 1.0


@pytest.mark.slow
def test_every_mesh_gives_the_one_device_loss_curve(mesh_runs):
    reference = mesh_runs["1,1/default/1/global"]["losses"]
    assert len(reference) == 3 and reference[0] > reference[1] > reference[2]  # it trains
    for case in CASES:
        np.testing.assert_allclose(mesh_runs[case]["losses"], reference, rtol=1e-5, err_msg=case)
