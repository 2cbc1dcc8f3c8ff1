"""A report column owns its formatter: one registry line adds a column that prints in its own units.

Issue 25: a "Params" column used to print as "565.0 h", because tables.py guessed a cost column's units from
its key. Now `Column.fmt` says how a cell prints; a cost column without one is refused.
"""

from __future__ import annotations

import math

import pytest
from test_report_helpers import SWEEP, known_sweep

from t5explore.report import columns
from t5explore.report.aggregate import summarize
from t5explore.report.columns import Column, default_columns
from t5explore.report.formats import COUNT, Magnitude, format_count
from t5explore.report.results import ReportError, load_results
from t5explore.report.stats import Interval
from t5explore.report.sweep_tables import markdown_table
from t5explore.report.tables import summary_table


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return load_results(known_sweep(tmp_path_factory.mktemp("cols") / "results"))


def _column_cells(results, label, **summarize_kw):
    """The text of column `label` in every row of the main table."""
    table = summary_table(summarize(results, **summarize_kw))
    i = table.header.index(label)
    return [row[i] for row in table.rows]


def test_params_is_opt_in_and_prints_as_a_count(results):
    assert "Params" not in [c.label for c in default_columns(results.runs)]  # committed tables unchanged
    cells = _column_cells(results, "Params", extra_columns=["Params"])
    assert set(cells) - {"–"} == {"1.23M"}  # the helpers' model.num_params = 1234567, not "342.9 h"
    by_key = [c.label for c in default_columns(results.runs, extra=["model.num_params"])]
    assert by_key[-1] == "Params" and by_key.count("Params") == 1


def test_params_in_the_printed_table(results, tmp_path):
    md = markdown_table(tmp_path, results=results, extra_columns=["params"])
    header = next(ln for ln in md.splitlines() if ln.startswith("| Variant"))
    assert header.rstrip(" |").endswith("Params")
    assert "1.23M" in md and " h |" not in md


def test_one_registry_line_adds_a_column_with_its_own_formatter(results, monkeypatch):
    """The run-level registry is the only change: the column appears after the others in its own format."""
    per_minute = Magnitude(lambda s: f"{s / 60:.2f} min/run")
    line = Column("timing.total_s", "Minutes", None, "cost", fmt=per_minute)
    monkeypatch.setattr(columns, "RUN_COLUMNS", (*columns.RUN_COLUMNS, line))
    cells = _column_cells(results, "Minutes")
    wall = _column_cells(results, "Wall time")
    assert cells[0] == "2.00 min/run" and wall[0] == "2.0 min"  # same number, each column's own format
    assert all(c == "–" or c.endswith(" min/run") for c in cells)


def test_an_opt_in_registry_line_is_asked_for_by_label(results, monkeypatch):
    line = Column("pretrain.tokens_seen", "Tokens (exact)", None, "cost", fmt=Magnitude(lambda n: f"{n:,.0f}"))
    monkeypatch.setattr(columns, "OPT_IN_COLUMNS", (*columns.OPT_IN_COLUMNS, line))
    cells = _column_cells(results, "Tokens (exact)", extra_columns=["Tokens (exact)"])
    assert cells[0] == "1,638,400" and _column_cells(results, "Tokens")[0] == "1.64M"


def test_unknown_opt_in_column_lists_the_choices(results):
    with pytest.raises(ReportError, match=r"unknown column\(s\) 'Parms'; choose from Params"):
        default_columns(results.runs, extra=["Parms"])


def test_a_cost_column_must_name_its_formatter():
    with pytest.raises(ValueError, match="must name its formatter"):
        Column("model.num_params", "Params", None, "cost")
    with pytest.raises(ValueError, match="kind must be"):
        Column("x", "X", None, "size", fmt=COUNT)


def test_formatters():
    assert [format_count(n) for n in (999, 1_234, 565_000, 1_234_567, 220e6, 11e9)] == [
        "999",
        "1.23k",
        "565k",
        "1.23M",
        "220M",
        "11B",
    ]
    assert COUNT(Interval(math.nan)) == "–"
    score = Column("s", "S", "higher")
    loss = Column("l", "L", "lower", "loss")
    iv = Interval(1.0, 0.5, 1.5, 3, "t")
    texts = (score.text(iv), loss.text(iv), score.text(iv, signed=True))
    assert texts == ("1.00 ± 0.50", "1.000 ± 0.500", "+1.00 ± 0.50")


def test_table_command_adds_opt_in_columns_and_refuses_unknown_ones(tmp_path, capsys):
    from t5explore import cli

    sweep = known_sweep(tmp_path / "results")
    assert cli.main(["table", str(sweep), "--format=md", f"--out={tmp_path / 'out'}", "--columns=Params"]) == 0
    printed = capsys.readouterr().out
    header = next(ln for ln in printed.splitlines() if ln.startswith("| Variant"))
    assert header.rstrip(" |").endswith("| Params") and "1.23M" in printed
    written = (tmp_path / "out" / f"{SWEEP}.md").read_text(encoding="utf-8")
    assert "| Params |" in written
    assert cli.main(["table", str(sweep), "--format=md", f"--out={tmp_path / 'bad'}", "--columns=Parms"]) == 2
    assert "unknown column(s) 'Parms'; choose from Params" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # refused before any file is written
