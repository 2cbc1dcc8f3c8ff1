"""Launchers: where each run of a sweep executes — this process (local), a Slurm job array, or Ray tasks.

The sweep runner produces run specs; a launcher only decides where each spec runs. Claims, resume and failure
records stay in the runner (`runner.run_one`) and the run directory, so every launcher gets them: a Slurm task
or a Ray task calls `task.run_task`, which is `run_one` for its one run.

    t5explore sweep experiments/t5_table6_rate.gin --launcher=slurm --slurm_partition=gpu \\
        --slurm_gpus_per_task=1 --slurm_cpus_per_task=8 --slurm_time_min=240 --gin_file=gin/runs/gpu_ablation.gin
    t5explore sweep experiments/quickstart.gin --launcher=ray --ray_address=auto --ray_num_gpus=1

submitit and ray are optional (`pip install 't5explore[slurm]'`, `'t5explore[ray]'`) and imported only here,
when their launcher is chosen. Settings: launch/settings.py; what status can show: task.describe().
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from collections.abc import Sequence
from typing import Any

from t5explore.config import ConfigError
from t5explore.sweep.launch import settings as settings_
from t5explore.sweep.launch import task as tasks_

LAUNCHERS = ("local", "slurm", "ray")
BACKENDS = {"slurm": ("t5explore.sweep.launch.slurm", "submitit"), "ray": ("t5explore.sweep.launch.ray_tasks", "ray")}


def backend(name: str) -> Any:
    """The launcher's module; a missing extra is a ConfigError that says what to install."""
    module, package = BACKENDS[name]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if e.name != package and not str(e.name or "").startswith(f"{package}."):
            raise
        raise ConfigError(
            f"--launcher={name} needs the {package} package: pip install 't5explore[{name}]' ({e})"
        ) from None


@dataclasses.dataclass
class RemoteLauncher:
    """A runner.Launcher: runs already done (or held by a live worker) are reported, the others launched."""

    name: str
    settings: Any  # settings.SlurmSettings or settings.RaySettings

    def __call__(self, selected, prints, ctx, executor) -> dict[str, str]:
        from t5explore.sweep import rundir

        states, tasks = tasks_.plan(selected, prints, ctx, executor, self.name)
        if tasks:
            sweep_dir = rundir.sweep_dir(ctx.results_dir, ctx.sweep_name)
            states.update(backend(self.name).launch(tasks, self.settings, ctx, sweep_dir))
        return states


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="local",
        help="where each run executes: this process (default), a Slurm job array (submitit), or Ray tasks",
    )
    parser.add_argument(
        "--launcher_gin",
        action="append",
        default=[],
        metavar="FILE",
        help="a gin file of SlurmLauncher.* / RayLauncher.* settings (read by the launcher only)",
    )
    settings_.add_flags(parser)


def split_bindings(bindings: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the runs' bindings, the launcher's): launcher settings never reach a run's config or fingerprint."""
    runs = [b for b in bindings if not settings_.is_launcher_binding(b)]
    return runs, [b for b in bindings if settings_.is_launcher_binding(b)]


def from_args(args: argparse.Namespace, launcher_bindings: Sequence[str]) -> RemoteLauncher | None:
    """None for the local launcher (the runner's own loop), else the launcher with its resolved settings."""
    if args.launcher == "local":
        return None
    s = settings_.load(args.launcher, args, args.launcher_gin, launcher_bindings)
    backend(args.launcher)  # fail before anything runs when the extra is missing
    return RemoteLauncher(args.launcher, s)


def preview(launcher: RemoteLauncher, sweep_dir, n_runs: int, sweep_name: str) -> str:
    """What --dry_run shows for a launcher: the sbatch script of the array (Slurm), the task options (Ray)."""
    if launcher.name == "slurm":
        slurm = backend("slurm")
        folder = launcher.settings.folder or sweep_dir / slurm.LOG_DIR
        return slurm.sbatch_script(launcher.settings, folder, n_runs, f"t5x_{sweep_name}")
    s = launcher.settings
    return (
        f"{n_runs} Ray task(s) on {s.address or 'a local cluster'}: {s.num_cpus:g} CPU, {s.num_gpus:g} GPU"
        f"{f', {s.memory_gb:g} GB' if s.memory_gb else ''} each, up to {s.max_retries} retries"
    )
