"""Runs made under another config than the one their sweep now gives ("stale" runs), found before any run
executes (the runner) or on demand (`t5explore status`).

Why up front: a sweep that finds its third run stale after training two others would leave a results
directory half old, half new. The runner fingerprints every run of the sweep first and refuses with one error
naming the changed bindings.

`status` treats the results directory as data (it may come from anyone): it never parses the gin files that
sweep.json names. Without a sweep file from the user it compares each run's fingerprint.json with the
fingerprint the last `t5explore sweep` recorded for it in sweep.json and with this code's numerics version;
given one (`t5explore status DIR --sweep_file FILE`), it expands that file and names the changed bindings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t5explore import io_utils, run_layout
from t5explore.config import ConfigError
from t5explore.numerics import NUMERICS_VERSION
from t5explore.sweep import claim, fingerprint, naming, rundir
from t5explore.sweep.fingerprint import Fingerprint
from t5explore.sweep.grid import RunSpec, SweepSpec


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
        f"old {'runs' if others else 'run'} in {sdir / run_layout.STALE_DIR} and start over, or --force to "
        f"delete {them}"
    )


def conflicts(
    sdir: Path, expected: dict[str, Fingerprint], exclude: str, stale_after: float
) -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """(runs held by a live worker under another config, runs with progress made under another config) among
    the runs `expected` names, other than `exclude`: what the runner rechecks before a run starts."""
    live, changed = [], []
    for name, fp in expected.items():
        path = rundir.run_dir(sdir, name)
        recorded = fingerprint.read(path) if name != exclude else None
        if recorded is None or recorded.digest == fp.digest:
            continue
        changes = fingerprint.diff(recorded.config, fp.config) or [f"fingerprint {recorded.digest[:12]}"]
        info = claim.read_claim(path)
        if info is not None and not claim.is_stale(info, stale_after):
            live.append((name, changes))
        elif fingerprint.has_progress(path):
            changed.append((name, changes))
    return live, changed


def stale_in_sweep_dir(sdir: Path, spec: SweepSpec | None = None) -> dict[str, str]:
    """{run name: why it is stale} for `status`: against `spec` (a sweep file the user named) with the changed
    bindings, else from data only (recorded_changes)."""
    if spec is None:
        return recorded_changes(sdir)
    runs = [r for r in spec.runs if (sdir / r.name).is_dir() and fingerprint.read(sdir / r.name)]
    return {name: fingerprint.describe(c) for name, c in changed_runs(sdir, runs, fingerprints(runs))}


def _sweep_meta(sdir: Path) -> dict[str, Any]:
    try:
        meta = io_utils.read_json(sdir / run_layout.SWEEP_FILE)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _run_entries(sdir: Path) -> list[dict[str, Any]]:
    """sweep.json's runs whose names are safe directory names (a hand-made file may hold anything)."""
    runs = _sweep_meta(sdir).get("runs")
    out = []
    for r in runs if isinstance(runs, list) else []:
        try:
            out.append({**r, "run": naming.check_safe_name(r["run"])})
        except (TypeError, KeyError, ValueError):
            continue
    return out


def planned_runs(sdir: Path) -> list[str]:
    """The run names sweep.json lists, in sweep order (data written by the runner; [] without one)."""
    return [r["run"] for r in _run_entries(sdir)]


def recorded_changes(sdir: Path) -> dict[str, str]:
    """Runs with progress that `t5explore sweep` would refuse, judged from recorded data alone: computed by code
    of another numerics version, or under a fingerprint other than the one the sweep last recorded for them."""
    expected = {r["run"]: r["fingerprint"] for r in _run_entries(sdir) if isinstance(r.get("fingerprint"), str)}
    out = {}
    for run in sorted(p for p in sdir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        recorded = fingerprint.read(run)
        if recorded is None or not fingerprint.has_progress(run):
            continue
        if recorded.numerics_version != NUMERICS_VERSION:
            out[run.name] = f"{fingerprint.NUMERICS_KEY}: {recorded.numerics_version} -> {NUMERICS_VERSION}"
        elif run.name in expected and expected[run.name] != recorded.digest:
            out[run.name] = (
                f"fingerprint {recorded.digest[:12]} -> {expected[run.name][:12]} (the last `t5explore sweep` of "
                "this directory); add --sweep_file=FILE to name the changed bindings"
            )
    return out
