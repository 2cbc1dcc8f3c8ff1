"""What a table's numbers may have seen: the leakage and selection status of its runs, as notes under the table.

A score is evidence about transfer only if the pre-training corpus did not hold the evaluation examples and the
reported examples did not choose the checkpoint. result.json (schema 3) records both in `hygiene`
(t5explore/data/decontaminate.py, Finetune.selection_examples); runs made before say nothing, which means
neither was done. The report only reads those records, flattened by results.py into `hygiene.*` columns.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

DECON = "hygiene.decontamination."
SELECTION = "hygiene.selection."


def hygiene_notes(runs: pd.DataFrame) -> list[str]:
    """One note on leakage and one on checkpoint selection, for the runs of one table."""
    if runs.empty:
        return []
    return [_leakage_note(runs), _selection_note(runs)]


def _values(runs: pd.DataFrame, column: str) -> list[Any]:
    if column not in runs:
        return [None] * len(runs)
    return [None if _missing(v) else v for v in runs[column]]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _leakage_note(runs: pd.DataFrame) -> str:
    after = _values(runs, DECON + "overlap_after")
    unknown = sum(v is None for v in after)
    if unknown == len(runs):
        return (
            "Leakage: not measured. These runs predate de-duplication (result.json has no `hygiene`): their "
            "pre-training corpus was not filtered against the evaluation examples, which it may contain."
        )
    n = _range(_values(runs, DECON + "eval_examples"))
    before = _range(_values(runs, DECON + "contaminated_before"))
    removed = _range(_values(runs, DECON + "documents_removed"))
    ngram = _range(_values(runs, DECON + "ngram"))
    left = _range(after)
    note = (
        f"Leakage: each run's pre-training corpus was de-duplicated against its {n} evaluation and selection "
        f"examples ({ngram}-grams): {before} of them occurred in it and {removed} documents were removed; "
        f"overlap measured after: {left}."
    )
    if unknown:
        note += f" {unknown} of {len(runs)} runs did not record it (made before de-duplication)."
    return note


def _selection_note(runs: pd.DataFrame) -> str:
    splits = _values(runs, SELECTION + "split")
    chosen = [s for s in splits if s == "selection"]
    if len(chosen) == len(runs):
        k = _range(_values(runs, SELECTION + "selection_examples"))
        return (
            f"Selection: the best checkpoint was chosen on {k} held-out training examples per task, never trained "
            "on or reported; the scores are of validation examples selection never saw."
        )
    if not chosen:
        return (
            "Selection: the best checkpoint was chosen on the reported validation examples themselves, so `best` "
            "scores are optimistic (the `last` scores are not)."
        )
    return (
        f"Selection: mixed: {len(chosen)} of {len(runs)} runs chose their best checkpoint on held-out training "
        "examples, the others on the reported validation examples (optimistic)."
    )


def _range(values: list[Any]) -> str:
    known = sorted({int(v) for v in values if v is not None})
    if not known:
        return "?"
    return f"{known[0]:,}" if len(known) == 1 else f"{known[0]:,}–{known[-1]:,}"
