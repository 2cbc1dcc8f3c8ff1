"""`t5explore status DIR`: what every run of one sweep (or of every sweep under DIR) is doing.

A results directory is data: status reads JSON and text files only (sweep.json, fingerprint.json, CLAIM,
FAILED, metrics.jsonl, config.gin as text) and never parses gin, imports a module or unpickles anything that
came from it; a copied or downloaded directory cannot run code. The runs a sweep should have are the names in
sweep.json's `runs` list (written by the runner as data); runs listed there but without a directory yet are
shown as pending, so the counts cover the whole sweep even before (or while) workers on other machines start
their shards.

A run is shown `stale` when it holds a result or checkpoints that `t5explore sweep` would refuse: made by code
of another numerics version (t5explore/numerics.py), or under a config other than the one the last sweep of
the directory recorded for it in sweep.json. Given `--sweep_file FILE` (and gin flags), status expands that
file, which the user named, and names the changed bindings of every stale run (stale.py).

A run whose result.json does not parse (a truncated file) is shown `corrupt`; `t5explore sweep` reruns it.

A run that is running, pending after an interruption, or failed also says how far it got, from the steps in its
metrics.jsonl and the totals in its config.gin: `pretrain 4/6`, `finetune task 2/3 glue_rte step 200/500` or
`finetune mixture step 200/500`.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from t5explore.report.results import find_sweep_dirs, is_run_dir, subdirs
from t5explore.run_layout import CONFIG_FILE, METRICS_FILE
from t5explore.sweep import claim, rundir, stale
from t5explore.sweep.grid import SweepSpec, load_sweep
from t5explore.sweep.launch import task as launch_task
from t5explore.train.writers import read_metrics

# The report's own search, so `status` and `table` always agree on what a results directory holds.
find_sweeps = find_sweep_dirs


def sweep_states(
    sweep_dir: Path, stale_after: float = claim.DEFAULT_STALE_AFTER_S, changed: dict[str, str] | None = None
) -> list[rundir.RunState]:
    """One RunState per run: planned runs in sweep order, then any other run directory found.

    `changed` ({run: changed bindings}, from stale.py) turns a run that is not running into `stale`."""
    planned = stale.planned_runs(sweep_dir)
    found = sorted(d.name for d in subdirs(sweep_dir) if is_run_dir(d))
    names = planned + [n for n in found if n not in planned]
    subs = launch_task.submissions(sweep_dir)  # read once per sweep
    states = [
        _with_launch(_with_progress(rundir.run_state(sweep_dir / n, stale_after), sweep_dir / n), sweep_dir / n, subs)
        for n in names
    ]
    changed = changed or {}
    return [
        rundir.RunState(s.name, "stale", f"made under another config: {changed[s.name]}")
        if s.name in changed and s.state != "running"
        else s
        for s in states
    ]


def _with_launch(state: rundir.RunState, path: Path, subs: list) -> rundir.RunState:
    """Where a run is when a launcher placed it: 'slurm job 123_4 on node7', 'submitted as ray task ... ago'."""
    if state.state == "done":
        return state
    where = launch_task.describe(path, subs)
    if not where:
        return state
    return rundir.RunState(state.name, state.state, f"{state.detail}; {where}" if state.detail else where)


def _with_progress(state: rundir.RunState, path: Path) -> rundir.RunState:
    if state.state not in ("running", "pending", "failed"):
        return state
    reached = run_progress(path)
    if not reached:
        return state
    detail = f"{state.detail}; at {reached}" if state.detail else f"at {reached}"
    return rundir.RunState(state.name, state.state, detail)


def run_progress(run_dir: Path) -> str:
    """How far a run got: the phase of its last metrics row and the newest step logged in it, out of the totals
    its config.gin gives ('' when nothing is logged)."""
    rows = [r for r in read_metrics(Path(run_dir) / METRICS_FILE) if isinstance(r.get("phase"), str)]
    if not rows:
        return ""
    config = _operative_config(Path(run_dir) / CONFIG_FILE)
    last = rows[-1]["phase"]

    def newest(phases: set[str]) -> Any:
        return max(int(r.get("step") or 0) for r in rows if r["phase"] in phases)

    if last.startswith("pretrain"):
        return f"pretrain {newest({'pretrain', 'pretrain_eval'})}/{config.get('Pretrain.steps', '?')}"
    tasks = list(config.get("Finetune.tasks") or [])
    total, task = config.get("Finetune.steps", "?"), last.partition("/")[2]
    if task == "mixture" or (config.get("Finetune.mode") == "multi_task" and len(tasks) > 1):
        step = newest({"finetune/mixture"} | {f"finetune_eval/{t}" for t in tasks})
        return f"finetune mixture step {step}/{total}"
    k = tasks.index(task) + 1 if task in tasks else "?"
    step = newest({f"finetune/{task}", f"finetune_eval/{task}"})
    return f"finetune task {k}/{len(tasks) or '?'} {task} step {step}/{total}"


def _operative_config(path: Path) -> dict[str, Any]:
    """{'Scope.param': value} of a config.gin (gin's operative config: one binding per line, continued on
    indented lines); values are Python literals where they parse, else their text."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    out: dict[str, Any] = {}
    for m in re.finditer(r"^([A-Za-z_][\w./]*) = (.*(?:\n[ \t].*)*)", text, re.MULTILINE):
        value = m.group(2).replace("\\\n", "\n").strip()
        try:
            out[m.group(1)] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[m.group(1)] = value
    return out


def print_status(
    root: str | os.PathLike,
    out: TextIO,
    stale_after: float = claim.DEFAULT_STALE_AFTER_S,
    sweep_file: str | None = None,
    gin_files: Sequence[str] = (),
    overrides: Sequence[str] = (),
) -> int:
    """Print every sweep's runs. `sweep_file` (with the command line's gin files and overrides): the sweep file
    the user names, expanded to say which bindings of a stale run changed; nothing from DIR is ever parsed."""
    root = Path(root)
    if not root.is_dir():
        print(f"t5explore status: no such directory: {root}", file=sys.stderr)
        return 2
    sweeps = find_sweeps(root)
    if not sweeps:
        print(f"t5explore status: no sweeps under {root}", file=sys.stderr)
        return 2
    spec: SweepSpec | None = load_sweep(sweep_file, overrides, gin_files) if sweep_file else None
    for sdir in sweeps:
        changed = stale.stale_in_sweep_dir(sdir, spec if spec is not None and spec.name == sdir.name else None)
        states = sweep_states(sdir, stale_after, changed)
        width = max([len(s.name) for s in states] + [3])
        print(f"sweep {sdir.name} ({sdir})", file=out)
        print(f"  {'run':<{width}}  {'state':<8} detail", file=out)
        for s in states:
            print(f"  {s.name:<{width}}  {s.state:<8} {s.detail}".rstrip(), file=out)
        counts = ", ".join(f"{sum(s.state == k for s in states)} {k}" for k in rundir.STATES)
        print(f"  {len(states)} runs: {counts}", file=out)
        if changed:
            print(
                "  stale runs are refused by `t5explore sweep` until it is given --rerun_changed "
                "(keeps them in .stale/) or --force (deletes them)",
                file=out,
            )
        if any(s.state == "corrupt" for s in states):
            print("  corrupt runs (an unreadable result.json) are run again by the next `t5explore sweep`", file=out)
        print(file=out)
    return 0
