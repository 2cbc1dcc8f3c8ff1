"""Evaluation hygiene of one run: its pre-training corpus de-duplicated against the evaluation and selection
examples of its tasks (data/decontaminate.py), and a record of which examples chose its best checkpoint.

A score measures transfer only if the model never read the examples it is scored on and they did not choose the
checkpoint; result.json's `hygiene` says what the run measured, and every table prints it (report/hygiene.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from t5explore.run_config import Finetune, Pretrain


def evaluation_hygiene(pre: Pretrain, ft: Finetune, tasks: dict, cache_dir: Path) -> tuple[Pretrain, dict | None]:
    """(Pretrain with its corpus de-duplicated against the tasks' evaluation and selection examples, result.json's
    `hygiene`): what the corpus held of those examples and removed (data/decontaminate.py), and which examples
    chose the best checkpoint. The vocabulary and the token store are built from the filtered corpus."""
    if not tasks:
        return pre, None
    from t5explore.data.decontaminate import decontaminate
    from t5explore.train.finetune_data import held_out_texts

    selection = {
        "split": "selection" if ft.selection_examples else "validation",
        "selection_examples": ft.selection_examples,
        "note": None
        if ft.selection_examples
        else "the best checkpoint was chosen on the reported validation examples (optimistic)",
    }
    if not pre.decontaminate_ngram:
        return pre, {"decontamination": None, "selection": selection}
    corpus, report = decontaminate(pre.corpus, held_out_texts(tasks, ft), cache_dir, pre.decontaminate_ngram)
    if report["overlap_after"]:
        raise RuntimeError(f"decontamination left {report['overlap_after']} evaluation examples in the corpus")
    print(
        f"decontamination: {report['contaminated_before']} of {report['eval_examples']} evaluation/selection "
        f"examples shared a {report['ngram']}-gram with {pre.corpus.name}; removed {report['documents_removed']} "
        f"of {report['documents']} documents; overlap now {report['overlap_after']}",
        flush=True,
    )
    return dataclasses.replace(pre, corpus=corpus), {"decontamination": report, "selection": selection}
