"""Every table format parses back, with ★, intervals, Δ vs ★ with raw and Holm p, bold, missing cells and failed
runs where they belong."""

from __future__ import annotations

import argparse
import csv
import io
import re
from html.parser import HTMLParser

import pytest
from test_report_helpers import GLUE_LABEL, SWEEP, known_sweep

from t5explore.report.aggregate import summarize
from t5explore.report.commands import add_commands, parse_baseline_std
from t5explore.report.results import ReportError, load_results
from t5explore.report.sweep_tables import markdown_table, write_tables
from t5explore.report.table_render import to_html, to_latex, to_markdown
from t5explore.report.tables import summary_table

HEADER = [
    "Variant",
    "n",
    GLUE_LABEL,
    f"Δ {GLUE_LABEL}",
    f"p {GLUE_LABEL} (raw / Holm)",
    "SQuAD EM",
    "Δ SQuAD EM",
    "p SQuAD EM (raw / Holm)",
    "stdlib acc",
    "Δ stdlib acc",
    "p stdlib acc (raw / Holm)",
    "Pre-train loss",
    "Held-out loss",
    "Tokens",
    "Wall time",
]


@pytest.fixture()
def sweep_dir(tmp_path):
    return known_sweep(tmp_path / "results")


def _table(sweep_dir):
    return summary_table(summarize(load_results(sweep_dir)))


def test_markdown_rows_star_bold_missing_and_failed_runs(sweep_dir):
    md = to_markdown(_table(sweep_dir))
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    assert cells[0] == HEADER
    # ± = t(0.975, n−1)·s/√n: 4.303·2/√3 = 4.97 for three seeds, 12.706·√2/√2 = 12.71 for two.
    assert cells[1] == [
        "★ i.i.d.",
        "3",
        "82.00 ± 4.97",
        "★",
        "",
        "52.00 ± 4.97",
        "★",
        "",
        "32.00 ± 4.97",  # not bold: nothing in stdlib is resolved below the best (μ = 2, p = 0.070)
        "★",
        "",
        "3.200 ± 0.497",
        "3.300 ± 0.497",
        "1.64M",
        "2.0 min",
    ]
    assert cells[2][:11] == [
        "μ = 2",
        "2",
        "**86.00 ± 12.71**",
        "+5.00 ± 0.00 ▲",
        "<0.001 / <0.001",
        "41.00 ± 12.71",
        "-10.00 ± 0.00 ▼",
        "<0.001 / <0.001",
        "40.00 ± 0.00",
        "+9.00 ± 12.71 ≈",
        "0.070 / 0.070",  # 10 and 8 with 1 dof; the only test in its family, so Holm leaves it
    ]
    assert cells[3][:11] == [  # one seed without a bootstrap: no test, and unresolved against the best
        "μ = 3",
        "1",
        "**79.00**",
        "-1.00 (n/a, 1 seed)",
        "n/a",
        "60.00",
        "+10.00 (n/a, 1 seed)",
        "n/a",
        "36.00",
        "+6.00 (n/a, 1 seed)",
        "n/a",
    ]
    assert cells[4] == ["μ = 10", "0"] + ["–"] * 13
    assert "± = 95% CI of the mean over seeds (Student t)." in md and "bootstrap CI over evaluation" not in md
    assert (
        f"Holm = the p adjusted by Holm–Bonferroni over the column's family, every row's Δ vs. ★ that has a test "
        f"(comparisons: {GLUE_LABEL}: 1, SQuAD EM: 1, stdlib acc: 1). ▲ better / ▼ worse than ★: Holm p < 0.05; "
        "≈ tie: Holm p ≥ 0.05, even where the unadjusted CI excludes 0."
    ) in md
    assert "Bold = the rows not resolved below the column's best row" in md
    assert "Nothing is bold in SQuAD EM, stdlib acc: no row is resolved below the best." in md
    assert (
        "Power: seeds for 80% power to detect a true Δ of 1 point (two-sided paired t-test, α = 0.05 before any "
        "Holm adjustment; noncentral t), from each row's own σ of its per-seed differences from ★ (a rough σ with "
        f"few seeds): {GLUE_LABEL}: μ = 2: 2 (σ 0.00); SQuAD EM: μ = 2: 2 (σ 0.00); stdlib acc: μ = 2: 18 (σ 1.41)."
    ) in md
    # the GLUE column averages 2 of the paper's 9 GLUE tasks, and the table says which
    assert (
        f"{GLUE_LABEL} = the mean of CoLA, SST-2; the paper's GLUE averages 9 tasks (CoLA, SST-2, MRPC, STS-B, "
        "QQP, MNLI-m, MNLI-mm, QNLI, RTE), so the two are not the same score."
    ) in md
    assert "Tiny test scale" not in md
    assert "- Failed: span_10__seed_0 (μ = 10): FloatingPointError: loss is nan" in md
    assert "- Incomplete: span_10__seed_1 (μ = 10)" in md


def test_csv_parses_back_with_the_numbers(sweep_dir, tmp_path):
    paths = write_tables(sweep_dir, tmp_path / "out", ["csv"])
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / f"{SWEEP}.csv").read_text())))
    assert [r["variant"] for r in rows] == ["i.i.d.", "μ = 2", "μ = 3", "μ = 10"]
    assert (
        float(rows[0][GLUE_LABEL]) == 82.0
        and float(rows[0][f"{GLUE_LABEL} std"]) == 2.0
        and rows[0][f"{GLUE_LABEL} n"] == "3"
    )
    assert float(rows[0][f"{GLUE_LABEL} ci_lo"]) == pytest.approx(82 - 4.968275) and rows[0][f"{GLUE_LABEL} ci"] == "t"
    assert float(rows[0][f"{GLUE_LABEL} ci_hi"]) == pytest.approx(82 + 4.968275)
    assert rows[0]["baseline"] == "True" and rows[1]["baseline"] == "False"
    assert [r[f"{GLUE_LABEL} bold"] for r in rows] == ["False", "True", "True", "False"]
    assert [r[f"{GLUE_LABEL} p"] for r in rows[:3]] == ["", "0.0", ""]
    assert rows[1]["stdlib acc p_holm"].startswith("0.0704")
    assert rows[1]["stdlib acc paired_sigma"].startswith("1.414") and rows[1]["stdlib acc seeds_for_power"] == "18"
    assert [r[f"{GLUE_LABEL} delta"] for r in rows[:3]] == ["", "5.0", "-1.0"] and rows[1][
        f"{GLUE_LABEL} delta_lo"
    ] == "5.0"
    assert [r[f"{GLUE_LABEL} tie"] for r in rows[:3]] == ["", "False", ""]  # no Δ for ★, no interval for one seed
    assert rows[1]["stdlib acc tie"] == "True" and rows[1]["stdlib acc delta_n"] == "2"
    assert rows[2][f"{GLUE_LABEL} delta_n"] == "1" and rows[2][f"{GLUE_LABEL} delta_lo"] == ""
    assert rows[3][GLUE_LABEL] == ""
    status = list(csv.DictReader(io.StringIO((tmp_path / "out" / f"{SWEEP}_not_complete.csv").read_text())))
    assert [(r["run"], r["status"]) for r in status] == [
        ("span_10__seed_0", "failed"),
        ("span_10__seed_1", "incomplete"),
    ]
    assert {p.name for p in paths} == {f"{SWEEP}.csv", f"{SWEEP}_not_complete.csv", f"{SWEEP}_vs_paper.csv"}


def test_latex_is_booktabs_with_a_consistent_column_count(sweep_dir):
    tex = to_latex(_table(sweep_dir))
    assert tex.splitlines()[0].startswith(r"% requires \usepackage{booktabs}")  # says what it needs
    spec = re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1)
    assert len(spec) == len(HEADER)
    body = tex[tex.index(r"\toprule") : tex.index(r"\bottomrule")]
    rows = [ln for ln in body.splitlines() if ln.endswith(r"\\")]
    assert len(rows) == 1 + 4
    for r in rows:
        assert len(re.split(r"(?<!\\)&", r)) == len(spec), r
    assert tex.index(r"\toprule") < tex.index(r"\midrule") < tex.index(r"\bottomrule") < tex.index(r"\end{tabular}")
    assert r"$\star$ i.i.d." in tex and r"\textbf{86.00 $\pm$ 12.71}" in tex and r"$\mu$ = 10" in tex
    assert r"+5.00 $\pm$ 0.00 $\uparrow$" in tex and "0.070 / 0.070" in tex
    assert r"+9.00 $\pm$ 12.71 $\approx$" in tex and r"$\Delta$ GLUE" in tex
    assert tex.isascii()  # every symbol of the cells and notes has a LaTeX spelling
    assert r"span\_10\_\_seed\_0" in tex  # underscores escaped
    assert tex.count("{") == tex.count("}")


class _TableParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.bold, self._in_cell = [], [], False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
            self.bold.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self.bold[-1].append(False)
            self._in_cell = True
        elif tag == "b" and self._in_cell:
            self.bold[-1][-1] = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.rows[-1][-1] += data


def test_html_parses_with_bold_cells(sweep_dir):
    page = to_html(_table(sweep_dir))
    p = _TableParser()
    p.feed(page)
    p.close()
    assert p.rows[0] == HEADER
    assert p.rows[1][0] == "★ i.i.d." and p.rows[1][2] == "82.00 ± 4.97" and not p.bold[1][2]
    assert p.rows[2][2] == "86.00 ± 12.71" and p.bold[2][2] and p.rows[2][3] == "+5.00 ± 0.00 ▲" and not p.bold[2][3]
    assert p.bold[3][2] and not p.bold[1][8] and p.rows[4][2] == "–" and p.rows[2][4] == "<0.001 / <0.001"
    assert "span_10__seed_0" in page and page.startswith("<!DOCTYPE html>")


def test_markdown_table_for_the_sweep_runner_includes_the_paper_side_by_side(sweep_dir):
    md = markdown_table(sweep_dir)
    assert md.count("### ") == 2
    # The ordering is the same in every seed resample (μ = 3 < i.i.d. < μ = 2), so τ's interval is a point.
    assert "| Kendall τ |  | 0.33 [0.33, 0.33] | n = 3 | -0.33 [-0.33, -0.33] | n = 3 |" in md
    # 3 rows: |τ| ≥ 1/3 holds for every one of the 6 orders; the spread has 10 distinct seed draws
    assert "| permutation p (two-sided) |  | 1.000 | all 6 orders | 1.000 | all 6 orders |" in md
    assert "spread of τ over 1000 bootstrap resamples of the seeds (2.5–97.5th percentile; 10 distinct draws)" in md
    assert "| τ without" not in md  # no no-pre-training row, so no τ without it
    assert "| μ = 2 | μ = 2 | 86.00 ± 12.71 | 83.54 | 41.00 ± 12.71 | 82.09 |" in md
    with_paper_std = markdown_table(sweep_dir, baseline_std="paper")
    assert f"σ: {GLUE_LABEL} 0.235, SQuAD EM 0.343" in with_paper_std


def test_write_tables_all_formats_and_per_task(sweep_dir, tmp_path):
    paths = write_tables(sweep_dir, tmp_path / "out", per_task=True)
    names = {p.name for p in paths}
    for stem in (SWEEP, f"{SWEEP}_vs_paper", f"{SWEEP}_per_task"):
        assert {f"{stem}.md", f"{stem}.csv", f"{stem}.tex", f"{stem}.html"} <= names
    per_task = (tmp_path / "out" / f"{SWEEP}_per_task.md").read_text()
    assert "CoLA MCC" in per_task and "| ★ i.i.d. | 3 | 42.00 ± 4.97 | ★ |" in per_task
    assert (
        "| CoLA MCC | Δ CoLA MCC |" in per_task and f"| stdlib invalid | {GLUE_LABEL} |" in per_task
    )  # no Δ for a count
    assert not list((tmp_path / "out").glob(".*tmp"))
    with pytest.raises(ReportError, match="unknown table format"):
        write_tables(sweep_dir, tmp_path / "out", ["pdf"])
    with pytest.raises(ReportError, match="'BLEU', which names no column"):
        write_tables(sweep_dir, tmp_path / "out", ["md"], baseline_std={"BLEU": 1.0})


def _cli(argv):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args, [], [])


def test_table_command_prints_and_writes(sweep_dir, tmp_path, capsys):
    out = tmp_path / "tables"
    assert (
        _cli(
            [
                "table",
                str(sweep_dir),
                "--format",
                "md,latex",
                "--out",
                str(out),
                "--per_task",
                "--baseline_std",
                "GLUE=2",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| ★ i.i.d. | 3 | **82.00 ± 4.97** | ★ |" in printed  # the paper's rule: 82 is within 2σ = 4 of 86
    assert f"Bold (the paper's rule, for the σ given) = within 2σ of the best (σ: {GLUE_LABEL} 2)." in printed
    assert (out / f"{SWEEP}.tex").is_file() and (out / f"{SWEEP}_per_task.md").is_file()
    assert not (out / f"{SWEEP}.csv").exists()
    assert _cli(["table", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    assert _cli(["table", str(sweep_dir), "--baseline_std", "GLUE"]) == 2
    assert "expected NAME=NUMBER" in capsys.readouterr().err


def test_parse_baseline_std():
    assert parse_baseline_std("paper") == "paper"
    assert parse_baseline_std("GLUE=0.235, SQuAD EM=0.343") == {"GLUE": 0.235, "SQuAD EM": 0.343}
    assert parse_baseline_std(None) is None
    with pytest.raises(ReportError):
        parse_baseline_std("GLUE=abc")


def test_a_sweep_with_no_completed_run_still_tabulates(tmp_path):
    from test_report_helpers import write_failed, write_incomplete, write_sweep_json

    from t5explore.report.plots import write_plots

    d = tmp_path / "sw"
    write_failed(d, "a__seed_0")
    write_incomplete(d, "b__seed_0")
    write_sweep_json(d, "sw", [("a__seed_0", "A"), ("b__seed_0", "B"), ("c__seed_0", "C")], "A")
    md = markdown_table(d)
    assert "| ★ A | 0 |" in md and "| C | 0 |" in md
    assert "- Failed: a__seed_0 (A)" in md and "- Incomplete: c__seed_0 (C): not started" in md
    assert {p.suffix for p in write_tables(d, tmp_path / "out")} == {".md", ".csv", ".tex", ".html"}
    assert write_plots(d, tmp_path / "out") == []


def test_a_paper_sweep_sharing_no_score_column_prints_one_line_instead_of_the_comparison(tmp_path, capsys):
    from test_report_helpers import make_result, write_run

    from t5explore.report.plots import write_plots

    d = tmp_path / SWEEP  # a Table 7 sweep at tiny scale: scored only on the built-in stdlib task
    for run, variant, acc in (("iid__seed_0", "i.i.d.", 30.0), ("span_3__seed_0", "μ = 3", 40.0)):
        write_run(d, make_result(SWEEP, run, variant, 0, baseline=variant == "i.i.d.", stdlib=acc))
    md = markdown_table(d)
    line = (
        f"{SWEEP} vs. T5 paper table7: no score column in common with the paper "
        "(paper: GLUE, CNNDM, SQuAD, SGLUE, EnDe, EnFr, EnRo; ours: stdlib acc); comparison skipped."
    )
    assert line in md.splitlines()
    assert md.count("### ") == 1 and "Kendall" not in md and "Paper row" not in md
    names = {p.name for p in write_tables(d, tmp_path / "out")}
    assert names == {f"{SWEEP}{ext}" for ext in (".md", ".csv", ".tex", ".html")}
    # scores and the Δ-vs-★ forest plot; no ours-vs-paper figure without a shared column
    assert [p.name for p in write_plots(d, tmp_path / "png")] == [f"{SWEEP}_scores.png", f"{SWEEP}_delta.png"]
    assert _cli(["table", str(d), "--out", str(tmp_path / "cli")]) == 0
    assert line in capsys.readouterr().out


def _one_seed_sweep(root, scale=None):
    """Three variants with one seed each and a stored bootstrap: B ★ 70, V 73 (paired: better), W 71 (tie)."""
    import numpy as np
    from test_report_helpers import add_bootstrap, make_result, write_run

    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1.0, 1000)
    d = root / SWEEP
    for variant, score, samples in (
        ("B", 70.0, 70.0 + noise),
        ("V", 73.0, 73.0 + 1.3 * noise),
        ("W", 71.0, 71.0 + noise + rng.normal(0, 3, 1000)),
    ):
        res = add_bootstrap(
            make_result(SWEEP, variant.lower(), variant, 0, baseline=variant == "B", stdlib=score),
            {"stdlib_module.accuracy": samples},
        )
        if scale:
            res["scale"] = scale
        write_run(d, res)
    return d


def test_one_seed_tables_show_bootstrap_intervals_and_say_so(tmp_path):
    md = markdown_table(_one_seed_sweep(tmp_path))
    rows = {
        r.split("|")[1].strip(): [c.strip() for c in r.strip("|").split("|")]
        for r in md.splitlines()
        if r.startswith("| ") and "Variant" not in r
    }
    assert re.fullmatch(r"70\.00 \[68\.\d\d, 71\.\d\d\]", rows["★ B"][2]) and rows["★ B"][3] == "★"
    assert re.fullmatch(r"\*\*73\.00 \[7\d\.\d\d, 7\d\.\d\d\]\*\*", rows["V"][2])
    assert re.fullmatch(r"\+3\.00 \[\+2\.\d\d, \+3\.\d\d\] ▲", rows["V"][3])
    assert rows["W"][3].endswith("≈") and rows["W"][2].startswith("**")
    assert rows["V"][4] == "0.002 / 0.004"  # bootstrap p 2/1001, doubled by Holm over {V, W}
    assert "[lo, hi] = 95% bootstrap CI over evaluation examples (1 seed; percentile)." in md
    assert "± = 95% CI of the mean over seeds" not in md
    assert "one shared seed: paired bootstrap p" in md
    assert "Power: n/a (no variant shares ≥ 2 seeds with ★)." in md
    assert "Tiny test scale" not in md


def test_tiny_scale_is_flagged_only_when_every_run_says_so(tmp_path):
    note = "Tiny test scale: these numbers are a smoke test, not a result."
    assert note in markdown_table(_one_seed_sweep(tmp_path / "a", scale="tiny")).splitlines()
    d = _one_seed_sweep(tmp_path / "b", scale="tiny")
    res = load_results(d)
    res.runs.loc[0, "scale"] = "paper"
    assert note not in to_markdown(summary_table(summarize(res)))
    assert note not in markdown_table(_one_seed_sweep(tmp_path / "c"))  # no field: unknown, not tiny
