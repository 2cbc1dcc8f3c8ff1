"""Labels for result.json files of schema version 1, which predate the task registry's `registry` field.

Version 1 files name their tasks, metrics and benchmark scores but not how to show them, so the report
keeps this copy of what it knew then about those 13 tasks. It is frozen: a task added later arrives in
version-2 files that carry their own labels, so nothing new is ever added here. tests/test_report_labels.py
checks that it agrees with the registry for these tasks, so an old file renders exactly as a new one.
"""

from __future__ import annotations

from collections.abc import Iterable

from t5explore.results_schema import BenchmarkInfo, MetricInfo, RegistryInfo, TaskInfo

BENCHMARKS = {  # the paper's column order
    "glue_average": BenchmarkInfo(
        "GLUE",
        "GLUE",
        ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "QNLI", "RTE"),
        axis="GLUE average score",
    ),
    "cnndm": BenchmarkInfo("CNNDM", "CNNDM", axis="CNNDM ROUGE-2 F"),
    "squad_em": BenchmarkInfo("SQuAD EM", "SQuAD", axis="SQuAD exact match (%)"),
    "squad_f1": BenchmarkInfo("SQuAD F1", headline=False, axis="SQuAD F1"),
    "superglue_average": BenchmarkInfo(
        "SGLUE",
        "SGLUE",
        ("BoolQ", "CB", "COPA", "MultiRC", "ReCoRD", "RTE", "WiC", "WSC"),
        axis="SuperGLUE average score",
    ),
    "en_de": BenchmarkInfo("EnDe", "EnDe", axis="EnDe BLEU"),
    "en_fr": BenchmarkInfo("EnFr", "EnFr", axis="EnFr BLEU"),
    "en_ro": BenchmarkInfo("EnRo", "EnRo", axis="EnRo BLEU"),
}
TASKS = {
    "stdlib_module": TaskInfo("stdlib"),
    "glue_cola": TaskInfo("CoLA", ("glue_average",)),
    "glue_sst2": TaskInfo("SST-2", ("glue_average",)),
    "glue_mrpc": TaskInfo("MRPC", ("glue_average",)),
    "glue_qnli": TaskInfo("QNLI", ("glue_average",)),
    "glue_rte": TaskInfo("RTE", ("glue_average",)),
    "glue_stsb": TaskInfo("STS-B", ("glue_average",)),
    "superglue_boolq": TaskInfo("BoolQ", ("superglue_average",)),
    "squad_v1": TaskInfo("SQuAD", ("squad_em", "squad_f1")),
    "cnn_dailymail": TaskInfo("CNNDM", ("cnndm",)),
    "wmt_en_de": TaskInfo("EnDe", ("en_de",)),
    "wmt_en_fr": TaskInfo("EnFr", ("en_fr",)),
    "wmt_en_ro": TaskInfo("EnRo", ("en_ro",)),
}
METRICS = {
    "accuracy": MetricInfo("acc", "accuracy (%)"),
    "matthews_corr": MetricInfo("MCC", "Matthews corr. ×100"),
    "f1": MetricInfo("F1", "F1 ×100"),
    "pearson": MetricInfo("Pearson", "Pearson ×100"),
    "spearman": MetricInfo("Spearman", "Spearman ×100"),
    "exact_match": MetricInfo("EM", "exact match (%)"),
    "invalid_predictions": MetricInfo("invalid", "invalid predictions", better="lower"),
    "rouge1": MetricInfo("R-1", "ROUGE-1 F"),
    "rouge2": MetricInfo("R-2", "ROUGE-2 F"),
    "rougeLsum": MetricInfo("R-Lsum", "ROUGE-Lsum F"),
    "bleu": MetricInfo("BLEU", "BLEU"),
}


def legacy_registry(tasks: Iterable[str], metrics: Iterable[str]) -> RegistryInfo:
    """The `registry` a version-1 file that scored `tasks` with `metrics` would carry had it been written
    today; tasks and metrics this table does not know are shown under their own names."""
    infos = {t: TASKS.get(t, TaskInfo(t)) for t in tasks}
    used = {b for info in infos.values() for b in info.benchmarks}
    return RegistryInfo(
        tasks=infos,
        benchmarks={b: i for b, i in BENCHMARKS.items() if b in used},
        metrics={m: METRICS.get(m, MetricInfo(m, m)) for m in dict.fromkeys(metrics)},
    )
