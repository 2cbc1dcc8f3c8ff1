"""Identical runs are computed once per results directory (e.g. the ★ row shared by T5 Tables 5 and 6).

Two runs are identical when their config fingerprints are equal (fingerprint.py; the seed is part of the
config, so different seeds never share). The results directory keeps an index of who computed what:

    <results_dir>/.by_fingerprint/<fingerprint>.json   {"sweep": ..., "run": ..., "fingerprint": ...}

written when a run completes (or is found complete). Before executing a run, the runner looks its
fingerprint up; if the indexed run is complete (result.json present) and still recorded under the same
fingerprint, the run is materialised from it instead of trained: its files are copied (never linked —
results are committed to git and copied around) and result.json gets this run's own metadata plus
`"shared_from": "<sweep>/<run>"`. A source that is not complete yet is not waited for: the run trains.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from t5explore import io_utils, run_layout
from t5explore.sweep import fingerprint, rundir
from t5explore.sweep.fingerprint import Fingerprint

SHARED_FROM = "shared_from"
COPIED_FILES = (run_layout.CONFIG_FILE, run_layout.METRICS_FILE)
COPIED_DIRS = (run_layout.PREDICTIONS_DIR,)
TENSORBOARD_PREFIX = "events.out.tfevents"


def index_file(results_dir: str | os.PathLike, fp: Fingerprint) -> Path:
    return Path(results_dir) / run_layout.INDEX_DIR / f"{fp.digest}.json"


def record(results_dir: str | os.PathLike, fp: Fingerprint, sweep: str, run: str) -> None:
    """Remember that <sweep>/<run> computed `fp`."""
    io_utils.atomic_write_json(index_file(results_dir, fp), {"sweep": sweep, "run": run, "fingerprint": fp.digest})


def record_if_missing(results_dir: str | os.PathLike, fp: Fingerprint, sweep: str, run: str) -> None:
    """Backfill the index from a run found complete under `fp`, unless it already names a usable source."""
    recorded = fingerprint.read(rundir.run_dir(rundir.sweep_dir(results_dir, sweep), run))
    if recorded is not None and recorded.digest == fp.digest and find_source(results_dir, fp) is None:
        record(results_dir, fp, sweep, run)


def find_source(
    results_dir: str | os.PathLike, fp: Fingerprint, exclude: Path | None = None
) -> tuple[str, Path] | None:
    """('<sweep>/<run>', its directory) of a complete run computed under `fp`, other than `exclude`."""
    try:
        entry = io_utils.read_json(index_file(results_dir, fp))
        source = rundir.run_dir(rundir.sweep_dir(results_dir, entry["sweep"]), entry["run"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if exclude is not None and source.resolve() == Path(exclude).resolve():
        return None
    if not (source / run_layout.RESULT_FILE).is_file() or rundir.result_problem(source):
        return None  # not complete, or its result.json is damaged (it will run again)
    recorded = fingerprint.read(source)
    if recorded is None or recorded.digest != fp.digest:
        return None  # moved aside, or re-run under another config since it was indexed
    return f"{entry['sweep']}/{entry['run']}", source


def materialise(source: Path, label: str, dest: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """Copy a complete run into `dest` as this run; result.json (its completion mark) is written last.

    The copy keeps every measured field of the source and replaces the run's identity (sweep, run,
    variant, variant_bindings, baseline, and any other metadata field the source carries) with `metadata`.
    """
    for name in COPIED_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, dest / name)
    for tb in source.glob(f"{TENSORBOARD_PREFIX}*"):
        if tb.is_file():
            shutil.copy2(tb, dest / tb.name)
    for name in COPIED_DIRS:
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name, dirs_exist_ok=True, symlinks=False)
    result = io_utils.read_json(source / run_layout.RESULT_FILE)
    own = {k: v for k, v in metadata.items() if k in run_layout.METADATA_KEYS or k in result}
    result = {**result, **own, SHARED_FROM: label}
    io_utils.atomic_write_json(dest / run_layout.RESULT_FILE, result)
    return result
