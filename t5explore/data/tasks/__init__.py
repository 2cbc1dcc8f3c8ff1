"""Downstream tasks in T5's text-to-text form: `get_task(name)` -> DownstreamTask.

    task = get_task("glue_rte")
    train = task.examples("train", data_dir="../shared/data")    # original files; data_dir=None -> TFDS
    scores = task.score([e.targets for e in val], predictions, [e.meta for e in val])

Task names: stdlib_module (built-in, offline), glue_cola, glue_sst2, glue_rte, glue_mrpc, glue_qnli,
glue_stsb, superglue_boolq, squad_v1, cnn_dailymail, wmt_en_de, wmt_en_fr, wmt_en_ro. Scores are on the
paper's 0-100 scale; `benchmark_scores` turns per-task scores into GLUE/SuperGLUE averages, SQuAD EM/F1,
CNNDM ROUGE-2 and EnDe/EnFr/EnRo BLEU.
"""

from __future__ import annotations

from t5explore.data.metrics import benchmark_scores
from t5explore.data.tasks.base import SPLITS, DownstreamTask, TaskDataError, TextExample
from t5explore.data.tasks.benchmarks import GLUE_SPECS, make_glue_task, make_squad_task
from t5explore.data.tasks.generation import GENERATION_TASK_NAMES, make_generation_task
from t5explore.data.tasks.stdlib_module import stdlib_module_task

TASK_NAMES = ("stdlib_module", *GLUE_SPECS, "squad_v1", *GENERATION_TASK_NAMES)


def get_task(name: str) -> DownstreamTask:
    """The task called `name` (one of TASK_NAMES). `stdlib_module` reads gin bindings of stdlib_module_task."""
    if name in GLUE_SPECS:
        return make_glue_task(GLUE_SPECS[name])
    if name == "squad_v1":
        return make_squad_task()
    if name in GENERATION_TASK_NAMES:
        return make_generation_task(name)
    if name == "stdlib_module":
        return stdlib_module_task()
    raise ValueError(f"unknown downstream task {name!r}; known tasks: {', '.join(TASK_NAMES)}")


__all__ = [
    "GENERATION_TASK_NAMES", "SPLITS", "TASK_NAMES", "DownstreamTask", "TaskDataError", "TextExample",
    "benchmark_scores", "get_task", "stdlib_module_task",
]
