"""Multi-process (multi-host) runs: when `jax.distributed.initialize` runs, which rows a process feeds, who writes.

One run may span several processes (one per host, or one per GPU): every process runs the same program on
its own devices, and the mesh spans all of them. `t5explore train` initialises the distributed system
before any JAX computation when

  * Slurm started several tasks of it (`srun -n N t5explore train ...`: SLURM_NTASKS > 1 with SLURM_PROCID),
  * Open MPI did (`mpirun -n N t5explore train ...`: OMPI_COMM_WORLD_SIZE > 1), or
  * gin names a coordinator: `--gin.Distributed.coordinator_address="'10.0.0.1:1234'"
    --gin.Distributed.num_processes=2 --gin.Distributed.process_id=0` (1 on the other host).

Slurm and Open MPI need no bindings (jax reads their variables). `Distributed.*` says where a run executes,
not what it computes, so it is not part of a run's config fingerprint.

`t5explore sweep` never initialises: several tasks of a sweep are independent workers that claim runs
(`srun -n 4 t5explore sweep ...`), and a sweep with Distributed bindings is refused.

Data: by default every process computes the same global batch (the stream is a pure function of the seed and
the batch index) and transfers only the rows its devices hold, so a run's numbers do not depend on how many
processes it uses. A `ProcessLocalBatch` holds only this process's rows instead (PretrainStream with
process_local=True: each process corrupts only its rows, with per-host randomness).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

import gin

from t5explore.config import ConfigError, parse_gin
from t5explore.run_config import Finetune


@gin.configurable("Distributed")
@dataclasses.dataclass(frozen=True)
class Distributed:
    """jax.distributed.initialize arguments; all None = from the launcher's environment (Slurm, Open MPI)."""

    coordinator_address: str | None = None  # 'host:port' of process 0, reachable from every process
    num_processes: int | None = None
    process_id: int | None = None
    local_device_ids: Sequence[int] | None = None  # devices this process drives (None: jax's default)
    initialization_timeout: int = 300  # seconds to wait for every process to join

    def __post_init__(self):
        explicit = (self.num_processes, self.process_id)
        if self.coordinator_address is not None:
            if not isinstance(self.coordinator_address, str) or ":" not in self.coordinator_address:
                raise ConfigError(
                    f"gin binding Distributed.coordinator_address must be 'host:port', got {self.coordinator_address!r}"
                )
            if any(v is None for v in explicit):
                raise ConfigError(
                    "gin binding Distributed.coordinator_address needs Distributed.num_processes "
                    "and Distributed.process_id too"
                )
        elif any(v is not None for v in explicit):
            raise ConfigError("gin bindings Distributed.num_processes/process_id need Distributed.coordinator_address")
        if self.num_processes is not None and not (isinstance(self.num_processes, int) and self.num_processes >= 1):
            raise ConfigError(f"gin binding Distributed.num_processes must be an int >= 1, got {self.num_processes!r}")
        if self.process_id is not None and not (
            isinstance(self.process_id, int)
            and self.num_processes is not None
            and 0 <= self.process_id < self.num_processes
        ):
            raise ConfigError(
                f"gin binding Distributed.process_id must be in [0, {self.num_processes}), got {self.process_id!r}"
            )


def _env_int(env: Mapping[str, str], name: str) -> int:
    value = env.get(name, "1").strip() or "1"
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def launcher(env: Mapping[str, str] = os.environ) -> str | None:
    """'slurm' or 'openmpi' when that launcher started several processes of this command, else None."""
    if _env_int(env, "SLURM_NTASKS") > 1 and "SLURM_PROCID" in env:
        return "slurm"
    if _env_int(env, "OMPI_COMM_WORLD_SIZE") > 1:
        return "openmpi"
    return None


def initialize(settings: Distributed | None = None, env: Mapping[str, str] = os.environ) -> bool:
    """jax.distributed.initialize when `settings` name a coordinator or a launcher started several processes;
    returns whether the run is multi-process. Must run before any JAX computation; idempotent."""
    import jax

    if jax.distributed.is_initialized():
        return True
    settings = settings if settings is not None else Distributed()
    if settings.coordinator_address is None and launcher(env) is None:
        return False
    kwargs = {k: v for k, v in dataclasses.asdict(settings).items() if v is not None}
    if kwargs.get("local_device_ids") is not None:
        kwargs["local_device_ids"] = list(kwargs["local_device_ids"])
    jax.distributed.initialize(**kwargs)
    return True


def setup_command(command: str, gin_files: Sequence[str], gin_bindings: Sequence[str]) -> bool:
    """What the CLI runs before a compiling command: for `train`, parse gin and initialise (refusing what
    is not multi-process yet); for `sweep`, refuse Distributed bindings. Returns whether multi-process."""
    if command == "sweep":
        if any(b.strip().startswith("Distributed.") for b in gin_bindings):
            raise ConfigError(
                "t5explore sweep does not run multi-process (its workers claim runs independently); "
                "run one multi-process `t5explore train` per run instead"
            )
        return False
    if command != "train" or (not gin_files and not gin_bindings):
        return False
    parse_gin(gin_files, gin_bindings)
    multi = initialize(Distributed())
    if multi:
        check_supported()
    return multi


def check_supported() -> None:
    """Refuse, before any step, what a multi-process run cannot do yet: fine-tuning and its evaluation."""
    import jax

    if jax.process_count() == 1:
        return
    if Finetune().tasks:
        raise ConfigError(
            f"this run has {jax.process_count()} processes, and multi-process runs pretrain only: "
            "bind Finetune.tasks = [] and fine-tune from the checkpoint in one process"
        )


def process_index() -> int:
    import jax

    return jax.process_index()


def is_primary() -> bool:
    """True in the one process that writes a run's files (result.json, metrics, config.gin, predictions)."""
    return process_index() == 0


class ProcessLocalBatch(dict):
    """Feature arrays holding only this process's rows of a global batch (see the module docstring)."""


def process_rows(sharding, global_rows: int) -> tuple[int, int]:
    """(first, stop) of the rows of a [global_rows, ...] array that this process's devices hold under
    `sharding` (split along its first axis). Raises if they are not one contiguous block."""
    indices = sharding.addressable_devices_indices_map((global_rows,)).values()
    rows = sorted({(s[0].start or 0, global_rows if s[0].stop is None else s[0].stop) for s in indices})
    first, stop = rows[0][0], max(r[1] for r in rows)
    covered = sum(b - a for a, b in rows)
    if covered != stop - first:
        raise ValueError(f"this process's rows of the batch are not one block: {rows}")
    return first, stop
