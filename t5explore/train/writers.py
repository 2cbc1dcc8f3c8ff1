"""Where metrics go: `metrics.jsonl` (what the report reads), TensorBoard, and one console line.

metrics.jsonl is append-only during a run; on resume `discard_after` rewrites it atomically without the
rows past the restored checkpoint, so a resumed run never holds the same (phase, step) twice.

TensorBoard events are written synchronously, one events file per attempt (named with the process id, so a
resumed attempt never truncates an earlier one's file), flushed with every row: a killed attempt keeps every
point that reached metrics.jsonl. Points an attempt logged past its last checkpoint are logged again by the
next attempt (TensorBoard shows both; metrics.jsonl, which the report reads, holds each step once).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from t5explore.io_utils import atomic_write_text, disk_full_named
from t5explore.run_layout import CONFIG_FILE, METRICS_FILE, RESULT_FILE
from t5explore.train.faults import kill_point

_EVENTS_FILES = itertools.count()  # numbers this process's events files: two attempts never share a name


def _clean(value: Any) -> Any:
    """JSON-safe scalars: numpy/jax numbers -> float/int, NaN/inf -> None."""
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """Rows of a metrics.jsonl; a torn last line (crash mid-write) is skipped."""
    p = Path(path)
    return _parse_rows(p.read_text(encoding="utf-8")) if p.exists() else []


def _parse_rows(text: str) -> list[dict]:
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class MetricsWriter:
    """Appends one JSON object per (phase, step) to run_dir/metrics.jsonl and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS_FILE
        self._rewrite(lambda row: True)  # drop a torn last line before appending
        self._tb = _EventsFile(self.run_dir) if tensorboard else None

    def rows(self, phase: str | None = None) -> list[dict]:
        return [r for r in read_metrics(self.path) if phase is None or r.get("phase") == phase]

    def discard_after(self, phase_prefix: str, step: int) -> int:
        """Drop rows whose phase starts with `phase_prefix` and whose step > `step`; returns how many."""
        return self._rewrite(
            lambda r: not (str(r.get("phase", "")).startswith(phase_prefix) and r.get("step", 0) > step)
        )

    def discard_phase(self, phase_prefix: str) -> int:
        """Drop every row of phases starting with `phase_prefix` (a phase that restarts from scratch)."""
        return self._rewrite(lambda r: not str(r.get("phase", "")).startswith(phase_prefix))

    def discard_phases(self, phases: Collection[str], after: int | None = None) -> int:
        """Drop the rows of exactly these `phases` (all of them, or those past step `after`); returns how many."""
        return self._rewrite(lambda r: not (r.get("phase") in phases and (after is None or r.get("step", 0) > after)))

    def _rewrite(self, keep: Callable[[dict], bool]) -> int:
        raw = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        rows = _parse_rows(raw)
        kept = [r for r in rows if keep(r)]
        expected = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
        if raw != expected:
            atomic_write_text(self.path, expected)
        return len(rows) - len(kept)

    def write(self, phase: str, step: int, metrics: dict[str, Any]) -> dict:
        row = {"phase": phase, "step": int(step), **{k: _clean(v) for k, v in metrics.items()}}
        with (
            disk_full_named(self.path, f"the {phase} metrics of step {step}"),
            open(self.path, "a", encoding="utf-8") as f,
        ):
            f.write(json.dumps(row, sort_keys=True) + "\n")
        if self._tb is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                    self._tb.add_scalar(f"{phase}/{key}", value, int(step))
            self._tb.flush()
        kill_point(phase, step)
        return row

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


class _EventsFile:
    """tensorboardX's own events-file format, written in this thread (its SummaryWriter queues events for a
    background thread, so neither its flush nor a kill would see the newest ones). tensorboardX is a required
    dependency; it is imported here, not at module level, so that a run without TensorBoard never loads it."""

    def __init__(self, log_dir: Path):
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto import event_pb2
        from tensorboardX.summary import scalar

        self._event, self._scalar = event_pb2.Event, scalar
        self._w = EventsWriter(str(log_dir / "events"), f".{os.getpid()}.{next(_EVENTS_FILES)}")

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._w.write_event(self._event(wall_time=time.time(), step=step, summary=self._scalar(tag, value)))

    def flush(self) -> None:
        self._w.flush()

    def close(self) -> None:
        self._w.close()


# HParams (TensorBoard's dashboard for comparing a sweep's runs). Each finished run's directory gets one events
# file holding its session (hyperparameters: variant, seed, objective and the variant's bindings, which include
# the sweep axes; metrics: its headline scores and losses as scalars) and its config.gin as a text summary; the
# sweep directory, TensorBoard's --logdir, gets the experiment summary listing every run's hparams and metrics.
# The files have fixed names and are replaced whole, so writing them again (a rerun, `write_sweep_hparams`)
# never duplicates a session.
HPARAMS_EVENTS = "events.out.tfevents.t5explore_hparams"
CONFIG_TEXT_TAG = "config/config.gin"
HPARAMS_METRIC_PREFIX = "hparams/"


def hparams_of(result: dict) -> dict[str, str | float]:
    """A run's hyperparameters from its result.json: variant, seed, objective and each variant binding (numbers
    as numbers, so the dashboard can sort and plot them)."""
    hp: dict[str, str | float] = {
        "variant": str(result.get("variant")),
        "seed": float(result.get("seed") or 0),
        "objective": str(result.get("objective") or "none"),
    }
    for key, value in sorted((result.get("variant_bindings") or {}).items()):
        try:
            hp[key] = float(value)
        except (TypeError, ValueError):
            hp[key] = str(value)
    return hp


def metrics_of(result: dict) -> dict[str, float]:
    """A run's headline numbers: each task's best primary score, each benchmark's best score, the pre-training
    losses (tags under hparams/)."""
    out: dict[str, float] = {}
    for task, rec in sorted((result.get("downstream") or {}).items()):
        primary, best = rec.get("primary_metric"), rec.get("best") or {}
        if primary in best and best[primary] is not None:
            out[f"{HPARAMS_METRIC_PREFIX}{task}/{primary}"] = float(best[primary])
    for name, value in sorted(((result.get("benchmarks") or {}).get("best") or {}).items()):
        if isinstance(value, (int, float)):
            out[f"{HPARAMS_METRIC_PREFIX}benchmark/{name}"] = float(value)
    pretrain = result.get("pretrain") or {}
    for key in ("eval_loss", "final_loss"):
        if isinstance(pretrain.get(key), (int, float)):
            out[f"{HPARAMS_METRIC_PREFIX}pretrain/{key}"] = float(pretrain[key])
    return out


def _write_events(directory: Path, summaries: list[tuple[Any, int]]) -> Path:
    """Write (Summary proto, step) pairs as directory/HPARAMS_EVENTS, replacing any earlier one atomically."""
    import tempfile

    from tensorboardX.event_file_writer import EventsWriter
    from tensorboardX.proto import event_pb2

    with tempfile.TemporaryDirectory(dir=directory, prefix=".hparams.") as tmp:
        writer = EventsWriter(str(Path(tmp) / "events"), "")
        for summary, step in summaries:
            writer.write_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
        writer.close()
        (written,) = Path(tmp).iterdir()
        os.replace(written, directory / HPARAMS_EVENTS)
    return directory / HPARAMS_EVENTS


def write_run_hparams(run_dir: str | os.PathLike, result: dict) -> Path:
    """The run's HParams session (start, metrics, end) and its config.gin as text, in run_dir."""
    from tensorboardX.summary import hparams, scalar, text

    run_dir = Path(run_dir)
    metrics = metrics_of(result)
    _, start, end = hparams(hparams_of(result), metrics)
    step = int((result.get("pretrain") or {}).get("steps") or 0)
    summaries = [(start, 0)]
    config = run_dir / CONFIG_FILE
    if config.is_file():  # shown as Markdown: indent it so it stays one code block
        body = "\n".join("    " + line for line in config.read_text(encoding="utf-8").splitlines())
        summaries.append((text(CONFIG_TEXT_TAG, body), 0))
    summaries += [(scalar(tag, value), step) for tag, value in metrics.items()]
    return _write_events(run_dir, [*summaries, (end, step)])


def write_experiment_summary(sweep_dir: str | os.PathLike) -> list[str]:
    """The sweep's experiment summary (sweep_dir is TensorBoard's --logdir): the union of its finished runs'
    hparams and metrics. Returns those runs."""
    from tensorboardX.summary import hparams

    sweep_dir = Path(sweep_dir)
    results = {
        p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(sweep_dir.glob(f"*/{RESULT_FILE}"))
    }
    hp: dict[str, str | float] = {}
    metrics: dict[str, float] = {}
    for result in results.values():
        hp.update({k: v for k, v in hparams_of(result).items() if k not in hp})
        metrics.update(metrics_of(result))
    experiment, _, _ = hparams(hp, metrics)
    _write_events(sweep_dir, [(experiment, 0)])
    return sorted(results)


def write_sweep_hparams(sweep_dir: str | os.PathLike) -> list[str]:
    """Every finished run's session, rewritten from its result.json, and the experiment summary (for results
    made before runs wrote them). Returns the runs written."""
    runs = write_experiment_summary(sweep_dir)
    for run in runs:
        run_dir = Path(sweep_dir) / run
        write_run_hparams(run_dir, json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8")))
    return runs


def record_hparams(run_dir: str | os.PathLike, result: dict, in_sweep: bool) -> None:
    """What a finished run writes for the HParams dashboard: its session and, in a sweep, the sweep's summary.
    The run's numbers are already in result.json, so a failure here is a warning, not a failed run."""
    try:
        write_run_hparams(run_dir, result)
        if in_sweep:
            write_experiment_summary(Path(run_dir).parent)
    except Exception as e:  # noqa: BLE001 - TensorBoard extras must not fail a run whose result.json is written
        print(f"warning: HParams summary of {run_dir} not written ({type(e).__name__}: {e})", file=sys.stderr)


class Progress:
    """One console line per report: `phase  step/total  loss  acc  tok/s  ETA` (long work shows progress).
    `acc` (token accuracy) is given as a fraction and printed in percent, the unit of every score users read."""

    def __init__(self, phase: str, total: int, start_step: int = 0, stream=None):
        self.phase, self.total, self.start_step = phase, int(total), int(start_step)
        self.stream = stream or sys.stdout
        self._t0 = time.perf_counter()

    def eta_s(self, step: int) -> float | None:
        done = step - self.start_step
        if done <= 0:
            return None
        return (time.perf_counter() - self._t0) / done * max(self.total - step, 0)

    def report(self, step: int, **values: Any) -> str:
        parts = [f"{self.phase:<24s} {step:>6d}/{self.total:<6d}"]
        for key, value in values.items():
            if value is None:
                continue
            if key == "tokens_per_s":
                parts.append(f"{value / 1000:7.1f}k tok/s")
            elif key == "acc":  # a fraction in metrics.jsonl; in percent here, as evaluation prints its scores
                parts.append(f"acc {100 * value:.2f}%")
            elif isinstance(value, float):
                parts.append(f"{key} {value:.4g}")
            else:
                parts.append(f"{key} {value}")
        eta = self.eta_s(step)
        if eta is not None:
            parts.append(f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        line = "  ".join(parts)
        print(line, file=self.stream, flush=True)
        return line
