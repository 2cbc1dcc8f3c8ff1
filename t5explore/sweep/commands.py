"""The `sweep` and `status` subcommands (dispatch contract: see t5explore/cli.py)."""

from __future__ import annotations

import argparse
import sys

from t5explore.sweep import claim, launch

SWEEP_HELP = """Run every run of a sweep gin file, one directory per run under RESULTS_DIR/<sweep name>/.

Re-running skips finished runs and resumes interrupted ones from their checkpoints; a failing run is recorded
in its FAILED file and the sweep goes on (exit code 1 at the end). Several workers may run the same sweep at
once on a shared filesystem: runs are claimed atomically. A run whose config (its fingerprint) changed since
it finished or checkpointed is refused (exit code 2, naming the changed bindings) unless --rerun_changed or
--force says what to do with the old run. A run whose exact config another run in the same results directory
already computed is copied from it ("shared from <sweep>/<run>"), not trained. Gin flags apply to every run, e.g.
  t5explore sweep experiments/t5_table6_rate.gin --results_dir=results --gin.Pretrain.steps=50
  t5explore sweep experiments/t5_table6_rate.gin --gin_file=gin/runs/paper_scale.gin --shard=0/8
  t5explore sweep experiments/quickstart.gin --gin.Sweep.seeds=[0,1,2] --dry_run

--launcher picks where each run executes; claims, resumes and FAILED records work the same everywhere:
  local   this process, one run after another (default)
  slurm   one Slurm job array through submitit, one task per run; a timed-out or preempted task is requeued
          and resumes from its checkpoints. Submits and returns (--slurm_wait to wait, printing the jobs' states
          every --slurm_poll_s); --dry_run prints the sbatch script. --slurm_cluster=local runs the array's
          tasks as local processes through submitit, no Slurm needed (to try a launch on a workstation).
          Needs pip install 't5explore[slurm]'.
  ray     one Ray task per run on --ray_address (or a local cluster); waits for all of them. A task whose worker
          died is retried (--ray_max_retries) and resumes. Needs pip install 't5explore[ray]'.
  t5explore sweep experiments/t5_table6_rate.gin --gin_file=gin/runs/gpu_ablation.gin --launcher=slurm
      --slurm_partition=gpu --slurm_gpus_per_task=1 --slurm_cpus_per_task=8 --slurm_mem_gb=32 --slurm_time_min=240
  t5explore sweep experiments/quickstart.gin --launcher=ray --ray_address=auto --ray_num_cpus=2
Launcher settings may also come from gin: --launcher_gin=FILE or --gin.SlurmLauncher.partition="'gpu'".
"""


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run a gin experiment grid (experiments/*.gin)",
        description=SWEEP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep_file", help="the sweep gin file, e.g. experiments/quickstart.gin")
    p.add_argument("--results_dir", default="results", help="where sweep directories go (default: results)")
    p.add_argument(
        "--dry_run",
        action="store_true",
        help="list the runs with their bindings and states (done, pending, failed, corrupt, stale, running "
        "elsewhere) and estimate the wall time of those left from finished runs of the same scale; run nothing",
    )
    p.add_argument("--only", metavar="NAME_GLOB", help="run only runs whose name matches this fnmatch glob")
    p.add_argument("--shard", metavar="i/N", help="run a deterministic 1/N of the runs (0 <= i < N)")
    p.add_argument(
        "--stale_after",
        type=float,
        default=claim.DEFAULT_STALE_AFTER_S,
        help="seconds without heartbeat after which another worker's claim is taken over",
    )
    changed = p.add_mutually_exclusive_group()
    changed.add_argument(
        "--rerun_changed",
        dest="on_changed",
        action="store_const",
        const="rerun",
        help="runs made under another config: move them to <sweep>/.stale/ and run them again",
    )
    changed.add_argument(
        "--force",
        dest="on_changed",
        action="store_const",
        const="force",
        help="runs made under another config: delete them and run them again",
    )
    launch.add_flags(p)
    p.set_defaults(func=_sweep, on_changed=None)

    s = subparsers.add_parser("status", help="show done/running/failed/pending runs of a results directory")
    s.add_argument("dir", help="a sweep directory, or a results directory holding sweeps")
    s.add_argument(
        "--stale_after",
        type=float,
        default=claim.DEFAULT_STALE_AFTER_S,
        help="seconds without heartbeat after which a claim counts as dead",
    )
    s.add_argument(
        "--sweep_file",
        default=None,
        help="the sweep gin file (with the sweep's gin flags) to check the runs against, naming the bindings "
        "that changed; without it, status reads only the records in DIR (it never parses gin from DIR)",
    )
    s.set_defaults(func=_status)


def _sweep(args, gin_files, gin_bindings) -> int:
    from t5explore.sweep.runner import run_sweep

    gin_bindings, launcher_bindings = launch.split_bindings(gin_bindings)
    launcher = launch.from_args(args, launcher_bindings)
    outcome = run_sweep(
        args.sweep_file,
        args.results_dir,
        overrides=gin_bindings,
        only=args.only,
        shard=args.shard,
        dry_run=args.dry_run,
        gin_files=gin_files,
        stale_after=args.stale_after,
        on_changed=args.on_changed,
        launcher=launcher,
    )
    if args.dry_run and launcher is not None:
        print(f"\n{launch.preview(launcher, outcome.sweep_dir, len(outcome.selected), outcome.sweep.name)}")
    return outcome.exit_code


def _status(args, gin_files, gin_bindings) -> int:
    from t5explore.sweep.status import print_status

    return print_status(args.dir, sys.stdout, args.stale_after, args.sweep_file, gin_files, gin_bindings)
