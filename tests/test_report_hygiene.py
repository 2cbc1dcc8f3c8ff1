"""The leakage and selection notes under a table come from the runs' own `hygiene` records."""

from __future__ import annotations

import pandas as pd

from t5explore.report.hygiene import hygiene_notes


def runs(**columns):
    return pd.DataFrame(columns)


def test_runs_without_hygiene_records_are_called_unmeasured_and_optimistic():
    leak, select = hygiene_notes(runs(run=["a", "b"]))
    assert leak.startswith("Leakage: not measured.")
    assert "chosen on the reported validation examples themselves" in select


def test_decontaminated_runs_with_a_selection_split():
    d = "hygiene.decontamination."
    leak, select = hygiene_notes(
        runs(
            **{
                d + "overlap_after": [0, 0],
                d + "eval_examples": [1178, 1178],
                d + "contaminated_before": [1176, 1176],
                d + "documents_removed": [1326, 1326],
                d + "ngram": [13, 13],
                "hygiene.selection.split": ["selection", "selection"],
                "hygiene.selection.selection_examples": [200, 200],
            }
        )
    )
    assert leak == (
        "Leakage: each run's pre-training corpus was de-duplicated against its 1,178 evaluation and selection "
        "examples (13-grams): 1,176 of them occurred in it and 1,326 documents were removed; overlap measured "
        "after: 0."
    )
    assert select.startswith("Selection: the best checkpoint was chosen on 200 held-out training examples")


def test_mixed_tables_say_how_many_runs_lack_the_record():
    leak, select = hygiene_notes(
        runs(
            **{
                "hygiene.decontamination.overlap_after": [0, float("nan")],
                "hygiene.selection.split": ["selection", None],
            }
        )
    )
    assert leak.endswith("1 of 2 runs did not record it (made before de-duplication).")
    assert select.startswith("Selection: mixed: 1 of 2 runs")
