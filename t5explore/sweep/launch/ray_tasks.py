"""`--launcher=ray`: one Ray task per run, on the cluster at `RayLauncher.address` or a local one.

Each task calls `run_on_ray`, i.e. the local runner's `run_one` for its run, so claims, resumes and FAILED
records are the run directory's, as everywhere. A task whose worker process dies (killed, out of memory, node
lost) is rerun by Ray up to `max_retries` times; the new attempt takes over the dead worker's claim (at once on
the same host, once the heartbeat is stale elsewhere: claim.py) and resumes from the run's checkpoints. One
that runs out of retries is recorded as FAILED by the driver, and re-running the sweep resumes it.

The driver waits for every task (Ray ends a driver's tasks when the driver exits). Workers must see the same
filesystem (results dir, gin files) and the same Python environment as the driver.

This module imports ray: it is imported only when the launcher is used (`pip install 't5explore[ray]'`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray

from t5explore.sweep.launch import task as tasks_
from t5explore.sweep.launch.settings import RaySettings


def run_on_ray(task: tasks_.RunTask) -> str:
    """The Ray task: one run, exactly as the local runner would run it."""
    return tasks_.run_task(task, where=_where)


def _where() -> dict[str, Any]:
    rc = ray.get_runtime_context()
    return {"job_id": rc.get_task_id(), "ray_job_id": rc.get_job_id(), "node_id": rc.get_node_id()}


def connect(s: RaySettings) -> bool:
    """Join the cluster at `address`, or start a local one; True when this call started the connection
    (and so should end it). A Ray already initialised in this process (a notebook, a test) is used as is."""
    if ray.is_initialized():
        return False
    if s.address:
        ray.init(address=s.address)
    else:
        ray.init(num_cpus=s.local_cpus, include_dashboard=False)
    return True


def launch(tasks: Sequence[tasks_.RunTask], s: RaySettings, ctx, sweep_dir: Path) -> dict[str, str]:
    """Start one task per run and wait for all of them; returns each run's state."""
    started = connect(s)
    try:
        options: dict[str, Any] = {"num_cpus": s.num_cpus, "num_gpus": s.num_gpus, "max_retries": s.max_retries}
        if s.memory_gb:
            options["memory"] = int(s.memory_gb * 1024**3)
        remote = ray.remote(run_on_ray).options(**options)
        refs = {remote.remote(t): t for t in tasks}
        ids = {t.run.name: ref.task_id().hex() for ref, t in refs.items()}
        address = s.address or ray.get_runtime_context().gcs_address
        tasks_.record_submission(sweep_dir, "ray", ids, job_id=ray.get_runtime_context().get_job_id(), address=address)
        print(
            f"sweep {ctx.sweep_name}: {len(refs)} run(s) started as Ray tasks on {address} "
            f"({s.num_cpus:g} CPU, {s.num_gpus:g} GPU each)",
            file=ctx.progress.out,
            flush=True,
        )
        return _follow(refs, ctx)
    finally:
        if started:
            ray.shutdown()


def _follow(refs: dict, ctx) -> dict[str, str]:
    """Report each run as its task ends; a task that ended without run_one's answer is recorded as lost."""
    states: dict[str, str] = {}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        t = refs[done[0]]
        where = f"Ray task {done[0].task_id().hex()[:16]}"
        try:
            state = ray.get(done[0])
        except ray.exceptions.RayError as e:
            state = tasks_.record_lost(t, where, f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200]}")
        states[t.run.name] = state
        tasks_.report(ctx.progress, t.run.name, state, where)
    return states
