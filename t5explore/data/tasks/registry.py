"""The task registry: one record per downstream task (and per benchmark score), looked up by name.

Like seqio's TaskRegistry, a task is one `register_task(TaskSpec(...))` call holding everything the
project knows about it: its display label, its source (loader and text-to-text formatting, built only when
the task is used), its metrics and primary metric, and the benchmark scores it is averaged into. Everything
else reads the registry: `get_task` (fine-tuning), `benchmark_scores` (result.json's `benchmarks`),
`registry_info` (result.json's `registry`, from which the report takes its labels without importing data/).
The entries themselves are in catalog.py; a new task is one entry there (plus its source module if new).
An entry may carry its own `data_dir` (a local task's folder), which its loader reads instead of the run's
`Finetune.data_dir`; a local-files source needs no TFDS name (`GlueSource(tfds_name=None)`).

A benchmark score is registered once (`register_benchmark`) with its display facts; its value is the mean,
over the member tasks a run scored, of each task's listed metrics averaged first (T5's eval_utils: MRPC
F1/accuracy, STS-B Pearson/Spearman).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from t5explore.data.metrics import metric_info
from t5explore.data.tasks.base import DownstreamTask, Loader, Source, TaskData, TextExample
from t5explore.results_schema import BenchmarkInfo, RegistryInfo, TaskInfo


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One registry entry."""

    name: str
    label: str  # display label in tables, e.g. 'CoLA'
    source: Source = dataclasses.field(repr=False)  # metric names -> TaskData (loader, scorer, label words)
    metrics: tuple[str, ...]  # what the scorer returns besides `invalid_predictions`
    primary_metric: str | None = None  # picks the best checkpoint; default: the first metric
    benchmarks: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # score -> metrics
    # This task's own folder, read instead of the run's Finetune.data_dir (e.g. a local TSV task kept
    # outside the GLUE/SuperGLUE/SQuAD tree); `~` is expanded, a relative path is relative to the working
    # directory. None: the run's data_dir (or TFDS when that is None too).
    data_dir: str | None = None

    @property
    def primary(self) -> str:
        return self.primary_metric or self.metrics[0]

    def build(self, data: TaskData | None = None) -> DownstreamTask:
        """The usable task: this entry's facts with its source built (or with `data` given)."""
        data = self.source(self.metrics) if data is None else data
        return DownstreamTask(
            self.name,
            self.label,
            self.primary,
            self.metrics,
            data.label_words,
            data.loader if self.data_dir is None else _reading_from(data.loader, self.data_dir),
            data.scorer,
            dict(self.benchmarks),
        )


def _reading_from(loader: Loader, data_dir: str) -> Loader:
    """`loader` reading the task's own directory, whatever data_dir the run passes."""
    own = str(Path(data_dir).expanduser())

    def load(split: str, _run_data_dir: str | None) -> list[TextExample]:
        return loader(split, own)

    return load


_TASKS: dict[str, TaskSpec] = {}
_BENCHMARKS: dict[str, BenchmarkInfo] = {}
TASK_NAMES = _TASKS.keys()  # a live view: a task registered later is in it
BENCHMARK_NAMES = _BENCHMARKS.keys()


def register_benchmark(name: str, info: BenchmarkInfo) -> str:
    """Register benchmark score `name` (a result.json `benchmarks.best` key); returns the name.
    Registration order is the order of the columns in tables (the paper's)."""
    if name in _BENCHMARKS and _BENCHMARKS[name] != info:
        raise ValueError(f"benchmark {name!r} is already registered differently")
    _BENCHMARKS[name] = info
    return name


def register_task(spec: TaskSpec, replace: bool = False) -> TaskSpec:
    """Add `spec` to the registry (or replace an entry of the same name with `replace`)."""
    if spec.name in _TASKS and not replace:
        raise ValueError(f"task {spec.name!r} is already registered (pass replace=True to replace it)")
    if not spec.metrics or spec.primary not in spec.metrics:
        raise ValueError(f"task {spec.name}: primary metric {spec.primary!r} is not one of its metrics {spec.metrics}")
    for bench, metrics in spec.benchmarks.items():
        if bench not in _BENCHMARKS:
            raise ValueError(f"task {spec.name}: unknown benchmark {bench!r}; registered: {', '.join(_BENCHMARKS)}")
        if not metrics or not set(metrics) <= set(spec.metrics):
            raise ValueError(f"task {spec.name}: benchmark {bench} averages {metrics}, not among its metrics")
    _TASKS[spec.name] = spec
    return spec


def unregister_task(name: str) -> None:
    """Remove a task (tests that register one of their own clean up with this)."""
    _TASKS.pop(name, None)


def task_spec(name: str) -> TaskSpec:
    if name not in _TASKS:
        raise ValueError(f"unknown downstream task {name!r}; known tasks: {', '.join(_TASKS)}")
    return _TASKS[name]


def get_task(name: str) -> DownstreamTask:
    """The task called `name` (one of TASK_NAMES), its source built now (`stdlib_module` reads gin)."""
    return task_spec(name).build()


def benchmark_scores(per_task: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Every registered benchmark score some task in `per_task` (task -> metric -> score) belongs to:
    the mean over its member tasks present of each task's listed metrics (averaged first)."""
    out: dict[str, float] = {}
    for bench in _BENCHMARKS:
        members = [
            (task, _TASKS[task].benchmarks[bench])
            for task in per_task
            if task in _TASKS and bench in _TASKS[task].benchmarks
        ]
        if members:
            out[bench] = float(
                np.mean([np.mean([_require(t, per_task[t], m) for m in metrics]) for t, metrics in members])
            )
    return out


def _require(task: str, scores: Mapping[str, float], metric: str) -> float:
    if metric not in scores:
        raise KeyError(f"task {task} has no metric {metric!r} (has {sorted(scores)})")
    return float(scores[metric])


def registry_info(tasks: Iterable[str], metrics: Iterable[str] = ()) -> RegistryInfo:
    """result.json's `registry` for a run that scored `tasks` with `metrics`: each task's label and
    benchmark membership, the benchmarks they belong to (registry order) and the metrics' display facts."""
    specs = [task_spec(t) for t in tasks]
    used = {b for s in specs for b in s.benchmarks}
    return RegistryInfo(
        tasks={s.name: TaskInfo(s.label, tuple(b for b in _BENCHMARKS if b in s.benchmarks)) for s in specs},
        benchmarks={b: info for b, info in _BENCHMARKS.items() if b in used},
        metrics={m: metric_info(m) for m in dict.fromkeys([*(m for s in specs for m in s.metrics), *metrics])},
    )
