"""Test-only fault injection: kill points that let a test SIGKILL a real run at an exact place.

`T5EXPLORE_TEST_KILL_AT=<point>:<step>` makes the process SIGKILL itself the first time it reaches kill point
`point` at a step >= `step` (so a point stays reachable after a resume skipped past `step`). Unset — always,
outside tests — `kill_point` only reads the variable. The points (tests/test_fault_injection.py drives them):

    <phase>                  a metrics row of `phase` at `step` was just appended (writers.py)
    checkpoint/<label>       a checkpoint of `step` is being written in the background (checkpoints.py)
    eval/<task>              `task`'s evaluation at `step` decoded and scored, its row not yet written
    budget/<k>/<phase>       a metrics row of `phase` of budget k's fine-tuning was just appended (budgets.py)
    result                   everything done, result.json about to be written (step 0)

With `T5EXPLORE_TEST_KILL_SIGNAL=TERM` the point sends the process one SIGTERM instead and returns, as a
scheduler would (tests/test_hardening_sigterm.py).
"""

from __future__ import annotations

import os
import signal

KILL_ENV = "T5EXPLORE_TEST_KILL_AT"


SIGNAL_ENV = "T5EXPLORE_TEST_KILL_SIGNAL"  # 'TERM': send SIGTERM instead (once), and go on (train/stopping.py)
_sent: list[int] = []  # the SIGTERMs sent by this process


def kill_point(point: str, step: int = 0) -> None:
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    want_point, _, want_step = spec.rpartition(":")
    if want_point == point and int(step) >= int(want_step):
        if os.environ.get(SIGNAL_ENV) == "TERM":
            if not _sent:  # a scheduler's SIGTERM: the run must stop by itself, cleanly
                _sent.append(int(step))
                os.kill(os.getpid(), signal.SIGTERM)
            return
        _die()


def _die() -> None:
    """SIGKILL: no exception handler, `finally` or atexit runs (in-process tests replace this with a raise)."""
    os.kill(os.getpid(), signal.SIGKILL)
