"""`--launcher=slurm`: one Slurm job array through submitit, one array task per run.

Each task calls `SlurmRun`, a submitit `helpers.Checkpointable`: on the USR2 that Slurm sends `signal_delay_s`
before the time limit (`#SBATCH --signal=USR2@...`), submitit calls its `checkpoint()`, which resubmits the
same callable, requeues the task (`scontrol requeue`; the script asks for `--requeue`) and exits. The requeued
task calls the same function again, and `run_one` resumes the run from `run_dir/checkpoints`: all state lives
in the run directory, so the checkpointed callable needs no state of its own. A SIGTERM (preemption, scancel)
ends the task the same way, releasing the run's claim; Slurm's own requeue (PreemptMode=REQUEUE) then restarts
it. A task that died without a word (SIGKILL, node failure) leaves a claim that the next attempt takes over
once it is stale (claim.py), which `run_task` waits for.

Multi-host runs (hook, not done): `nodes` / `tasks_per_node` reach sbatch and srun starts the function on every
task (SLURM_PROCID = rank). Only rank 0 runs the run today; a multi-host executor would call
`jax.distributed.initialize()` (it reads the Slurm environment) on every rank before training.

This module imports submitit: it is imported only when the launcher is used (`pip install 't5explore[slurm]'`).
"""

from __future__ import annotations

import shlex
import signal
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import submitit
from submitit import helpers

from t5explore.config import ConfigError
from t5explore.sweep.launch import task as tasks_
from t5explore.sweep.launch.settings import SlurmSettings

LOG_DIR = ".submitit"  # under the sweep directory: hidden, so never read as a run


class SlurmRun(helpers.Checkpointable):
    """One run as a requeueable submitit job. `checkpoint()` (inherited) resubmits `SlurmRun(task)` as is."""

    def __init__(self, task: tasks_.RunTask):
        self.task = task

    def __call__(self) -> str:
        env = submitit.JobEnvironment()
        if env.global_rank != 0:  # multi-host hook: see the module docstring
            return "not rank 0"
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        return tasks_.run_task(self.task, where=_where)


def _exit_on_sigterm(signum, frame) -> None:
    """Stop the run cleanly (claim released, checkpoints kept) instead of being killed in KillWait seconds."""
    raise SystemExit(128 + signum)


def _where() -> dict[str, Any]:
    env = submitit.JobEnvironment()
    info: dict[str, Any] = {"job_id": env.job_id}
    if env.array_job_id:
        info.update(array_job_id=env.array_job_id, array_task_id=env.array_task_id)
    info["log"] = str(env.paths.stdout)
    return info


def slurm_parameters(s: SlurmSettings, job_name: str) -> dict[str, Any]:
    """SlurmExecutor.update_parameters() arguments (sbatch's names) for one run per array task."""
    p: dict[str, Any] = {
        "job_name": job_name,
        "time": int(s.time_min),
        "nodes": s.nodes,
        "ntasks_per_node": s.tasks_per_node,
        "signal_delay_s": s.signal_delay_s,
        "array_parallelism": s.array_parallelism,
        "stderr_to_stdout": True,
        "additional_parameters": {"requeue": True, **s.additional},
    }
    optional = {
        "partition": s.partition,
        "cpus_per_task": s.cpus_per_task,
        "account": s.account,
        "qos": s.qos,
        "constraint": s.constraint,
        "setup": list(s.setup) or None,
    }
    p.update({k: v for k, v in optional.items() if v is not None})
    if s.mem_gb is not None:
        p["mem"] = f"{int(s.mem_gb)}GB" if s.mem_gb == int(s.mem_gb) else f"{int(s.mem_gb * 1024)}MB"
    if s.gpus_per_task:
        gpus = s.gpus_per_task * s.tasks_per_node
        p["gres"] = f"gpu:{s.gpu_type}:{gpus}" if s.gpu_type else f"gpu:{gpus}"
    return p


class _PreviewExecutor(submitit.SlurmExecutor):
    """A SlurmExecutor that needs no `srun` on this machine: it only writes the sbatch script."""

    @classmethod
    def affinity(cls) -> int:
        return 1


def sbatch_script(s: SlurmSettings, folder: str | Path, n_runs: int, job_name: str) -> str:
    """The sbatch file submitit would submit for `n_runs` runs, without submitting it (--dry_run, tests).

    Built exactly as SlurmExecutor._internal_process_submissions builds an array (map_count = tasks)."""
    ex = _PreviewExecutor(folder, max_num_timeout=s.max_requeues, python=s.python)
    ex.update_parameters(**slurm_parameters(s, job_name))
    if n_runs > 1:
        ex.parameters["map_count"] = n_runs
    return ex._make_submission_file_text(ex._submitit_command_str, "preview")


def make_executor(s: SlurmSettings, folder: str | Path, job_name: str) -> submitit.Executor:
    """A SlurmExecutor, or a LocalExecutor (cluster='local': the same jobs as local processes, all at once)."""
    if s.cluster == "local":
        local = submitit.LocalExecutor(folder, max_num_timeout=s.max_requeues, python=s.python)
        local.update_parameters(
            timeout_min=s.time_min,
            signal_delay_s=s.signal_delay_s,
            stderr_to_stdout=True,
            gpus_per_node=s.gpus_per_task * s.tasks_per_node,
            setup=list(s.setup),
        )
        return local
    if s.cluster != "slurm":
        raise ConfigError(f"SlurmLauncher.cluster must be 'slurm' or 'local', got {s.cluster!r}")
    try:
        ex = submitit.SlurmExecutor(folder, max_num_timeout=s.max_requeues, python=s.python)
    except RuntimeError as e:  # no srun here
        raise ConfigError(
            f"--launcher=slurm: {e} (submit from a Slurm login node; --slurm_cluster=local runs the "
            f"array's tasks as local processes)"
        ) from None
    ex.update_parameters(**slurm_parameters(s, job_name))
    return ex


def launch(tasks: Sequence[tasks_.RunTask], s: SlurmSettings, ctx, sweep_dir: Path) -> dict[str, str]:
    """Submit one array (one task per run); with `wait`, follow it to the end and return each run's state."""
    folder = Path(s.folder) if s.folder else sweep_dir / LOG_DIR
    out = ctx.progress.out
    job_name = f"t5x_{ctx.sweep_name}"
    if s.nodes * s.tasks_per_node > 1:
        print(
            f"note: {s.nodes} node(s) x {s.tasks_per_node} task(s) per run: only rank 0 runs the run "
            f"(multi-host training is not supported yet)",
            file=out,
        )
    ex = make_executor(s, folder, job_name)
    with ex.batch():
        jobs = [ex.submit(SlurmRun(t)) for t in tasks]
    ids = {t.run.name: str(j.job_id) for t, j in zip(tasks, jobs)}
    array = str(jobs[0].job_id).split("_")[0]
    tasks_.record_submission(sweep_dir, "slurm", ids, job_id=array, log_folder=str(folder), cluster=s.cluster)
    print(
        f"sweep {ctx.sweep_name}: submitted {len(jobs)} run(s) as Slurm job {array} "
        f"({'array' if len(jobs) > 1 else 'one task'}; logs in {folder})",
        file=out,
        flush=True,
    )
    if not s.wait:
        print(
            f"follow it with: t5explore status {shlex.quote(str(sweep_dir))}; run this command again "
            f"afterwards to retry failures and print the table",
            file=out,
        )
        return {name: "submitted" for name in ids}
    return _follow(tasks, jobs, ctx, s.poll_s)


def _follow(tasks: Sequence[tasks_.RunTask], jobs: Sequence[Any], ctx, poll_s: float) -> dict[str, str]:
    """Wait for every job, saying at each poll how many are queued, running and ended (a Slurm array can sit
    in the queue for hours: silence would look like a hang); a job that ended without run_one's answer is
    recorded as lost (FAILED)."""
    by_id = {str(j.job_id): t for t, j in zip(tasks, jobs)}
    states: dict[str, str] = {}
    array = str(jobs[0].job_id).split("_")[0] if jobs else "?"
    t0 = last_print = time.monotonic()
    last_line = ""
    waiting = list(jobs)
    while waiting:
        still = []
        for job in waiting:
            if not job.done():
                still.append(job)
                continue
            t = by_id[str(job.job_id)]
            where = f"Slurm job {job.job_id}"
            try:
                state = job.result()
            except Exception as e:  # noqa: BLE001 - submitit raises its own types for dead/cancelled jobs
                state = tasks_.record_lost(
                    t, where, f"{type(e).__name__}: {_last_line(str(e))}; log: {job.paths.stdout}"
                )
            states[t.run.name] = state
            tasks_.report(ctx.progress, t.run.name, state, where)
        waiting = still
        if not waiting:
            break
        now = time.monotonic()
        line = wait_line(array, len(jobs), states, [_job_state(j) for j in waiting])
        if line != last_line or now - last_print >= max(poll_s, MIN_REPEAT_S):
            print(f"[{_clock(now - t0)}] {line}", file=ctx.progress.out, flush=True)
            last_line, last_print = line, now
        time.sleep(poll_s)
    return states


MIN_REPEAT_S = 30.0  # an unchanged wait line is printed again after this long (or every poll, if slower)


def wait_line(array: str, n_jobs: int, ended: dict[str, str], waiting_states: Sequence[str]) -> str:
    """'Slurm job 123: 1/4 ended (1 ran), waiting for 2 RUNNING, 1 PENDING': the jobs still out, counted by
    their scheduler state, and the ended ones by their run's state."""
    counts = Counter(waiting_states)
    out = Counter(ended.values())
    done = f"{len(ended)}/{n_jobs} ended" + (
        f" ({', '.join(f'{v} {k}' for k, v in sorted(out.items()))})" if out else ""
    )
    return f"Slurm job {array}: {done}, waiting for " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def _job_state(job: Any) -> str:
    """The scheduler's word for a job not yet done (PENDING, RUNNING, ...; UNKNOWN when it cannot say)."""
    try:
        return str(job.state).split()[0] or "UNKNOWN"
    except Exception:  # noqa: BLE001 - sacct may be briefly unreachable; the wait goes on
        return "UNKNOWN"


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
