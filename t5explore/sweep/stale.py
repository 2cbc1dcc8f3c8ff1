"""Runs made under another config than the one their sweep now gives ("stale" runs), found before any run
executes (the runner) or on demand (`t5explore status`).

Why up front: a sweep that finds its third run stale after training two others would leave a results
directory half old, half new. The runner fingerprints every selected run first and refuses with one error
naming the changed bindings; `status` re-expands the sweep file recorded in sweep.json (with the gin files and
overrides of the last `t5explore sweep` call, its `invocation`) and marks such runs `stale`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t5explore import io_utils
from t5explore.config import ConfigError
from t5explore.sweep import fingerprint, rundir
from t5explore.sweep.fingerprint import Fingerprint
from t5explore.sweep.grid import RunSpec, load_sweep


def fingerprints(runs: Sequence[RunSpec]) -> dict[str, Fingerprint]:
    """Every run's config fingerprint; a run whose gin does not parse stops the sweep before anything runs."""
    prints = {}
    for r in runs:
        try:
            prints[r.name] = fingerprint.compute(r.gin_files, r.bindings)
        except ConfigError as e:
            raise ConfigError(f"run {r.name}: {e}") from None
    return prints


def changed_runs(sdir: Path, runs: Sequence[RunSpec], prints: dict[str, Fingerprint]) -> list[tuple[str, list[str]]]:
    """(run name, changed bindings) of every run whose directory holds progress made under another config."""
    out = []
    for r in runs:
        changes = fingerprint.changes(rundir.run_dir(sdir, r.name), prints[r.name])
        if changes:
            out.append((r.name, changes))
    return out


def changed_message(sweep_name: str, sdir: Path, changed: Sequence[tuple[str, list[str]]]) -> str:
    """One line: the first changed run, its changed bindings (old -> new), the others by name, the ways out."""
    name, changes = changed[0]
    others = [n for n, _ in changed[1:]]
    also = f" (also changed: {', '.join(others[:5])}{', ...' if len(others) > 5 else ''})" if others else ""
    them = "them" if others else "it"
    return (
        f"run {name} of sweep {sweep_name} was made under a different config: {fingerprint.describe(changes)}"
        f"{also}; its results would be mixed with the new config's. Rerun with --rerun_changed to keep the "
        f"old {'runs' if others else 'run'} in {sdir / rundir.STALE_DIR} and start over, or --force to "
        f"delete {them}"
    )


def stale_in_sweep_dir(sdir: Path) -> tuple[dict[str, str], str | None]:
    """({run name: changed bindings}, None) for `status`, or ({}, why the check was not possible).

    Needs sweep.json's `sweep_file` and `invocation` (written by the runner since fingerprints exist)."""
    try:
        meta: Any = io_utils.read_json(sdir / rundir.SWEEP_FILE)
        invocation = meta["invocation"]
        sweep_file = meta["sweep_file"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}, None  # no sweep.json, or one written before fingerprints: nothing to compare with
    try:
        spec = load_sweep(sweep_file, invocation.get("overrides", ()), invocation.get("gin_files", ()))
        runs = [r for r in spec.runs if (sdir / r.name).is_dir() and fingerprint.read(sdir / r.name)]
        return {name: fingerprint.describe(c) for name, c in changed_runs(sdir, runs, fingerprints(runs))}, None
    except (ConfigError, OSError, ValueError) as e:
        return {}, f"cannot check for stale runs against {sweep_file}: {e}"
