"""Where and with what each run of a launched sweep runs: the `SlurmLauncher` and `RayLauncher` settings.

Each setting is one dataclass field, reachable three ways, later ones winning:

    --launcher_gin=cluster.gin             SlurmLauncher.partition = 'gpu'   (a file only the launcher reads)
    --gin.SlurmLauncher.partition="'gpu'"  (stripped from the runs' bindings)
    --slurm_partition=gpu                  (one flag per field, generated from the dataclass below)

Why launcher settings never reach the runs: they say where a run executes, not what it computes, so they must
not change a run's config fingerprint (fingerprint.py) or be parsed by the executor. This module imports neither
submitit nor ray, so flags and gin parse without the extras installed.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

import gin

from t5explore import config
from t5explore.config import ConfigError

GIN_NAMES = {"slurm": "SlurmLauncher", "ray": "RayLauncher"}


def _field(default: Any, help: str, kind: Any = str, flag: bool = True) -> Any:
    meta = {"help": help, "kind": kind, "flag": flag}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class SlurmSettings:
    """One Slurm job array, one task per run (submitit). Resources are per run (per array task)."""

    partition: str | None = _field(None, "Slurm partition")
    gpus_per_task: int = _field(0, "GPUs per run (as --gres=gpu:N per node)", int)
    gpu_type: str | None = _field(None, "GPU type in the gres, e.g. a100 -> --gres=gpu:a100:N")
    cpus_per_task: int | None = _field(None, "CPUs per run", int)
    mem_gb: float | None = _field(None, "memory per run in GB (--mem)", float)
    time_min: int = _field(240, "time limit per attempt in minutes; a timed-out run is requeued and resumes", int)
    array_parallelism: int = _field(64, "at most this many runs at once (--array=0-N%%P)", int)
    account: str | None = _field(None, "Slurm account")
    qos: str | None = _field(None, "Slurm quality of service")
    constraint: str | None = _field(None, "Slurm node constraint")
    nodes: int = _field(1, "nodes per run (multi-host hook: only rank 0 runs, see launch/slurm.py)", int)
    tasks_per_node: int = _field(1, "tasks per node per run (multi-host hook, as --nodes)", int)
    setup: list = _field([], "shell line run before each task, e.g. 'module load cuda' (repeatable)", "append")
    signal_delay_s: int = _field(120, "USR2 this many seconds before the time limit: requeue in time", int)
    max_requeues: int = _field(10, "how often a run may time out and be requeued", int)
    python: str | None = _field(None, "python command on the nodes (default: this interpreter)")
    folder: str | None = _field(None, "submitit's pickles and logs (default: <sweep>/.submitit; shared filesystem)")
    wait: bool = _field(
        False, "wait for the array to end, then print the table (default: submit and return)", "store_true"
    )
    poll_s: float = _field(30.0, "with wait: seconds between checks of the jobs", float)
    cluster: str = _field("slurm", "'slurm', or 'local' to run the tasks as local processes (testing)")
    additional: dict = _field({}, "extra #SBATCH parameters, e.g. {'mail-type': 'END'} (gin only)", flag=False)


@dataclasses.dataclass
class RaySettings:
    """One Ray task per run, on the cluster at `address` or on a local one the launcher starts."""

    address: str | None = _field(
        None, "Ray cluster address, e.g. 'auto' or 'ray://head:10001' (default: start a local cluster)"
    )
    num_cpus: float = _field(1.0, "CPUs per run (the task's resource request)", float)
    num_gpus: float = _field(0.0, "GPUs per run", float)
    memory_gb: float | None = _field(None, "memory per run in GB (the task's resource request)", float)
    max_retries: int = _field(3, "times Ray reruns a run whose worker died (it resumes from its checkpoints)", int)
    local_cpus: int | None = _field(None, "CPUs of the local cluster the launcher starts (default: all)", int)


SETTINGS = {"slurm": SlurmSettings, "ray": RaySettings}


@gin.configurable("SlurmLauncher")
def slurm_launcher(**settings) -> dict[str, Any]:
    """The gin face of SlurmSettings: any of its fields may be bound."""
    return settings


@gin.configurable("RayLauncher")
def ray_launcher(**settings) -> dict[str, Any]:
    """The gin face of RaySettings: any of its fields may be bound."""
    return settings


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--slurm_<field> and --ray_<field> for every field that has a flag; unset flags stay None."""
    for kind, cls in SETTINGS.items():
        group = parser.add_argument_group(f"--launcher={kind}", cls.__doc__)
        for f in dataclasses.fields(cls):
            meta = f.metadata
            if not meta["flag"]:
                continue
            name, default = f"--{kind}_{f.name}", f"(default: {_default(f)})"
            if meta["kind"] in ("append", "store_true"):
                group.add_argument(name, action=meta["kind"], default=None, help=f"{meta['help']}")
            else:
                group.add_argument(
                    name, type=meta["kind"], default=None, metavar=f.name.upper(), help=f"{meta['help']} {default}"
                )


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default_factory is dataclasses.MISSING else f.default_factory()


def is_launcher_binding(binding: str) -> bool:
    """`SlurmLauncher.x = ...` / `RayLauncher.x = ...`: for the launcher, never for the runs."""
    head = binding.lstrip().split("=", 1)[0].strip()
    return any(head.startswith(f"{name}.") for name in GIN_NAMES.values())


def load(
    kind: str, args: argparse.Namespace | None = None, gin_files: Sequence[str] = (), bindings: Sequence[str] = ()
) -> SlurmSettings | RaySettings:
    """The settings of launcher `kind`: defaults, then gin files and bindings, then flags."""
    from t5explore.sweep import fingerprint

    cls = SETTINGS[kind]
    with fingerprint.isolated_gin():
        config.add_search_paths()
        try:
            for gin_file in gin_files:
                gin.parse_config_file(config.resolve_gin_file(gin_file))
            for b in bindings:
                gin.parse_config(b)
        except ConfigError:
            raise
        except Exception as e:  # gin raises several types
            raise ConfigError(f"launcher gin config: {e}") from e
        values = dict((slurm_launcher if kind == "slurm" else ray_launcher)())
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{GIN_NAMES[kind]} has no setting {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for f in dataclasses.fields(cls):
        flag = getattr(args, f"{kind}_{f.name}", None) if args is not None else None
        if flag is not None:
            values[f.name] = flag
    return cls(**values)
