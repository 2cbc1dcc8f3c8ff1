"""The timing of every attempt at a run. A run killed and resumed is several attempts; result.json lists each
one's timing (`attempts`) and reports their sums in `timing`, so a resumed run's pretrain_s is the time its
pretraining took over all attempts, not the last attempt's 0.

    run_dir/attempts.json   [{"attempt": 1, "started": "2025-01-31T12:00:00Z", "host": "node1", "pid": 4242,
                              "resumed": false, "compile_s": 1.2, "pretrain_s": 60.0, "finetune_s": 0.0,
                              "eval_s": 2.0, "total_s": 70.5}, ...]

The current attempt's entry is rewritten (atomically) when it starts, after every checkpoint — pretraining's
and fine-tuning's — and when it ends, so a killed attempt keeps the time it spent up to its last checkpoint (the
work after that checkpoint is lost with it; the next attempt redoes it and counts it).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from t5explore.io_utils import atomic_write_json, read_json

ATTEMPTS_FILE = "attempts.json"
# compile_saved_s: compilation avoided by reusing one compiled fine-tuning step across per-task groups (not
# part of total_s: time that was not spent).
TIMING_KEYS = ("compile_s", "compile_saved_s", "pretrain_s", "finetune_s", "eval_s", "total_s")


def phase_timing(pretrain: Any = None, finetune: Any = None) -> dict:
    """compile/pretrain/finetune/eval seconds of a PretrainOutcome and a FinetuneOutcome (either may be None)."""
    return {
        "compile_s": (pretrain.compile_s if pretrain else 0.0) + (finetune.compile_s if finetune else 0.0),
        "pretrain_s": pretrain.train_s if pretrain else 0.0,
        "compile_saved_s": finetune.compile_saved_s if finetune else 0.0,
        "finetune_s": finetune.finetune_s if finetune else 0.0,
        "eval_s": (pretrain.eval_s if pretrain else 0.0) + (finetune.eval_s if finetune else 0.0),
    }


class Attempts:
    """The attempts recorded in `run_dir` plus this one, which started at `t_start` (time.perf_counter())."""

    def __init__(self, run_dir: str | os.PathLike, t_start: float | None = None):
        self.path = Path(run_dir) / ATTEMPTS_FILE
        self.t_start = time.perf_counter() if t_start is None else t_start
        self.entries = _read(self.path)
        self.current = {
            "attempt": len(self.entries) + 1,
            "resumed": bool(self.entries),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            **{k: 0.0 for k in TIMING_KEYS},
        }
        self.entries.append(self.current)
        self._phases: dict[str, dict] = {}
        self._write()

    def update(self, pretrain: Any = None, finetune: Any = None) -> None:
        """Record this attempt's timing so far from pretraining's and/or fine-tuning's (partial) outcome; a phase
        not given keeps what was recorded for it last."""
        if pretrain is not None:
            self._phases["pretrain"] = phase_timing(pretrain=pretrain)
        if finetune is not None:
            self._phases["finetune"] = phase_timing(finetune=finetune)
        for key in TIMING_KEYS[:-1]:
            self.current[key] = sum(part[key] for part in self._phases.values())
        self.current["total_s"] = time.perf_counter() - self.t_start
        self._write()

    def totals(self) -> dict:
        """result.json's `timing`: every attempt's seconds summed."""
        return {k: sum(float(e.get(k) or 0.0) for e in self.entries) for k in TIMING_KEYS}

    def _write(self) -> None:
        atomic_write_json(self.path, self.entries)


def _read(path: Path) -> list[dict]:
    try:
        entries = read_json(path)
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
