"""Run a sweep: skip what is done, resume what was interrupted, isolate failures, share caches, show progress.

Any number of workers may run the same sweep at once on a shared filesystem (e.g. a Slurm array with
`--shard=$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`, or the same command on several machines): each run
is claimed atomically before it starts (claim.py), so no run is ever executed twice at the same time.

The executor is injectable: `executor(run_dir, gin_files, bindings, metadata) -> dict` must write
`result.json` atomically when (and only when) the run completed, resume from whatever checkpoints it left in
`run_dir`, and raise on failure. The default is `t5explore.train.run.execute`; the environment variable
`T5EXPLORE_SWEEP_EXECUTOR=module:function` (or `path/to/file.py:function`) swaps it, which is how tests
drive a real `t5explore sweep` subprocess with a cheap fake.

Stale state is never mixed with a new config: before anything executes, every run of the sweep (not only the
selected ones) is fingerprinted (fingerprint.py, numerics version included) and compared with what its
directory recorded. A finished or checkpointed run made under another config stops the sweep with one
ConfigError naming the changed bindings, unless `on_changed` says what to do: 'rerun' moves the old run to
`<sweep>/.stale/`, 'force' deletes it. Two sweeps of different configs started together in one directory are
caught too: each run, once claimed and its fingerprint recorded, checks the directory again before it starts
(a run that another worker holds under another config stops the sweep, whatever `on_changed` says). A run
whose config an earlier run in the same results directory already computed is copied, not trained
(sharing.py). A run whose result.json does not parse (a truncated file) is not done: it runs again, from its
checkpoints, and the unreadable file is kept beside it as result.corrupt.json.

sweep.json records the expanded grid as data for `status` and the report: run names, rows, each run's
fingerprint, and paths relative to the results directory (so that a copied directory reads the same).
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from t5explore import compile_cache, config, io_utils, run_layout
from t5explore.config import ConfigError
from t5explore.errors import one_line
from t5explore.sweep import claim, fingerprint, identical_rows, rundir, sharing, stale
from t5explore.sweep import dry_run as dry_run_
from t5explore.sweep.fingerprint import Fingerprint
from t5explore.sweep.grid import RunSpec, SweepSpec, load_sweep
from t5explore.sweep.progress import Progress

EXECUTOR_ENV = "T5EXPLORE_SWEEP_EXECUTOR"
CACHE_ENV = "T5EXPLORE_CACHE"
Executor = Callable[[str, Sequence[str], Sequence[str], dict], Any]
ON_CHANGED = (None, "rerun", "force")  # for runs made under another config: refuse / keep aside / delete
# launcher(selected runs, their fingerprints, context, executor as given) -> {run: state} (t5explore.sweep.launch)
Launcher = Callable[[Sequence[RunSpec], dict[str, Fingerprint], "RunContext", Any], dict[str, str]]


@dataclasses.dataclass
class SweepOutcome:
    sweep: SweepSpec
    sweep_dir: Path
    selected: list[RunSpec]
    states: dict[str, str] = dataclasses.field(default_factory=dict)  # run -> done/ran/shared/failed/busy
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


def select_runs(
    runs: Sequence[RunSpec], only: str | None = None, shard: str | tuple[int, int] | None = None
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


@dataclasses.dataclass
class RunContext:
    """What every run of one `run_sweep` call shares."""

    sweep_name: str
    results_dir: Path
    executor: Executor
    stale_after: float
    progress: Progress
    on_changed: str | None = None  # one of ON_CHANGED
    on_start: Callable[[Path], None] | None = None  # called under the claim before a run starts (launch.json)
    expected: dict[str, Fingerprint] | None = None  # every run's fingerprint, to recheck the directory (run_one)


@contextlib.contextmanager
def shared_caches(results_dir: Path):
    """One vocab/token-store cache per results dir, and the persistent JAX compilation cache
    (t5explore.compile_cache: the user's, or this results dir's when none is configured), restored afterwards."""
    cache_root = Path(results_dir) / run_layout.CACHE_DIR
    old_env = os.environ.get(CACHE_ENV)
    if not old_env:
        os.environ[CACHE_ENV] = str(cache_root)
    try:
        with compile_cache.enabled(cache_root / "jax_compilation"):
            yield
    finally:
        if not old_env:
            os.environ.pop(CACHE_ENV, None)


def run_sweep(
    sweep_file: str,
    results_dir: str | os.PathLike,
    overrides: Sequence[str] = (),
    only: str | None = None,
    shard: str | tuple[int, int] | None = None,
    dry_run: bool = False,
    executor: Executor | str | None = None,
    gin_files: Sequence[str] = (),
    stale_after: float = claim.DEFAULT_STALE_AFTER_S,
    out: TextIO | None = None,
    on_changed: str | None = None,
    launcher: Launcher | None = None,
) -> SweepOutcome:
    """Expand `sweep_file` and run the selected runs under `results_dir/<sweep name>/`.

    `on_changed` decides about runs made under another config (see the module docstring). `launcher` (from
    t5explore.sweep.launch) runs each run's `run_one` elsewhere (Slurm, Ray) instead of in this process."""
    if on_changed not in ON_CHANGED:
        raise ValueError(f"on_changed must be one of {ON_CHANGED}, got {on_changed!r}")
    out = out or sys.stdout
    spec = load_sweep(sweep_file, overrides, gin_files)
    selected = select_runs(spec.runs, only, shard)
    sdir = rundir.sweep_dir(results_dir, spec.name)
    outcome = SweepOutcome(spec, sdir, selected)
    run = resolve_executor(executor)  # first: an executor module may register gin configurables
    prints = stale.fingerprints(spec.runs)  # every run's gin parsed and type-checked, --dry_run included
    for line in identical_rows.warnings(spec.name, spec.runs):  # rows that coincide at this scale
        print(line, file=out, flush=True)
    if dry_run:  # states and a cost estimate from the runs that finished here (dry_run.py); writes nothing
        dry_run_.print_dry_run(spec, selected, out, results_dir, prints, stale_after)
        return outcome
    if not selected:
        print(f"sweep {spec.name}: no run matches --only={only} --shard={shard}", file=out)
        return outcome
    changed = stale.changed_runs(sdir, spec.runs, prints)  # every run: the directory must hold one config
    if changed and on_changed is None:
        raise ConfigError(stale.changed_message(spec.name, sdir, changed))
    sdir.mkdir(parents=True, exist_ok=True)
    meta = sweep_json(spec, overrides, gin_files, results_dir, prints)
    io_utils.atomic_write_json(sdir / run_layout.SWEEP_FILE, meta)
    ctx = RunContext(spec.name, Path(results_dir), run, stale_after, Progress(len(selected), out), on_changed)
    ctx.expected = prints
    if launcher is not None:  # claims, resumes and failure records stay in run_one and the run directories
        outcome.states.update(launcher(selected, prints, ctx, executor or os.environ.get(EXECUTOR_ENV)))
        if "submitted" in outcome.states.values():
            return outcome  # queued: `t5explore status` follows the runs
    else:
        with shared_caches(Path(results_dir)):
            for r in selected:
                outcome.states[r.name] = run_one(r, rundir.run_dir(sdir, r.name), prints[r.name], ctx)
    ctx.progress.finish(outcome)
    outcome.table = write_table(sdir, out)
    return outcome


def sweep_json(
    spec: SweepSpec,
    overrides: Sequence[str] = (),
    gin_files: Sequence[str] = (),
    results_dir: str | os.PathLike = ".",
    prints: dict[str, Fingerprint] | None = None,
) -> dict[str, Any]:
    """sweep.json, data for `status` and the report: the report reads `baseline` as the ★ row's display name
    (what result.json calls variant); `status` reads the run names and each run's `fingerprint`.

    Paths are relative to the results directory; `invocation` (the command line's gin files and bindings)
    is a record for people: nothing parses the gin files sweep.json names."""
    d = spec.to_json()
    d["sweep_file"] = _relative(spec.sweep_file, results_dir)
    for run in d["runs"]:
        run["gin_files"] = [_relative(f, results_dir) for f in run["gin_files"]]
        if prints and run["run"] in prints:
            run["fingerprint"] = prints[run["run"]].digest
    d["invocation"] = {"gin_files": [_relative(f, results_dir) for f in gin_files], "overrides": list(overrides)}
    star = next((r for r in spec.runs if r.baseline), None)
    d["baseline_name"] = spec.baseline
    d["baseline"] = star.variant if star else None
    return d


def _relative(gin_file: str, results_dir: str | os.PathLike) -> str:
    """A gin file's path relative to the results directory (as given when it does not resolve)."""
    try:
        return os.path.relpath(os.path.abspath(config.resolve_gin_file(gin_file)), os.path.abspath(results_dir))
    except (ConfigError, ValueError):
        return gin_file


def run_one(r: RunSpec, path: Path, fp: Fingerprint, ctx: RunContext) -> str:
    """Claim, execute (or copy), record. Returns 'done' (already), 'ran', 'shared', 'failed' or 'busy'."""
    if _finished(path, fp):
        sharing.record_if_missing(ctx.results_dir, fp, ctx.sweep_name, r.name)
        ctx.progress.skipped(r.name, "done")
        return "done"
    held = claim.try_claim(path, ctx.stale_after)
    if held is None:
        ctx.progress.skipped(r.name, "running elsewhere")
        return "busy"
    with held:
        _make_room(r, path, fp, ctx)
        if _finished(path, fp):  # finished by another worker between the check and the claim
            ctx.progress.skipped(r.name, "done")
            return "done"
        _set_aside_corrupt(r, path, ctx)
        rundir.clear_failed(path)
        fingerprint.write(path, fp)
        _recheck_directory(r, path, ctx)
        if ctx.on_start is not None:
            ctx.on_start(path)
        source = sharing.find_source(ctx.results_dir, fp, exclude=path)
        if source is not None and _share(r, path, fp, source, ctx):
            return "shared"
        return _execute(r, path, fp, ctx)


def _finished(path: Path, fp: Fingerprint) -> bool:
    """A readable result.json, recorded under this config (or before fingerprints existed, when nobody can
    tell). A truncated one is no result: the run runs again."""
    if not (path / run_layout.RESULT_FILE).exists() or rundir.result_problem(path):
        return False
    recorded = fingerprint.read(path)
    return recorded is None or recorded.digest == fp.digest


def _set_aside_corrupt(r: RunSpec, path: Path, ctx: RunContext) -> None:
    """Under the claim: an unreadable result.json is kept as result.corrupt.json and the run goes on from its
    checkpoints (its executor resumes them)."""
    problem = rundir.result_problem(path) if (path / run_layout.RESULT_FILE).exists() else None
    if problem:
        os.replace(path / run_layout.RESULT_FILE, path / run_layout.CORRUPT_RESULT_FILE)
        ctx.progress.note(f"{r.name}: {problem} (kept as {run_layout.CORRUPT_RESULT_FILE}); running it again")


def _recheck_directory(r: RunSpec, path: Path, ctx: RunContext) -> None:
    """Under the claim, our fingerprint recorded: one last look at every run of the directory before this one
    starts. Two sweeps of different configs started together each passed the up-front check; whichever looks
    last sees the other's recorded fingerprint and stops here, before training."""
    if ctx.expected is None:  # a remote task: its driver checked the directory up front
        return
    live, changed = stale.conflicts(path.parent, ctx.expected, exclude=r.name, stale_after=ctx.stale_after)
    if live:
        name, changes = live[0]
        raise ConfigError(
            f"run {name} of sweep {ctx.sweep_name} is being run right now under a different config "
            f"({fingerprint.describe(changes)}): another sweep with other bindings uses {path.parent}; "
            "wait for it to end or stop it, then run this sweep again (or use another --results_dir)"
        )
    if changed and ctx.on_changed is None:
        raise ConfigError(stale.changed_message(ctx.sweep_name, path.parent, changed))


def _make_room(r: RunSpec, path: Path, fp: Fingerprint, ctx: RunContext) -> None:
    """Under the claim: a run made under another config is moved aside or deleted, as asked, or refused."""
    changes = fingerprint.changes(path, fp)
    if not changes:
        return
    if ctx.on_changed is None:  # changed by another worker after the up-front check
        raise ConfigError(stale.changed_message(ctx.sweep_name, path.parent, [(r.name, changes)]))
    aside = rundir.set_aside(path, delete=ctx.on_changed == "force")
    where = f"old run moved to {aside}" if aside else "old run deleted"
    ctx.progress.note(f"{r.name}: config changed ({fingerprint.describe(changes)}); {where}")


def _share(r: RunSpec, path: Path, fp: Fingerprint, source: tuple[str, Path], ctx: RunContext) -> bool:
    """Copy an identical complete run into `path`; if that fails (the source moved meanwhile), say so,
    clear the partial copy and return False so that the run is trained instead."""
    label, source_dir = source
    try:
        sharing.materialise(source_dir, label, path, r.metadata(ctx.sweep_name))
    except OSError as e:
        rundir.set_aside(path, delete=True)
        fingerprint.write(path, fp)
        ctx.progress.note(f"{r.name}: could not copy it from {label} ({e}); training it instead")
        return False
    ctx.progress.shared(r.name, label)
    return True


def _execute(r: RunSpec, path: Path, fp: Fingerprint, ctx: RunContext) -> str:
    """Run the executor on a claimed run directory; a failure is recorded in FAILED, not raised."""
    ctx.progress.start(r, resumed=(path / run_layout.CHECKPOINTS_DIR).exists())
    t0 = time.time()
    try:
        result = ctx.executor(str(path), list(r.gin_files), list(r.bindings), r.metadata(ctx.sweep_name))
        problem = _result_problem(path, result)
    except (KeyboardInterrupt, SystemExit):  # asked to stop (e.g. submitit's requeue on a scheduler's
        raise  # signal): not the run's failure; the claim is released and the checkpoints resume it
    except BaseException as e:  # noqa: BLE001 - a run's failure must not end the sweep
        problem = traceback.format_exc().rstrip()
        if problem.splitlines()[-1] != one_line(e):  # the last line is the reason status and tables show
            problem += "\n" + one_line(e)
    elapsed = time.time() - t0
    if problem:
        rundir.write_failed(path, f"run {r.name} of sweep {ctx.sweep_name} failed after {elapsed:.1f}s\n{problem}")
        ctx.progress.ended(r.name, "failed", elapsed, problem.strip().splitlines()[-1])
        return "failed"
    sharing.record(ctx.results_dir, fp, ctx.sweep_name, r.name)
    ctx.progress.ended(r.name, "ran", elapsed)
    return "ran"


def _result_problem(path: Path, result: Any) -> str | None:
    """A run that 'finished' without result.json or with a NaN loss is a failure, not a result."""
    if not (path / run_layout.RESULT_FILE).exists():
        return "the executor returned without writing result.json"
    written = io_utils.read_json(path / run_layout.RESULT_FILE)
    pre = written.get("pretrain") or {} if isinstance(written, dict) else {}
    bad = {k: v for k, v in pre.items() if k.endswith("loss") and isinstance(v, float) and not math.isfinite(v)}
    if bad:
        os.replace(path / run_layout.RESULT_FILE, path / run_layout.NONFINITE_RESULT_FILE)
        return f"non-finite pretraining loss {bad} (result moved to {run_layout.NONFINITE_RESULT_FILE})"
    return None


def write_table(sdir: Path, out: TextIO) -> str | None:
    """Print and save the comparison table via t5explore.report, if it is installed."""
    try:
        from t5explore.report.sweep_tables import markdown_table
    except ImportError as e:
        print(f"(no comparison table: t5explore.report.sweep_tables is not available: {e})", file=out)
        return None
    try:
        table = markdown_table(sdir)
    except Exception as e:  # noqa: BLE001 - the runs are safe on disk; the table can be made later
        print(f"(no comparison table: {type(e).__name__}: {e}; try `t5explore table {sdir}`)", file=out)
        return None
    io_utils.atomic_write_text(sdir / run_layout.TABLE_FILE, table + "\n")
    print(f"\n{table}\n(saved to {sdir / run_layout.TABLE_FILE})", file=out)
    return table
