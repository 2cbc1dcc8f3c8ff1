"""How a table names its columns, from the `registry` records the runs' result.json files carry.

Every loaded run has a `registry` (version-1 files get one from legacy_labels.py when loaded), so the
report labels tasks, metrics and benchmark scores it has never heard of without importing data/. Records
of several runs are merged, the first run's record of a name winning.

A benchmark average over fewer tasks than the paper's is labelled as the subset it is: one task by name
(`SGLUE (BoolQ)`), several by count (`GLUE (6/9 tasks)`), with a note naming both sets of tasks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from t5explore.results_schema import BenchmarkInfo, MetricInfo, RegistryInfo, TaskInfo

REGISTRY_COLUMN = "registry"  # Results.runs keeps each run's RegistryInfo whole in this column


@dataclass
class Labels:
    tasks: dict[str, TaskInfo] = field(default_factory=dict)
    benchmarks: dict[str, BenchmarkInfo] = field(default_factory=dict)  # in the registry's (the paper's) order
    metrics: dict[str, MetricInfo] = field(default_factory=dict)

    @classmethod
    def merge(cls, infos: Iterable[RegistryInfo | None]) -> Labels:
        out = cls()
        for info in infos:
            if isinstance(info, RegistryInfo):
                for part in ("tasks", "benchmarks", "metrics"):
                    mine = getattr(out, part)
                    for name, rec in getattr(info, part).items():
                        mine.setdefault(name, rec)
        return out

    @classmethod
    def from_runs(cls, runs: pd.DataFrame) -> Labels:
        return cls.merge(runs[REGISTRY_COLUMN]) if REGISTRY_COLUMN in runs.columns else cls()

    def task_label(self, task: str) -> str:
        return self.tasks[task].label if task in self.tasks else task

    def metric(self, metric: str) -> MetricInfo:
        return self.metrics.get(metric, MetricInfo(metric, metric))

    def benchmark(self, name: str) -> BenchmarkInfo:
        return self.benchmarks.get(name, BenchmarkInfo(name))

    def members(self, benchmark: str, tasks: Iterable[str]) -> list[str]:
        """The tasks among `tasks` averaged into `benchmark`."""
        return [t for t in tasks if t in self.tasks and benchmark in self.tasks[t].benchmarks]

    def benchmark_label(self, name: str, tasks: Iterable[str]) -> tuple[str, str | None]:
        """(column label, note) of benchmark `name` for runs that scored `tasks`: the subset it averages is
        in the label, and the note says which tasks it averages and which the paper's does."""
        info = self.benchmarks.get(name)
        if info is None:
            return name, None
        total = len(info.paper_tasks)
        order = {task: i for i, task in enumerate(info.paper_tasks)}  # the paper's order, then the rest
        members = sorted((self.task_label(t) for t in self.members(name, tasks)), key=lambda t: order.get(t, total))
        if not total or not members or len(members) >= total:
            return info.label, None
        label = f"{info.label} ({members[0]})" if len(members) == 1 else f"{info.label} ({len(members)}/{total} tasks)"
        paper = info.paper_column or info.label
        note = (
            f"{label} = the mean of {', '.join(members)}; the paper's {paper} averages {total} tasks "
            f"({', '.join(info.paper_tasks)}), so the two are not the same score."
        )
        return label, note
