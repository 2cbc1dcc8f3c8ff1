"""The timing of every attempt at a run. A run killed and resumed is several attempts; result.json lists each
one's timing (`attempts`) and reports their sums in `timing`, so a resumed run's pretrain_s is the time its
pretraining took over all attempts, not the last attempt's 0.

    run_dir/attempts.json   [{"attempt": 1, "started": "2025-01-31T12:00:00Z", "host": "node1", "pid": 4242,
                              "resumed": false, "compile_s": 1.2, "pretrain_s": 60.0, "finetune_s": 0.0,
                              "eval_s": 2.0, "total_s": 70.5}, ...]

The current attempt's entry is rewritten (atomically) when it starts, after every checkpoint — pretraining's
and fine-tuning's — and when it ends, so a killed attempt keeps the time it spent up to its last checkpoint (the
work after that checkpoint is lost with it; the next attempt redoes it and counts it).

Per-phase wall time (issue 24: where a run's time goes, so the cost outside pre-training can be cut where it
is): besides the outcomes' own seconds, `CLOCK` (a process-wide `PhaseClock`) times greedy decoding
(train/predict.py) and the blocking part of checkpoint writes and reads (train/checkpoints.py), and counts every
JAX compilation through jax.monitoring: its seconds (tracing, lowering, backend compile or persistent-cache
read), how many there were and how many the persistent compilation cache served. `phases` turns them into the
breakdown result.json's `timing` carries (pretrain_steps_s, finetune_steps_s, eval_decode_s,
eval_decode_compile_s, eval_metrics_s, heldout_eval_s, checkpoint_s, compile_all_s) and `summary_line` prints.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from t5explore.io_utils import atomic_write_json, read_json

ATTEMPTS_FILE = "attempts.json"
# The outcomes' seconds (compile_s: the Trainer's train/eval step compilations; pretrain_s and finetune_s
# include their checkpoint writes; eval_s: evaluation with its decoding compilations), then CLOCK's: decoding
# wall time and the compilations inside it, checkpoint I/O per side, every JAX compilation's seconds, count and
# persistent-cache hits. total_s is last. (compile_saved_s, the first compile's time counted once per reuse,
# is gone: with the persistent cache a recompile is a cache hit of about a second, so it claimed time that
# was never at stake; `compiles` and `compile_cache_hits` say what was compiled and what the cache served.)
CLOCK_KEYS = (
    "decode_wall_s",
    "decode_compile_s",
    "checkpoint_pretrain_s",
    "checkpoint_finetune_s",
    "compile_all_s",
    "compiles",
    "compile_cache_hits",
)
TIMING_KEYS = ("compile_s", "pretrain_s", "finetune_s", "eval_s", "heldout_eval_s", *CLOCK_KEYS, "total_s")
# jax.monitoring duration events that are compilation work (dispatch.py's names)
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_BACKEND_COMPILE = _COMPILE_EVENTS[-1]
_CACHE_HIT = "/jax/compilation_cache/cache_hits"


class PhaseClock:
    """Process-wide seconds per named phase, and JAX's compilations (seconds, count, persistent-cache hits, per
    compiled function). A phase's seconds exclude the compilations inside it, which are recorded under
    `<phase>_compile` instead, so a phase's time is the same whether its programs came compiled or not."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.compile_s = 0.0
        self.compiles = 0
        self.cache_hits = 0
        self.compiled: dict[str, list] = {}  # function name -> [compilations, seconds, cache hits]
        self._hit_pending = False
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        """Listen to jax.monitoring (once per process)."""
        if self._installed:
            return
        import jax.monitoring

        jax.monitoring.register_event_duration_secs_listener(self._on_duration)
        jax.monitoring.register_event_listener(self._on_event)
        self._installed = True

    def _on_event(self, event: str, **kwargs: str | int) -> None:
        if event == _CACHE_HIT:
            with self._lock:
                self.cache_hits += 1
                self._hit_pending = True  # the backend-compile event of this function follows

    def _on_duration(self, event: str, duration_secs: float, **kwargs: str | int) -> None:
        if event not in _COMPILE_EVENTS:
            return
        with self._lock:
            self.compile_s += duration_secs
            if event == _BACKEND_COMPILE:
                entry = self.compiled.setdefault(str(kwargs.get("fun_name", "?")), [0, 0.0, 0])
                entry[0] += 1
                entry[2] += int(self._hit_pending)
                self.compiles += 1
                self._hit_pending = False
            name = str(kwargs.get("fun_name", "?"))
            self.compiled.setdefault(name, [0, 0.0, 0])[1] += duration_secs

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the block's wall time, less its compilations, to `phase` (those go to `<phase>_compile`)."""
        self.install()
        t0, c0 = time.perf_counter(), self.compile_s
        try:
            yield
        finally:
            compiled = self.compile_s - c0
            self.add(phase, time.perf_counter() - t0 - compiled)
            self.add(phase + "_compile", compiled)

    def add(self, phase: str, seconds: float) -> None:
        with self._lock:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def snapshot(self) -> dict:
        """CLOCK_KEYS' values so far in this process."""
        sec = self.seconds
        return {
            "decode_wall_s": sec.get("eval_decode", 0.0) + sec.get("eval_decode_compile", 0.0),
            "decode_compile_s": sec.get("eval_decode_compile", 0.0),
            "checkpoint_pretrain_s": sec.get("checkpoint_pretrain", 0.0) + sec.get("checkpoint_pretrain_compile", 0.0),
            "checkpoint_finetune_s": sec.get("checkpoint_finetune", 0.0) + sec.get("checkpoint_finetune_compile", 0.0),
            "compile_all_s": self.compile_s,
            "compiles": self.compiles,
            "compile_cache_hits": self.cache_hits,
        }


CLOCK = PhaseClock()


def phases(timing: dict) -> dict:
    """The per-phase wall-time breakdown of a `timing` dict (an attempt's or the sum over attempts):
    pre-training steps and fine-tuning steps (without their checkpoint writes), greedy decoding and its
    compilations apart, evaluation's other work (detokenising, scoring, predictions files, the bootstrap),
    pre-training's held-out loss evaluation, checkpoint I/O, and every JAX compilation."""
    g = lambda k: float(timing.get(k) or 0.0)  # noqa: E731
    return {
        "pretrain_steps_s": g("pretrain_s") - g("checkpoint_pretrain_s"),
        "finetune_steps_s": g("finetune_s") - g("checkpoint_finetune_s"),
        "eval_decode_s": g("decode_wall_s") - g("decode_compile_s"),
        "eval_decode_compile_s": g("decode_compile_s"),
        "eval_metrics_s": g("eval_s") - g("heldout_eval_s") - g("decode_wall_s"),
        "heldout_eval_s": g("heldout_eval_s"),
        "checkpoint_s": g("checkpoint_pretrain_s") + g("checkpoint_finetune_s"),
        "compile_all_s": g("compile_all_s"),
    }


def summary_line(timing: dict) -> str:
    """One line: where the run's wall time went ("rest": setup, data and vocabulary, writing results)."""
    p = phases(timing)
    total, compile_s = float(timing.get("total_s") or 0.0), float(timing.get("compile_s") or 0.0)
    rest = total - sum(v for k, v in p.items() if k != "compile_all_s") - compile_s
    return (
        f"time: total {total:.1f}s = pre-training steps {p['pretrain_steps_s']:.1f}s, fine-tuning steps "
        f"{p['finetune_steps_s']:.1f}s, decoding {p['eval_decode_s']:.1f}s (+{p['eval_decode_compile_s']:.1f}s "
        f"compiling it), scoring and other evaluation "
        f"{p['eval_metrics_s']:.1f}s, held-out loss {p['heldout_eval_s']:.1f}s, checkpoint I/O "
        f"{p['checkpoint_s']:.1f}s, train/eval step compile {compile_s:.1f}s, rest {rest:.1f}s (all JAX "
        f"compilations: {p['compile_all_s']:.1f}s, {int(timing.get('compiles') or 0)} programs, "
        f"{int(timing.get('compile_cache_hits') or 0)} from the persistent cache)"
    )


def phase_timing(pretrain: Any = None, finetune: Any = None) -> dict:
    """compile/pretrain/finetune/eval seconds of a PretrainOutcome and a FinetuneOutcome (either may be None)."""
    return {
        "compile_s": (pretrain.compile_s if pretrain else 0.0) + (finetune.compile_s if finetune else 0.0),
        "pretrain_s": pretrain.train_s if pretrain else 0.0,
        "finetune_s": finetune.finetune_s if finetune else 0.0,
        "eval_s": (pretrain.eval_s if pretrain else 0.0) + (finetune.eval_s if finetune else 0.0),
        "heldout_eval_s": pretrain.eval_s if pretrain else 0.0,
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
            **phases({}),
        }
        self.entries.append(self.current)
        self._phases: dict[str, dict] = {}
        CLOCK.install()
        self._clock0 = CLOCK.snapshot()  # this attempt counts CLOCK's time from here
        self._write()

    def update(self, pretrain: Any = None, finetune: Any = None) -> None:
        """Record this attempt's timing so far from pretraining's and/or fine-tuning's (partial) outcome; a phase
        not given keeps what was recorded for it last."""
        if pretrain is not None:
            self._phases["pretrain"] = phase_timing(pretrain=pretrain)
        if finetune is not None:
            self._phases["finetune"] = phase_timing(finetune=finetune)
        for key in ("compile_s", "pretrain_s", "finetune_s", "eval_s", "heldout_eval_s"):
            self.current[key] = sum(part[key] for part in self._phases.values())
        now = CLOCK.snapshot()
        self.current.update({k: now[k] - self._clock0[k] for k in CLOCK_KEYS})
        self.current["total_s"] = time.perf_counter() - self.t_start
        self.current.update(phases(self.current))
        self._write()

    def totals(self) -> dict:
        """result.json's `timing`: every attempt's seconds summed, and the per-phase breakdown of the sum
        (`phases`, linear: the sum of the attempts' breakdowns); an attempt recorded before a key existed counts
        0 for it."""
        sums = {k: sum(float(e.get(k) or 0.0) for e in self.entries) for k in TIMING_KEYS}
        return {**sums, **phases(sums)}

    def summary_line(self) -> str:
        return summary_line(self.totals())

    def _write(self) -> None:
        atomic_write_json(self.path, self.entries)


def _read(path: Path) -> list[dict]:
    try:
        entries = read_json(path)
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
