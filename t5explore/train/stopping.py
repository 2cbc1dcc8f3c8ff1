"""SIGTERM stops a run cleanly: a checkpoint that falls due within the grace period is saved first.

Why: schedulers (Slurm at its time limit, Kubernetes on eviction) send SIGTERM, then SIGKILL a grace period
later. Python's default SIGTERM ends the process at once, with no message, leaving the sweep's claim behind
and an orbax `N.orbax-checkpoint-tmp` directory half written.

With `install()` (the CLI calls it for `train` and `sweep`), the first SIGTERM only records the request.
Training goes on: the next checkpoint save (checkpoints.py calls `after_checkpoint`) finishes writing and then
raises `Terminated`, so the run stops at that step boundary with its newest state on disk. If no checkpoint
falls due within the grace period ($T5EXPLORE_SIGTERM_GRACE_S, default 25 s, below the usual 30 s before
SIGKILL), `Terminated` is raised wherever the run is when the period ends; a second SIGTERM raises it at once.
Either way the last checkpoint is complete and a resumed run gives the numbers of an uninterrupted one.

`Terminated` is a KeyboardInterrupt, so no `except Exception` records it as the run's failure: the sweep
runner re-raises it (its claim is released on the way out) and the CLI prints one line and exits 143.
"""

from __future__ import annotations

import _thread
import os
import signal
import threading
import time
from typing import Any

GRACE_ENV = "T5EXPLORE_SIGTERM_GRACE_S"
DEFAULT_GRACE_S = 25.0
EXIT_CODE = 128 + signal.SIGTERM  # 143, what a shell reports for a process ended by SIGTERM


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM); the message says what was saved and how to go on."""


class _Request:
    def __init__(self) -> None:
        self.at: float | None = None  # monotonic time of the first SIGTERM
        self.grace_s = DEFAULT_GRACE_S
        self.timer: threading.Timer | None = None
        self.expired = False  # the grace period ended (rather than a second SIGTERM)


_REQUEST = _Request()


def grace_s() -> float:
    """The grace period from $T5EXPLORE_SIGTERM_GRACE_S (seconds, >= 0), else 25 s."""
    try:
        return max(float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_S)), 0.0)
    except ValueError:
        return DEFAULT_GRACE_S


def install() -> Any:
    """Handle SIGTERM as described above; returns the handler it replaced (for `uninstall`). Only the main
    thread can: elsewhere nothing changes (None)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    reset()
    return signal.signal(signal.SIGTERM, _on_sigterm)


def uninstall(previous: Any) -> None:
    """Put back the handler `install` replaced and forget any request."""
    reset()
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


def reset() -> None:
    """Forget an earlier request (a new command in the same process, e.g. in tests)."""
    if _REQUEST.timer is not None:
        _REQUEST.timer.cancel()
    _REQUEST.at, _REQUEST.timer, _REQUEST.expired = None, None, False


def requested() -> bool:
    return _REQUEST.at is not None


def _on_sigterm(signum, frame) -> None:
    if _REQUEST.at is None:  # the first: finish up to a checkpoint due within the grace period
        _REQUEST.at, _REQUEST.grace_s = time.monotonic(), grace_s()
        _REQUEST.timer = threading.Timer(_REQUEST.grace_s, _grace_over)
        _REQUEST.timer.daemon = True
        _REQUEST.timer.start()
        return
    why = (
        f"no checkpoint fell due within the {_REQUEST.grace_s:g} s grace period"
        if _REQUEST.expired
        else "a second SIGTERM came before the next checkpoint"
    )
    raise Terminated(f"terminated (SIGTERM): {why}; the run resumes from its last checkpoint when run again")


def _grace_over() -> None:
    """Runs the handler again in the main thread, which then raises Terminated where the run is."""
    _REQUEST.expired = True
    _thread.interrupt_main(signal.SIGTERM)


def after_checkpoint(label: str, step: int) -> None:
    """Called once a checkpoint is written: stop here if SIGTERM asked to."""
    if _REQUEST.at is None:
        return
    reset()
    _REQUEST.at = -1.0  # still requested: anything later stops too
    raise Terminated(
        f"terminated (SIGTERM): stopped after saving the {label} checkpoint of step {step}; the run resumes "
        "from it when run again"
    )
