"""`t5explore status DIR`: what every run of one sweep (or of every sweep under DIR) is doing.

Runs listed in sweep.json but without a directory yet are shown as pending, so the counts cover the whole
sweep even before (or while) workers on other machines start their shards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from t5explore.io_utils import read_json
from t5explore.report.results import find_sweep_dirs, is_run_dir, subdirs
from t5explore.sweep import claim, rundir


# The report's own search, so `status` and `table` always agree on what a results directory holds.
find_sweeps = find_sweep_dirs


def sweep_states(sweep_dir: Path, stale_after: float = claim.DEFAULT_STALE_AFTER_S) -> list[rundir.RunState]:
    """One RunState per run: planned runs in sweep order, then any other run directory found."""
    planned: list[str] = []
    path = sweep_dir / rundir.SWEEP_FILE
    if path.exists():
        planned = [r["run"] for r in read_json(path).get("runs", [])]
    found = sorted(d.name for d in subdirs(sweep_dir) if is_run_dir(d))
    names = planned + [n for n in found if n not in planned]
    return [rundir.run_state(sweep_dir / n, stale_after) for n in names]


def print_status(root: str | os.PathLike, out: TextIO, stale_after: float = claim.DEFAULT_STALE_AFTER_S) -> int:
    root = Path(root)
    if not root.is_dir():
        print(f"t5explore status: no such directory: {root}", file=out)
        return 2
    sweeps = find_sweeps(root)
    if not sweeps:
        print(f"t5explore status: no sweeps under {root}", file=out)
        return 2
    for sdir in sweeps:
        states = sweep_states(sdir, stale_after)
        width = max([len(s.name) for s in states] + [3])
        print(f"sweep {sdir.name} ({sdir})", file=out)
        print(f"  {'run':<{width}}  {'state':<8} detail", file=out)
        for s in states:
            print(f"  {s.name:<{width}}  {s.state:<8} {s.detail}".rstrip(), file=out)
        counts = ", ".join(f"{sum(s.state == k for s in states)} {k}" for k in rundir.STATES)
        print(f"  {len(states)} runs: {counts}\n", file=out)
    return 0
