"""The state of each run in a results directory (its layout, every file name: t5explore/run_layout.py).

A run is `done` when a readable result.json exists (written atomically, last), `corrupt` when its result.json
does not parse (a truncated copy; the next sweep runs it again), `running` while a live CLAIM exists,
`failed` when FAILED (its traceback) exists, and `pending` otherwise — including an interrupted run whose
owner died, which the next worker resumes from its checkpoints. `status` also calls a run `stale` when it
holds progress made under a config other than the one its sweep file now gives (fingerprint.py).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from t5explore import io_utils
from t5explore.run_layout import (
    CHECKPOINTS_DIR,
    CLAIM_FILE,
    CLAIM_LOCK_FILE,
    FAILED_FILE,
    FINGERPRINT_FILE,
    RESULT_FILE,
    STALE_DIR,
)
from t5explore.sweep import claim, naming

STATES = ("done", "running", "failed", "pending", "stale", "corrupt")
# Moved/deleted first and last, so that an interrupted set_aside never leaves a result.json behind
# without its fingerprint (which would read as a finished run of unknown config).
_FIRST, _LAST = (RESULT_FILE,), (FINGERPRINT_FILE,)


def sweep_dir(results_dir: str | os.PathLike, sweep_name: str) -> Path:
    return _child(Path(results_dir), sweep_name)


def run_dir(sweep_dir_: str | os.PathLike, run_name: str) -> Path:
    return _child(Path(sweep_dir_), run_name)


def _child(parent: Path, name: str) -> Path:
    """parent/name, refusing any name that could land outside parent."""
    naming.check_safe_name(name)
    child = parent / name
    if child.resolve().parent != parent.resolve():
        raise ValueError(f"{name!r} would escape {parent}")
    return child


@dataclasses.dataclass(frozen=True)
class RunState:
    name: str
    state: str  # one of STATES
    detail: str = ""


def result_problem(path: Path) -> str | None:
    """Why the run's result.json is no result (it does not parse as a JSON object), or None."""
    try:
        data = io_utils.read_json(path / RESULT_FILE)
    except (OSError, ValueError) as e:
        return f"result.json is unreadable ({type(e).__name__}: {str(e)[:80]})"
    return None if isinstance(data, dict) else "result.json is not a JSON object"


def run_state(path: Path, stale_after: float = claim.DEFAULT_STALE_AFTER_S) -> RunState:
    info = claim.read_claim(path)
    live = info is not None and not claim.is_stale(info, stale_after)
    if (path / RESULT_FILE).exists():
        problem = result_problem(path)
        if problem is None:
            return RunState(path.name, "done")
        if not live:
            return RunState(path.name, "corrupt", f"{problem}: {path / RESULT_FILE}; `t5explore sweep` runs it again")
    if live and info is not None:
        since = time.time() - info.start_time if info.start_time else 0.0
        return RunState(path.name, "running", f"{info.host}:{info.pid}, {since:.0f}s, heartbeat {info.age():.0f}s ago")
    if (path / FAILED_FILE).exists():
        return RunState(path.name, "failed", _last_line(path / FAILED_FILE))
    if info is not None:
        return RunState(path.name, "pending", f"interrupted (stale claim by {info.host}:{info.pid})")
    return RunState(path.name, "pending", "started before" if (path / CHECKPOINTS_DIR).exists() else "")


def failure_reason(path: Path) -> str:
    """Why the run in `path` failed: the last line of its FAILED file (the exception, on one line)."""
    return _last_line(path / FAILED_FILE)


def _last_line(path: Path) -> str:
    lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    return lines[-1][:120] if lines else ""


def write_failed(path: Path, text: str) -> None:
    io_utils.atomic_write_text(path / FAILED_FILE, text)


def clear_failed(path: Path) -> None:
    """Keep the last failure next to a retry, so it is not lost if the retry fails differently."""
    failed = path / FAILED_FILE
    if failed.exists():
        os.replace(failed, path / f"{FAILED_FILE}.previous")


def set_aside(path: Path, delete: bool = False) -> Path | None:
    """Empty a run directory whose claim this worker holds, keeping the claim: move its contents to
    `<sweep>/.stale/<run>.<UTC time>/` (returned), or delete them.

    Why contents and not the directory: the directory holds our CLAIM, and renaming it would let another
    worker create and claim a fresh one under the same name in between.
    """
    keep = {CLAIM_FILE, CLAIM_LOCK_FILE}
    entries = sorted(
        (p for p in path.iterdir() if p.name not in keep), key=lambda p: (p.name not in _FIRST, p.name in _LAST, p.name)
    )
    aside = None
    if not delete:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = path.parent / STALE_DIR / f"{path.name}.{stamp}"
        n = 1
        while aside.exists():
            n += 1
            aside = path.parent / STALE_DIR / f"{path.name}.{stamp}-{n}"
        aside.mkdir(parents=True)
    for p in entries:
        if aside is not None:
            os.replace(p, aside / p.name)
        elif p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    return aside
