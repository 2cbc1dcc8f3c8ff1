"""Downstream tasks in T5's text-to-text form, one registry entry each: `get_task(name)` -> DownstreamTask.

    task = get_task("glue_rte")
    train = task.examples("train", data_dir="../shared/data")    # original files; data_dir=None -> TFDS
    scores = task.score([e.targets for e in val], predictions, [e.meta for e in val])

The entries are in catalog.py (registry.py says what an entry holds): stdlib_module (built-in, offline),
glue_cola, glue_sst2, glue_mrpc, glue_qnli, glue_rte, glue_stsb, superglue_boolq, squad_v1, cnn_dailymail,
wmt_en_de, wmt_en_fr, wmt_en_ro. Scores are on the paper's 0-100 scale; `benchmark_scores` turns per-task
scores into the registered benchmark scores (GLUE/SuperGLUE averages, SQuAD EM/F1, CNNDM ROUGE-2,
EnDe/EnFr/EnRo BLEU).
"""

from __future__ import annotations

from t5explore.data.tasks import catalog  # noqa: F401  (registers the entries)
from t5explore.data.tasks.base import (
    SPLITS,
    DownstreamTask,
    TaskData,
    TaskDataError,
    TextExample,
)
from t5explore.data.tasks.registry import (
    BENCHMARK_NAMES,
    TASK_NAMES,
    TaskSpec,
    benchmark_scores,
    get_task,
    register_benchmark,
    register_task,
    registry_info,
    task_spec,
    unregister_task,
)
from t5explore.data.tasks.stdlib_module import stdlib_module_task

__all__ = [
    "BENCHMARK_NAMES",
    "SPLITS",
    "TASK_NAMES",
    "DownstreamTask",
    "TaskData",
    "TaskDataError",
    "TaskSpec",
    "TextExample",
    "benchmark_scores",
    "get_task",
    "register_benchmark",
    "register_task",
    "registry_info",
    "stdlib_module_task",
    "task_spec",
    "unregister_task",
]
