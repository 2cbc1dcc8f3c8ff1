"""The registry's entries: every benchmark score, then every downstream task, one record each.

A new task is one `register_task(TaskSpec(...))` here (plus its source module if it reads a new format):
its label, source, metrics and benchmark membership then reach fine-tuning, result.json's `benchmarks` and
`registry`, and the report's tables without an edit anywhere else.

Benchmarks are registered in the paper's column order (GLUE, CNNDM, SQuAD, SGLUE, EnDe, EnFr, EnRo), which
is the tables' order. `paper_tasks` lists the tasks behind the paper's average (Raffel et al. 2020,
Table 16), so a table can say when ours averages fewer (e.g. `GLUE (6/9 tasks)`).
"""

from __future__ import annotations

from t5explore.data.metrics import ROUGE_KEYS
from t5explore.data.tasks.benchmarks import GlueSource, squad_source
from t5explore.data.tasks.generation import WmtSource, cnndm_source
from t5explore.data.tasks.registry import TaskSpec, register_benchmark, register_task
from t5explore.data.tasks.stdlib_module import TASK_NAME as STDLIB
from t5explore.data.tasks.stdlib_module import stdlib_module_source
from t5explore.results_schema import BenchmarkInfo

# ------------------------------------------------------------------------------------------ benchmarks

GLUE = register_benchmark(
    "glue_average",
    BenchmarkInfo(
        "GLUE",
        "GLUE",
        ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "QNLI", "RTE"),
        axis="GLUE average score",
    ),
)
CNNDM = register_benchmark("cnndm", BenchmarkInfo("CNNDM", "CNNDM", axis="CNNDM ROUGE-2 F"))
SQUAD_EM = register_benchmark("squad_em", BenchmarkInfo("SQuAD EM", "SQuAD", axis="SQuAD exact match (%)"))
SQUAD_F1 = register_benchmark("squad_f1", BenchmarkInfo("SQuAD F1", headline=False, axis="SQuAD F1"))
SUPERGLUE = register_benchmark(
    "superglue_average",
    BenchmarkInfo(
        "SGLUE",
        "SGLUE",
        ("BoolQ", "CB", "COPA", "MultiRC", "ReCoRD", "RTE", "WiC", "WSC"),
        axis="SuperGLUE average score",
    ),
)
EN_DE = register_benchmark("en_de", BenchmarkInfo("EnDe", "EnDe", axis="EnDe BLEU"))
EN_FR = register_benchmark("en_fr", BenchmarkInfo("EnFr", "EnFr", axis="EnFr BLEU"))
EN_RO = register_benchmark("en_ro", BenchmarkInfo("EnRo", "EnRo", axis="EnRo BLEU"))

# ------------------------------------------------------------------------------------------ tasks

register_task(TaskSpec(STDLIB, "stdlib", stdlib_module_source, ("accuracy",)))

register_task(
    TaskSpec(
        "glue_cola",
        "CoLA",
        GlueSource(
            "cola",
            "glue/cola",
            "glue/CoLA",
            ("sentence",),
            ("unacceptable", "acceptable"),
            columns={"sentence": 3, "label": 1},
            tsv_header=False,
            tsv_width=4,
        ),
        ("matthews_corr",),
        benchmarks={GLUE: ("matthews_corr",)},
    )
)
register_task(
    TaskSpec(
        "glue_sst2",
        "SST-2",
        GlueSource(
            "sst2",
            "glue/sst2",
            "glue/SST-2",
            ("sentence",),
            ("negative", "positive"),
            columns={"sentence": "sentence", "label": "label"},
        ),
        ("accuracy",),
        benchmarks={GLUE: ("accuracy",)},
    )
)
register_task(
    TaskSpec(
        "glue_mrpc",
        "MRPC",
        GlueSource(
            "mrpc",
            "glue/mrpc",
            "glue/MRPC",
            ("sentence1", "sentence2"),
            ("not_equivalent", "equivalent"),
            columns={"sentence1": "#1 String", "sentence2": "#2 String", "label": "Quality"},
        ),
        ("f1", "accuracy"),
        benchmarks={GLUE: ("f1", "accuracy")},
    )
)
register_task(
    TaskSpec(
        "glue_qnli",
        "QNLI",
        GlueSource(
            "qnli",
            "glue/qnli",
            "glue/QNLI",
            ("question", "sentence"),
            ("entailment", "not_entailment"),
            columns={"question": "question", "sentence": "sentence", "label": "label"},
            label_kind="name",
        ),
        ("accuracy",),
        benchmarks={GLUE: ("accuracy",)},
    )
)
register_task(
    TaskSpec(
        "glue_rte",
        "RTE",
        GlueSource(
            "rte",
            "glue/rte",
            "glue/RTE",
            ("sentence1", "sentence2"),
            ("entailment", "not_entailment"),
            columns={"sentence1": "sentence1", "sentence2": "sentence2", "label": "label"},
            label_kind="name",
        ),
        ("accuracy",),
        benchmarks={GLUE: ("accuracy",)},
    )
)
register_task(
    TaskSpec(
        "glue_stsb",
        "STS-B",
        GlueSource(
            "stsb",
            "glue/stsb",
            "glue/STS-B",
            ("sentence1", "sentence2"),
            None,
            columns={"sentence1": "sentence1", "sentence2": "sentence2", "label": "score"},
            label_kind="float",
        ),
        ("pearson", "spearman"),
        benchmarks={GLUE: ("pearson", "spearman")},
    )
)
register_task(
    TaskSpec(
        "superglue_boolq",
        "BoolQ",
        GlueSource(
            "boolq",
            "super_glue/boolq",
            "superglue/BoolQ",
            ("passage", "question"),
            ("False", "True"),
            file_format="jsonl",
        ),
        ("accuracy",),
        benchmarks={SUPERGLUE: ("accuracy",)},
    )
)
# The paper's tables report SQuAD exact match, so that is the score that picks the best checkpoint.
register_task(
    TaskSpec(
        "squad_v1",
        "SQuAD",
        squad_source,
        ("exact_match", "f1"),
        benchmarks={SQUAD_EM: ("exact_match",), SQUAD_F1: ("f1",)},
    )
)
register_task(
    TaskSpec(
        "cnn_dailymail", "CNNDM", cnndm_source, ROUGE_KEYS, primary_metric="rouge2", benchmarks={CNNDM: ("rouge2",)}
    )
)
register_task(
    TaskSpec("wmt_en_de", "EnDe", WmtSource("de", "wmt_t2t_translate/de-en"), ("bleu",), benchmarks={EN_DE: ("bleu",)})
)
register_task(
    TaskSpec("wmt_en_fr", "EnFr", WmtSource("fr", "wmt15_translate/fr-en"), ("bleu",), benchmarks={EN_FR: ("bleu",)})
)
register_task(
    TaskSpec("wmt_en_ro", "EnRo", WmtSource("ro", "wmt16_translate/ro-en"), ("bleu",), benchmarks={EN_RO: ("bleu",)})
)
