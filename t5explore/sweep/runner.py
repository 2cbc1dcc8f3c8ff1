"""Run a sweep: skip what is done, resume what was interrupted, isolate failures, share caches, show progress.

Any number of workers may run the same sweep at once on a shared filesystem (e.g. a Slurm array with
`--shard=$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`, or the same command on several machines): each run
is claimed atomically before it starts (claim.py), so no run is ever executed twice at the same time.

The executor is injectable: `executor(run_dir, gin_files, bindings, metadata) -> dict` must write
`result.json` atomically when (and only when) the run completed, resume from whatever checkpoints it left in
`run_dir`, and raise on failure. The default is `t5explore.train.run.execute`; the environment variable
`T5EXPLORE_SWEEP_EXECUTOR=module:function` (or `path/to/file.py:function`) swaps it, which is how tests
drive a real `t5explore sweep` subprocess with a cheap fake.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import importlib
import importlib.util
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from t5explore import io_utils
from t5explore.config import ConfigError
from t5explore.sweep import claim, rundir
from t5explore.sweep.grid import RunSpec, SweepSpec, load_sweep

EXECUTOR_ENV = "T5EXPLORE_SWEEP_EXECUTOR"
CACHE_ENV = "T5EXPLORE_CACHE"
Executor = Callable[[str, Sequence[str], Sequence[str], dict], Any]


@dataclasses.dataclass
class SweepOutcome:
    sweep: SweepSpec
    sweep_dir: Path
    selected: list[RunSpec]
    states: dict[str, str] = dataclasses.field(default_factory=dict)  # run -> done/ran/failed/busy
    table: str | None = None

    @property
    def failed(self) -> list[str]:
        return [n for n, s in self.states.items() if s == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' with 0 <= i < N."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard={text!r}: expected i/N, e.g. --shard=0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard={text!r}: need 0 <= i < N")
    return i, n


def select_runs(runs: Sequence[RunSpec], only: str | None = None, shard: str | tuple[int, int] | None = None
                ) -> list[RunSpec]:
    """Runs matching the --only glob, then every N-th of them by name (shard i/N), in sweep order."""
    chosen = [r for r in runs if only is None or fnmatch.fnmatchcase(r.name, only)]
    if shard is not None:
        i, n = parse_shard(shard) if isinstance(shard, str) else shard
        mine = {r.name for k, r in enumerate(sorted(chosen, key=lambda r: r.name)) if k % n == i}
        chosen = [r for r in chosen if r.name in mine]
    return chosen


def resolve_executor(executor: Executor | str | None = None) -> Executor:
    """A callable, a 'module:function' / 'file.py:function' string, $T5EXPLORE_SWEEP_EXECUTOR, or train.run."""
    executor = executor or os.environ.get(EXECUTOR_ENV) or "t5explore.train.run:execute"
    if callable(executor):
        return executor
    module_name, _, func = executor.partition(":")
    if not func:
        raise ConfigError(f"executor {executor!r} must be 'module:function' ({EXECUTOR_ENV})")
    if module_name.endswith(".py"):
        spec = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
        if spec is None or spec.loader is None:
            raise ConfigError(f"executor file not found: {module_name} ({EXECUTOR_ENV})")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    try:
        return getattr(module, func)
    except AttributeError:
        raise ConfigError(f"executor {executor!r}: {module_name} has no {func}") from None


@contextlib.contextmanager
def shared_caches(results_dir: Path):
    """One vocab/token-store cache and one JAX compilation cache per results dir, restored afterwards.

    Thresholds are lowered so the many small CPU compiles of a tiny sweep are cached too: runs of the same
    shapes (every run of a table, usually) then load executables instead of recompiling.
    """
    cache_root = Path(results_dir) / rundir.CACHE_DIR
    old_env = os.environ.get(CACHE_ENV)
    if not old_env:
        os.environ[CACHE_ENV] = str(cache_root)
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    wanted: dict[str, Any] = {"jax_persistent_cache_min_compile_time_secs": 0.0,
                              "jax_persistent_cache_min_entry_size_bytes": -1}
    if not jax.config.jax_compilation_cache_dir:
        wanted["jax_compilation_cache_dir"] = str(cache_root / "jax_compilation")
    old = {k: getattr(jax.config, k) for k in wanted}
    for k, v in wanted.items():
        jax.config.update(k, v)
    compilation_cache.reset_cache()  # re-read the settings at the next compile
    try:
        yield
    finally:
        for k, v in old.items():
            jax.config.update(k, v)
        compilation_cache.reset_cache()
        if not old_env:
            os.environ.pop(CACHE_ENV, None)


def run_sweep(sweep_file: str, results_dir: str | os.PathLike, overrides: Sequence[str] = (), only: str | None = None,
              shard: str | tuple[int, int] | None = None, dry_run: bool = False, executor: Executor | str | None = None,
              gin_files: Sequence[str] = (), stale_after: float = claim.DEFAULT_STALE_AFTER_S,
              out: TextIO | None = None) -> SweepOutcome:
    """Expand `sweep_file` and run the selected runs under `results_dir/<sweep name>/`."""
    out = out or sys.stdout
    spec = load_sweep(sweep_file, overrides, gin_files)
    selected = select_runs(spec.runs, only, shard)
    sdir = rundir.sweep_dir(results_dir, spec.name)
    outcome = SweepOutcome(spec, sdir, selected)
    if dry_run:
        print_dry_run(spec, selected, out)
        return outcome
    if not selected:
        print(f"sweep {spec.name}: no run matches --only={only} --shard={shard}", file=out)
        return outcome
    run = resolve_executor(executor)
    sdir.mkdir(parents=True, exist_ok=True)
    io_utils.atomic_write_json(sdir / rundir.SWEEP_FILE, sweep_json(spec))
    progress = Progress(len(selected), out)
    with shared_caches(Path(results_dir)):
        for r in selected:
            state = run_one(r, spec.name, rundir.run_dir(sdir, r.name), run, stale_after, progress)
            outcome.states[r.name] = state
    progress.finish(outcome)
    outcome.table = write_table(sdir, out)
    return outcome


def sweep_json(spec: SweepSpec) -> dict[str, Any]:
    """sweep.json: the report reads `baseline` as the ★ row's display name (what result.json calls variant)."""
    d = spec.to_json()
    star = next((r for r in spec.runs if r.baseline), None)
    d["baseline_name"] = spec.baseline
    d["baseline"] = star.variant if star else None
    return d


def run_one(r: RunSpec, sweep_name: str, path: Path, executor: Executor, stale_after: float,
            progress: "Progress") -> str:
    """Claim, execute, record. Returns 'done' (already), 'ran', 'failed' or 'busy' (another worker has it)."""
    if (path / rundir.RESULT_FILE).exists():
        progress.skipped(r.name, "done")
        return "done"
    held = claim.try_claim(path, stale_after)
    if held is None:
        progress.skipped(r.name, "running elsewhere")
        return "busy"
    with held:
        if (path / rundir.RESULT_FILE).exists():  # finished by another worker between the check and the claim
            progress.skipped(r.name, "done")
            return "done"
        rundir.clear_failed(path)
        resumed = (path / "checkpoints").exists()
        progress.start(r, resumed)
        t0 = time.time()
        try:
            result = executor(str(path), list(r.gin_files), list(r.bindings), r.metadata(sweep_name))
            problem = _result_problem(path, result)
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - a run's failure must not end the sweep
            problem = traceback.format_exc()
        elapsed = time.time() - t0
        if problem:
            rundir.write_failed(path, f"run {r.name} of sweep {sweep_name} failed after {elapsed:.1f}s\n{problem}")
            progress.ended(r.name, "failed", elapsed, problem.strip().splitlines()[-1])
            return "failed"
        progress.ended(r.name, "ran", elapsed)
        return "ran"


def _result_problem(path: Path, result: Any) -> str | None:
    """A run that 'finished' without result.json or with a NaN loss is a failure, not a result."""
    if not (path / rundir.RESULT_FILE).exists():
        return "the executor returned without writing result.json"
    written = io_utils.read_json(path / rundir.RESULT_FILE)
    pre = written.get("pretrain") or {} if isinstance(written, dict) else {}
    bad = {k: v for k, v in pre.items() if k.endswith("loss") and isinstance(v, float) and not math.isfinite(v)}
    if bad:
        os.replace(path / rundir.RESULT_FILE, path / "result.nonfinite.json")
        return f"non-finite pretraining loss {bad} (result moved to result.nonfinite.json)"
    return None


def print_dry_run(spec: SweepSpec, selected: Sequence[RunSpec], out: TextIO) -> None:
    print(f"sweep {spec.name}: {len(selected)} of {len(spec.runs)} runs ({spec.sweep_file})", file=out)
    for r in selected:
        star = " ★" if r.baseline else ""
        print(f"\n{r.name}  [{r.variant}{star}]", file=out)
        for f in r.gin_files[1:]:
            print(f"    include {f}", file=out)
        for b in r.bindings:
            print(f"    {b}", file=out)


def write_table(sdir: Path, out: TextIO) -> str | None:
    """Print and save the comparison table via the report room, if it is installed."""
    try:
        from t5explore.report.tables import markdown_table
    except ImportError as e:
        print(f"(no comparison table: t5explore.report.tables is not available: {e})", file=out)
        return None
    try:
        table = markdown_table(sdir)
    except Exception as e:  # noqa: BLE001 - the runs are safe on disk; the table can be made later
        print(f"(no comparison table: {type(e).__name__}: {e}; try `t5explore table {sdir}`)", file=out)
        return None
    io_utils.atomic_write_text(sdir / rundir.TABLE_FILE, table + "\n")
    print(f"\n{table}\n(saved to {sdir / rundir.TABLE_FILE})", file=out)
    return table


class Progress:
    """Overall progress: runs finished / total, elapsed time, ETA from the runs this worker executed."""

    def __init__(self, total: int, out: TextIO):
        self.total, self.out, self.t0 = total, out, time.time()
        self.finished = 0
        self.durations: list[float] = []

    def _line(self, text: str) -> None:
        elapsed = time.time() - self.t0
        left = self.total - self.finished
        eta = f"{_hms(left * sum(self.durations) / len(self.durations))}" if self.durations and left else "?"
        if not left:
            eta = "0s"
        print(f"[sweep {self.finished}/{self.total} | elapsed {_hms(elapsed)} | ETA {eta}] {text}",
              file=self.out, flush=True)

    def skipped(self, name: str, why: str) -> None:
        self.finished += 1
        self._line(f"{name}: {why}, skipped")

    def start(self, r: RunSpec, resumed: bool) -> None:
        self._line(f"{'resuming' if resumed else 'starting'} {r.name} [{r.variant}]")

    def ended(self, name: str, state: str, elapsed: float, why: str = "") -> None:
        self.finished += 1
        self.durations.append(elapsed)
        self._line(f"{name}: {'FAILED: ' + why if state == 'failed' else 'done'} in {_hms(elapsed)}")

    def finish(self, outcome: SweepOutcome) -> None:
        counts = {s: list(outcome.states.values()).count(s) for s in ("ran", "done", "failed", "busy")}
        print(f"sweep {outcome.sweep.name}: {counts['ran']} ran, {counts['done']} already done, "
              f"{counts['failed']} failed, {counts['busy']} running elsewhere; wall {_hms(time.time() - self.t0)}",
              file=self.out, flush=True)
        for name in outcome.failed:
            print(f"  FAILED {name}: see {outcome.sweep_dir / name / rundir.FAILED_FILE}", file=self.out)


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else (
        f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")
