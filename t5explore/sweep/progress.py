"""A sweep's progress lines: runs finished / total, elapsed time, and an ETA from the runs this worker executed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

from t5explore import run_layout
from t5explore.sweep import rundir
from t5explore.sweep.grid import RunSpec

if TYPE_CHECKING:
    from t5explore.sweep.runner import SweepOutcome


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
        print(
            f"[sweep {self.finished}/{self.total} | elapsed {_hms(elapsed)} | ETA {eta}] {text}",
            file=self.out,
            flush=True,
        )

    def skipped(self, name: str, why: str) -> None:
        self.finished += 1
        self._line(f"{name}: {why}, skipped")

    def shared(self, name: str, source: str) -> None:
        self.finished += 1
        self._line(f"{name}: shared from {source} (same config), not trained")

    def note(self, text: str) -> None:
        self._line(text)

    def start(self, r: RunSpec, resumed: bool) -> None:
        self._line(f"{'resuming' if resumed else 'starting'} {r.name} [{r.variant}]")

    def ended(self, name: str, state: str, elapsed: float, why: str = "") -> None:
        self.finished += 1
        self.durations.append(elapsed)
        self._line(f"{name}: {'FAILED: ' + why if state == 'failed' else 'done'} in {_hms(elapsed)}")

    def finish(self, outcome: SweepOutcome) -> None:
        counts = {s: list(outcome.states.values()).count(s) for s in ("ran", "shared", "done", "failed", "busy")}
        shared = f", {counts['shared']} shared from identical runs" if counts["shared"] else ""
        print(
            f"sweep {outcome.sweep.name}: {counts['ran']} ran, {counts['done']} already done, "
            f"{counts['failed']} failed, {counts['busy']} running elsewhere{shared}; "
            f"wall {_hms(time.time() - self.t0)}",
            file=self.out,
            flush=True,
        )
        for name in outcome.failed:
            path = outcome.sweep_dir / name
            failed = path / run_layout.FAILED_FILE
            print(f"  FAILED {name}: {rundir.failure_reason(path)} (see {failed})", file=self.out)


def _hms(seconds: float) -> str:
    s = round(seconds)
    return (
        f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"
        if s >= 3600
        else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")
    )
