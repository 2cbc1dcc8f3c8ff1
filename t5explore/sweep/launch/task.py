"""One run as a unit of work for another machine, and what a launcher records about where it ran.

Why one function for every launcher: `run_task` does exactly what the local runner does for one run
(runner.run_one: claim -> fingerprint check -> share, resume or execute -> result.json or FAILED), so a Slurm
array task, a requeued one and a Ray task all get the same claims, resumes and failure records.

Records (for `t5explore status`), both plain JSON on the shared filesystem:

    <sweep>/launches.jsonl   one line per submission, appended by the driver:
                             {"launcher", "submitted", "host", "job_id", "runs": {run: task id}, ...}
    <sweep>/<run>/launch.json  written by the task once it holds the run's claim:
                             {"launcher", "job_id", "host", "pid", "started", "attempt", ...}
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from t5explore import io_utils, run_layout
from t5explore.sweep import claim, rundir
from t5explore.sweep.fingerprint import Fingerprint
from t5explore.sweep.grid import RunSpec

LAUNCH_FILE = "launch.json"
SUBMISSIONS_FILE = "launches.jsonl"


@dataclasses.dataclass(frozen=True)
class RunTask:
    """Everything one run needs on another machine; picklable (no open files, no resolved executor)."""

    run: RunSpec
    sweep_name: str
    results_dir: str  # absolute: tasks may start in another directory
    fingerprint: Fingerprint
    executor: Any  # 'module:function', '/abs/file.py:function', a picklable callable, or None (the default)
    stale_after: float
    on_changed: str | None
    launcher: str
    cwd: str  # the driver's: relative gin files of the command line resolve as they did there

    @property
    def run_dir(self) -> Path:
        return rundir.run_dir(rundir.sweep_dir(self.results_dir, self.sweep_name), self.run.name)


def plan(
    selected: Sequence[RunSpec], prints: dict[str, Fingerprint], ctx, executor: Any, launcher: str
) -> tuple[dict[str, str], list[RunTask]]:
    """Runs already done or held by a live worker are reported now (no allocation is spent on them);
    the others become tasks."""
    from t5explore.sweep import runner, sharing

    sdir = rundir.sweep_dir(ctx.results_dir, ctx.sweep_name)
    states: dict[str, str] = {}
    tasks = []
    for r in selected:
        path = rundir.run_dir(sdir, r.name)
        if runner._finished(path, prints[r.name]):
            sharing.record_if_missing(ctx.results_dir, prints[r.name], ctx.sweep_name, r.name)
            ctx.progress.skipped(r.name, "done")
            states[r.name] = "done"
            continue
        held = claim.read_claim(path)
        if held is not None and not claim.is_stale(held, ctx.stale_after):
            ctx.progress.skipped(r.name, f"running elsewhere ({held.host}:{held.pid})")
            states[r.name] = "busy"
            continue
        tasks.append(
            RunTask(
                r,
                ctx.sweep_name,
                str(Path(ctx.results_dir).absolute()),
                prints[r.name],
                _portable(executor),
                ctx.stale_after,
                ctx.on_changed,
                launcher,
                os.getcwd(),
            )
        )
    return states, tasks


def _portable(executor: Any) -> Any:
    """A 'file.py:function' executor made absolute, so a task started elsewhere finds the file."""
    if isinstance(executor, str) and ".py:" in executor:
        path, _, func = executor.rpartition(":")
        return f"{os.path.abspath(path)}:{func}"
    return executor


def run_task(task: RunTask, where: Callable[[], dict[str, Any]] | None = None, out=None) -> str:
    """Run one run here, as the local runner would. Returns run_one's state ('ran', 'done', 'shared', 'failed',
    or 'busy' when another live worker kept the run's claim for longer than a stale claim takes to expire).

    `where()` describes this task (job id, node) for launch.json. Why wait while busy: a requeued or retried
    task on another host finds its predecessor's claim, which stays fresh until `stale_after` has passed."""
    from t5explore.sweep import runner

    out = out or sys.stdout
    executor = runner.resolve_executor(task.executor)
    deadline = time.time() + task.stale_after + 2 * claim.DEFAULT_HEARTBEAT_S
    with _cwd(task.cwd), runner.shared_caches(Path(task.results_dir)):
        while True:
            ctx = runner.RunContext(
                task.sweep_name,
                Path(task.results_dir),
                executor,
                task.stale_after,
                runner.Progress(1, out),
                task.on_changed,
                on_start=lambda path: write_launch(path, task.launcher, where),
            )
            state = runner.run_one(task.run, task.run_dir, task.fingerprint, ctx)
            if state != "busy" or time.time() > deadline:
                return state
            time.sleep(min(30.0, max(1.0, task.stale_after / 10)))


@contextlib.contextmanager
def _cwd(path: str) -> Iterator[None]:
    old = os.getcwd()
    if os.path.isdir(path):
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def write_launch(run_dir: Path, launcher: str, where: Callable[[], dict[str, Any]] | None) -> None:
    """launch.json: who runs this run now; `attempt` counts starts of the same job (requeues, retries)."""
    info = {
        "launcher": launcher,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.time(),
        **(where() if where else {}),
    }
    old = read_launch(run_dir) or {}
    same = old.get("launcher") == launcher and old.get("job_id") == info.get("job_id")
    info["attempt"] = int(old.get("attempt", 1)) + 1 if same else 1
    io_utils.atomic_write_json(run_dir / LAUNCH_FILE, info)


def read_launch(run_dir: Path) -> dict[str, Any] | None:
    try:
        d = io_utils.read_json(Path(run_dir) / LAUNCH_FILE)
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def record_submission(sweep_dir: Path, launcher: str, runs: dict[str, str], **extra: Any) -> dict[str, Any]:
    """Append one line to <sweep>/launches.jsonl (appends of one short line do not interleave)."""
    line = {"launcher": launcher, "submitted": time.time(), "host": socket.gethostname(), "runs": runs, **extra}
    with open(Path(sweep_dir) / SUBMISSIONS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    return line


def submissions(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every submission recorded for a sweep, oldest first (unreadable lines skipped)."""
    try:
        lines = (Path(sweep_dir) / SUBMISSIONS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for ln in lines:
        with contextlib.suppress(ValueError):
            d = json.loads(ln)
            if isinstance(d, dict) and isinstance(d.get("runs"), dict):
                out.append(d)
    return out


def describe(run_dir: Path, subs: Sequence[dict[str, Any]] | None = None) -> str:
    """Where a run is, for `t5explore status`: 'slurm job 123_4 on node7 (attempt 2)', 'submitted as slurm job
    123_4 5m ago', or '' for a run no launcher touched. `subs`: the sweep's submissions, read once per sweep."""
    run_dir = Path(run_dir)
    subs = submissions(run_dir.parent) if subs is None else subs
    sub = next((s for s in reversed(subs) if run_dir.name in s["runs"]), None)
    rec = read_launch(run_dir)
    if sub is not None and (rec is None or sub.get("submitted", 0) > rec.get("started", 0)):
        ago = _ago(time.time() - float(sub.get("submitted", time.time())))
        return f"submitted as {_job(sub['launcher'], sub['runs'][run_dir.name])} {ago} ago"
    if rec is None:
        return ""
    again = f", attempt {rec['attempt']}" if rec.get("attempt", 1) > 1 else ""
    return f"{_job(rec.get('launcher'), rec.get('job_id', '?'))} on {rec.get('host')}{again}"


def _job(launcher: Any, job_id: Any) -> str:
    """'slurm job 123_4', or 'ray task <first 16 hex digits>' (a Ray task id is 48 of them)."""
    return f"ray task {str(job_id)[:16]}" if launcher == "ray" else f"{launcher} job {job_id}"


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m" if s >= 60 else f"{s}s")


def record_lost(task: RunTask, where: str, why: str) -> str:
    """A task that ended without run_one's answer (killed, out of memory, node lost, out of requeues).

    Why write FAILED here: the task's own process could not. The checkpoints stay, so re-running the sweep
    resumes the run (the runner keeps this record as FAILED.previous). Returns the run's state."""
    path = task.run_dir
    if (path / run_layout.RESULT_FILE).exists():
        return "done"
    if not (path / run_layout.FAILED_FILE).exists():
        rundir.write_failed(
            path,
            f"run {task.run.name} of sweep {task.sweep_name}: {where} ended without a "
            f"result ({why.strip()})\nIts checkpoints are kept: re-run the sweep to resume it.\n",
        )
    return "failed"


def report(progress, name: str, state: str, where: str) -> None:
    """One progress line in the driver when a remote run ends."""
    progress.finished += 1
    progress.note(f"{name}: {state} ({where})")
